"""The benchmarks likra knows, as data: where their files are, which split is evaluated, which
split gives few-shot examples and how they are drawn (all as lm-eval's task configs say)."""

from __future__ import annotations

from .base import TaskSpec

MMLU_SUBJECTS = (
    "abstract_algebra anatomy astronomy business_ethics clinical_knowledge college_biology "
    "college_chemistry college_computer_science college_mathematics college_medicine college_physics "
    "computer_security conceptual_physics econometrics electrical_engineering elementary_mathematics "
    "formal_logic global_facts high_school_biology high_school_chemistry high_school_computer_science "
    "high_school_european_history high_school_geography high_school_government_and_politics "
    "high_school_macroeconomics high_school_mathematics high_school_microeconomics high_school_physics "
    "high_school_psychology high_school_statistics high_school_us_history high_school_world_history "
    "human_aging human_sexuality international_law jurisprudence logical_fallacies machine_learning "
    "management marketing medical_genetics miscellaneous moral_disputes moral_scenarios nutrition "
    "philosophy prehistory professional_accounting professional_law professional_medicine "
    "professional_psychology public_relations security_studies sociology us_foreign_policy virology "
    "world_religions"
).split()


def _arc(name: str, subset: str) -> TaskSpec:
    files = {s: (f"arc/{subset}/{subset}-{f}.jsonl",) for s, f in (("train", "Train"), ("validation", "Dev"), ("test", "Test"))}
    return TaskSpec(
        name=name,
        reader="arc",
        local=files,
        hub={s: ("allenai/ai2_arc", subset, s) for s in files},
        eval_split="test",
        fewshot_split="train",
    )


def _mmlu(subject: str) -> TaskSpec:
    return TaskSpec(
        name=f"mmlu_{subject}",
        reader="mmlu",
        local={s: (f"mmlu/{d}/{subject}_{d}.csv",) for s, d in (("test", "test"), ("validation", "val"), ("dev", "dev"))},
        hub={s: ("cais/mmlu", subject, s) for s in ("test", "validation", "dev")},
        eval_split="test",
        fewshot_split="dev",
        fewshot_sampler="first_n",
        description=f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n",
        subset=subject,
    )


TASKS: dict[str, TaskSpec] = {
    "arc_challenge": _arc("arc_challenge", "ARC-Challenge"),
    "arc_easy": _arc("arc_easy", "ARC-Easy"),
    "hellaswag": TaskSpec(
        name="hellaswag",
        reader="hellaswag",
        # The full train file first; the partial copy is the fallback (few-shot draws then differ).
        local={
            "train": ("hellaswag/hellaswag_train.jsonl", "hellaswag/hellaswag_train.partial.jsonl"),
            "validation": ("hellaswag/hellaswag_val.jsonl",),
        },
        hub={s: ("Rowan/hellaswag", None, s) for s in ("train", "validation")},
        eval_split="validation",
        fewshot_split="train",
        draw_extra_example=True,
    ),
    "truthfulqa_mc1": TaskSpec(
        name="truthfulqa_mc1",
        reader="truthfulqa",
        local={"validation": ("truthfulqa/mc_task.json",)},
        hub={"validation": ("truthfulqa/truthful_qa", "multiple_choice", "validation")},
        eval_split="validation",
        fewshot_split=None,
    ),
    "winogrande": TaskSpec(
        name="winogrande",
        reader="winogrande",
        local={
            "train": ("winogrande/train_xl.jsonl", "winogrande/train_l.jsonl"),
            "validation": ("winogrande/dev.jsonl",),
        },
        hub={s: ("allenai/winogrande", "winogrande_xl", s) for s in ("train", "validation")},
        eval_split="validation",
        fewshot_split="train",
        draw_extra_example=True,
    ),
}
TASKS.update({f"mmlu_{s}": _mmlu(s) for s in MMLU_SUBJECTS})

# Groups: a name that stands for several tasks, evaluated in this order.
GROUPS: dict[str, tuple[str, ...]] = {"mmlu": tuple(f"mmlu_{s}" for s in MMLU_SUBJECTS)}

# MMLU's humanities and social sciences (lm-eval's categories): the paper's "MMLU non-science tests".
MMLU_NONSCIENCE = (
    "formal_logic high_school_european_history high_school_us_history high_school_world_history international_law "
    "jurisprudence logical_fallacies moral_disputes moral_scenarios philosophy prehistory professional_law world_religions "
    "econometrics high_school_geography high_school_government_and_politics high_school_macroeconomics "
    "high_school_microeconomics high_school_psychology human_sexuality professional_psychology public_relations "
    "security_studies sociology us_foreign_policy"
).split()

# Training pools: (task, split) parts joined in order, minus the questions of excluded parts.
POOLS: dict[str, dict[str, tuple[tuple[str, str], ...]]] = {
    # The paper's ARC protocol: every ARC question except ARC-Challenge test (6615 questions).
    "arc": {
        "include": tuple((t, s) for t in ("arc_easy", "arc_challenge") for s in ("train", "validation", "test")),
        "exclude": (("arc_challenge", "test"),),
    },
    # For evaluation on ARC-Easy test too: neither test split may be trained on.
    "arc-notest": {
        "include": tuple((t, s) for t in ("arc_easy", "arc_challenge") for s in ("train", "validation")),
        "exclude": (("arc_challenge", "test"), ("arc_easy", "test")),
    },
    # A source of unrelated negatives (likra train --negatives unrelated:mmlu-nonscience).
    "mmlu-nonscience": {"include": tuple((f"mmlu_{s}", "test") for s in MMLU_NONSCIENCE), "exclude": ()},
}


def jsonl_spec(path: str, template: str | None = None) -> TaskSpec:
    """The generic task: one question per line of a user's file (question, choices, answer[, id])."""
    return TaskSpec(
        name=f"jsonl:{path}",
        reader="jsonl",
        local={"test": (path,)},
        hub={},
        eval_split="test",
        fewshot_split="test",
        template=template,
    )


def task_names() -> list[str]:
    return sorted(TASKS) + sorted(GROUPS) + ["jsonl:PATH"]
