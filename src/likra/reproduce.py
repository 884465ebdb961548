"""``likra reproduce --preset NAME``: the experiments of a preset config, top to bottom.

Train the positive and negative heads per seed (one run each gives the whole curve), score the
curve, sweep the weight from the cached tables, measure the likelihood mass, write the report.
Each step resumes from what is on disk, so rerunning the same command after an interruption
continues where it stopped.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import yaml

PRESETS_DIR = Path(__file__).resolve().parents[2] / "configs"


def preset_path(preset: str) -> Path:
    p = Path(preset)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return p
    path = PRESETS_DIR / f"reproduce-{preset}.yaml"
    if not path.exists():
        known = sorted(x.stem.removeprefix("reproduce-") for x in PRESETS_DIR.glob("reproduce-*.yaml"))
        raise FileNotFoundError(f"no preset '{preset}' ({path} not found); known presets: {', '.join(known)}")
    return path


def reproduce(preset: str, out: str | os.PathLike, data_dir: str | None = None, progress: bool = True) -> Path:
    from .experiments import curve_accuracies, mass_changes, plot_curve, plot_sweep, score_curve, score_mass, sweep_from_curve
    from .heads import train
    from .provenance import versions
    from .rules import parse_weights
    from .report import write_report
    from .training import TrainConfig

    cfg_file = preset_path(preset)
    cfg = yaml.safe_load(cfg_file.read_text())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    steps: list[dict] = []
    data = ["--data-dir", data_dir] if data_dir else []

    def step(command: list[str], fn):
        t0 = time.time()
        print(f"[likra reproduce] {' '.join(command)}", file=sys.stderr)
        result = fn()
        steps.append({"command": " ".join(command), "seconds": time.time() - t0})
        return result

    train_cfg = TrainConfig(**(cfg.get("train") or {}))
    runs = []
    for seed in cfg["seeds"]:
        pair = {}
        for head in ("positive", "negative"):
            run = out / f"seed{seed}" / head
            negs = cfg["negatives"] if head == "negative" else None
            cmd = ["likra", "train", "--model", cfg["model"], "--pool", cfg["pool"], "--head", head,
                   *(["--negatives", negs] if negs else []), *(["--n", str(cfg["n"])] if cfg.get("n") else []),
                   "--seed", str(seed), *data, "--out", str(run)]
            step(cmd, lambda h=head, r=run, s=seed, ng=negs: train(cfg["model"], cfg["pool"], h, r, ng, cfg.get("n"), s,
                                                                    data_dir, train_cfg, progress=progress))
            pair[head] = run
        runs.append(pair)

    curves = {}
    for k, pair in enumerate(runs):
        cdir = out / "curve" / f"run{k}"
        cmd = ["likra", "curve", "--model", cfg["model"], "--task", cfg["eval_task"],
               *(["--limit", str(cfg["eval_limit"])] if cfg.get("eval_limit") else []),
               "--positive", str(pair["positive"]), "--negative", str(pair["negative"]), *data, "--out", str(out / "curve")]
        step(cmd, lambda p=pair, d=cdir: score_curve(cfg["model"], cfg["eval_task"], str(p["positive"]), str(p["negative"]), d,
                                                     None, cfg.get("eval_limit"), data_dir, cfg.get("dtype", "fp32"),
                                                     progress, cfg.get("eval_shots", 0)))
        curves[f"run{k}"] = curve_accuracies(cdir)
    (out / "curve" / "curve_accuracies.json").write_text(json.dumps(curves, indent=1))
    plot_curve(curves, out / "curve" / "curve.png", f"{cfg['model']} on {cfg['eval_task']}")

    sweeps = {}
    for k in range(len(runs)):
        s = sweep_from_curve(out / "curve" / f"run{k}", parse_weights(cfg["weights"]))
        sweeps[f"run{k}"] = {str(n): pts for n, pts in s.items()}
        plot_sweep(s, out / "curve" / f"sweep-likra-run{k}.png", "Likra: accuracy vs w")
    (out / "curve" / "sweep-likra.json").write_text(json.dumps(sweeps, indent=1))
    steps.append({"command": f"likra sweep {out / 'curve'} --weights {cfg['weights']}", "seconds": 0.0})

    first = runs[0]
    cmd = ["likra", "mass", "--model", cfg["model"], "--task", cfg["eval_task"],
           *(["--limit", str(cfg["mass_limit"])] if cfg.get("mass_limit") else []), "--unrelated-task", cfg["unrelated_task"],
           "--positive", str(first["positive"]), "--negative", str(first["negative"]), *data, "--out", str(out / "mass")]
    step(cmd, lambda: score_mass(cfg["model"], cfg["eval_task"], str(first["positive"]), str(first["negative"]),
                                 out / "mass", cfg["unrelated_task"], None, cfg.get("mass_limit"), data_dir, progress))
    (out / "mass" / "mass.json").write_text(json.dumps(mass_changes(out / "mass"), indent=1))

    info = {**{k: cfg.get(k) for k in ("model", "pool", "negatives", "n", "seeds", "eval_task", "eval_limit")},
            "config_file": os.path.relpath(cfg_file), "steps": steps, "versions": versions()}
    (out / "reproduce.json").write_text(json.dumps(info, indent=1))
    md, html = write_report(out)
    return html
