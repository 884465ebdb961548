"""DPO and KTO baselines (TRL) on the heads' questions and near-miss negatives: rows, curve
checkpoints that equal a run on the first n questions, adapters that likra scores as heads."""

from __future__ import annotations

import json

import pytest
import torch

from likra.baselines import preference_rows
from likra.cli import main


def test_preference_rows_use_the_heads_pairs():
    from test_training import make_items

    from likra.negatives import negative_pairs, positive_pairs

    items = make_items(6)
    pos, neg = positive_pairs(items), negative_pairs(items, "near-miss", 3)
    dpo, per_q = preference_rows(items, "dpo", 3)
    assert per_q == 1 and [(r["prompt"], r["chosen"], r["rejected"]) for r in dpo] == [(p.context, p.answer, n.answer) for p, n in zip(pos, neg)]
    kto, per_q = preference_rows(items, "kto", 3)
    assert per_q == 2 and [r["label"] for r in kto] == [True, False] * 6
    assert [r["completion"] for r in kto[1::2]] == [n.answer for n in neg]
    rej, _ = preference_rows(items, "kto-rejected", 3)
    assert all(not r["label"] for r in rej) and [r["completion"] for r in rej] == [n.answer for n in neg]
    with pytest.raises(ValueError, match="unknown method"):
        preference_rows(items, "ppo", 3)


@pytest.fixture()
def tiny(tmp_path, tiny_tokenizer):
    from conftest import save_tiny_model, write_quiz

    return save_tiny_model(tmp_path / "model", tiny_tokenizer), write_quiz(tmp_path / "quiz.jsonl", gold=lambda i: i % 4)


@pytest.mark.parametrize("method", ["dpo", "kto"])
def test_baseline_curve_checkpoint_equals_run_on_first_n(tmp_path, tiny, method):
    from safetensors.torch import load_file

    model, quiz = tiny
    for n in (20, 16):
        assert main(["train", "--model", str(model), "--pool", f"jsonl:{quiz}", "--method", method, "--n", str(n),
                     "--lr", "0.01", "--out", str(tmp_path / f"{method}{n}"), "--quiet"]) == 0
    a = load_file(str(tmp_path / f"{method}20" / "n-000016" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / f"{method}16" / "n-000016" / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and any(v.abs().max() > 0 for k, v in a.items() if "lora_B" in k)
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6, rtol=0), k
    meta = json.loads((tmp_path / f"{method}20" / "n-000020" / "likra.json").read_text())
    assert meta["head"] == method and meta["n"] == 20 and meta["config"]["method"] == method
    # likra scores it as a head (the base fingerprint matches)
    assert main(["eval", "--model", str(model), "--task", f"jsonl:{quiz}", "--head", f"{method}={tmp_path / f'{method}20' / 'n-000020'}",
                 "--out", str(tmp_path / "ev"), "--quiet"]) == 0
    assert method in json.loads((tmp_path / "ev" / "results.json").read_text())["metrics"]
