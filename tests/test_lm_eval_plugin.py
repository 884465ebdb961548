"""likra inside lm-evaluation-harness: the plugin gives lm-eval the same scores and accuracy as
``likra eval`` on the same questions and shots, and refuses what a likelihood ratio cannot do."""

from __future__ import annotations

import json

import pytest

from likra.cli import main


@pytest.fixture()
def tiny_likra(tmp_path, tiny_tokenizer, data_dir):
    """A tiny model folder and a positive and a negative head trained on a few ARC questions."""
    from conftest import save_tiny_model

    d = save_tiny_model(tmp_path / "model", tiny_tokenizer, max_pos=1024)
    heads = {}
    for head in ("positive", "negative"):
        assert main(["train", "--model", str(d), "--pool", "arc_easy:train", "--head", head, "--n", "16", "--lr", "0.01",
                     "--data-dir", str(data_dir), "--out", str(tmp_path / head), "--quiet"]) == 0
        heads[head] = tmp_path / head / "n-000016"
    return d, heads


@pytest.mark.parametrize("positive", ["adapter", "base"])
def test_plugin_matches_likra_eval(tmp_path, tiny_likra, data_dir, positive):
    from likra.lm_eval_plugin import LikraLM
    from likra.parity import run_lmeval
    from likra.rules import Heads, rule_accuracy, rule_scores
    from likra.scoring.table import ScoreTable

    model_dir, heads = tiny_likra
    pos = str(heads["positive"]) if positive == "adapter" else "base"
    lm = LikraLM(pretrained=str(model_dir), positive=pos, negative=str(heads["negative"]), weight=0.5)
    scores, metrics, _ = run_lmeval(lm, "arc_challenge", data_dir, shots=3, limit=12)

    head_args = ["--head", f"negative={heads['negative']}"] + (["--head", f"positive={heads['positive']}"] if positive == "adapter" else [])
    assert main(["eval", "--model", str(model_dir), "--task", "arc_challenge", "--shots", "3", "--limit", "12",
                 "--data-dir", str(data_dir), *head_args, "--out", str(tmp_path / "ev"), "--quiet"]) == 0
    table = ScoreTable.load(tmp_path / "ev" / "scores.parquet")
    rule_heads = Heads(positive="positive" if positive == "adapter" else "base", negative="negative")
    ours, _ = rule_scores(table, "likra", 0.5, norm=False, heads=rule_heads)
    assert len(ours) == len(scores) == 12
    for a, b in zip(ours, scores):
        assert max(abs(x - y) for x, y in zip(a, b)) < 1e-4
    assert metrics["acc_norm"] == pytest.approx(rule_accuracy(table, "likra", 0.5, True, rule_heads)[0])
    assert metrics["acc"] == pytest.approx(rule_accuracy(table, "likra", 0.5, False, rule_heads)[0])


def test_plugin_refuses_generation_and_is_registered(tiny_likra):
    from lm_eval.api.registry import get_model

    from likra.errors import LikraError
    from likra.lm_eval_plugin import LikraLM, NotSupported

    assert get_model("likra") is LikraLM and issubclass(NotSupported, LikraError)
    model_dir, heads = tiny_likra
    lm = LikraLM(pretrained=str(model_dir), negative=str(heads["negative"]), batch_size=8, device="cpu")
    with pytest.raises(NotSupported, match="not supported by a likelihood-ratio model"):
        lm.generate_until([])
    with pytest.raises(NotSupported, match="not supported by a likelihood-ratio model"):
        lm.loglikelihood_rolling([])


def test_lm_eval_command_line_runs_the_plugin(tmp_path, tiny_likra, data_dir):
    """``likra lm-eval`` is lm-eval's own command line with --model likra available."""
    from likra.parity import HELLASWAG_UTILS, _task_yaml, _write_yaml

    model_dir, heads = tiny_likra
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    cfg = _task_yaml("arc_easy", data_dir)
    _write_yaml(tasks / "ref_arc_easy.yaml", cfg)
    (tasks / "ref_utils.py").write_text(HELLASWAG_UTILS)
    out = tmp_path / "lmeval-out"
    main(["lm-eval", "run", "--model", "likra", "--model_args",
          f"pretrained={model_dir},positive={heads['positive']},negative={heads['negative']},weight=0.5",
          "--tasks", "ref_arc_easy", "--include_path", str(tasks), "--limit", "5", "--output_path", str(out), "--log_samples"])
    results = [json.loads(p.read_text()) for p in out.rglob("results*.json")]
    assert results and "ref_arc_easy" in results[0]["results"]
    # the command line's --model_args reach the model: each option's score is likra eval's L+ - 0.5 L-
    from likra.rules import rule_scores
    from likra.scoring.table import ScoreTable

    assert main(["eval", "--model", str(model_dir), "--task", "arc_easy", "--limit", "5", "--data-dir", str(data_dir),
                 "--head", f"positive={heads['positive']}", "--head", f"negative={heads['negative']}",
                 "--out", str(tmp_path / "ev"), "--quiet"]) == 0
    ours, _ = rule_scores(ScoreTable.load(tmp_path / "ev" / "scores.parquet"), "likra", 0.5, norm=False)
    (samples,) = list(out.rglob("samples_ref_arc_easy*.jsonl"))
    logged = sorted((json.loads(x) for x in samples.read_text().splitlines()), key=lambda r: r["doc_id"])
    theirs = [[float(r[0]) if isinstance(r, list) else float(r) for r in s["filtered_resps"]] for s in logged]
    assert len(theirs) == len(ours) == 5 and [len(t) for t in theirs] == [len(o) for o in ours]
    for a, b in zip(ours, theirs):
        assert max(abs(x - y) for x, y in zip(a, b)) < 1e-4


def test_entry_point_names_the_plugin():
    """lm-eval releases after 0.4.13 find model types in the ``lm_eval.models`` entry-point group
    (0.4.13 itself does not look: ``likra lm-eval`` registers the model there)."""
    from importlib.metadata import entry_points

    from likra.lm_eval_plugin import LikraLM

    (ep,) = [ep for ep in entry_points(group="lm_eval.models") if ep.name == "likra"]
    assert ep.value == "likra.lm_eval_plugin:LikraLM" and ep.load() is LikraLM


def test_plugin_chat_template_matches_likra_eval(tmp_path, tiny_likra, data_dir):
    """chat_template=true in --model_args scores what likra eval --chat-template scores."""
    from likra.errors import ConfigError
    from likra.lm_eval_plugin import LikraLM
    from likra.parity import run_lmeval
    from likra.rules import Heads, rule_scores
    from likra.scoring.table import ScoreTable

    model_dir, heads = tiny_likra
    (model_dir / "chat_template.jinja").write_text(
        "{% for m in messages %}<u> {{ m['content'] }} </u>\n{% endfor %}{% if add_generation_prompt %}<a>\n{% endif %}")
    lm = LikraLM(pretrained=str(model_dir), negative=str(heads["negative"]), chat_template="true")
    scores, _, _ = run_lmeval(lm, "arc_challenge", data_dir, shots=2, limit=6)
    assert main(["eval", "--model", str(model_dir), "--task", "arc_challenge", "--shots", "2", "--limit", "6", "--chat-template",
                 "--data-dir", str(data_dir), "--head", f"negative={heads['negative']}", "--out", str(tmp_path / "ev"), "--quiet"]) == 0
    table = ScoreTable.load(tmp_path / "ev" / "scores.parquet")
    ours, _ = rule_scores(table, "likra", 1.0, norm=False, heads=Heads(positive="base", negative="negative"))
    for a, b in zip(ours, scores):
        assert max(abs(x - y) for x, y in zip(a, b)) < 1e-4
    plain, _, _ = run_lmeval(LikraLM(pretrained=str(model_dir), negative=str(heads["negative"])), "arc_challenge", data_dir,
                             shots=2, limit=6)
    assert max(abs(x - y) for a, b in zip(plain, scores) for x, y in zip(a, b)) > 1e-3  # the template changed the scores
    with pytest.raises(ConfigError, match="chat_template=maybe"):
        LikraLM(pretrained=str(model_dir), negative=str(heads["negative"]), chat_template="maybe")
