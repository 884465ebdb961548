"""25-shot against 0-shot: the same heads on the same questions, rule by rule (acc_norm, w = 1).

    python results/smollm2-arc6615-s0/compare_shots.py results/smollm2-arc6615-s0/eval25-n6615-test1172 \
        results/smollm2-arc6615-s0/eval-n6615-test1172

Each argument is a `likra eval` folder; the first minus the second, paired on the same questions:
95% bootstrap interval, exact McNemar p, Holm over the four rules.
"""

import sys

from likra.errors import LikraError
from likra.rules import rule_correct
from likra.scoring.table import ScoreTable, option_matrix
from likra.stats import holm, paired

if len(sys.argv) != 3:
    sys.exit(__doc__)
try:
    a, b = (ScoreTable.load(f"{folder}/scores.parquet") for folder in sys.argv[1:3])
except LikraError as e:  # a missing folder or a file that is not a score table: say which
    sys.exit(f"compare_shots: {e}")
if list(option_matrix(a, "base").item_ids) != list(option_matrix(b, "base").item_ids):
    sys.exit("the two folders hold different questions: pair only tables of the same items")
rules = ["base", "sft", "likra", "base-likra"]
results = [paired(rule_correct(a, r), rule_correct(b, r)) for r in rules]
for rule, x, p_holm in zip(rules, results, holm([x.p for x in results])):
    print(f"{rule}: {x.diff:+.3f} [{x.lo:+.3f}, {x.hi:+.3f}], McNemar p {x.p:.2g}, Holm {p_holm:.2g} "
          f"({x.a_only} right only in the first, {x.b_only} only in the second)")
