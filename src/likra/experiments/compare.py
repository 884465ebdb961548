"""``likra compare A B``: the same rules on the same questions from two score tables, A minus B,
rule by rule. It answers the question every change raises (25 shots against 0, bf16 against fp32,
6615 examples against 1024, one seed against another): is the difference more than noise? Each
rule's gap is paired question by question (95% bootstrap interval, exact McNemar p), with Holm
over the rules compared. Table arithmetic only, no model call."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..command import Common, command, option
from ..errors import ConfigError
from ..rules import RULES, rule_correct
from ..scoring.table import option_matrix
from ..stats import holm, paired
from .table1 import table1_source

DEFAULT_RULES = ["base", "sft", "likra", "base-likra"]


@dataclass
class CompareOptions(Common):
    sources: list[str] = option([], "two sources, A then B: a likra eval folder, or a scored curve run (RUN, RUN@N)",
                                positional=True, nargs="*", metavar="SOURCE")
    rules: list[str] = option(DEFAULT_RULES, "the rules to compare (acc_norm at w = 1)", nargs="+")


def compare(first: str | os.PathLike, second: str | os.PathLike, rules: list[str] | None = None) -> dict:
    """A minus B for each rule on the questions both hold: where one source holds the first K
    questions of the other (a 300-question curve beside an eval of all 1172), on those K."""
    rules = rules or DEFAULT_RULES
    unknown = [r for r in rules if r not in RULES]
    if unknown:
        raise ConfigError(f"unknown rule {', '.join(unknown)} (known: {', '.join(RULES)})")
    (a, ha, ma), (b, hb, mb) = table1_source(first), table1_source(second)
    ids_a, ids_b = (list(option_matrix(t, "base").item_ids) for t in (a, b))
    k = min(len(ids_a), len(ids_b))
    if ids_a[:k] != ids_b[:k]:
        raise ConfigError(f"{first} and {second} hold different questions: compare only tables of the same items "
                          f"(or where one holds the first K of the other)")
    right = [(rule_correct(a, r, heads=ha)[:k], rule_correct(b, r, heads=hb)[:k]) for r in rules]
    gaps = [paired(x, y) for x, y in right]
    rows = [{"rule": r, "acc_first": float(np.mean(x)), "acc_second": float(np.mean(y)), **g.as_dict(), "p_holm": ph}
            for r, (x, y), g, ph in zip(rules, right, gaps, holm([g.p for g in gaps]))]
    side = [{"source": str(s), "model": m.get("model"), "shots": m.get("shots") or 0, "dtype": m.get("dtype") or "fp32",
             "n": m.get("n")} for s, m in ((first, ma), (second, mb))]
    differ = [key for key in ("model", "shots", "dtype", "n") if side[0][key] != side[1][key]]
    return {"first": side[0], "second": side[1], "differ": differ, "questions": k, "rows": rows}


def format_comparison(result: dict) -> str:
    """The header names what differs between the two sides (model, shots, precision, n): where two
    change together, the gap is theirs jointly."""
    f, s = result["first"], result["second"]
    lines = [f"{f['source']} ({f['shots']}-shot, n = {f['n']}, {f['dtype']}) minus {s['source']} ({s['shots']}-shot, "
             f"n = {s['n']}, {s['dtype']}), on the first {result['questions']} questions; they differ in "
             f"{', '.join(result['differ']) or 'nothing but their source'}:"]
    for r in result["rows"]:
        lines.append(f"{r['rule']}: {r['acc_first']:.4f} against {r['acc_second']:.4f}, {r['diff']:+.3f} [{r['lo']:+.3f}, "
                     f"{r['hi']:+.3f}], McNemar p {r['p']:.2g}, Holm {r['p_holm']:.2g} ({r['a_only']} right only in the "
                     f"first, {r['b_only']} only in the second)")
    return "\n".join(lines)


@command("compare", "two score tables of the same questions, rule by rule: paired gaps with intervals (no model call)",
         CompareOptions)
def main(o: CompareOptions, argv: list[str] | None = None) -> dict:
    if len(o.sources) != 2:
        raise ConfigError(f"likra compare needs two sources, A then B (got {len(o.sources)})")
    result = compare(*o.sources, rules=o.rules)
    print(format_comparison(result))
    return result
