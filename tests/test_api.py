"""LikraModel: the practitioner's object, on a tiny local model with two trained heads."""

from __future__ import annotations

import math

import pytest

from likra.api import LikraModel
from likra.cli import main


@pytest.fixture(scope="module")
def heads(tmp_path_factory, tiny_tokenizer):
    import json

    from conftest import save_tiny_model

    root = tmp_path_factory.mktemp("api")
    model_dir = save_tiny_model(root / "model", tiny_tokenizer)
    quiz = root / "quiz.jsonl"
    quiz.write_text("\n".join(json.dumps({"question": f"Which gas {i} do plants take in?", "answer": 0,
                                          "choices": [f"carbon dioxide {i}", "oxygen", "water"]}) for i in range(16)))
    for head in ("positive", "negative"):
        assert main(["train", "--model", str(model_dir), "--pool", f"jsonl:{quiz}", "--head", head, "--lr", "0.01",
                     "--out", str(root / head), "--quiet"]) == 0
    return model_dir, root / "positive" / "n-000016", root / "negative" / "n-000016"


def test_likra_scores_are_positive_minus_weighted_negative(heads):
    model_dir, pos, neg = heads
    options = ["carbon dioxide 3", "oxygen", "water"]
    lm = LikraModel.from_pretrained(str(model_dir), positive=str(pos), negative=str(neg), weight=0.5)
    r = lm.score("Which gas 3 do plants take in?", options)
    for o, text in enumerate(options):
        expected = (r.loglik["positive"][o] - 0.5 * r.loglik["negative"][o]) / len(text)
        assert r.scores[o] == pytest.approx(expected, abs=1e-9)
    assert r.choice == max(range(3), key=lambda o: r.scores[o]) and r.answer == options[r.choice]
    assert math.isclose(sum(r.probabilities), 1.0, abs_tol=1e-9)


def test_base_likra_uses_the_base_model(heads):
    model_dir, _, neg = heads
    lm = LikraModel.from_pretrained(str(model_dir), positive="base", negative=str(neg), weight=1.0)
    r = lm.score("Which gas 3 do plants take in?", ["oxygen", "water"])
    assert set(r.loglik) == {"base", "negative"}
    with pytest.raises(ValueError, match="negative head"):
        LikraModel.from_pretrained(str(model_dir))
