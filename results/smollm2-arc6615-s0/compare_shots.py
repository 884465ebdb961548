"""25-shot against 0-shot: the same heads on the same questions, rule by rule (acc_norm, w = 1).

    python results/smollm2-arc6615-s0/compare_shots.py results/smollm2-arc6615-s0/eval25-n6615-test1172 \
        results/smollm2-arc6615-s0/eval-n6615-test1172
    python results/smollm2-arc6615-s0/compare_shots.py results/smollm2-arc6615-s0/curve-25shot/run0@6615 \
        results/smollm2-arc6615-s0/eval-n6615-test1172

Each argument is a `likra eval` folder or a scored curve run (`RUN` or `RUN@N`), as `likra table1`
reads them. The first minus the second, paired on the same questions (where one source holds the
first K questions of the other, on those K): 95% bootstrap interval, exact McNemar p, Holm over the
four rules. Output of both commands: `compare_shots.txt`.
"""

import sys

import numpy as np

from likra.errors import LikraError
from likra.experiments.table1 import table1_source
from likra.rules import rule_correct
from likra.scoring.table import option_matrix
from likra.stats import holm, paired

if len(sys.argv) != 3:
    sys.exit(__doc__)
try:
    (a, ha, ma), (b, hb, mb) = (table1_source(src) for src in sys.argv[1:3])
except LikraError as e:  # a missing folder or a file that is not a score table: say which
    sys.exit(f"compare_shots: {e}")
ids_a, ids_b = (list(option_matrix(t, "base").item_ids) for t in (a, b))
k = min(len(ids_a), len(ids_b))
if ids_a[:k] != ids_b[:k]:
    sys.exit("the two sources hold different questions: pair only tables of the same items (or the first K of them)")
print(f"{sys.argv[1]} ({ma.get('shots') or 0}-shot, n = {ma['n']}) minus {sys.argv[2]} ({mb.get('shots') or 0}-shot, "
      f"n = {mb['n']}), on the first {k} questions:")
rules = ["base", "sft", "likra", "base-likra"]
right = [(rule_correct(a, r, heads=ha)[:k], rule_correct(b, r, heads=hb)[:k]) for r in rules]
results = [paired(x, y) for x, y in right]
for rule, (x, y), r, p_holm in zip(rules, right, results, holm([r.p for r in results])):
    print(f"{rule}: {np.mean(x):.4f} against {np.mean(y):.4f}, {r.diff:+.3f} [{r.lo:+.3f}, {r.hi:+.3f}], McNemar p {r.p:.2g}, "
          f"Holm {p_holm:.2g} ({r.a_only} right only in the first, {r.b_only} only in the second)")
