"""Parity with lm-evaluation-harness (HF backend): same prompts, per-option log-likelihoods within
1e-4, identical acc and acc_norm. lm-eval reads the same original files through task YAMLs."""

from __future__ import annotations

import json

import pytest

from likra.metrics import head_metrics
from likra.parity import lmeval_loglikelihoods
from likra.scoring.engine import Scorer
from likra.scoring.table import option_matrix
from likra.tasks import load_items

TOL = 1e-4


def check_parity(model, tokenizer, task, data_dir, shots, limit, expect_truncation=None):
    ref, ref_metrics, ref_contexts = lmeval_loglikelihoods(model, tokenizer, task, data_dir, shots, limit)
    items = load_items(task, shots=shots, limit=limit, data_dir=data_dir).items
    assert len(items) == len(ref) == limit
    # the very same prompts (k-shot draws included)
    for it, ctx in zip(items, ref_contexts):
        assert list(it.contexts) == ctx
    table = Scorer(model, tokenizer, batch_tokens=512).score(items, progress=False)
    m = option_matrix(table, "base")
    worst = max(abs(a - b) for ours, theirs in zip(m.loglik, ref) for a, b in zip(ours, theirs))
    assert worst < TOL, f"{task} {shots}-shot: max per-option difference {worst}"
    ours = head_metrics(table)["base"]
    assert ours["acc"] == pytest.approx(ref_metrics["acc"], abs=1e-12)
    assert ours["acc_norm"] == pytest.approx(ref_metrics["acc_norm"], abs=1e-12)
    if expect_truncation is not None:
        assert (table.meta["n_truncated_options"] > 0) == expect_truncation
    return worst


@pytest.fixture(scope="module")
def short_window_llama(tiny_tokenizer):
    from conftest import make_llama

    return make_llama(len(tiny_tokenizer), max_pos=160)  # k-shot prompts overflow it


def test_arc_zero_shot_tiny(short_window_llama, tiny_tokenizer, data_dir):
    check_parity(short_window_llama, tiny_tokenizer, "arc_challenge", data_dir, 0, 25)


def test_arc_kshot_tiny_with_truncation(short_window_llama, tiny_tokenizer, data_dir):
    check_parity(short_window_llama, tiny_tokenizer, "arc_challenge", data_dir, 3, 10, expect_truncation=True)


def test_qwen2_tiny_zero_and_kshot(tiny_tokenizer, data_dir):
    """Qwen2 (biases on q/k/v, untied output layer) through the same packed, shared-prefix engine."""
    from conftest import make_qwen2

    model = make_qwen2(len(tiny_tokenizer), max_pos=160)
    check_parity(model, tiny_tokenizer, "arc_challenge", data_dir, 0, 12)
    check_parity(model, tiny_tokenizer, "arc_challenge", data_dir, 3, 6, expect_truncation=True)


def test_hellaswag_tiny(short_window_llama, tiny_tokenizer, data_dir):
    check_parity(short_window_llama, tiny_tokenizer, "hellaswag", data_dir, 0, 15)


def test_hellaswag_kshot_tiny(short_window_llama, tiny_tokenizer, data_dir):
    check_parity(short_window_llama, tiny_tokenizer, "hellaswag", data_dir, 2, 6)


def test_mmlu_kshot_tiny(short_window_llama, tiny_tokenizer, data_dir):
    check_parity(short_window_llama, tiny_tokenizer, "mmlu_anatomy", data_dir, 0, 10)
    check_parity(short_window_llama, tiny_tokenizer, "mmlu_anatomy", data_dir, 2, 8)


def test_winogrande_partial_evaluation_tiny(short_window_llama, tiny_tokenizer, data_dir):
    check_parity(short_window_llama, tiny_tokenizer, "winogrande", data_dir, 0, 20)
    check_parity(short_window_llama, tiny_tokenizer, "winogrande", data_dir, 3, 8)


def test_generic_jsonl_tiny(tiny_llama, tiny_tokenizer, tmp_path):
    rows = [
        {"id": "a", "question": "Which gas do plants take in?", "choices": ["carbon dioxide", "oxygen", "helium"], "answer": 0},
        {"id": "b", "question": "What falls from clouds?", "choices": ["rocks", "rain"], "answer": 1},
        {"id": "c", "question": "Which is a planet?", "choices": ["Mars", "the Moon", "the Sun", "Pluto the dog"], "answer": 0},
    ]
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    check_parity(tiny_llama, tiny_tokenizer, f"jsonl:{path}", tmp_path, 0, 3)
    check_parity(tiny_llama, tiny_tokenizer, f"jsonl:{path}", tmp_path, 1, 3)


@pytest.fixture(scope="module")
def smollm2():
    from likra.models import load_base, load_tokenizer

    return load_base("smollm2-135m"), load_tokenizer("smollm2-135m")


@pytest.mark.slow
def test_arc_smollm2_zero_and_kshot(smollm2, data_dir):
    model, tok = smollm2
    check_parity(model, tok, "arc_challenge", data_dir, 0, 30)
    check_parity(model, tok, "arc_challenge", data_dir, 5, 4)


@pytest.mark.slow
def test_hellaswag_smollm2(smollm2, data_dir):
    model, tok = smollm2
    check_parity(model, tok, "hellaswag", data_dir, 0, 12)


@pytest.mark.slow
def test_gemma3_kshot_beyond_sliding_window(data_dir):
    """25-shot prompts are longer than Gemma-3-270M's 512-token sliding window, so this checks
    that the window is rebuilt inside likra's custom attention mask."""
    from likra.models import load_base, load_tokenizer
    from likra.scoring.engine import Encoder

    model, tok = load_base("gemma3-270m"), load_tokenizer("gemma3-270m")
    items = load_items("arc_challenge", shots=25, limit=2, data_dir=data_dir).items
    assert min(len(Encoder(tok).encode(it.contexts[0])) for it in items) > model.config.sliding_window
    check_parity(model, tok, "arc_challenge", data_dir, 25, 2)


@pytest.mark.slow
def test_qwen25_coder_05b_zero_and_kshot(data_dir):
    """The first embedded Qwen2 model (opt-in: likra models install qwen2.5-coder-0.5b)."""
    from likra.embedded import is_installed
    from likra.models import load_base, load_tokenizer

    if not is_installed("qwen2.5-coder-0.5b"):
        pytest.skip("qwen2.5-coder-0.5b is not installed (likra models install qwen2.5-coder-0.5b; .ci/run does)")
    model, tok = load_base("qwen2.5-coder-0.5b"), load_tokenizer("qwen2.5-coder-0.5b")
    assert model.config.model_type == "qwen2"
    check_parity(model, tok, "arc_challenge", data_dir, 0, 20)
    check_parity(model, tok, "arc_challenge", data_dir, 5, 4)
