"""How far two score tables of the same items and head agree: the check behind a change of precision.

    python benchmarks/agreement.py REFERENCE CANDIDATE [--head base] [--candidate-head NAME]
    python benchmarks/agreement.py REFERENCE CANDIDATE --rules      # every rule's choices

Each argument is a ``likra eval`` folder or a scores.parquet. Prints, for the head: per-option
log-likelihood differences (max and mean |diff|, nat), acc and acc_norm of each table, on how many
items the acc_norm choice moved, and the net change in questions, against the target of issue 13
item 4 (acc_norm within one question per 300; at least one question on fewer than 300 items).
Tables of different models, tasks, shots or templates are refused: only the precision may differ.
``--candidate-head`` names the head in the candidate when it differs (a curve table's
``positive@1024`` against an eval folder's ``positive``). ``--rules`` compares the choices of each
rule (base, SFT, Likra, Base-Likra; acc_norm, w = 1) of two eval folders or scored curve runs
(``RUN@N``): a rule that subtracts two heads' scores can move where no head does. Nothing is
scored here.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from likra.metrics import choose
from likra.scoring.table import OptionMatrix, ScoreTable, option_matrix


def load(path: str) -> ScoreTable:
    p = Path(path)
    f = p if p.suffix == ".parquet" else p / "scores.parquet"
    if not f.exists():
        raise SystemExit(f"{f}: no such score table; give a likra eval folder or its scores.parquet")
    return ScoreTable.load(f)


SAME = ("model", "task", "split", "shots", "template", "chat_template")  # what must match; split None = the task's default


def check_protocol(ref: ScoreTable, cand: ScoreTable, where: str) -> None:
    for key in SAME:
        a, b = ref.meta.get(key), cand.meta.get(key)
        if key == "shots":
            a, b = a or 0, b or 0
        if key == "split" and None in (a, b):
            continue
        if a != b:
            raise SystemExit(f"{where}: {key} is {b!r} where the reference has {a!r}; compare tables of one protocol "
                             f"that differ in precision only")


def compare_rules(reference: str, candidate: str) -> None:
    from likra.errors import LikraError
    from likra.experiments.table1 import table1_source
    from likra.rules import rule_scores

    try:
        (ref_t, ref_h, _), (cand_t, cand_h, _) = table1_source(reference), table1_source(candidate)
    except LikraError as e:
        raise SystemExit(f"agreement: {e}") from None
    check_protocol(ref_t, cand_t, candidate)
    for rule in ("base", "sft", "likra", "base-likra"):
        (rs, rg), (cs, cg) = rule_scores(ref_t, rule, 1.0, True, ref_h), rule_scores(cand_t, rule, 1.0, True, cand_h)
        k = min(len(rg), len(cg))  # a shorter candidate: the reference's first k items
        if option_matrix(ref_t, "base").item_ids[:k] != option_matrix(cand_t, "base").item_ids[:k]:
            raise SystemExit("the two tables hold different items; score the same task, split and --limit")
        rc, cc, gold = choose(rs)[:k], choose(cs)[:k], np.asarray(rg)[:k]
        print(f"{rule}: acc_norm {np.mean(rc == gold):.4f} (reference) against {np.mean(cc == gold):.4f} (candidate) on {k} items; "
              f"the choice moved on {int(np.sum(rc != cc))}, net {int(np.sum(cc == gold) - np.sum(rc == gold)):+d} questions")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reference")
    ap.add_argument("candidate")
    ap.add_argument("--head", default="base")
    ap.add_argument("--candidate-head", help="the head's name in the candidate (default: --head)")
    ap.add_argument("--rules", action="store_true", help="compare every rule's choices (eval folders with base, positive, negative)")
    args = ap.parse_args()
    if args.rules:
        return compare_rules(args.reference, args.candidate)
    ref_t, cand_t = load(args.reference), load(args.candidate)
    check_protocol(ref_t, cand_t, args.candidate)
    cand_head = args.candidate_head or args.head
    ref, cand = option_matrix(ref_t, args.head), option_matrix(cand_t, cand_head)
    k = len(cand.item_ids)
    if k < len(ref.item_ids) and ref.item_ids[:k] == cand.item_ids:  # a shorter --limit: the reference's first k items
        print(f"(the reference cut to the candidate's {k} items, its first {k} of {len(ref.item_ids)})")
        ref = OptionMatrix(ref.item_ids[:k], ref.loglik[:k], ref.n_chars[:k], ref.n_tokens[:k], ref.gold[:k])
    if ref.item_ids != cand.item_ids or any(len(a) != len(b) for a, b in zip(ref.loglik, cand.loglik)):
        raise SystemExit(f"{args.candidate}: not the same items and options as {args.reference}; score the same task, split and --limit")
    diffs = np.concatenate([np.abs(a - b) for a, b in zip(ref.loglik, cand.loglik)])
    n = len(ref.item_ids)
    out = {}
    for name, m, t in (("reference", ref, ref_t), ("candidate", cand, cand_t)):
        raw = choose(m.loglik)
        norm = choose([ll / nc for ll, nc in zip(m.loglik, m.n_chars)])
        out[name] = (raw, norm)
        print(f"{name}: {t.meta.get('dtype', 'fp32')}, {t.meta.get('model')}, {t.meta.get('task')}, {t.meta.get('shots') or 0}-shot, "
              f"{n} items, head {args.head if name == 'reference' else cand_head}: acc {np.mean(raw == m.gold):.4f}, acc_norm {np.mean(norm == m.gold):.4f}")
    moved = int(np.sum(out["reference"][1] != out["candidate"][1]))
    net = int(np.sum(out["candidate"][1] == cand.gold) - np.sum(out["reference"][1] == ref.gold))
    allowed = max(1, math.floor(n / 300))
    print(f"per-option |diff|: max {diffs.max():.3e}, mean {diffs.mean():.3e} nat over {len(diffs)} options; the acc_norm choice "
          f"moved on {moved} of {n} items; acc_norm net {net:+d} questions (target: within {allowed}): "
          f"{'meets' if abs(net) <= allowed else 'misses'} the target")


if __name__ == "__main__":
    main()
