"""Run lm-evaluation-harness (the reference) on the original local files, for parity checks.

lm-eval's own task configs read from the hub; here each task gets a YAML that points lm-eval's
``json``/``csv`` loaders at the original files and rebuilds the prompt with lm-eval's Jinja
templates (written against the original field names), so likra's readers are checked against an
independent implementation of the same prompt, not against themselves.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml

ARC_FIELDS = {
    "output_type": "multiple_choice",
    "doc_to_text": "Question: {{question.stem}}\nAnswer:",
    "doc_to_choice": "{{question.choices | map(attribute='text') | list}}",
    "doc_to_target": "{{(question.choices | map(attribute='label') | list).index(answerKey)}}",
    "metric_list": [{"metric": "acc"}, {"metric": "acc_norm"}],
}

HELLASWAG_UTILS = '''
import re
def _pre(text):
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\\\[.*?\\\\]", "", text)
    return text.replace("  ", " ")
def wg_text(doc):
    return {"1": 0, "2": 1}[doc["answer"]]
def wg_target(doc):
    idx = doc["sentence"].index("_") + 1
    return doc["sentence"][idx:].strip()
def wg_choice(doc):
    idx = doc["sentence"].index("_")
    return [doc["sentence"][:idx] + o for o in (doc["option1"], doc["option2"])]
def process_docs(dataset):
    def _one(doc):
        ctx = doc["ctx_a"] + " " + doc["ctx_b"].capitalize()
        return {"query": _pre(doc["activity_label"] + ": " + ctx), "choices": [_pre(e) for e in doc["endings"]], "gold": int(doc["label"])}
    return dataset.map(_one)
'''


def _task_yaml(name: str, data_dir: Path) -> dict:
    if name in ("arc_challenge", "arc_easy"):
        sub = "ARC-Challenge" if name == "arc_challenge" else "ARC-Easy"
        files = {s: str(data_dir / "arc" / sub / f"{sub}-{f}.jsonl") for s, f in (("train", "Train"), ("test", "Test"))}
        return {"task": f"ref_{name}", "dataset_path": "json", "dataset_kwargs": {"data_files": files},
                "training_split": "train", "test_split": "test", **ARC_FIELDS}
    if name == "hellaswag":
        files = {"train": str(data_dir / "hellaswag" / "hellaswag_train.partial.jsonl"),
                 "validation": str(data_dir / "hellaswag" / "hellaswag_val.jsonl")}
        return {"task": "ref_hellaswag", "dataset_path": "json", "dataset_kwargs": {"data_files": files},
                "output_type": "multiple_choice", "training_split": "train", "validation_split": "validation",
                "process_docs": "!function ref_utils.process_docs", "doc_to_text": "{{query}}",
                "doc_to_target": "{{label}}", "doc_to_choice": "choices",
                "metric_list": [{"metric": "acc"}, {"metric": "acc_norm"}]}
    if name.startswith("mmlu_"):
        subject = name[len("mmlu_"):]
        files = {s: str(data_dir / "mmlu" / s / f"{subject}_{s}.csv") for s in ("test", "dev")}
        return {"task": f"ref_{name}", "dataset_path": "csv",
                "dataset_kwargs": {"data_files": files, "column_names": ["question", "A", "B", "C", "D", "answer"]},
                "output_type": "multiple_choice", "test_split": "test", "fewshot_split": "dev",
                "fewshot_config": {"sampler": "first_n"},
                "description": f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n",
                "doc_to_text": "{{question.strip()}}\nA. {{A}}\nB. {{B}}\nC. {{C}}\nD. {{D}}\nAnswer:",
                "doc_to_choice": ["A", "B", "C", "D"], "doc_to_target": "{{['A', 'B', 'C', 'D'].index(answer)}}",
                "metric_list": [{"metric": "acc"}, {"metric": "acc_norm"}]}
    if name == "winogrande":
        files = {"train": str(data_dir / "winogrande" / "train_l.jsonl"), "validation": str(data_dir / "winogrande" / "dev.jsonl")}
        return {"task": "ref_winogrande", "dataset_path": "json", "dataset_kwargs": {"data_files": files},
                "output_type": "multiple_choice", "training_split": "train", "validation_split": "validation",
                "doc_to_text": "!function ref_utils.wg_text", "doc_to_target": "!function ref_utils.wg_target",
                "doc_to_choice": "!function ref_utils.wg_choice", "metric_list": [{"metric": "acc"}]}
    if name.startswith("jsonl:"):
        path = name[len("jsonl:"):]
        return {"task": "ref_jsonl", "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": path}},
                "output_type": "multiple_choice", "test_split": "test", "fewshot_split": "test",
                "doc_to_text": "Question: {{question}}\nAnswer:", "doc_to_choice": "{{choices}}",
                "doc_to_target": "{{answer}}", "metric_list": [{"metric": "acc"}, {"metric": "acc_norm"}]}
    raise KeyError(f"no reference config for task '{name}'")


def _write_yaml(path: Path, cfg: dict) -> None:
    text = yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True, width=10**6)
    # lm-eval's !function tag must stay a tag, not a quoted string
    for fn in ("process_docs", "wg_text", "wg_target", "wg_choice"):
        text = text.replace(f"'!function ref_utils.{fn}'", f"!function ref_utils.{fn}")
    path.write_text(text)


def lmeval_loglikelihoods(
    model, tokenizer, task: str, data_dir: str | Path, shots: int = 0, limit: int | None = None, batch_size: int = 16
) -> tuple[list[list[float]], dict, list[list[str]]]:
    """Per-document lists of per-option log-likelihoods from lm-eval's HF backend, the task's
    acc / acc_norm, and the per-option contexts lm-eval built (for prompt checks)."""
    from lm_eval.models.huggingface import HFLM

    return run_lmeval(HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size), task, data_dir, shots, limit)


def run_lmeval(lm, task: str, data_dir: str | Path, shots: int = 0, limit: int | None = None
               ) -> tuple[list[list[float]], dict, list[list[str]]]:
    """lm-eval's evaluation of any lm-eval model object (its HF backend, or likra's plugin) on a
    task read from the original local files: per-document option scores, acc / acc_norm, contexts."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        cfg = _task_yaml(task, Path(data_dir))
        _write_yaml(tmp_path / f"{cfg['task']}.yaml", cfg)
        (tmp_path / "ref_utils.py").write_text(HELLASWAG_UTILS)
        tm = TaskManager(include_path=str(tmp_path), include_defaults=False)
        out = lm_eval.simple_evaluate(
            model=lm, tasks=[cfg["task"]], task_manager=tm, num_fewshot=shots, limit=limit,
            log_samples=True, fewshot_random_seed=1234, random_seed=0, numpy_random_seed=1234,
            torch_random_seed=1234, bootstrap_iters=0,
        )
    samples = sorted(out["samples"][cfg["task"]], key=lambda s: s["doc_id"])
    lls = [[float(r[0]) for r in s["filtered_resps"]] for s in samples]
    contexts = [[a[0] for a in s["arguments"]] if isinstance(s["arguments"][0], (list, tuple)) else [] for s in samples]
    metrics = {k.split(",")[0]: v for k, v in out["results"][cfg["task"]].items() if k.split(",")[0] in ("acc", "acc_norm")}
    metrics.setdefault("acc_norm", metrics.get("acc"))  # partial-evaluation tasks report acc only
    return lls, metrics, contexts
