"""Data parallelism: two CPU processes (gloo), started as a launcher starts them, give the score
table of one process exactly and the adapter of one process within float tolerance."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from likra.cli import main
from likra.scoring.table import ScoreTable


@pytest.fixture()
def setup(tmp_path, tiny_tokenizer):
    from conftest import save_tiny_model, write_quiz

    quiz = write_quiz(tmp_path / "quiz.jsonl", 30, gold=lambda i: i % 4, extra=lambda i: " really" * (i % 5))
    return save_tiny_model(tmp_path / "model", tiny_tokenizer), quiz


def launch(args: list[str], n: int = 2) -> None:
    """What `accelerate launch --cpu --num_processes 2 -m likra ...` does: torch's launcher."""
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}", "-m", "likra", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]


def test_two_processes_score_the_same_table(tmp_path, setup):
    model, quiz = setup
    base = ["eval", "--model", str(model), "--task", f"jsonl:{quiz}", "--shots", "2", "--batch-tokens", "200", "--quiet"]
    torch.set_num_threads(1)  # the launched processes run one thread each
    try:
        assert main([*base, "--out", str(tmp_path / "one")]) == 0
    finally:
        torch.set_num_threads(os.cpu_count() or 1)
    launch([*base, "--out", str(tmp_path / "two")])
    one, two = (ScoreTable.load(tmp_path / d / "scores.parquet") for d in ("one", "two"))
    assert len(one) == len(two) == 120
    assert one.columns == two.columns  # every value identical, in the same order
    assert json.loads((tmp_path / "two" / "results.json").read_text())["processes"] == 2


def test_two_processes_train_the_same_adapter(tmp_path, setup):
    from safetensors.torch import load_file

    model, quiz = setup
    base = ["train", "--model", str(model), "--pool", f"jsonl:{quiz}", "--head", "negative", "--examples", "20",
            "--lr", "0.01", "--batch-size", "8", "--quiet"]
    assert main([*base, "--out", str(tmp_path / "one")]) == 0
    launch([*base, "--out", str(tmp_path / "two")])
    for n in ("n-000016", "n-000020"):
        a = load_file(str(tmp_path / "one" / n / "adapter_model.safetensors"))
        b = load_file(str(tmp_path / "two" / n / "adapter_model.safetensors"))
        assert a.keys() == b.keys()
        for k in a:
            assert torch.allclose(a[k], b[k], atol=1e-5, rtol=0), k
    one = json.loads((tmp_path / "one" / "run.json").read_text())
    two = json.loads((tmp_path / "two" / "run.json").read_text())
    assert abs(one["final_loss"] - two["final_loss"]) < 1e-5


@pytest.mark.parametrize("name", ["multi-gpu", "fsdp", "deepspeed-zero3"])
def test_accelerate_configs_are_valid(name):
    """The documented 7B configs load with accelerate's own config reader (no unknown keys)."""
    from pathlib import Path

    from accelerate.commands.config.config_args import ClusterConfig

    path = Path(__file__).parents[1] / "configs" / "accelerate" / f"{name}.yaml"
    cfg = ClusterConfig.from_yaml_file(str(path))
    expected = {"multi-gpu": "MULTI_GPU", "fsdp": "FSDP", "deepspeed-zero3": "DEEPSPEED"}[name]
    assert str(cfg.distributed_type).endswith(expected)


def test_sharding_launch_warns_for_likra_loops(monkeypatch, capsys, tmp_path):
    """likra's own loops replicate the model: a launcher that asks for FSDP is told so."""
    from likra.distributed import sharding_requested

    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    assert sharding_requested() == "FSDP"
    main(["report", str(tmp_path)])
    assert "plain data parallel" in capsys.readouterr().err
    monkeypatch.delenv("ACCELERATE_USE_FSDP")
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    assert sharding_requested() == "DeepSpeed"
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED")
    assert sharding_requested() is None
