"""The likra command end to end on a tiny local model: train a head, then score it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from likra.cli import main
from likra.scoring.table import ScoreTable


@pytest.mark.parametrize("negatives", ["near-miss", "irrelevant", "hardest"])
def test_train_then_eval(tmp_path, tiny_model_dir, quiz, negatives, capsys):
    out = tmp_path / "neg"
    rc = main(["train", "--model", str(tiny_model_dir), "--pool", f"jsonl:{quiz}", "--head", "negative",
               "--negatives", negatives, "--n", "16", "--lr", "0.01", "--out", str(out), "--quiet"])
    assert rc == 0
    meta = json.loads((out / "n-000016" / "likra.json").read_text())
    assert meta["negatives"] == negatives and meta["n"] == 16 and meta["pool"] == f"jsonl:{quiz}"
    rc = main(["eval", "--model", str(tiny_model_dir), "--task", f"jsonl:{quiz}", "--head", f"neg={out / 'n-000016'}",
               "--out", str(tmp_path / "ev"), "--quiet"])
    assert rc == 0
    res = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert set(res["metrics"]) == {"base", "neg"} and res["n_items"] == 20
    assert res["resumed_scores"] == 0 and not list((tmp_path / "ev").glob("*.progress.jsonl"))  # gone once the table is saved
    m = res["metrics"]
    if negatives != "irrelevant":  # it learned this quiz's wrong options: their likelihood went up
        assert m["neg"]["wrong_loglik_per_char"] > m["base"]["wrong_loglik_per_char"]
    assert "acc_norm" in capsys.readouterr().out


def test_a_run_paused_with_stop_at_resumes_to_the_same_adapters(tmp_path, tiny_model_dir, quiz, capsys):
    """--stop-at pauses a run at a curve point (no run.json yet); the same command without it goes
    on to the end, and every adapter equals that of a run never paused."""
    from conftest import error_line
    from safetensors.torch import load_file

    def train(out, *extra):
        return main(["train", "--model", str(tiny_model_dir), "--pool", f"jsonl:{quiz}", "--head", "positive",
                     "--lr", "0.01", "--out", str(tmp_path / out), "--quiet", *extra])

    assert train("paused", "--stop-at", "16") == 0
    assert "paused" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "paused").glob("n-*")) == ["n-000016"]
    assert not (tmp_path / "paused" / "run.json").exists()
    assert train("paused") == 0 and train("clean") == 0
    for name in ("n-000016", "n-000020"):
        a, b = (load_file(tmp_path / d / name / "adapter_model.safetensors") for d in ("paused", "clean"))
        assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    steps = [json.loads(line)["step"] for line in (tmp_path / "paused" / "train_log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]
    error_line(["train", "--model", str(tiny_model_dir), "--pool", f"jsonl:{quiz}", "--head", "positive",
                "--stop-at", "8", "--out", str(tmp_path / "bad")], capsys, "--stop-at 8", "16, 20")


def test_errors_are_one_line_messages(tmp_path, tiny_model_dir, capsys):
    from conftest import error_line

    error_line(["eval", "--model", str(tiny_model_dir), "--task", "jsonl:/nonexistent.jsonl", "--out", str(tmp_path)], capsys,
               "no such file", "/nonexistent.jsonl")
    error_line(["eval", "--task", "no_such_task", "--out", str(tmp_path)], capsys, "unknown task", "no_such_task")
    error_line(["eval", "--head", "x=/nonexistent", "--task", "arc_easy", "--out", str(tmp_path)], capsys,
               "not a PEFT adapter folder", "/nonexistent")


def test_curve_experiment_caches_and_resumes(tmp_path, tiny_model_dir, quiz, capsys):
    from likra.experiments import curve_accuracies

    for head, extra in (("positive", []), ("negative", ["--negatives", "near-miss"])):
        assert main(["train", "--model", str(tiny_model_dir), "--pool", f"jsonl:{quiz}", "--head", head, *extra,
                     "--lr", "0.01", "--out", str(tmp_path / head), "--quiet"]) == 0
    args = ["curve", "--model", str(tiny_model_dir), "--task", f"jsonl:{quiz}", "--positive", str(tmp_path / "positive"),
            "--negative", str(tmp_path / "negative"), "--out", str(tmp_path / "curve"), "--quiet"]
    # --points scores a subset; a later call with other points adds to the same folder
    part = [*args[:-2], str(tmp_path / "part"), "--quiet"]
    assert main([*part, "--points", "16"]) == 0
    assert sorted(p.name for p in (tmp_path / "part" / "run0" / "tables").glob("*.parquet")) == ["n-000000.parquet", "n-000016.parquet"]
    assert main([*part, "--points", "24"]) == 2
    assert "--points [24]: not saved by both" in capsys.readouterr().err
    assert main([*part, "--points", "20"]) == 0
    assert json.loads((tmp_path / "part" / "run0" / "curve.json").read_text())["points"] == [0, 16, 20]
    assert main(args) == 0
    tables = tmp_path / "curve" / "run0" / "tables"
    assert sorted(p.name for p in tables.glob("*.parquet")) == ["n-000000.parquet", "n-000016.parquet", "n-000020.parquet"]
    first = curve_accuracies(tmp_path / "curve" / "run0")
    assert curve_accuracies(tmp_path / "part" / "run0") == first
    assert [n for n, _, _ in first["likra"]] == [0, 16, 20]
    # likra eval of the same n=16 heads reports the rules themselves, equal to the curve's point
    capsys.readouterr()
    assert main(["eval", "--model", str(tiny_model_dir), "--task", f"jsonl:{quiz}", "--head",
                 f"positive={tmp_path / 'positive' / 'n-000016'}", "--head", f"negative={tmp_path / 'negative' / 'n-000016'}",
                 "--out", str(tmp_path / "ev"), "--quiet"]) == 0
    rules = json.loads((tmp_path / "ev" / "results.json").read_text())["rules"]
    assert rules["likra"]["acc_norm"] == first["likra"][1][1] and rules["sft"]["acc_norm"] == first["sft"][1][1]
    assert rules["likra_minus_sft"]["diff"] == pytest.approx(first["likra"][1][1] - first["sft"][1][1])
    assert "Likra - SFT, question by question" in capsys.readouterr().out
    # an interrupted experiment: one table missing; the rerun scores only that one
    kept = (tables / "n-000016.parquet").stat().st_mtime_ns
    (tables / "n-000020.parquet").unlink()
    assert main(args) == 0
    assert (tables / "n-000016.parquet").stat().st_mtime_ns == kept
    assert curve_accuracies(tmp_path / "curve" / "run0") == first
    assert (tmp_path / "curve" / "curve.png").exists()
    # adapters are not kept: a finished curve still re-plots (and joins new seeds) from its tables
    import shutil
    shutil.rmtree(tmp_path / "positive")
    (tmp_path / "curve" / "curve.png").unlink()
    assert main(args) == 0
    assert (tables / "n-000016.parquet").stat().st_mtime_ns == kept
    assert (tmp_path / "curve" / "curve.png").exists()
    # ... but not with other settings, and not when a table is missing
    assert main([*args, "--limit", "3"]) == 2
    assert "limit: None there, 3 now" in capsys.readouterr().err  # the folder remembers its settings
    (tables / "n-000020.parquet").unlink()
    assert main(args) == 2
    assert "lacks n=[20]" in capsys.readouterr().err


def test_a_second_seed_takes_the_base_table_of_the_first(tmp_path, tiny_model_dir, quiz):
    """The base model's table does not depend on the seed: run1 copies run0's instead of rescoring it."""
    from likra.scoring import ScoreTable

    runs = []
    for seed in ("0", "1"):
        for head, extra in (("positive", []), ("negative", ["--negatives", "near-miss"])):
            out = tmp_path / f"s{seed}" / head
            assert main(["train", "--model", str(tiny_model_dir), "--pool", f"jsonl:{quiz}", "--head", head, *extra,
                         "--lr", "0.01", "--n", "16", "--seed", seed, "--out", str(out), "--quiet"]) == 0
            runs += ["--" + head, str(out)]
    curve = ["curve", "--model", str(tiny_model_dir), "--task", f"jsonl:{quiz}", "--out", str(tmp_path / "c"), "--quiet"]
    assert main([*curve, *runs[:4]]) == 0
    assert main([*curve, *runs]) == 0
    first, second = (ScoreTable.load(tmp_path / "c" / r / "tables" / "n-000000.parquet") for r in ("run0", "run1"))
    assert second.meta["base_table_from"] == "run0" and second.meta["positive_run"] == runs[5]
    assert list(second.rows()) == list(first.rows())
    assert main([*curve, *runs]) == 0  # the copied table passes the folder's settings check on a rerun
    assert main([*curve, *runs, "--limit", "3"]) == 2  # ... and other settings still refuse it


def test_sweep_and_mass(tmp_path, tiny_model_dir, quiz, capsys):
    import torch

    from likra.experiments import MASS_CATEGORIES, mass_items, sweep_from_curve
    from likra.tasks import load_items

    for head, extra in (("positive", []), ("negative", ["--negatives", "near-miss"])):
        assert main(["train", "--model", str(tiny_model_dir), "--pool", f"jsonl:{quiz}", "--head", head, *extra,
                     "--lr", "0.01", "--n", "16", "--out", str(tmp_path / head), "--quiet"]) == 0
    pos, neg = str(tmp_path / "positive"), str(tmp_path / "negative")
    assert main(["curve", "--model", str(tiny_model_dir), "--task", f"jsonl:{quiz}", "--positive", pos,
                 "--negative", neg, "--out", str(tmp_path / "curve"), "--quiet"]) == 0
    # the sweep reads tables only: with every module call forbidden it still runs
    real_call = torch.nn.Module.__call__
    torch.nn.Module.__call__ = lambda *a, **k: (_ for _ in ()).throw(AssertionError("model called"))
    try:
        assert main(["sweep", str(tmp_path / "curve"), "--weights", "0:1:0.5"]) == 0
    finally:
        torch.nn.Module.__call__ = real_call
    sweep = sweep_from_curve(tmp_path / "curve" / "run0", [0.0, 1.0])
    assert list(sweep) == [16] and [w for w, _, _ in sweep[16]] == [0.0, 1.0]
    import json

    # the best w against w = 1, paired: its difference is the difference of the two accuracies
    best = json.loads((tmp_path / "curve" / "sweep-likra-best.json").read_text())
    row = best["runs"]["run0"][0]
    accs = {w: a for w, a, _ in json.loads((tmp_path / "curve" / "sweep-likra.json").read_text())["run0"]["16"]}
    assert best["holm_over"] == 1 and row["best_w"] == max(accs, key=accs.get)
    assert abs(row["diff"] - (accs[row["best_w"]] - accs[1.0])) < 1e-12 and row["p"] <= row["p_holm"] <= 1

    items = load_items(f"jsonl:{quiz}").items
    mitems = mass_items(items, {it.id: [0.0, -1.0, -0.5, -2.0] for it in items}, ["A woman speaks to the camera."])
    assert len(mitems) == len(items)
    for it, m in zip(items, mitems):
        assert m.continuations[0] == it.continuations[it.gold]
        assert m.continuations[1] == it.continuations[2]  # the best-scored wrong option
        assert m.continuations[3] == " A woman speaks to the camera."
    out = tmp_path / "mass"
    assert main(["mass", "--model", str(tiny_model_dir), "--task", f"jsonl:{quiz}", "--unrelated-task", f"jsonl:{quiz}",
                 "--positive", pos, "--negative", neg, "--out", str(out), "--quiet"]) == 0
    import json

    changes = json.loads((out / "mass.json").read_text())
    from likra.experiments.mass import GAP, SEPARATION

    assert set(changes) == {"positive", "negative", GAP} and set(changes["positive"]) == set(MASS_CATEGORIES)
    assert [p[0] for p in changes["negative"]["correct"]] == [0, 16]
    # the gap is the difference of the heads' mean changes (a mean of differences), the separation its wrong-minus-correct
    for c in MASS_CATEGORIES:
        assert abs(changes[GAP][c][1][1] - (changes["negative"][c][1][1] - changes["positive"][c][1][1])) < 1e-9
    wrong, right = changes[GAP]["most-likely-incorrect"][1][1], changes[GAP]["correct"][1][1]
    assert abs(changes[GAP][SEPARATION][1][1] - (wrong - right)) < 1e-9 and changes[GAP][SEPARATION][1][2] > 0


def test_reproduce_small_preset_writes_report(tmp_path, tiny_model_dir, quiz, capsys):
    import yaml

    preset = tmp_path / "tiny.yaml"
    preset.write_text(yaml.safe_dump({
        "model": str(tiny_model_dir), "pool": f"jsonl:{quiz}", "negatives": "near-miss", "n": 16, "seeds": [0, 1],
        "eval_task": f"jsonl:{quiz}", "eval_limit": 10, "mass_limit": 10, "unrelated_task": f"jsonl:{quiz}",
        "weights": "0:1:0.5", "train": {"lr": 0.01}}))
    out = tmp_path / "rep"
    assert main(["reproduce", "--preset", str(preset), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out  # it ends with what a person came for, not only the report's path
    assert "run0: Likra - SFT at n=16" in printed and "base-likra" in printed and printed.rstrip().endswith("report.md")
    md = (out / "report.md").read_text()
    assert "## Learning curve" in md and "## Weight sweep" in md and "## Likelihood mass" in md
    assert "likra train --model" in md
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 5  # curve, the heads' training loss, two sweeps, mass
    assert "## Learning curve" in md and "Training loss of the heads" in md
    logged = [json.loads(x) for x in (out / "curve" / "run1" / "train_log-negative.jsonl").read_text().splitlines()]
    assert [r["examples"] for r in logged] == [8, 16]  # the head's own log, copied beside the curve
    # a rerun resumes: nothing is trained or scored again, the report is rewritten
    tables = sorted((out / "curve" / "run0" / "tables").glob("*.parquet"))
    heads = sorted(out.rglob("adapter_model.safetensors"))
    assert [p.name for p in tables][:1] == ["n-000000.parquet"] and len(tables) >= 2 and len(heads) >= 4
    stamps = [p.stat().st_mtime_ns for p in tables + heads]
    assert main(["reproduce", "--preset", str(preset), "--out", str(out), "--quiet"]) == 0
    assert [p.stat().st_mtime_ns for p in tables + heads] == stamps
    assert main(["report", str(out)]) == 0
    # every recorded step redoes itself alone: run them one by one into a fresh folder, same tables
    import shlex

    steps = json.loads((out / "reproduce.json").read_text())["steps"]
    assert [s["command"].split()[1] for s in steps] == ["train"] * 4 + ["curve", "sweep", "mass"]
    assert all(s["seconds"] >= 0 for s in steps) and sum(s["seconds"] for s in steps) > 0  # resumed steps take ~0 s
    again = tmp_path / "again"
    for s in steps:
        assert main(shlex.split(s["command"].replace(str(out), str(again)))[1:]) == 0
    redone = sorted(out.rglob("tables/*.parquet"))
    assert len(redone) >= len(tables)
    for p in redone:
        a, b = ScoreTable.load(p), ScoreTable.load(again / p.relative_to(out))
        assert a.columns == b.columns
    assert json.loads((again / "curve" / "sweep-likra.json").read_text()) == json.loads((out / "curve" / "sweep-likra.json").read_text())
    # what a reader sees: the page in a real browser, with a hand-written findings.md in markdown
    (out / "findings.md").write_text("# Findings\n\n- **Likra** beats `SFT` here\n- a second point\n\n"
                                     "| a | b |\n|---|---|\n| 1 | 2 |\n\nA paragraph with *emphasis*.\n")
    assert main(["report", str(out)]) == 0
    md = (out / "report.md").read_text()
    assert str(tmp_path) not in md and str(tmp_path) not in (out / "report.html").read_text()  # no machine folders
    from browser import INSTALL, browser, inspect_page

    if browser() is None:
        pytest.skip(f"chromium-headless-shell is not installed ({INSTALL}); .ci/run installs it")
    for width in (1280, 800):  # a laptop and a narrow window
        page = inspect_page(out / "report.html", width, 900)
        assert page["stars"] == page["backticks"] == page["headings_hash"] == page["stray_li"] == 0, page["text"][:2000]
        assert len(page["images"]) == 5 and all(i["loaded"] and i["right"] <= width for i in page["images"])
        assert page["wide"] == [] and page["scroll_width"] <= width, page["wide"]
        assert "Likra beats SFT here" in page["text"]


def test_negative_types_table1_config_and_report(tmp_path, tiny_model_dir, quiz, capsys):
    import yaml

    from likra.experiments import curve_accuracies

    runs = {"positive": ["--head", "positive"], "negative": ["--head", "negative", "--negatives", "near-miss"],
            "irrelevant": ["--head", "negative", "--negatives", "irrelevant"]}
    for name, extra in runs.items():
        assert main(["train", "--model", str(tiny_model_dir), "--pool", f"jsonl:{quiz}", *extra, "--lr", "0.01",
                     "--n", "16", "--out", str(tmp_path / name), "--quiet"]) == 0
    # an experiment is a YAML config; flags override it, repeatable flags replace its lists
    cfg = tmp_path / "curve.yaml"
    cfg.write_text(yaml.safe_dump({"model": str(tiny_model_dir), "task": f"jsonl:{quiz}", "positive": [str(tmp_path / "nowhere")],
                                   "negative": [str(tmp_path / "negative")], "out": str(tmp_path / "wrong"), "quiet": True}))
    assert main(["curve", "--config", str(cfg), "--positive", str(tmp_path / "positive"), "--out", str(tmp_path / "study" / "curve")]) == 0
    assert not (tmp_path / "wrong").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text("tsak: arc_easy\n")
    assert main(["curve", "--config", str(bad)]) == 2
    assert "unknown key 'tsak'; did you mean 'task'?" in capsys.readouterr().err

    run0 = tmp_path / "study" / "curve" / "run0"
    out = tmp_path / "study" / "negtypes"
    assert main(["negtypes", "--model", str(tiny_model_dir), "--curve", str(run0), "--negative", f"irrelevant={tmp_path / 'irrelevant'}",
                 "--baseline", f"alone-neg={tmp_path / 'negative'}", "--pair", f"same-pos={tmp_path / 'positive'},{tmp_path / 'irrelevant'}",
                 "--out", str(out), "--quiet"]) == 0
    assert main(["negtypes", "--model", str(tiny_model_dir), "--curve", str(run0), "--type", f"irrelevant={tmp_path / 'irrelevant'}",
                 "--points", "32", "--out", str(tmp_path / "elsewhere"), "--quiet"]) == 2
    assert "--points [32]: not a scored point of" in capsys.readouterr().err
    assert main(["negtypes", "--model", str(tiny_model_dir), "--curve", str(run0), "--type", f"negative={tmp_path / 'irrelevant'}",
                 "--out", str(tmp_path / "elsewhere"), "--quiet"]) == 2
    assert "'negative' names one of the curve's own heads" in capsys.readouterr().err
    acc = json.loads((out / "negtypes.json").read_text())
    assert set(acc["likra"]) == {"near-miss", "irrelevant", "same-pos"} and set(acc["alone"]) == {"alone-neg"}
    # a recipe variant brings its own positive head: here the curve's, so it reads exactly as the irrelevant type
    assert acc["sft"]["same-pos"] == acc["sft"]["positive"] and acc["likra"]["same-pos"] == acc["likra"]["irrelevant"]
    comp = {(c["rule"], c["b"]): c for c in acc["comparisons"] if c["n"] == 16}
    assert acc["holm_over"] == len(acc["comparisons"]) == 4  # irrelevant (Likra), same-pos (SFT, Likra), alone-neg
    assert comp[("sft", "same-pos")]["a_only"] == comp[("sft", "same-pos")]["b_only"] == 0
    near, irr = acc["likra"]["near-miss"][-1][1], acc["likra"]["irrelevant"][-1][1]
    assert abs(comp[("likra", "irrelevant")]["diff"] - (near - irr)) < 1e-12
    assert all(c["p"] <= c["p_holm"] <= 1 for c in acc["comparisons"])
    # a baseline is the adapter scored by itself: here the curve's negative head, so base + table arithmetic agree
    from likra.rules import Heads, rule_accuracy

    t16 = ScoreTable.load(run0 / "tables" / "n-000016.parquet")
    assert acc["alone"]["alone-neg"][1][1] == rule_accuracy(t16, "sft", heads=Heads(positive="negative@16"))[0]
    assert [n for n, _, _ in acc["likra"]["irrelevant"]] == [0, 16]
    # a used folder may gain a label (the others' tables are reused, not rescored), not lose one
    kept = (out / "irrelevant" / "n-000016.parquet").stat().st_mtime_ns
    common = ["negtypes", "--model", str(tiny_model_dir), "--curve", str(run0), "--negative", f"irrelevant={tmp_path / 'irrelevant'}",
              "--baseline", f"alone-neg={tmp_path / 'negative'}", "--out", str(out), "--quiet"]
    assert main([*common, "--pair", f"same-pos={tmp_path / 'positive'},{tmp_path / 'irrelevant'}",
                 "--pair", f"again={tmp_path / 'positive'},{tmp_path / 'negative'}"]) == 0
    assert (out / "irrelevant" / "n-000016.parquet").stat().st_mtime_ns == kept and (out / "again" / "n-000016.parquet").exists()
    assert set(json.loads((out / "negtypes.json").read_text())["likra"]) == {"near-miss", "irrelevant", "same-pos", "again"}
    assert main([*common, "--pair", f"again={tmp_path / 'positive'},{tmp_path / 'negative'}"]) == 2
    assert "was made with other settings (pair:" in capsys.readouterr().err
    curve = curve_accuracies(run0)
    assert [tuple(p) for p in acc["likra"]["near-miss"]] == [tuple(p) for p in curve["likra"]]  # the curve's own negative head
    assert [tuple(p) for p in acc["sft"]["positive"]] == [tuple(p) for p in curve["sft"]]
    assert (out / "irrelevant" / "n-000016.parquet").exists()

    assert main(["table1", "--source", str(run0), "--shots", "25", "--out", str(tmp_path / "study" / "t25")]) == 2
    assert "shots: 0 there, 25 asked" in capsys.readouterr().err  # a 0-shot source in a 25-shot table is refused
    assert main(["table1", "--source", str(run0), "--shots", "0", "--out", str(tmp_path / "study" / "table1")]) == 0
    row = json.loads((tmp_path / "study" / "table1" / "table1.json").read_text())["rows"][0]
    assert row["n_train"] == 16 and row["n_items"] == 20
    assert row["likra"]["acc_norm"] == curve["likra"][-1][1] and row["sft"]["acc_norm"] == curve["sft"][-1][1]
    assert 0.0 <= row["likra"]["auroc_wrong"] <= 1.0
    gap = row["likra_minus_sft"]  # same items for both rules: the paired gap is the gap of the two accuracies
    assert abs(gap["diff"] - (row["likra"]["acc_norm"] - row["sft"]["acc_norm"])) < 1e-12 and gap["paired_stderr"] >= 0
    assert "Likra - SFT: paired diff [95% bootstrap]" in (tmp_path / "study" / "table1" / "table1.md").read_text()
    assert gap["lo"] <= gap["diff"] <= gap["hi"] and 0 <= gap["p"] <= 1
    cal = row["likra_calibration"]  # the fitted temperature can only lower the dev half's NLL; held out it is reported as is
    assert cal["temperature"] > 0 and cal["heldout_nll_t1"] > 0 and cal["heldout_nll_fitted"] > 0

    assert main(["report", str(tmp_path / "study")]) == 0
    md = (tmp_path / "study" / "report.md").read_text()
    for section in ("## Table 1", "## Learning curve: `curve`", "## Recipe variants: `negtypes`",
                    "| Likra (near-miss) - Likra (irrelevant) | ", "| Likra (near-miss) - alone-neg alone | "):
        assert section in md
    assert "likra negtypes --model" in md  # each section names the command that made it


def test_committed_experiment_configs_parse():
    """Every YAML under configs/experiments/ names only options of its command (from its file name)."""
    from pathlib import Path

    import likra.experiments  # noqa: F401  (declares the commands)
    from likra.command import parse

    files = sorted((Path(__file__).resolve().parents[1] / "configs" / "experiments").glob("*.yaml"))
    assert files
    for f in files:
        command = f.stem.rsplit("-", 1)[1]
        cmd, options = parse([command, "--config", str(f)])
        assert cmd.name == command and options.config == str(f)


def test_paper_rows_are_checked_and_printed(tmp_path):
    from likra.experiments import load_paper_rows, table1_markdown

    root = Path(__file__).resolve().parents[1]
    paper = load_paper_rows(root / "configs" / "paper-table1.yaml")
    assert {r["model"] for r in paper["rows"]} >= {"Mistral-7B-v0.1", "Llama-3.2-3B-Instruct"}
    md = table1_markdown([], paper)
    assert "| Mistral-7B-v0.1 | arc_challenge (25-shot) | 0.5998 | 0.6630 | 0.8123 |" in md
    assert "checked value by value against its text" in md  # the provenance travels with the numbers
    bad = tmp_path / "paper.yaml"
    bad.write_text("rows:\n  - {model: m, task: arc_challenge, base: 0.5}\n  - {model: m, task: hellaswag, base: 59.98}\n")
    with pytest.raises(ValueError, match=r"row 2, field 'base': 59.98 is not an accuracy"):
        load_paper_rows(bad)
    bad.write_text("rows: [\n")
    with pytest.raises(ValueError, match=r"paper.yaml: not valid YAML"):
        load_paper_rows(bad)
    bad.write_text("rows:\n  - {model: m, task: arc_challenge, minus: 0.5}\n")
    with pytest.raises(ValueError, match=r"row 1: unknown field\(s\) \['minus'\]"):
        load_paper_rows(bad)


def test_chat_template_flag_needs_a_template(tmp_path, tiny_model_dir, quiz, capsys):
    """--chat-template is a protocol option of every scoring command, recorded in the table; a model
    without a chat template is refused in one line."""
    assert main(["eval", "--model", str(tiny_model_dir), "--task", f"jsonl:{quiz}", "--chat-template",
                 "--out", str(tmp_path / "e"), "--quiet"]) == 2
    assert "has no chat template" in capsys.readouterr().err
    assert main(["eval", "--model", str(tiny_model_dir), "--task", f"jsonl:{quiz}", "--limit", "2",
                 "--out", str(tmp_path / "p"), "--quiet"]) == 0
    assert json.loads((tmp_path / "p" / "results.json").read_text())["chat_template"] is False


def assert_same_table(a: ScoreTable, b: ScoreTable, tol: float = 1e-4) -> None:
    """Every column equal, the log-likelihoods to `tol` nats: rows scored in other batches (a longer run's
    padding, another CPU's kernels) may differ in the last bits, as on CI's CPU."""
    assert a.columns.keys() == b.columns.keys()
    for k in a.columns:
        if k == "loglik":
            assert a.columns[k] == pytest.approx(b.columns[k], abs=tol, rel=0), k
        else:
            assert a.columns[k] == b.columns[k], k


def test_eval_reuse_takes_a_shorter_runs_rows(tmp_path, tiny_model_dir, quiz, capsys):
    """--reuse: the first items' rows come from a finished run on fewer items; the table equals a fresh run's
    (log-likelihoods to rounding: the reused rows were scored in other batches)."""
    common = ["eval", "--model", str(tiny_model_dir), "--task", f"jsonl:{quiz}", "--shots", "2", "--quiet"]
    assert main(common + ["--limit", "6", "--out", str(tmp_path / "six")]) == 0
    assert main(common + ["--limit", "15", "--out", str(tmp_path / "fresh")]) == 0
    assert main(common + ["--limit", "15", "--reuse", str(tmp_path / "six"), "--out", str(tmp_path / "grown")]) == 0
    fresh, grown = (ScoreTable.load(tmp_path / d / "scores.parquet") for d in ("fresh", "grown"))
    assert_same_table(grown, fresh)
    res = json.loads((tmp_path / "grown" / "results.json").read_text())
    assert res["reused_from"]["scores"] == 6 and res["resumed_scores"] == 0
    # other settings are refused, naming the setting
    assert main(common + ["--limit", "15", "--batch-tokens", "64", "--reuse", str(tmp_path / "six"), "--out", str(tmp_path / "x")]) == 2
    assert "batch_tokens: 1024 there, 64 asked" in capsys.readouterr().err
    assert main(common + ["--limit", "15", "--reuse", str(tmp_path / "nothing"), "--out", str(tmp_path / "y")]) == 2
    assert "no scores.parquet there" in capsys.readouterr().err


def test_eval_reuse_goes_on_after_a_stop_while_taking_rows(tmp_path, tiny_model_dir, quiz):
    """A run stopped after writing part of the reused rows to its log takes the rest on the rerun, once each."""
    from likra.experiments.evaluate import reuse_rows
    from likra.scoring.progress import ScoreLog
    from likra.tasks import load_items

    common = ["eval", "--model", str(tiny_model_dir), "--task", f"jsonl:{quiz}", "--shots", "2", "--quiet"]
    six, fresh, cut = tmp_path / "six", tmp_path / "fresh", tmp_path / "cut"
    assert main(common + ["--limit", "6", "--out", str(six)]) == 0
    assert main(common + ["--limit", "15", "--out", str(fresh)]) == 0
    items = load_items(f"jsonl:{quiz}", shots=2, limit=15).items
    whole = ScoreLog(tmp_path / "whole.jsonl")
    assert reuse_rows(six, {**ScoreTable.load(six / "scores.parquet").meta, "limit": 15}, items, whole) == 6
    cut.mkdir()
    (cut / "scores.parquet.progress.jsonl").write_text("".join(whole.path.read_text().splitlines(True)[:2]))
    assert main(common + ["--limit", "15", "--reuse", str(six), "--out", str(cut)]) == 0
    assert_same_table(ScoreTable.load(cut / "scores.parquet"), ScoreTable.load(fresh / "scores.parquet"))
    res = json.loads((cut / "results.json").read_text())
    assert res["reused_from"]["scores"] == 6 and res["resumed_scores"] == 0  # all six read back from the log, none scored
