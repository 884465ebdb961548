"""Issue 16 as tests: every bad input a one-line message with exit code 2 that names the file, row or
field; a full disk, a kill -9 and a second run on the same folder lose nothing and leave nothing a
later run trusts. Cases other test files already show are listed in docs/reliability.md.

Faults are injected at ``likra.io._fsync``, the point every result file passes before its rename
(``atomic_path``, ``atomic_write``, ``atomic_dir``): the k-th call cuts its file in half and raises
ENOSPC (a full disk), or kills the process (kill -9), for each k of a small run."""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import likra.io
from conftest import error_line
from likra.cli import main

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_tokenizer):
    """A tiny model, a 20-question quiz, and a positive and a negative run (adapters n=16, n=20)."""
    from conftest import save_tiny_model, write_quiz

    root = tmp_path_factory.mktemp("reliability")
    model = save_tiny_model(root / "model", tiny_tokenizer)
    quiz = write_quiz(root / "quiz.jsonl")
    for role in ("positive", "negative"):
        assert main(["train", "--model", str(model), "--pool", f"jsonl:{quiz}", "--role", role, "--lr", "0.01",
                     "--out", str(root / role), "--quiet"]) == 0
    return SimpleNamespace(root=root, model=model, quiz=quiz, pos=root / "positive", neg=root / "negative")


def eval_args(w, out: Path, *extra: str) -> list[str]:
    return ["eval", "--model", str(w.model), "--task", f"jsonl:{w.quiz}", "--limit", "4", "--out", str(out), "--quiet", *extra]


# ---- case 12: adapter folders ------------------------------------------------------------------

def _truncated(d: Path) -> tuple:
    f = d / "adapter_model.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    return f, "damaged", "again"


def _pickled(d: Path) -> tuple:
    class Payload:  # unpickling it would create the marker file
        def __reduce__(self):
            return open, (str(d.parent / "UNPICKLED"), "w")

    (d / "adapter_model.safetensors").unlink()
    (d / "adapter_model.bin").write_bytes(pickle.dumps(Payload()))
    return d / "adapter_model.bin", "pickled", "safetensors"


def _broken_config(d: Path) -> tuple:
    (d / "adapter_config.json").write_text('{"peft_type": "LORA", ')
    return d / "adapter_config.json", "not valid JSON"


def _no_weights(d: Path) -> tuple:
    (d / "adapter_model.safetensors").unlink()
    return d, "no adapter weights"


def _no_config(d: Path) -> tuple:
    (d / "adapter_config.json").unlink()
    return d, "no adapter_config.json"


def _broken_likra_json(d: Path) -> tuple:
    (d / "likra.json").write_text("[1, 2")
    return d / "likra.json", "not a valid likra.json"


def _other_architecture(d: Path) -> tuple:
    """A PEFT adapter made for a wider Llama: PEFT would fail on a size mismatch."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    wide = LlamaForCausalLM(LlamaConfig(vocab_size=400, hidden_size=64, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2))
    shutil.rmtree(d)
    get_peft_model(wide, LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).save_pretrained(d)
    cfg = json.loads((d / "adapter_config.json").read_text())
    (d / "adapter_config.json").write_text(json.dumps({**cfg, "base_model_name_or_path": "someone/llama-wide"}))
    return "head 'pos'", "does not fit this base model", "someone/llama-wide", "[4, 64] in the adapter, [4, 32] here"


@pytest.mark.parametrize("damage", [_truncated, _pickled, _broken_config, _no_weights, _no_config, _broken_likra_json,
                                    _other_architecture], ids=lambda f: f.__name__.strip("_"))
def test_a_bad_adapter_folder_is_one_line_naming_it(world, tmp_path, capsys, damage):
    head = tmp_path / "head"
    shutil.copytree(world.pos / "n-000016", head)
    names = damage(head)
    error_line(eval_args(world, tmp_path / "ev", "--head", f"pos={head}"), capsys, *names)
    assert not (tmp_path / "UNPICKLED").exists()  # the pickle was never loaded
    assert not (tmp_path / "ev" / "results.json").exists()


def test_an_adapter_without_base_fingerprint_loads_with_a_warning(world, tmp_path, capsys):
    head = tmp_path / "head"
    shutil.copytree(world.pos / "n-000016", head)
    meta = json.loads((head / "likra.json").read_text())
    del meta["base_fingerprint"]
    (head / "likra.json").write_text(json.dumps(meta))
    assert main(eval_args(world, tmp_path / "ev", "--head", f"pos={head}")) == 0
    err = capsys.readouterr().err
    assert "warning" in err and str(head / "likra.json") in err and "could not be checked" in err


# ---- case 6 and 14: the lm-eval plugin ---------------------------------------------------------

def lm_eval_tasks(folder: Path) -> Path:
    """Two lm-eval tasks likra cannot score, on a local two-row file: generation and perplexity."""
    import yaml

    folder.mkdir()
    data = folder / "rows.jsonl"
    data.write_text('{"question": "Which gas do plants take in?", "answer": "carbon dioxide"}\n' * 2)
    common = {"dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(data)}}, "test_split": "test"}
    (folder / "rel_gen.yaml").write_text(yaml.safe_dump({
        "task": "rel_gen", **common, "output_type": "generate_until", "doc_to_text": "{{question}}",
        "doc_to_target": "{{answer}}", "generation_kwargs": {"until": ["\n"]}, "metric_list": [{"metric": "exact_match"}]}))
    (folder / "rel_roll.yaml").write_text(yaml.safe_dump({
        "task": "rel_roll", **common, "output_type": "loglikelihood_rolling", "doc_to_text": "",
        "doc_to_target": "{{question}}", "metric_list": [{"metric": "word_perplexity"}]}))
    return folder


@pytest.mark.parametrize("task, model_args, names", [
    ("rel_gen", "", ["task rel_gen", "generation (generate_until)", "multiple_choice", "arc_challenge"]),
    ("rel_roll", "", ["task rel_roll", "loglikelihood_rolling", "multiple_choice"]),
    ("rel_gen", ",negative=/nonexistent", ["negative=/nonexistent", "no such folder"]),
    ("rel_gen", ",positiv=/x,negativ=/y", ["unknown key(s) ['negativ', 'positiv']", "positive, negative"]),
    ("rel_gen", ",dtype=fp16", ["dtype=fp16", "fp32, bf16, bf16-mixed"]),
], ids=["generation", "rolling", "missing-negative", "misspelt-keys", "unknown-dtype"])
def test_lm_eval_refusals_are_one_line(world, tmp_path, capsys, monkeypatch, task, model_args, names):
    import logging

    # lm-eval adds a stream handler once per process; one left by an earlier test writes to a closed capture
    monkeypatch.setattr(logging.getLogger("lm_eval"), "handlers", [])
    tasks = lm_eval_tasks(tmp_path / "tasks")
    with pytest.raises(SystemExit) as e:
        main(["lm-eval", "run", "--model", "likra", "--model_args", f"pretrained={world.model}{model_args}",
              "--tasks", task, "--include_path", str(tasks), "--limit", "2"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = next(line for line in err.splitlines() if line.startswith("likra lm-eval: error:"))
    assert all(n in line for n in names), line


# ---- case 10 and 15: data files ----------------------------------------------------------------

def _wino(tmp: Path) -> tuple:
    f = tmp / "winogrande" / "dev.jsonl"
    f.parent.mkdir()
    f.write_text(json.dumps({"qID": "w1", "sentence": "Cy lost to Di since _", "option1": "Cy", "option2": "Di",
                             "answer": "1"}) + "\n")
    return "winogrande", f, "line 1", "field 'sentence'", "no text follows"


def _empty(content: bytes, task: str, rel: str, *names: str):
    def make(tmp: Path) -> tuple:
        f = tmp / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(content)
        return (task if task else f"jsonl:{f}"), f, *names
    return make


@pytest.mark.parametrize("make", [
    _empty(b"", "", "empty.jsonl", "is empty"),
    _empty(b"\n\n  \n", "", "blank.jsonl", "is empty"),
    _empty(b"\xef\xbb\xbf", "", "bom-only.jsonl", "is empty"),
    _empty(b"", "mmlu_anatomy", "mmlu/test/anatomy_test.csv", "is empty"),
    _empty(b"[]", "truthfulqa_mc1", "truthfulqa/mc_task.json", "empty list"),
    _empty('{"question": "Q?"}\n'.encode("utf-16"), "", "utf16.jsonl", "UTF-16", "save it as UTF-8"),
    _wino,
], ids=["empty-jsonl", "blank-lines", "bom-only", "empty-mmlu-csv", "empty-truthfulqa-list", "utf16", "winogrande-blank-last"])
def test_a_bad_data_file_is_one_line_naming_it(world, tmp_path, capsys, make):
    task, *names = make(tmp_path)
    error_line(["eval", "--model", str(world.model), "--task", task, "--data-dir", str(tmp_path), "--out",
                str(tmp_path / "ev"), "--quiet"], capsys, *names)


def test_training_on_an_empty_pool_names_the_file(world, tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    error_line(["train", "--model", str(world.model), "--pool", f"jsonl:{empty}", "--role", "positive", "--out",
                str(tmp_path / "o"), "--quiet"], capsys, empty, "is empty")


def test_a_bom_is_stripped(world, tmp_path):
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + world.quiz.read_bytes())
    for task, out in ((f"jsonl:{world.quiz}", "plain"), (f"jsonl:{bom}", "bom")):
        assert main(["eval", "--model", str(world.model), "--task", task, "--limit", "3", "--out", str(tmp_path / out), "--quiet"]) == 0
    plain, with_bom = (json.loads((tmp_path / o / "results.json").read_text()) for o in ("plain", "bom"))
    assert with_bom["metrics"] == plain["metrics"] and with_bom["n_items"] == 3


def test_skip_invalid_reports_every_reason_and_keeps_the_lines(world, tmp_path, capsys):
    rows = world.quiz.read_text().splitlines()[:6]
    for i in (1, 2, 3, 4):  # four answers out of range
        rows[i] = rows[i].replace('"answer": 0', '"answer": 9')
    rows.insert(5, '{"id": "broken", ')
    rows.append(json.dumps({"id": "one", "question": "Q?", "choices": ["a"], "answer": 0}))
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(rows) + "\n")
    args = ["eval", "--model", str(world.model), "--task", f"jsonl:{bad}", "--out", str(tmp_path / "ev"), "--quiet"]
    error_line(args, capsys, bad, "line 2", "field 'answer'", "--skip-invalid")  # without the flag: the first bad row
    assert main([*args, "--skip-invalid"]) == 0
    err = capsys.readouterr().err
    assert "skipped 6 invalid rows (--skip-invalid), for 3 reasons:" in err
    assert f"4 x field 'answer': gold index 9 is not in 0..3 (at {bad}:2, {bad}:3, {bad}:4 and 1 more)" in err
    assert "1 x field '(json)'" in err and f"{bad}:6" in err and "1 x field 'choices'" in err and f"{bad}:8" in err
    assert "pass --skip-invalid" not in err
    res = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert res["n_skipped_rows"] == 6 and res["n_items"] == 2
    assert [r.split(", field")[0] for r in res["skipped_rows"]] == [f"{bad}, line {n}" for n in (2, 3, 4, 5, 6, 8)]
    assert not any("pass --skip-invalid" in r for r in res["skipped_rows"])


def test_a_curve_table_keeps_the_skipped_lines(world, tmp_path):
    from likra.scoring.table import ScoreTable

    bad = tmp_path / "bad.jsonl"
    bad.write_text(world.quiz.read_text() + '{"id": "x", "question": "Q?", "choices": ["a", "a"], "answer": 0}\n')
    assert main(["curve", "--model", str(world.model), "--task", f"jsonl:{bad}", "--positive", str(world.pos),
                 "--negative", str(world.neg), "--points", "16", "--skip-invalid", "--out", str(tmp_path / "c"), "--quiet"]) == 0
    tables = sorted((tmp_path / "c" / "run0" / "tables").glob("*.parquet"))
    assert [t.name for t in tables] == ["n-000000.parquet", "n-000016.parquet"]
    for table in tables:
        assert ScoreTable.load(table).meta["skipped_rows"] == [f"{bad}, line 21, field 'choices': option 'a' appears twice"]


def test_a_yaml_tag_in_eval_config_is_refused_unrun(tmp_path, capsys):
    cfg = tmp_path / "eval.yaml"
    cfg.write_text(f"task: !!python/object/apply:os.mkdir ['{tmp_path / 'RAN'}']\n")
    error_line(["eval", "--config", str(cfg), "--out", str(tmp_path / "o")], capsys, cfg, "not valid YAML")
    assert not (tmp_path / "RAN").exists()


def test_train_on_a_used_folder_names_the_setting_that_differs(world, capsys):
    before = sorted(p.name for p in world.pos.iterdir())
    error_line(["train", "--model", str(world.model), "--pool", f"jsonl:{world.quiz}", "--role", "positive", "--lr", "0.001",
                "--out", str(world.pos), "--quiet"], capsys, world.pos, "lr: 0.01 there, 0.001 now")
    assert sorted(p.name for p in world.pos.iterdir()) == before


# ---- a full disk -------------------------------------------------------------------------------

class Faults:
    """Stands in for ``likra.io._fsync``: counts the files likra commits, and from the k-th on
    cuts each in half and raises ENOSPC, as a disk that has filled up."""

    def __init__(self, k: int | None = None):
        self.k, self.calls = k, []
        self.real = likra.io._fsync

    def __call__(self, path: Path) -> None:
        self.calls.append(Path(path))
        if self.k is not None and len(self.calls) >= self.k:
            size = Path(path).stat().st_size
            os.truncate(path, size // 2)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        self.real(path)


def committed(paths: list[Path]) -> set[str]:
    """The names of the files behind the temporary paths a run committed."""
    return {named(p) for p in paths}


def named(path: Path) -> str:
    return path.name.lstrip(".").split(".tmp-")[0]


def target(path: Path) -> str:
    """The name an error about this commit gives: the file's, or its folder's where the folder is
    committed whole (an adapter is written into a temporary folder renamed at the end)."""
    return named(path.parent) if ".tmp-" in path.parent.name else named(path)


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*.tmp-*")]


def check_trustworthy(folder: Path) -> None:
    """Every file a later run reads is whole: JSON parses, tables load, adapters open."""
    from safetensors import safe_open

    from likra.scoring.table import ScoreTable

    assert not leftovers(folder)
    for p in folder.rglob("*"):
        if p.suffix == ".json":
            json.loads(p.read_text())
        elif p.suffix == ".parquet":
            ScoreTable.load(p)
        elif p.suffix == ".safetensors":
            with safe_open(str(p), "pt") as f:
                f.keys()


def run_with(monkeypatch, faults: Faults, argv: list[str]) -> int:
    monkeypatch.setattr(likra.io, "_fsync", faults)
    try:
        return main(argv)
    finally:
        monkeypatch.setattr(likra.io, "_fsync", faults.real)


def test_a_full_disk_at_every_write_of_eval(world, tmp_path, monkeypatch, capsys):
    from likra.scoring.table import ScoreTable

    heads = ["--head", f"positive={world.pos / 'n-000016'}", "--head", f"negative={world.neg / 'n-000016'}"]
    clean = Faults()
    assert run_with(monkeypatch, clean, eval_args(world, tmp_path / "clean", *heads)) == 0
    n = len(clean.calls)
    assert {"likra-run.json", "scores.parquet", "results.json", "likra-command.json"} <= committed(clean.calls)
    want = json.loads((tmp_path / "clean" / "results.json").read_text())
    capsys.readouterr()
    for k in range(1, n + 1):
        out = tmp_path / f"k{k}"
        faults = Faults(k)
        assert run_with(monkeypatch, faults, eval_args(world, out, *heads)) == 2, f"write {k}"
        err = capsys.readouterr().err
        assert "Traceback" not in err and "No space left on device" in err and target(faults.calls[k - 1]) in err
        check_trustworthy(out)
        assert main(eval_args(world, out, *heads)) == 0, f"rerun after a full disk at write {k}"
        got = json.loads((out / "results.json").read_text())
        assert got["metrics"] == want["metrics"] and got["rules"] == want["rules"]
        assert list(ScoreTable.load(out / "scores.parquet").rows()) == list(ScoreTable.load(tmp_path / "clean" / "scores.parquet").rows())


def adapters(folder: Path) -> dict[str, dict]:
    from safetensors.torch import load_file

    return {p.parent.name: load_file(p) for p in sorted(folder.glob("n-*/adapter_model.safetensors"))}


def test_a_full_disk_at_every_write_of_train(world, tmp_path, monkeypatch, capsys):
    import torch
    from conftest import write_quiz

    quiz = write_quiz(tmp_path / "q.jsonl", n=18)  # adapters n-000016 and n-000018
    args = lambda out: ["train", "--model", str(world.model), "--pool", f"jsonl:{quiz}", "--role", "negative", "--lr", "0.01",
                        "--out", str(out), "--quiet"]
    clean = Faults()
    assert run_with(monkeypatch, clean, args(tmp_path / "clean")) == 0
    want = adapters(tmp_path / "clean")
    assert list(want) == ["n-000016", "n-000018"]
    # every kind of file a later run reads goes through the faulted commit, so each meets a full disk below
    assert {"adapter_model.safetensors", "likra.json", "state.pt", "state.json", "run.json", "likra-run.json"} <= committed(clean.calls)
    capsys.readouterr()
    for k in range(1, len(clean.calls) + 1):
        out = tmp_path / f"k{k}"
        faults = Faults(k)
        assert run_with(monkeypatch, faults, args(out)) == 2, f"write {k}"
        err = capsys.readouterr().err
        assert "Traceback" not in err and "No space left on device" in err and target(faults.calls[k - 1]) in err
        check_trustworthy(out)
        assert main(args(out)) == 0, f"rerun after a full disk at write {k}"
        got = adapters(out)
        assert list(got) == list(want)
        for name in want:
            assert all(torch.equal(want[name][t], got[name][t]) for t in want[name]), (k, name)


# ---- kill -9 of a curve, and two runs on one folder ---------------------------------------------

HOOKED = """
import os, signal, sys, time
from pathlib import Path
import likra.io as io

mode, k, flag = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
real, n = io._fsync, [0]
def hooked(path):
    n[0] += 1
    if n[0] == k:
        if mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        flag.with_suffix(".reached").touch()
        while not flag.exists():
            time.sleep(0.02)
    real(path)
io._fsync = hooked
from likra.cli import main
sys.exit(main(sys.argv[4:]))
"""


def hooked_run(tmp_path: Path, mode: str, k: int, argv: list[str]) -> tuple[subprocess.Popen, Path]:
    """``likra ARGV`` in another process that, at its k-th committed file (before the rename), kills
    itself (mode "kill") or waits for the file FLAG (mode "wait", announcing FLAG.reached)."""
    script = tmp_path / "hooked.py"
    script.write_text(HOOKED)
    flag = tmp_path / f"go-{mode}-{k}"
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(TESTS))
    return subprocess.Popen([sys.executable, str(script), mode, str(k), str(flag), *argv], env=env,
                            stderr=subprocess.PIPE, text=True), flag


def wait_for(path: Path, proc: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.time() + seconds
    while not path.exists():
        assert proc.poll() is None, f"the run ended before {path.name}: {proc.stderr.read()}"
        assert time.time() < deadline, f"no {path.name} after {seconds} s"
        time.sleep(0.05)


def tables(folder: Path) -> dict[str, list]:
    from likra.scoring.table import ScoreTable

    return {p.name: list(ScoreTable.load(p).rows()) for p in sorted(folder.rglob("tables/*.parquet"))}


def curve_args(w, out: Path) -> list[str]:
    return ["curve", "--model", str(w.model), "--task", f"jsonl:{w.quiz}", "--positive", str(w.pos), "--negative", str(w.neg),
            "--out", str(out), "--quiet"]


def test_a_full_disk_at_every_write_of_curve(world, tmp_path, monkeypatch, capsys):
    """The issue's case: a 0-byte curve.json that the next run could not parse."""
    from likra.experiments import curve_accuracies

    clean = Faults()
    assert run_with(monkeypatch, clean, curve_args(world, tmp_path / "clean")) == 0
    want, want_acc = tables(tmp_path / "clean"), curve_accuracies(tmp_path / "clean" / "run0")
    assert {"n-000000.parquet", "n-000016.parquet", "curve.json"} <= committed(clean.calls)
    capsys.readouterr()
    for k in range(1, len(clean.calls) + 1):
        out = tmp_path / f"k{k}"
        faults = Faults(k)
        assert run_with(monkeypatch, faults, curve_args(world, out)) == 2, f"write {k}"
        err = capsys.readouterr().err
        assert "Traceback" not in err and "No space left on device" in err and target(faults.calls[k - 1]) in err
        check_trustworthy(out)
        assert main(curve_args(world, out)) == 0, f"rerun after a full disk at write {k}"
        assert tables(out) == want and curve_accuracies(out / "run0") == want_acc, f"full disk at write {k}"


def test_kill_9_of_a_curve_then_rerun_equals_an_uninterrupted_curve(world, tmp_path, monkeypatch, capsys):
    from likra.experiments import curve_accuracies

    args = lambda out: curve_args(world, out)
    clean = Faults()
    assert run_with(monkeypatch, clean, args(tmp_path / "clean")) == 0
    want, want_acc = tables(tmp_path / "clean"), curve_accuracies(tmp_path / "clean" / "run0")
    assert len(want) == 3
    first_table = next(i for i, p in enumerate(clean.calls, 1) if p.name.startswith(".n-") and ".parquet" in p.name)
    # killed while writing the first table, the second, and curve.json; and by a signal from outside
    # once the first table is on disk
    points = sorted({first_table, first_table + 1, next(i for i, p in enumerate(clean.calls, 1) if "curve.json" in p.name)})
    for k in points:
        out = tmp_path / f"k{k}"
        proc, _ = hooked_run(tmp_path, "kill", k, args(out))
        proc.communicate(timeout=600)
        assert proc.returncode == -signal.SIGKILL, f"write {k}: the run was not killed"
        assert main(args(out)) == 0
        assert tables(out) == want and curve_accuracies(out / "run0") == want_acc, f"killed at write {k}"
        assert not leftovers(out)
    out = tmp_path / "outside"
    proc, flag = hooked_run(tmp_path, "wait", first_table + 1, args(out))
    wait_for(flag.with_suffix(".reached"), proc)
    assert len(list(out.rglob("tables/*.parquet"))) == 1
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert main(args(out)) == 0
    assert tables(out) == want and curve_accuracies(out / "run0") == want_acc


def test_a_second_run_on_a_folder_in_use_is_refused_and_the_first_finishes(world, tmp_path, capsys):
    out = tmp_path / "o"
    train = lambda lr: ["train", "--model", str(world.model), "--pool", f"jsonl:{world.quiz}", "--role", "positive",
                        "--lr", lr, "--out", str(out), "--quiet"]
    first, flag = hooked_run(tmp_path, "wait", 2, train("0.01"))  # holds the folder, waits at its 2nd file
    try:
        wait_for(flag.with_suffix(".reached"), first)
        line = error_line(train("0.001"), capsys, out, "in use by another likra run", f"pid {first.pid}")
        assert "0.001" not in (out / "likra-run.json").read_text()
    finally:
        flag.touch()
    first.communicate(timeout=600)
    assert first.returncode == 0, line
    assert json.loads((out / "likra-run.json").read_text())["settings"]["lr"] == 0.01
    got, want = adapters(out), adapters(world.pos)  # the same run as the fixture's, undisturbed
    assert list(got) == list(want) == ["n-000016", "n-000020"]
    import torch

    assert all(torch.equal(got[n][t], want[n][t]) for n in want for t in want[n])
