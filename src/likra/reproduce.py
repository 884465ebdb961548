"""``likra reproduce --preset NAME``: the experiments of a preset, top to bottom, as recipes.

Train the positive and negative heads per seed (one run each gives the whole curve), score the
curve, sweep the weight from the cached tables, measure the likelihood mass, write the report.
Every step is one likra command run through its recipe; ``reproduce.json`` records, per step, the
exact command line that redoes it alone and its wall time. Each step resumes from what is on disk,
so rerunning the same preset after an interruption continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .command import COMMANDS, Writes, check_values, command, option, read_yaml_mapping, to_argv
from .errors import ConfigError
from .io import DTYPES, write_json
from .train_config import TrainConfig

PRESETS_DIR = Path(__file__).resolve().parent / "presets"  # package data: presets travel with the wheel


@dataclass
class Preset:
    """What a preset file holds (every key checked; see likra/presets/*.yaml)."""

    model: str = "smollm2-135m"
    pool: str = "arc"
    negatives: str = "near-miss"
    n: int | None = None
    seeds: list[int] = field(default_factory=lambda: [0])
    eval_task: str = "arc_challenge"
    eval_limit: int | None = None
    eval_shots: int = 0
    mass_limit: int | None = None
    unrelated_task: str = "hellaswag"
    weights: str = "0:1.5:0.1"
    dtype: str = "fp32"
    train: dict = field(default_factory=dict)


def preset_path(preset: str) -> Path:
    p = Path(preset)
    if p.suffix in (".yaml", ".yml"):
        if not p.exists():
            raise ConfigError(f"preset file {p} not found")
        return p
    path = PRESETS_DIR / f"reproduce-{preset}.yaml"
    if not path.exists():
        known = sorted(x.stem.removeprefix("reproduce-") for x in PRESETS_DIR.glob("reproduce-*.yaml"))
        raise ConfigError(f"no preset '{preset}'; known presets: {', '.join(known)} (or give a YAML file)")
    return path


def load_preset(path: Path) -> Preset:
    raw = read_yaml_mapping(path)
    unknown = set(raw) - {f.name for f in dataclasses.fields(Preset)}
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)}; known: {', '.join(f.name for f in dataclasses.fields(Preset))}")
    preset = Preset(**raw)
    check_values(TrainConfig, preset.train, f"{path}, 'train:'")
    if preset.dtype not in DTYPES:  # checked here, not hours later at the first scoring step
        raise ConfigError(f"{path}, 'dtype:': {preset.dtype!r} is not a precision; use one of {', '.join(DTYPES)}")
    return preset


@dataclass
class ReproduceOptions(Writes):
    preset: str = option("quick", "quick (about 6 min on 2 CPU cores), cpu, paper, or a YAML file")
    dry_run: bool = option(False, "print the command of every step, run nothing")
    data_dir: str | None = option(None, "folder of the original benchmark files (or LIKRA_DATA_DIR); default: the hub")

    def __post_init__(self) -> None:
        self.out = self.out or f"runs/reproduce-{Path(self.preset).stem}"


def reproduce(o: ReproduceOptions) -> Path | None:
    from .experiments.runs import run_in_folder
    from .report import write_report

    cfg_file = preset_path(o.preset)
    cfg = load_preset(cfg_file)
    out = Path(o.out)
    common = {"data_dir": o.data_dir, "quiet": o.quiet}
    steps: list[dict] = []

    def step(name: str, **values):
        cmd = COMMANDS[name]
        options = cmd.options(**{k: v for k, v in {**common, **values}.items() if k in {f.name for f in dataclasses.fields(cmd.options)}})
        argv = to_argv(name, options)
        line = "likra " + shlex.join(argv)
        if o.dry_run:
            print(line)
            steps.append({"command": line})
            return None
        print(f"[likra reproduce] {line}", file=sys.stderr)
        result, seconds = run_in_folder(cmd, options, argv)
        steps.append({"command": line, "seconds": round(seconds, 3)})  # a resumed step can take milliseconds
        return result

    runs = []
    for seed in cfg.seeds:
        pair = {}
        for head in ("positive", "negative"):
            pair[head] = str(out / f"seed{seed}" / head)
            step("train", model=cfg.model, pool=cfg.pool, role=head, negatives=cfg.negatives if head == "negative" else None,
                 examples=cfg.n, seed=seed, out=pair[head], **cfg.train)
        runs.append(pair)
    protocol = {"model": cfg.model, "task": cfg.eval_task, "shots": cfg.eval_shots, "dtype": cfg.dtype}
    step("curve", **protocol, limit=cfg.eval_limit, positive=[r["positive"] for r in runs],
         negative=[r["negative"] for r in runs], out=str(out / "curve"))
    step("sweep", curve_dir=str(out / "curve"), weights=cfg.weights)
    step("mass", **protocol, limit=cfg.mass_limit, unrelated_task=cfg.unrelated_task, positive=runs[0]["positive"],
         negative=runs[0]["negative"], out=str(out / "mass"))
    info = {**{k: getattr(cfg, k) for k in ("model", "pool", "negatives", "n", "seeds", "eval_task", "eval_limit", "eval_shots", "dtype")},
            "config_file": f"likra/presets/{cfg_file.name}" if cfg_file.parent == PRESETS_DIR else o.preset, "steps": steps}
    if o.dry_run:
        return None
    from .provenance import versions

    write_json(out / "reproduce.json", {**info, "versions": versions()})
    _, html = write_report(out)
    return html


@command("reproduce", "run a preset's experiments end to end and write the report", ReproduceOptions, compare=("preset",))
def main(o: ReproduceOptions, argv: list[str] | None = None) -> Path | None:
    html = reproduce(o)
    if html:
        from .experiments.curve import curve_summary

        print("\n".join(["", f"learning curve ({Path(o.out) / 'curve'}):", *curve_summary(Path(o.out) / "curve")]))
        print(f"report: {html}\n        {html.with_suffix('.md')}")
    return html


@dataclass
class ReportOptions:
    run_dir: str | None = option(None, "a run folder (every experiment output below it is reported)", positional=True)
    quiet: bool = option(False, "say nothing but the report's path")


@command("report", "write the figures and the markdown + HTML report of a run folder", ReportOptions)
def report_main(o: ReportOptions, argv: list[str] | None = None) -> Path:
    from .report import write_report

    if not o.run_dir:
        raise ConfigError("likra report needs a run folder")
    md, html = write_report(o.run_dir)
    print(f"report: {html}\n        {md}")
    return html
