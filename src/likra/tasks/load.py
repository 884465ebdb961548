"""One loader, two sources: a local folder of the original files, or the Hugging Face hub.

The local folder wins when one is given (``--data-dir`` or ``LIKRA_DATA_DIR``); otherwise the hub
is asked through ``datasets``. When neither can serve, the error lists the files to put where.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, LikraError
from .base import FEWSHOT_SEED, DataError, Doc, Item, TaskSpec, build_items
from .readers import READERS
from .registry import GROUPS, POOLS, TASKS, jsonl_spec


class DataUnavailable(LikraError, RuntimeError):
    pass


@dataclass
class LoadReport:
    """What loading skipped, so that a --skip-invalid run says how much it dropped and why.
    ``skipped`` holds one line per row, naming its file, line and field (as results.json keeps them)."""

    errors: list[DataError] = field(default_factory=list)

    @property
    def skipped(self) -> list[str]:
        return [e.where_what for e in self.errors]

    @property
    def n_skipped(self) -> int:
        return len(self.errors)

    def summary(self, examples: int = 3) -> str:
        """Every reason with its count and the first few file:line examples, most frequent first:
        the first reason alone would hide the others."""
        return skip_summary(self.errors, examples)


def skip_summary(errors: list[DataError], examples: int = 3) -> str:
    if not errors:
        return ""
    by_reason: dict[tuple[str, str], list[DataError]] = {}
    for e in errors:
        by_reason.setdefault((e.field, _reason(e.problem)), []).append(e)
    head = (f"skipped {len(errors)} invalid row{'s' * (len(errors) != 1)} (--skip-invalid), "
            f"for {len(by_reason)} reason{'s' * (len(by_reason) != 1)}:")
    lines = [head]
    for (fld, _), errs in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
        where = ", ".join(f"{e.source}:{e.line}" if e.line is not None else e.source for e in errs[:examples])
        more = f" and {len(errs) - examples} more" if len(errs) > examples else ""
        lines.append(f"  {len(errs)} x field '{fld}': {errs[0].problem} (at {where}{more})")
    return "\n".join(lines)


def _reason(problem: str) -> str:
    """A problem without its row's own values (quoted text, numbers, lists), so that rows failing for
    the same reason count together."""
    return re.sub(r"'[^']*'|\[[^\]]*\]|\([^)]*\)|-?\d+", "_", problem)


def data_dir_from_env(data_dir: str | os.PathLike | None) -> Path | None:
    d = data_dir or os.environ.get("LIKRA_DATA_DIR")
    return Path(d) if d else None


def resolve_spec(task: str, template: str | None = None) -> TaskSpec:
    if task.startswith("jsonl:"):
        return jsonl_spec(task[len("jsonl:") :], template)
    if task in TASKS:
        return TASKS[task]
    raise ConfigError(f"unknown task '{task}'. Known: arc_challenge, arc_easy, hellaswag, mmlu, mmlu_<subject>, "
                   f"truthfulqa_mc1, winogrande, jsonl:PATH")


class EmptyData(DataUnavailable):
    """A data file with no rows at all: nothing to skip, nothing to score."""


UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)


def _file_bytes(path: Path) -> bytes:
    """The file's bytes without a UTF-8 byte-order mark (spreadsheet programs write one; it carries no
    text). Refuses an empty file and a UTF-16/32 one, naming it, since no row of either can be read."""
    data = path.read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    elif data.startswith(UTF16_BOMS):
        raise DataUnavailable(f"{path} is UTF-16 or UTF-32 text (its byte-order mark says so); save it as UTF-8")
    if not data.strip():
        raise EmptyData(f"{path} is empty (no rows to read); put the task's rows in it, or give the right file")
    return data


def _raw_rows_local(path: Path, spec: TaskSpec) -> list[tuple[int, dict | Exception]]:
    """(line number, row or the decoding error) for every row of an original file."""
    data = _file_bytes(path)
    rows: list[tuple[int, dict | Exception]] = []
    if path.suffix == ".csv":  # MMLU: headerless question, A, B, C, D, answer
        # Bad bytes become lone surrogates, so that only the rows holding them are bad.
        reader = csv.reader(io.StringIO(data.decode("utf-8", errors="surrogateescape"), newline=""))
        for i, rec in enumerate(reader):
            line = reader.line_num
            try:
                "".join(rec).encode("utf-8")
            except UnicodeEncodeError:
                rows.append((line, DataError(str(path), line, "(text)", "not valid UTF-8")))
                continue
            if len(rec) != 6:
                rows.append((line, DataError(str(path), line, "(row)", f"expected 6 columns, found {len(rec)}")))
                continue
            rows.append((line, dict(zip(("question", "A", "B", "C", "D", "answer"), rec), subject=spec.subset, _index=i)))
        return rows
    if path.suffix == ".json":  # TruthfulQA: one JSON list
        try:
            text = data.decode("utf-8")
            items = json.loads(text)
        except UnicodeDecodeError as err:
            line = data[: err.start].count(b"\n") + 1
            return [(line, DataError(str(path), line, "(text)", f"not valid UTF-8 ({err.reason})"))]
        except json.JSONDecodeError as err:
            return [(err.lineno, DataError(str(path), err.lineno, "(json)", f"cannot be parsed: {err.msg}"))]
        if not isinstance(items, list):
            return [(None, DataError(str(path), None, "(json)", "expected a JSON list of questions"))]
        if not items:
            raise EmptyData(f"{path} holds an empty list (no questions to read); give the right file")
        return [(ln, dict(r, _index=i) if isinstance(r, dict) else r) for i, (ln, r) in enumerate(_json_list_lines(text))]
    for i, raw in enumerate(data.split(b"\n")):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as err:
            rows.append((i + 1, DataError(str(path), i + 1, "(text)", f"not valid UTF-8 ({err.reason})")))
            continue
        except json.JSONDecodeError as err:
            rows.append((i + 1, DataError(str(path), i + 1, "(json)", f"not valid JSON ({err.msg})")))
            continue
        rows.append((i + 1, dict(row, _index=len(rows)) if isinstance(row, dict) else row))
    return rows


_WS = re.compile(r"[ \t\n\r]*")


def _json_list_lines(text: str) -> list[tuple[int, object]]:
    """(line it starts on, element) for each element of ``text``, a valid top-level JSON list."""
    decoder, out = json.JSONDecoder(), []
    pos = _WS.match(text, text.index("[") + 1).end()
    line, counted = 1, 0
    while text[pos] != "]":
        obj, end = decoder.raw_decode(text, pos)
        line, counted = line + text.count("\n", counted, pos), pos
        out.append((line, obj))
        pos = _WS.match(text, end).end()
        if text[pos] == ",":
            pos = _WS.match(text, pos + 1).end()
    return out


def _local_file(spec: TaskSpec, split: str, data_dir: Path | None) -> Path | None:
    for rel in spec.local.get(split, ()):
        p = Path(rel)
        if spec.reader == "jsonl" and p.exists():  # a user's file: as given, before the data dir
            return p
        if not p.is_absolute():
            if data_dir is None:
                if spec.reader != "jsonl":
                    continue
            else:
                p = data_dir / rel
        if p.exists():
            return p
    return None


def _hub_rows(spec: TaskSpec, split: str) -> list[tuple[int, dict]]:
    path, name, hub_split = spec.hub[split]
    import datasets

    ds = datasets.load_dataset(path, name, split=hub_split)
    return [(i + 1, dict(r, _index=i)) for i, r in enumerate(ds)]


def _missing_data_message(spec: TaskSpec, split: str, data_dir: Path | None, err: Exception | None) -> str:
    wanted = " or ".join(spec.local.get(split, ())) or "(no local file format known)"
    hub = spec.hub.get(split)
    lines = [f"cannot load task '{spec.name}' split '{split}'."]
    if hub:
        lines.append(f"  hub: datasets.load_dataset({hub[0]!r}, {hub[1]!r}, split={hub[2]!r}) failed"
                     + (f": {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}" if err else ""))
    where = str(data_dir) if data_dir else "a folder of your choice"
    lines.append(f"  local: put {wanted} under {where} and pass --data-dir FOLDER (or set LIKRA_DATA_DIR).")
    return "\n".join(lines)


def load_docs(
    spec: TaskSpec,
    split: str,
    data_dir: str | os.PathLike | None = None,
    skip_invalid: bool = False,
    report: LoadReport | None = None,
) -> list[Doc]:
    """Every valid doc of one split, in file order. Bad rows raise :class:`DataError` (file, line,
    field) unless ``skip_invalid``, which drops them and records why in ``report``."""
    ddir = data_dir_from_env(data_dir)
    if split not in spec.local and split not in spec.hub:
        raise ConfigError(f"task '{spec.name}' has no split '{split}' (it has: {', '.join(sorted(set(spec.local) | set(spec.hub)))})")
    path = _local_file(spec, split, ddir)
    if path is not None:
        source, rows = str(path), _raw_rows_local(path, spec)
    elif spec.reader == "jsonl":
        raise DataUnavailable(f"{spec.local[split][0]}: no such file")
    else:
        try:
            if split not in spec.hub:
                raise DataUnavailable("no hub source")
            source, rows = f"hub:{spec.hub[split][0]}/{split}", _hub_rows(spec, split)
        except Exception as err:  # offline, no such dataset, no datasets package...
            raise DataUnavailable(_missing_data_message(spec, split, ddir, err)) from err
    reader = READERS[spec.reader]
    docs: list[Doc] = []
    seen: dict[str, int | None] = {}
    report = report if report is not None else LoadReport()
    for line, row in rows:
        try:
            if isinstance(row, Exception):
                raise row
            doc = reader(row, spec, source, line)
            if doc.id in seen:
                raise DataError(source, line, "id", f"'{doc.id}' was already used on line {seen[doc.id]}")
        except DataError as err:
            if not skip_invalid:
                raise
            report.errors.append(err)
            continue
        seen[doc.id] = line
        docs.append(doc)
    return docs


@dataclass
class TaskItems:
    """The scored items of one run, with what is needed to reproduce them."""

    task: str
    split: str
    shots: int
    items: list[Item]
    n_skipped: int = 0
    sources: list[str] = field(default_factory=list)  # one line per skipped row: file, line, field, problem
    skip_summary: str = ""  # the reasons with counts and examples, for the user


def load_items(
    task: str,
    split: str | None = None,
    shots: int = 0,
    limit: int | None = None,
    data_dir: str | os.PathLike | None = None,
    skip_invalid: bool = False,
    template: str | None = None,
    fewshot_seed: int = FEWSHOT_SEED,
) -> TaskItems:
    """Items of a task or group, as lm-eval builds them. ``limit`` takes the first N items of each
    task in file order (lm-eval applies --limit per task, so a group gets N per member)."""
    names = GROUPS.get(task, (task,))
    report = LoadReport()
    items: list[Item] = []
    chosen_split = split
    for name in names:
        spec = resolve_spec(name, template)
        sp = split or spec.eval_split
        chosen_split = sp
        all_docs = load_docs(spec, sp, data_dir, skip_invalid, report)
        docs = all_docs if limit is None else all_docs[:limit]
        pool = None
        if shots > 0:
            if spec.fewshot_split is None:
                raise ConfigError(f"task '{name}' has no few-shot split; use --shots 0")
            # the same split: reuse its docs (whole, whatever the limit) so bad rows count once
            pool = all_docs if spec.fewshot_split == sp else load_docs(spec, spec.fewshot_split, data_dir, skip_invalid, report)
        items.extend(build_items(docs, spec, shots, pool, fewshot_seed))
    return TaskItems(task=task, split=chosen_split or "", shots=shots, items=items, n_skipped=report.n_skipped,
                     sources=report.skipped, skip_summary=report.summary())


def load_pool(
    pool: str,
    data_dir: str | os.PathLike | None = None,
    skip_invalid: bool = False,
    report: LoadReport | None = None,
) -> list[tuple[str, Doc]]:
    """A training pool: (task name, doc) for every question of its parts, minus excluded ones.

    A question that also appears in an excluded part (same id or same question text and options)
    is dropped, so no test question leaks into training. Skipped rows go to ``report``; without one,
    their summary is printed on stderr (a training run must say what it dropped too).
    """
    own = report is None
    report = LoadReport() if own else report
    if pool in POOLS:
        parts, excluded = POOLS[pool]["include"], POOLS[pool]["exclude"]
    else:  # "task:split+task:split-task:split" or a bare task (its non-eval splits)
        parts, excluded = _parse_pool(pool)
    banned_ids: set[str] = set()
    banned_text: set[tuple] = set()
    for name, sp in excluded:
        for d in load_docs(resolve_spec(name), sp, data_dir, skip_invalid, report):
            banned_ids.add(d.id)
            banned_text.add((d.text, d.choices))
    out: list[tuple[str, Doc]] = []
    for name, sp in parts:
        if (name, sp) in excluded:
            continue
        for d in load_docs(resolve_spec(name), sp, data_dir, skip_invalid, report):
            if d.id in banned_ids or (d.text, d.choices) in banned_text:
                continue
            out.append((name, d))
    if own and report.n_skipped:
        import sys

        print(report.summary(), file=sys.stderr)
    return out


def _parse_pool(text: str) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """``task[:split]`` parts joined with ``+`` and removed with ``-``; a bare task stands for its
    splits other than the evaluated one. A ``jsonl:PATH`` pool is the whole file."""
    import re

    if text.startswith("jsonl:"):
        return ((text, "test"),), ()
    include, exclude = [], []
    for sign, token in re.findall(r"([+-]?)([^+-]+)", text):
        name, _, sp = token.partition(":")
        spec = resolve_spec(name)
        splits = [sp] if sp else ([s for s in spec.local if s != spec.eval_split] or [spec.eval_split])
        (exclude if sign == "-" else include).extend((name, s) for s in splits)
    return tuple(include), tuple(exclude)
