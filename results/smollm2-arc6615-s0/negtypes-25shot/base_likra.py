"""Base-Likra with each kind of negatives, against the base model and against near-miss negatives.

    python results/smollm2-arc6615-s0/negtypes-25shot/base_likra.py [NEGTYPES_FOLDER ...]

`likra negtypes` compares Likra (the paper's rule) across negative types; this reads the same tables
for Base-Likra (`L_base - L-`, acc_norm, w = 1): per type and n, Base-Likra(type) - base and
Base-Likra(type) - Base-Likra(near-miss), paired on the same questions: 95% bootstrap interval,
exact McNemar p, Holm over every comparison printed. Given several folders (one per seed, scored on
the same questions), it pools them where they share a type and an n (`likra.stats.pooled_paired`:
the mean of the seeds' differences, questions resampled with their seeds together, sign-flip p),
for Likra (type - near-miss) as well as for Base-Likra.
"""

import json
import sys
from pathlib import Path

from likra.experiments.negtypes import _cells
from likra.rules import Heads, rule_correct
from likra.stats import holm, paired, pooled_paired

folders = [Path(a) for a in sys.argv[1:]] or [Path(__file__).parent]


def outcomes(folder: Path) -> dict:
    """(n, label) -> right/wrong per question of base, Likra and Base-Likra with that label's negatives."""
    if not (folder / "negtypes.json").exists():
        sys.exit(f"base_likra: {folder}/negtypes.json not found; give `likra negtypes` output folders")
    curve = json.loads((folder / "negtypes.json").read_text())["curve"]
    base, cells, _ = _cells(curve, folder, "near-miss", ())
    base_ok = rule_correct(base, "base", 1.0, True, Heads())
    return {(n, label): {"base": base_ok, **{r: rule_correct(t, r, 1.0, True, heads) for r in ("likra", "base-likra")}}
            for n, by_label in cells if len(by_label) > 1 for label, (_, t, heads) in by_label.items()}


seeds = [outcomes(f) for f in folders]
keys = [k for k in seeds[0] if all(k in s for s in seeds)]
rules = ("base-likra",) if len(seeds) == 1 else ("base-likra", "likra")
rows = []
for n, label in keys:
    for rule in rules:
        name = {"base-likra": "Base-Likra", "likra": "Likra"}[rule]
        if rule == "base-likra":
            rows.append((f"{name} ({label}) - base", n, [s[n, label][rule] for s in seeds], [s[n, label]["base"] for s in seeds]))
        if label != "near-miss":
            rows.append((f"{name} ({label}) - {name} (near-miss)", n, [s[n, label][rule] for s in seeds],
                         [s[n, "near-miss"][rule] for s in seeds]))
results = [paired(a[0], b[0]) if len(seeds) == 1 else pooled_paired(a, b) for *_, a, b in rows]
if len(seeds) > 1:
    print(f"pooled over {len(seeds)} folders: {', '.join(map(str, folders))}")
for (name, n, *_), x, p_holm in zip(rows, results, holm([x.p for x in results])):
    if len(seeds) == 1:
        print(f"{name}, n = {n}: {x.diff:+.3f} [{x.lo:+.3f}, {x.hi:+.3f}], McNemar p {x.p:.2g}, Holm {p_holm:.2g} ({len(rows)})")
    else:
        print(f"{name}, n = {n}: {x.text(p_holm)} ({len(rows)})")
