"""The experiment layer: the command registry, the strict config loader, output folders, and each
recipe's pure functions on hand-made score tables (no model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import likra.experiments  # noqa: F401  (declares the commands)
import likra.reproduce  # noqa: F401
from likra.cli import main
from likra.command import COMMANDS, parse, to_argv
from likra.errors import ConfigError, OutputRefused
from likra.scoring.table import ScoreTable


def table(heads: dict[str, list[list[float]]], gold: list[int], n_chars: int = 10, meta: dict | None = None) -> ScoreTable:
    """A score table from per-head, per-item option log-likelihoods."""
    t = ScoreTable(meta=meta or {})
    for head, items in heads.items():
        for i, lls in enumerate(items):
            for o, ll in enumerate(lls):
                t.append(item_id=f"q{i}", option=o, head=head, loglik=ll, n_tokens=2, n_chars=n_chars, gold=o == gold[i],
                         greedy=False, truncated=False)
    return t


# ---- the registry and the config loader -------------------------------------------------------

def test_every_command_is_declared_once_and_shows_its_defaults(capsys):
    assert {"eval", "train", "curve", "sweep", "mass", "negtypes", "table1", "reproduce", "report"} <= set(COMMANDS)
    for name in ("curve", "mass", "negtypes", "eval", "table1"):
        with pytest.raises(SystemExit):
            main([name, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "--shots" in text and "--dtype" in text
        if name != "table1":  # table1 scores nothing: its protocol options are checks on its sources
            assert "--limit" in text and "--batch-tokens" in text
    with pytest.raises(SystemExit):
        main(["curve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(the paper: 25) (default: 0)" in text and "(default: fp32)" in text


@pytest.mark.parametrize("content, message", [
    ("learning_rate: 0.5\n", "unknown key 'learning_rate'; did you mean 'lr'?"),
    ("lrr: 0.5\n", "unknown key 'lrr'; did you mean 'lr'?"),
    ("lr: fast\n", "key 'lr': 'fast' is not a number"),
    ("batch_size: 8.5\n", "key 'batch_size': 8.5 is not an integer"),
    ("- lr: 0.1\n", "expected a mapping of option: value, found a list"),
    ("lr: !!python/object/apply:os.system ['true']\n", "not valid YAML"),
    ("lr: [1, \n", "not valid YAML"),
    ("attention: segment\n", "'segment' is not one of segments, mask"),
])
def test_train_config_is_strict_before_any_model_loads(tmp_path, monkeypatch, capsys, content, message):
    import likra.heads

    monkeypatch.setattr(likra.heads, "train", lambda **kw: pytest.fail("a model was loaded"))
    cfg = tmp_path / "train.yaml"
    cfg.write_text(content)
    assert main(["train", "--config", str(cfg), "--pool", "arc", "--role", "positive", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and str(cfg) in err and err.count("\n") == 1


def test_flags_override_the_file_and_1e_4_reads_as_a_number(tmp_path):
    cfg = tmp_path / "t.yaml"
    cfg.write_text("lr: 1e-4\nbatch_size: 4\npool: arc\nrole: negative\nn: 64\n".replace("n: 64", "examples: 64"))
    cmd, o = parse(["train", "--config", str(cfg), "--batch-size", "16", "--out", "x"])
    assert (o.lr, o.batch_size, o.pool, o.role, o.examples) == (1e-4, 16, "arc", "negative", 64)
    _, old = parse(["train", "--head", "positive", "--n", "32", "--pool", "arc", "--out", "x"])  # the old spellings
    assert (old.role, old.examples) == ("positive", 32)


def test_recorded_command_lines_give_the_options_back():
    _, o = parse(["curve", "--positive", "a", "--positive", "b", "--negative", "c", "--negative", "d", "--shots", "25",
                  "--dtype", "bf16", "--limit", "300", "--out", "o", "--template", "Q: {question}\nA:"])
    assert parse(to_argv("curve", o))[1] == o
    _, t = parse(["train", "--pool", "arc", "--role", "negative", "--negatives", "irrelevant", "--bf16",
                  "--target-modules", "q_proj", "v_proj", "--lr", "0.001", "--out", "o"])
    assert parse(to_argv("train", t))[1] == t
    _, s = parse(["sweep", "runs/c", "--rule", "base-likra"])
    assert parse(to_argv("sweep", s))[1] == s


@pytest.mark.parametrize("argv, message", [
    (["eval", "--limit", "-1"], "--limit -1: give a positive number"),
    (["eval", "--limit", "0"], "--limit 0: give a positive number"),
    (["eval", "--shots", "-2"], "--shots -2"),
    (["train", "--pool", "arc", "--role", "positive", "--examples", "0", "--out", "x"], "--examples 0"),
])
def test_bad_numbers_are_refused_in_one_line(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_programming_error_keeps_its_traceback(monkeypatch):
    cmd = COMMANDS["table1"]
    monkeypatch.setitem(COMMANDS, "table1", cmd.__class__(cmd.name, cmd.help, cmd.options,
                                                          lambda o, argv: {}["acc"], cmd.compare))
    with pytest.raises(KeyError, match="acc"):
        main(["table1", "--source", "x"])


# ---- output folders ---------------------------------------------------------------------------

def test_a_used_folder_is_refused_to_another_command_or_settings(tmp_path, tiny_model_dir, quiz, capsys):
    out = tmp_path / "ev"
    assert main(["eval", "--model", str(tiny_model_dir), "--task", f"jsonl:{quiz}", "--limit", "5", "--out", str(out), "--quiet"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != ".likra.lock"}
    assert main(["eval", "--model", str(tiny_model_dir), "--task", "arc_easy", "--limit", "5", "--out", str(out)]) == 2
    assert f"task: 'jsonl:{quiz}' there, 'arc_easy' now" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != ".likra.lock"} == before
    assert main(["curve", "--positive", "a", "--negative", "b", "--out", str(out)]) == 2
    assert "holds the output of 'likra eval'" in capsys.readouterr().err
    # the same command and settings resume (here: score again into its own folder); --overwrite replaces
    assert main(["eval", "--model", str(tiny_model_dir), "--task", f"jsonl:{quiz}", "--limit", "5", "--out", str(out), "--quiet"]) == 0
    assert main(["eval", "--model", str(tiny_model_dir), "--task", f"jsonl:{quiz}", "--limit", "3", "--out", str(out), "--quiet",
                 "--overwrite"]) == 0
    assert json.loads((out / "results.json").read_text())["n_items"] == 3


def test_an_eval_folder_made_before_run_records_is_not_overwritten(tmp_path, tiny_model_dir, quiz, capsys):
    out = tmp_path / "old"
    out.mkdir()
    (out / "results.json").write_text(json.dumps({"model": "smollm2-135m", "task": "arc_challenge", "shots": 0}))
    assert main(["eval", "--model", str(tiny_model_dir), "--task", f"jsonl:{quiz}", "--out", str(out), "--quiet"]) == 2
    assert "holds another evaluation" in capsys.readouterr().err
    assert json.loads((out / "results.json").read_text())["task"] == "arc_challenge"


def test_a_folder_in_use_is_refused(tmp_path):
    from likra.experiments.runs import claim_output, release_output

    claim_output(tmp_path / "o", "eval", {"task": "a"})
    try:
        with pytest.raises(OutputRefused, match="in use by another likra run"):
            claim_output(tmp_path / "o", "eval", {"task": "a"})
    finally:
        release_output(tmp_path / "o")
    claim_output(tmp_path / "o", "eval", {"task": "a"})  # free again
    release_output(tmp_path / "o")


# ---- recipes on hand-made tables --------------------------------------------------------------

def write_curve(folder: Path) -> None:
    gold = [0, 1, 0, 1]
    base = [[-1.0, -2.0], [-1.0, -2.0], [-2.0, -1.0], [-1.0, -2.0]]  # right on q0 only
    table({"base": base}, gold, meta={"n": 0}).save(folder / "tables" / "n-000000.parquet")
    pos = [[-1.0, -3.0], [-3.0, -1.0], [-2.0, -1.5], [-2.0, -1.9]]  # right on q0, q1, q3
    neg = [[-2.0, -1.0], [-1.0, -2.0], [-1.0, -3.0], [-1.0, -1.0]]  # likes the wrong options
    table({"positive@16": pos, "negative@16": neg}, gold, meta={"n": 16}).save(folder / "tables" / "n-000016.parquet")


def test_curve_and_sweep_read_the_tables(tmp_path):
    from likra.experiments.curve import curve_accuracies, seed_summary, summary_lines
    from likra.experiments.sweep import best_weight, sweep_from_curve

    write_curve(tmp_path)
    acc = curve_accuracies(tmp_path)
    assert [n for n, _, _ in acc["sft"]] == [0, 16]
    assert acc["base"][1][1] == 0.25 and acc["sft"][1][1] == 0.75
    # Likra (pos - neg): q0 -1+2=1 vs -3+1=-2 right; q1 -3+1 vs -1+2 right; q2 -2+1 vs -1.5+3 wrong; q3 -2+1 vs -1.9+1 right
    assert acc["likra"][1][1] == 0.75
    assert acc["base-likra"][1][1] == 0.25  # base - neg: q0 1 vs -1 right, q1 0 vs 0 (a tie goes to the first), q2 -1 vs 2, q3 0 vs -1
    sweep = sweep_from_curve(tmp_path, [0.0, 1.0])
    assert sweep[16][0][1] == acc["sft"][1][1] and sweep[16][1][1] == acc["likra"][1][1]
    assert best_weight(sweep[16])[1] == 0.75
    two = {"run0": acc, "run1": {r: [(n, a - 0.25, se) for n, a, se in pts] for r, pts in acc.items()}}
    n16 = seed_summary(two, "sft")[1]
    assert n16[0] == 16 and n16[1] == 0.625 and n16[2] == pytest.approx(0.25 / 2 ** 0.5) and n16[3] == 2
    assert "mean ± sd over 2 runs" in summary_lines(two)[0]
    # a seed scored at fewer points: those points are that one run, and the summary says how many runs
    two["run1"] = {r: pts[:1] for r, pts in two["run1"].items()}
    assert seed_summary(two, "sft")[1] == (16, 0.75, acc["sft"][1][2], 1)
    lines = summary_lines(two)
    assert "runs column" in lines[0] and lines[2].split()[-1] == "2" and lines[3].split()[-1] == "1"


def test_across_runs_pools_the_seeds_at_the_points_they_share(tmp_path):
    from likra.experiments.curve import across_runs, curve_correct

    write_curve(tmp_path / "run0")
    write_curve(tmp_path / "run1")
    assert across_runs([tmp_path / "run0"]) is None  # one run: nothing to pool
    seeds = across_runs([tmp_path / "run0", tmp_path / "run1"])
    assert seeds["runs"] == ["run0", "run1"] and seeds["points"] == [0, 16]
    c = curve_correct(tmp_path / "run0")
    likra_sft = seeds["comparisons"]["likra - sft"][0]
    assert likra_sft["n"] == 16 and list(likra_sft["per_run"]) == [0.0, 0.0]  # 0.75 against 0.75 in both runs
    gain = seeds["gains"]["likra"][0]
    assert (gain["from"], gain["to"]) == (0, 16)
    assert gain["diff"] == pytest.approx(c[16]["likra"].mean() - c[0]["likra"].mean()) == 0.5
    assert seeds["holm_over"] == 4 + 3 and all(r["p_holm"] >= r["p"] for rows in seeds["gains"].values() for r in rows)
    assert "step" not in seeds  # two shared points: no step test
    # a third shared point (n = 32: the n = 16 heads again): the step test on the seeds' mean curve, 0 -> 16 the jump
    for run in ("run0", "run1"):
        t16 = ScoreTable.load(tmp_path / run / "tables" / "n-000016.parquet")
        t16.columns["head"] = [h.replace("@16", "@32") for h in t16.columns["head"]]
        t16.meta["n"] = 32
        t16.save(tmp_path / run / "tables" / "n-000032.parquet")
    seeds = across_runs([tmp_path / "run0", tmp_path / "run1"])
    step = seeds["step"]["likra"]
    assert seeds["points"] == [0, 16, 32] and (step["jump_from"], step["jump_to"]) == (0, 16) and step["share"] == 1.0
    assert step["jump"]["diff"] == 0.5 and "over 2 runs" in step["text"]
    for run in ("run0", "run1"):
        (tmp_path / run / "tables" / "n-000032.parquet").unlink()
    # a run that has not scored n = 16: only n = 0 is shared, so there is no gain to pool
    (tmp_path / "run1" / "tables" / "n-000016.parquet").unlink()
    assert across_runs([tmp_path / "run0", tmp_path / "run1"]) is None


def test_mass_items_need_two_questions():
    from likra.experiments.mass import mass_items
    from likra.tasks.base import Item

    one = [Item(id="q", contexts=("Q?",) * 2, continuations=(" a", " b"), gold=0, n_chars=(1, 1))]
    with pytest.raises(ConfigError, match="at least two test questions"):
        mass_items(one, {"q": [0.0, -1.0]}, ["x"])


def test_mass_changes_by_hand(tmp_path):
    """Per-character changes from the base model, per head and category (option k is category k),
    their gap and the separation, on two questions worked out by hand (10 characters per option)."""
    from likra.experiments.mass import GAP, MASS_CATEGORIES, SEPARATION, mass_changes

    (tmp_path / "tables").mkdir()
    table({"base": [[-10, -20, -30, -40], [-20, -20, -20, -20]]}, [0, 0]).save(tmp_path / "tables" / "n-000000.parquet")
    table({"positive@16": [[-5, -20, -30, -40], [-10, -20, -30, -20]],    # +0.5, 0, 0, 0 | +1, 0, -1, 0
           "negative@16": [[-10, -10, -30, -40], [-20, -10, -20, -40]]},  # 0, +1, 0, 0 | 0, +1, 0, -2
          [0, 0]).save(tmp_path / "tables" / "n-000016.parquet")
    c = mass_changes(tmp_path)
    assert MASS_CATEGORIES == ("correct", "most-likely-incorrect", "irrelevant", "unrelated")
    mean = lambda h, cat: [(n, round(m, 9)) for n, m, _ in c[h][cat]]
    assert [mean("positive", k)[1] for k in MASS_CATEGORIES] == [(16, 0.75), (16, 0.0), (16, -0.5), (16, 0.0)]
    assert [mean("negative", k)[1] for k in MASS_CATEGORIES] == [(16, 0.0), (16, 1.0), (16, 0.0), (16, -1.0)]
    assert [mean(GAP, k)[1] for k in MASS_CATEGORIES] == [(16, -0.75), (16, 1.0), (16, 0.5), (16, -1.0)]
    assert c["positive"]["correct"][0] == (0, 0.0, 0.0)
    n, sep, half = c[GAP][SEPARATION][1]  # per question 1.5 and 2.0: sd 0.5 / sqrt 2, half-width 1.96 sd / sqrt 2
    assert (n, sep) == (16, pytest.approx(1.75)) and half == pytest.approx(1.959964 * (0.5 / 2 ** 0.5) / 2 ** 0.5)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_json_outputs_refuse_nan_and_infinities(tmp_path, bad):
    """No likra number is NaN or infinite: a JSON output holding one is refused and nothing is written."""
    from likra.io import write_json

    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        write_json(tmp_path / "r.json", {"acc": bad})
    assert list(tmp_path.iterdir()) == []


def test_presets_are_package_data(tmp_path):
    from likra.reproduce import PRESETS_DIR, load_preset, preset_path

    assert PRESETS_DIR.parent.name == "likra" and preset_path("quick").parent == PRESETS_DIR
    assert load_preset(preset_path("paper")).eval_shots == 25
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert '"presets/*.yaml"' in pyproject
    with pytest.raises(ConfigError, match="known presets: cpu, paper, quick"):
        preset_path("nope")
    typo = tmp_path / "typo.yaml"  # a precision misspelt in a preset is refused before any training
    typo.write_text("dtype: bf-16\n")
    with pytest.raises(ConfigError, match=r"typo.yaml, 'dtype:': 'bf-16' is not a precision; use one of fp32"):
        load_preset(typo)


def test_paper_preset_records_the_papers_protocol(tmp_path, capsys):
    out = tmp_path / "paper"
    assert main(["reproduce", "--preset", "paper", "--dry-run", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert not out.exists()  # a dry run writes nothing
    trains = [line for line in lines if line.startswith("likra train")]
    assert len(trains) == 6 and all("--bf16" in t and "--pool arc" in t and "--examples" not in t for t in trains)  # all 6615
    curve = next(line for line in lines if line.startswith("likra curve"))
    assert "--shots 25" in curve and "--dtype bf16" in curve and curve.count("--positive") == 3
    _, options = parse(curve.split()[1:])  # the recorded line parses back to the options it ran with
    assert options.shots == 25 and options.dtype == "bf16"


def test_a_curve_refuses_swapped_or_identical_heads(tmp_path):
    from likra.experiments.runs import check_roles

    for head in ("positive", "negative"):
        (tmp_path / head / "n-000016").mkdir(parents=True)
        (tmp_path / head / "n-000016" / "likra.json").write_text(json.dumps({"head": head}))
    check_roles(str(tmp_path / "positive"), str(tmp_path / "negative"))
    with pytest.raises(ConfigError, match="holds a 'negative' head .* given as --positive"):
        check_roles(str(tmp_path / "negative"), str(tmp_path / "positive"))
    with pytest.raises(ConfigError, match="are the same run"):
        check_roles(str(tmp_path / "positive"), str(tmp_path / "positive"))


def test_scaling_reads_each_models_table_and_draws_the_paper_beside(tmp_path, capsys):
    """Three paired differences per model, Holm over all of them, parameters from the registry or
    the command line, the paper's rows as reference points; the report redraws it from the tables."""
    from likra.experiments.table1 import parse_count

    assert parse_count("135M") == 1.35e8 and parse_count("1.78B") == 1.78e9 and parse_count("7000") == 7000
    # Likra right on 3 of 4 questions, SFT on 2, base on 1; the negative head alone reverses the base
    heads = {"base": [[0, -1], [-1, 0], [-1, 0], [-1, 0]], "positive": [[0, -1], [0, -1], [-1, 0], [-1, 0]],
             "negative": [[-2, 0], [-2, 0], [-2, 0], [0, -2]]}
    sources = []
    for name in ("smollm2-135m", "my-model"):
        t = table(heads, gold=[0, 0, 0, 0], meta={"model": name, "task": "arc_challenge", "shots": 0, "dtype": "fp32",
                                                  "heads": {"positive": "runs/p/n-001024", "negative": "runs/n/n-001024"}})
        sources.append(str(t.save(tmp_path / name / "scores.parquet").parent))
    assert main(["scaling", "--source", sources[0], "--source", sources[1], "--out", str(tmp_path / "r" / "s")]) == 2
    assert "model 'my-model': its parameter count is unknown; pass --parameters my-model=COUNT" in capsys.readouterr().err
    assert main(["scaling", "--source", sources[0], "--source", sources[1], "--parameters", "my-model=1.5B",
                 "--out", str(tmp_path / "r" / "s")]) == 0
    data = json.loads((tmp_path / "r" / "s" / "scaling.json").read_text())
    small, big = sorted(data["rows"], key=lambda r: r["parameters"])
    assert (small["parameters"], big["parameters"], small["n_train"]) == (1.35e8, 1.5e9, 1024)
    assert small["acc"] == {"base": 0.25, "sft": 0.5, "likra": 0.75, "base-likra": 0.75}
    assert small["likra - sft"]["diff"] == 0.25 and small["sft - base"]["diff"] == 0.25 and small["base-likra - base"]["diff"] == 0.5
    ps = sorted((r[k]["p"], r[k]["p_holm"]) for r in data["rows"] for k in ("likra - sft", "sft - base", "base-likra - base"))
    assert ps[0][1] == min(1.0, 6 * ps[0][0])  # Holm over the table's 2 rows x 3 comparisons
    (trend,) = data["trends"]  # two sizes, one protocol and n: one line of slopes; equal tables, no trend
    assert trend["models"] == ["smollm2-135m", "my-model"] and trend["likra - sft"]["slope"] == 0
    assert trend["likra - sft"]["p_holm"] == 1 and "_correct" not in small
    paper = {p["model"]: p for p in data["paper"] if p["task"] == "arc_challenge"}
    assert paper["Llama-3.2-3B-Instruct"]["parameters"] == 3.21e9
    assert abs(paper["Llama-3.2-3B-Instruct"]["likra - sft"] - (0.7321 - 0.5486)) < 1e-12
    assert (tmp_path / "r" / "s" / "scaling.png").stat().st_size > 0
    # a row without its negative head, or one whose training size cannot be read, is refused in one line
    t = table({"base": heads["base"], "positive": heads["positive"]}, gold=[0, 0, 0, 0],
              meta={"model": "smollm2-135m", "task": "arc_challenge", "heads": {"positive": "runs/p/n-000016"}})
    assert main(["scaling", "--source", str(t.save(tmp_path / "noneg" / "scores.parquet").parent), "--out", str(tmp_path / "x")]) == 2
    assert "no scores for head(s) ['negative']" in capsys.readouterr().err
    t = table(heads, gold=[0, 0, 0, 0], meta={"model": "smollm2-135m", "task": "arc_challenge", "heads": {"positive": "runs/p/final"}})
    assert main(["scaling", "--source", str(t.save(tmp_path / "non" / "scores.parquet").parent), "--out", str(tmp_path / "y")]) == 2
    assert "its training size n cannot be read" in capsys.readouterr().err
    # two sizes under one protocol but on other questions: no trend can pair them, and the error says so
    t = table(heads, gold=[0, 0, 0, 0], meta={"model": "gemma3-270m", "task": "arc_challenge", "heads": {"positive": "runs/p/n-001024"}})
    t.columns["item_id"] = [q.replace("q", "other-") for q in t.columns["item_id"]]
    other = str(t.save(tmp_path / "other" / "scores.parquet").parent)
    assert main(["scaling", "--source", sources[0], "--source", other, "--out", str(tmp_path / "z")]) == 2
    assert "the same protocol but different questions" in capsys.readouterr().err
    # a third model scored in bf16-mixed shares the figure's panel but no trend with the fp32 rows
    t = table(heads, gold=[0, 0, 0, 0], meta={"model": "gemma3-270m", "task": "arc_challenge", "shots": 0, "dtype": "bf16-mixed",
                                              "heads": {"positive": "runs/p/n-001024", "negative": "runs/n/n-001024"}})
    mixed = str(t.save(tmp_path / "mixed" / "scores.parquet").parent)
    assert main(["scaling", "--source", sources[0], "--source", sources[1], "--source", mixed, "--parameters", "my-model=1.5B",
                 "--out", str(tmp_path / "m")]) == 0
    data = json.loads((tmp_path / "m" / "scaling.json").read_text())
    assert sorted(r["dtype"] for r in data["rows"]) == ["bf16-mixed", "fp32", "fp32"] and len(data["trends"]) == 1
    assert main(["report", str(tmp_path / "r")]) == 0
    md = (tmp_path / "r" / "report.md").read_text()
    assert "## Scaling: `s`" in md and "| my-model | 1.50B | arc_challenge (0-shot) | 4 | 1024 |" in md
    # --questions K compares every source on its first K questions; a source with fewer is refused
    assert main(["scaling", "--source", sources[0], "--source", sources[1], "--parameters", "my-model=1.5B", "--questions", "2",
                 "--out", str(tmp_path / "r" / "q")]) == 0
    data = json.loads((tmp_path / "r" / "q" / "scaling.json").read_text())
    assert data["questions"] == 2 and {r["n_items"] for r in data["rows"]} == {2} and data["rows"][0]["acc"]["base"] == 0.5
    assert main(["report", str(tmp_path / "r")]) == 0  # redrawn from the tables on the same 2 questions
    assert "| my-model | 1.50B | arc_challenge (0-shot) | 2 | 1024 |" in (tmp_path / "r" / "report.md").read_text()
    assert main(["scaling", "--source", sources[0], "--questions", "5", "--out", str(tmp_path / "q5")]) == 2
    assert "scored on 4 questions, fewer than --questions 5" in capsys.readouterr().err


def test_a_scored_curve_run_gives_a_row_at_any_of_its_points(tmp_path):
    from likra.errors import ResultMissing
    from likra.experiments.table1 import table1_source

    run = tmp_path / "run0"
    table({"base": [[0, -1]]}, gold=[0], meta={"model": "m"}).save(run / "tables" / "n-000000.parquet")
    for n in (16, 1024):
        table({f"positive@{n}": [[0, -1]], f"negative@{n}": [[-1, 0]]}, gold=[0], meta={"model": "m"}).save(
            run / "tables" / f"n-{n:06d}.parquet")
    t, heads, meta = table1_source(run)  # the largest n by default
    assert meta["n"] == 1024 and heads.positive == "positive@1024" and set(t.heads()) == {"base", "positive@1024", "negative@1024"}
    t, heads, meta = table1_source(f"{run}@16")
    assert meta["n"] == 16 and heads.negative == "negative@16" and set(t.heads()) == {"base", "positive@16", "negative@16"}
    with pytest.raises(ResultMissing, match=r"no scored point n = 512 .*\(scored: 16, 1024\)"):
        table1_source(f"{run}@512")


def test_agreement_benchmark_compares_one_protocol_in_two_precisions(tmp_path):
    """benchmarks/agreement.py: choices moved and net questions; a shorter candidate is compared on
    the reference's first items; tables of another protocol (here: shots) are refused."""
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "agreement.py"
    meta = {"model": "m", "task": "arc_challenge", "shots": 25, "dtype": "fp32"}
    ref = table({"base": [[0, -1], [0, -1], [-1, 0], [0, -0.01]]}, gold=[0, 0, 0, 0], meta=meta)
    ref.save(tmp_path / "ref" / "scores.parquet")
    cand = table({"positive": [[0, -1], [0, -1], [-1, 0]]}, gold=[0, 0, 0], meta={**meta, "dtype": "bf16-mixed"})
    cand.columns["loglik"][0] = -2.0  # item q0 flips to the wrong option
    cand.save(tmp_path / "cand" / "scores.parquet")
    run = lambda *a: subprocess.run([sys.executable, str(script), *map(str, a)], capture_output=True, text=True)  # noqa: E731
    out = run(tmp_path / "ref", tmp_path / "cand", "--candidate-head", "positive")
    assert out.returncode == 0, out.stderr
    assert "its first 3 of 4" in out.stdout and "moved on 1 of 3 items; acc_norm net -1 questions (target: within 1): meets" in out.stdout
    # --rules: Likra (positive - negative) moves on an item where no head's own choice does
    heads = {"base": [[0, -1], [0, -1]], "positive": [[-1.0, -1.2], [0, -1]], "negative": [[-1.3, -1.4], [-1, 0]]}
    table(heads, gold=[0, 0], meta=meta).save(tmp_path / "r32" / "scores.parquet")
    heads["negative"][0] = [-1.3, -1.6]  # the negative head still prefers option 0, but Likra now picks option 1
    table(heads, gold=[0, 0], meta={**meta, "dtype": "bf16-mixed"}).save(tmp_path / "r16" / "scores.parquet")
    out = run(tmp_path / "r32", tmp_path / "r16", "--rules")
    assert out.returncode == 0, out.stderr
    assert "likra: acc_norm 1.0000 (reference) against 0.5000 (candidate) on 2 items; the choice moved on 1, net -1" in out.stdout
    assert "base: acc_norm 1.0000 (reference) against 1.0000 (candidate) on 2 items; the choice moved on 0" in out.stdout
    table({"base": [[0, -1]] * 4}, gold=[0] * 4, meta={**meta, "shots": 0}).save(tmp_path / "zero" / "scores.parquet")
    out = run(tmp_path / "ref", tmp_path / "zero")
    assert out.returncode != 0 and "shots is 0 where the reference has 25" in out.stderr


def test_gpu_benchmark_runs_on_a_tiny_model_and_both_sides_agree(tmp_path):
    """benchmarks/gpu.py --tiny: the script a session with a GPU runs at Mistral-7B's shapes, here on a
    2-layer model of the same family on the CPU; every engine finishes, likra's head training follows
    the HF Trainer recipe step for step and its scores match a plain HF forward (both in bf16)."""
    import json
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"
    out = tmp_path / "gpu.txt"
    run = subprocess.run([sys.executable, str(script), "--tiny", "--cpu", "--train-n", "48", "--score-n", "4", "--out", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    text = out.read_text()
    assert "FAILED" not in text, text
    assert "likra / recipe:" in text and text.count("likra / HF forward:") == 2, text
    results = json.loads(out.with_suffix(".json").read_text())
    assert len(results["train:likra"]["losses"]) == len(results["train:recipe"]["losses"]) == 6
    assert max(abs(a - b) for a, b in zip(results["train:likra"]["losses"], results["train:recipe"]["losses"])) < 2e-2
    for kind in ("score0", "score25"):
        ours, ref = results[f"{kind}:likra"]["lls"], results[f"{kind}:hf-forward"]["lls"]
        assert len(ours) == len(ref) == 16 and max(abs(a - b) for a, b in zip(ours, ref)) < 2e-2


def test_table1_row_over_seeds_is_the_seed_mean_and_pools_likra_minus_sft(tmp_path, capsys):
    """``A+B+C``: accuracies are the seeds' mean with their sd, Likra - SFT is pooled question by
    question; seeds of another task or other questions are refused, naming the source. By hand: four
    questions, gold first; SFT right on [1,0,0,0], [1,1,0,0], [0,0,0,0], Likra on [1,1,1,0], [1,1,0,0], [1,0,0,1]."""
    def seed_table(sft: list[int], likra: list[int], task: str = "arc_challenge", ids: list[str] | None = None) -> ScoreTable:
        pos = [[0, -1] if s else [-1, 0] for s in sft]
        neg = [[0, 0] if s == lk else ([0, -5] if s else [-5, 0]) for s, lk in zip(sft, likra)]
        t = table({"base": [[0, -1]] * 4, "positive": pos, "negative": neg}, gold=[0] * 4,
                  meta={"model": "m", "task": task, "shots": 0, "heads": {"positive": "runs/p/n-000064"}})
        if ids:
            t.columns["item_id"] = [ids[int(i[1:])] for i in t.columns["item_id"]]
        return t

    pattern = [([1, 0, 0, 0], [1, 1, 1, 0]), ([1, 1, 0, 0], [1, 1, 0, 0]), ([0, 0, 0, 0], [1, 0, 0, 1])]
    for k, (sft, likra) in enumerate(pattern):
        seed_table(sft, likra).save(tmp_path / f"s{k}" / "scores.parquet")
    seeds = "+".join(str(tmp_path / f"s{k}") for k in range(3))
    assert main(["table1", "--source", seeds, "--source", str(tmp_path / "s0"), "--out", str(tmp_path / "t")]) == 0
    pooled, single = json.loads((tmp_path / "t" / "table1.json").read_text())["rows"]
    assert pooled["seeds"] == 3 and pooled["n_train"] == 64 and pooled["n_items"] == 4
    assert pooled["sft"]["per_seed"] == [0.25, 0.5, 0.0]
    assert pooled["sft"]["acc_norm"] == pytest.approx(0.25) and pooled["sft"]["sd"] == pytest.approx(0.25)
    assert pooled["likra"]["acc_norm"] == pytest.approx(7 / 12) and pooled["likra"]["sd"] == pytest.approx((1 / 48) ** 0.5)
    gap = pooled["likra_minus_sft"]
    assert gap["per_run"] == [0.5, 0.0, 0.5] and gap["diff"] == pytest.approx(1 / 3) and gap["runs"] == 3
    assert single["likra"]["acc_norm"] == 0.75 and "seeds" not in single
    md = (tmp_path / "t" / "table1.md").read_text()
    assert "| 0.2500 (sd 0.250) | 0.5833 (sd 0.144) |" in md and "(mean of 3 seeds, sd 0.289)" in md
    assert main(["report", str(tmp_path / "t")]) == 0  # the report reads the row over seeds off its three tables
    assert "(mean of 3 seeds, sd 0.289)" in (tmp_path / "t" / "report.md").read_text()
    seed_table(*pattern[1], task="arc_easy").save(tmp_path / "easy" / "scores.parquet")
    assert main(["table1", "--source", f"{tmp_path / 's0'}+{tmp_path / 'easy'}", "--out", str(tmp_path / "t2")]) == 2
    assert f"{tmp_path / 'easy'} has task 'arc_easy' where {tmp_path / 's0'} has 'arc_challenge'" in capsys.readouterr().err
    seed_table(*pattern[1], ids=["q1", "q0", "q2", "q3"]).save(tmp_path / "swapped" / "scores.parquet")
    assert main(["table1", "--source", f"{tmp_path / 's0'}+{tmp_path / 'swapped'}", "--out", str(tmp_path / "t3")]) == 2
    assert "holds other questions (or another order)" in capsys.readouterr().err
    assert main(["table1", "--source", f"{tmp_path / 's0'}++{tmp_path / 's1'}", "--out", str(tmp_path / "t4")]) == 2
    assert "two or more sources joined by '+', none empty" in capsys.readouterr().err


def test_compare_pairs_each_rule_on_the_shared_questions_and_names_what_differs(tmp_path, capsys):
    """A minus B rule by rule on the questions both hold (the first 3 of a 4-question table here),
    Holm over the rules; the header names the settings that differ; other questions are refused."""
    from likra.experiments.compare import compare

    right = {"base": [[0, -1]] * 4, "positive": [[0, -1]] * 4, "negative": [[-2, 0]] * 4}  # every rule right
    wrong = {"base": [[-1, 0]] * 3, "positive": [[0, -1]] * 3, "negative": [[0, -2]] * 3}  # only SFT right
    meta = {"model": "m", "task": "arc_challenge", "heads": {"positive": "r/p/n-001024", "negative": "r/n/n-001024"}}
    a = str(table(right, [0] * 4, meta={**meta, "shots": 25, "dtype": "fp32"}).save(tmp_path / "a" / "scores.parquet").parent)
    b = str(table(wrong, [0] * 3, meta={**meta, "shots": 0, "dtype": "bf16"}).save(tmp_path / "b" / "scores.parquet").parent)
    result = compare(a, b)
    assert result["questions"] == 3 and result["differ"] == ["shots", "dtype"]
    gaps = {r["rule"]: (r["diff"], r["a_only"], r["b_only"]) for r in result["rows"]}
    assert gaps == {"base": (1.0, 3, 0), "sft": (0.0, 0, 0), "likra": (1.0, 3, 0), "base-likra": (1.0, 3, 0)}
    assert main(["compare", a, b, "--rules", "likra"]) == 0
    out = capsys.readouterr().out
    assert "(25-shot, n = 1024, fp32) minus" in out and "differ in shots, dtype" in out and out.count("\n") == 2
    other = ScoreTable(meta=meta)
    for head in right:
        for o in (0, 1):
            other.append(item_id="x0", option=o, head=head, loglik=-o, n_tokens=2, n_chars=10, gold=o == 0, greedy=False,
                         truncated=False)
    c = str(other.save(tmp_path / "c" / "scores.parquet").parent)
    assert main(["compare", a, c]) == 2
    assert "hold different questions" in capsys.readouterr().err
