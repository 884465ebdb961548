"""Base-Likra with each kind of negatives, against the base model and against near-miss negatives.

    python results/smollm2-arc6615-s0/negtypes-25shot/base_likra.py [NEGTYPES_FOLDER]

`likra negtypes` compares Likra (the paper's rule) across negative types; this reads the same tables
for Base-Likra (`L_base - L-`, acc_norm, w = 1): per type and n, Base-Likra(type) - base and
Base-Likra(type) - Base-Likra(near-miss), paired on the same questions: 95% bootstrap interval,
exact McNemar p, Holm over every comparison printed.
"""

import json
import sys
from pathlib import Path

from likra.experiments.negtypes import _cells
from likra.rules import Heads, rule_correct
from likra.stats import holm, paired

folder = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent)
if not (folder / "negtypes.json").exists():
    sys.exit(f"base_likra: {folder}/negtypes.json not found; give a `likra negtypes` output folder")
curve = json.loads((folder / "negtypes.json").read_text())["curve"]
base, cells, labels = _cells(curve, folder, "near-miss", ())
base_ok = rule_correct(base, "base", 1.0, True, Heads())
rows = []
for n, by_label in cells:
    if len(by_label) < 2:  # a curve point no other type was scored at
        continue
    bl = {label: rule_correct(t, "base-likra", 1.0, True, heads) for label, (_, t, heads) in by_label.items()}
    for label in by_label:
        rows.append((f"Base-Likra ({label}) - base", n, paired(bl[label], base_ok)))
        if label != "near-miss":
            rows.append((f"Base-Likra ({label}) - Base-Likra (near-miss)", n, paired(bl[label], bl["near-miss"])))
for (name, n, x), p_holm in zip(rows, holm([x.p for *_, x in rows])):
    print(f"{name}, n = {n}: {x.diff:+.3f} [{x.lo:+.3f}, {x.hi:+.3f}], McNemar p {x.p:.2g}, Holm {p_holm:.2g} ({len(rows)})")
