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
    options = ["oxygen", "water"]
    r = lm.score("Which gas 3 do plants take in?", options)
    assert set(r.loglik) == {"base", "negative"}
    for o, text in enumerate(options):  # L_base - w L-, per character
        assert r.scores[o] == pytest.approx((r.loglik["base"][o] - r.loglik["negative"][o]) / len(text), abs=1e-9)
    with pytest.raises(ValueError, match="negative head"):
        LikraModel.from_pretrained(str(model_dir))


@pytest.mark.parametrize("question, options, message", [
    ("2+2?", ["", "4"], r"options\[0\]: '' is not a non-empty string"),
    ("2+2?", "45", "give a list of strings, not a str"),
    (None, ["3", "4"], "question: give a non-empty string"),
    ("  ", ["3", "4"], "question: give a non-empty string"),
    ("2+2?", ["4", "4 "], r"options\[1\] repeats options\[0\]"),
    ("2+2?", ["4"], "at least two options"),
    ("2+2?", ["4", 5], r"options\[1\]: 5 is not a non-empty string"),
])
def test_score_refuses_what_cannot_be_compared(heads, question, options, message):
    from likra.errors import InputRefused

    model_dir, pos, neg = heads
    lm = LikraModel.from_pretrained(str(model_dir), positive=str(pos), negative=str(neg))
    with pytest.raises(InputRefused, match=message):
        lm.score(question, options)


def test_an_empty_continuation_is_an_error_naming_the_row(heads):
    from likra.errors import InputRefused
    from likra.tasks.base import Item

    model_dir, _, _ = heads
    lm = LikraModel.from_pretrained(str(model_dir), positive="base", negative=str(heads[2]))
    item = Item(id="wino-7", contexts=("The trophy fits in _", "The suitcase fits in _"), continuations=("", ""), gold=0,
                n_chars=(0, 0))
    with pytest.raises(InputRefused, match="item 'wino-7', option 0: the continuation '' has no characters"):
        lm.scorer.score([item], ["base"], progress=False)


def test_score_batch_is_score_one_by_one(heads):
    """Many questions in one engine call (packed together, batched) give each question's own scores."""
    model_dir, pos, neg = heads
    lm = LikraModel.from_pretrained(str(model_dir), positive=str(pos), negative=str(neg), weight=0.7)
    questions = [f"Which gas {i} do plants take in?" for i in range(7)] + ["What falls from clouds?"]
    options = [[f"carbon dioxide {i}", "oxygen", "water"][: 2 + i % 2] for i in range(7)] + [["rain", "snow", "erosion", "sun"]]
    calls = []
    real = lm.scorer.score
    lm.scorer.score = lambda *a, **k: calls.append(1) or real(*a, **k)
    batch = lm.score_batch(questions, options)
    assert len(calls) == 1 and len(batch) == len(questions)
    lm.scorer.score = real
    for q, opts, b in zip(questions, options, batch):
        one = lm.score(q, opts)
        assert b.options == opts and b.choice == one.choice
        assert b.scores == pytest.approx(one.scores, abs=1e-5)
        assert b.probabilities == pytest.approx(one.probabilities, abs=1e-5)
        for h in one.loglik:
            assert b.loglik[h] == pytest.approx(one.loglik[h], abs=1e-5)
    assert lm.score_batch([], []) == []
    from likra.errors import InputRefused

    with pytest.raises(InputRefused, match="question 1: options: give at least two options"):
        lm.score_batch(["a?", "b?"], [["x", "y"], ["z"]])
    with pytest.raises(InputRefused, match="2 questions, 1 lists of options"):
        lm.score_batch(["a?", "b?"], [["x", "y"]])


def test_python_train_is_the_train_command(heads, tmp_path):
    """``likra.train`` takes the command's options and makes the command's adapters, and its folder is
    the command's own (the command resumes it: nothing left to train)."""
    import likra
    from likra.errors import ConfigError

    model_dir, pos, _ = heads
    quiz = model_dir.parent / "quiz.jsonl"
    saved = likra.train(model=str(model_dir), pool=f"jsonl:{quiz}", role="positive", lr=0.01, out=str(tmp_path / "p"),
                        quiet=True)
    assert [p.name for p in saved] == ["n-000016"]
    from safetensors.torch import load_file

    a, b = load_file(str(saved[0] / "adapter_model.safetensors")), load_file(str(pos / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    stamp = (saved[0] / "adapter_model.safetensors").stat().st_mtime_ns
    assert main(["train", "--model", str(model_dir), "--pool", f"jsonl:{quiz}", "--head", "positive", "--lr", "0.01",
                 "--out", str(tmp_path / "p"), "--quiet"]) == 0
    assert (saved[0] / "adapter_model.safetensors").stat().st_mtime_ns == stamp  # nothing trained or written again
    with pytest.raises(ConfigError, match="unknown key 'learning_rate'; did you mean 'lr'"):
        likra.train(pool=f"jsonl:{quiz}", role="positive", learning_rate=0.01, out=str(tmp_path / "q"))


def _readme_python_api() -> str:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.slow
def test_readme_python_api_example_runs(tmp_path, monkeypatch, capsys):
    """The README's Python API example, as written, on the embedded model (trains two heads on 16 questions)."""
    monkeypatch.chdir(tmp_path)
    exec(compile(_readme_python_api(), "README.md (Python API)", "exec"), {})
    assert (tmp_path / "runs").is_dir()
