"""Run folders and the one way experiments score: what every recipe shares.

A training run is a folder of adapters ``n-000016/``, ``n-000032/``, ... (one per curve point);
an experiment's output keeps one score table per point, ``tables/n-000016.parquet``. Recipes ask
``score_missing`` for the tables they need: tables already on disk are checked against the
protocol they were scored with and reused, the rest are scored in one model load. The protocol
options (shots, dtype, limit, split, batch tokens, template, skip-invalid) are the same fields on
every command that scores, and they are written into every table's metadata.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ..command import COMMANDS, option, option_defaults
from ..errors import ConfigError, OutputRefused, ResultMissing
from ..io import DTYPES, clean_stale_temporaries, write_json

POINT = re.compile(r"n-(\d+)")


def point_name(n: int) -> str:
    return f"n-{n:06d}"


def adapter_path(run: str | os.PathLike, n: int) -> Path:
    return Path(run) / point_name(n)


def table_path(out: str | os.PathLike, n: int) -> Path:
    return Path(out) / "tables" / f"{point_name(n)}.parquet"


def point_of(path: str | os.PathLike) -> int:
    m = POINT.fullmatch(Path(path).stem if Path(path).suffix else Path(path).name)
    if not m:
        raise ValueError(f"{path}: not a curve point (n-XXXXXX)")
    return int(m.group(1))


def curve_points(run_dir: str | os.PathLike) -> dict[int, Path]:
    """n -> adapter folder, for every finished adapter of a training run."""
    out = {}
    for p in Path(run_dir).glob("n-*"):
        if POINT.fullmatch(p.name) and (p / "likra.json").exists():
            out[point_of(p)] = p
    if not out:
        raise ResultMissing(f"{run_dir}: no finished adapters (n-XXXXXX folders with likra.json); train them with likra train")
    return dict(sorted(out.items()))


def has_adapters(run_dir: str | os.PathLike) -> bool:
    try:
        return bool(curve_points(run_dir))
    except ResultMissing:
        return False


def scored_points(folder: str | os.PathLike) -> dict[int, Path]:
    """n -> table for every table of an experiment folder's ``tables/`` (or of the folder itself)."""
    folder = Path(folder)
    where = folder / "tables" if (folder / "tables").is_dir() else folder
    return dict(sorted((point_of(p), p) for p in where.glob("n-*.parquet")))


def run_role(run_dir: str | os.PathLike) -> dict:
    """What a training run's adapters say about themselves (likra.json of its first point)."""
    first = next(iter(curve_points(run_dir).values()))
    return json.loads((first / "likra.json").read_text())


def check_roles(positive: str, negative: str) -> None:
    """A curve pairs a positive head with a negative one: refuse swapped or identical runs."""
    if Path(positive).resolve() == Path(negative).resolve():
        raise ConfigError(f"--positive and --negative are the same run ({positive}); give a positive and a negative head")
    for run, role in ((positive, "positive"), (negative, "negative")):
        head = run_role(run).get("head")
        if head not in (role, None):
            raise ConfigError(f"{run} holds a '{head}' head (its likra.json), given as --{role}; "
                              f"check the order of --positive and --negative")


@dataclass
class Protocol:
    """How items are scored: the same options, with the same meaning, on every scoring command."""

    split: str | None = option(None, "split to evaluate (default: the split lm-eval evaluates)")
    shots: int = option(0, "few-shot examples before each question (the paper: 25)")
    limit: int | None = option(None, "first N items of each task, in file order (default: all)")
    dtype: str = option("fp32", "precision while scoring: fp32 (the reference), bf16, or bf16-mixed (bf16 matrix products, fp32 residual stream and logits: the fast CPU choice; see likra.models.load_base)", choices=DTYPES)
    batch_tokens: int = option(1024, "tokens per forward pass (rows x longest row)")
    template: str | None = option(None, "jsonl tasks: question template, e.g. 'Q: {question}\\nA:'")
    chat_template: bool = option(False, "instruct models: the prompt as the user turn of the model's chat template, the answer "
                                        "as the assistant turn, scored on the answer tokens only (default: the paper's plain prompt)")
    skip_invalid: bool = option(False, "skip bad rows (and report how many) instead of stopping")

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit {self.limit}: give a positive number of items (or leave it out for all)")
        if self.shots < 0:
            raise ConfigError(f"--shots {self.shots}: give 0 or more")
        if self.batch_tokens < 1:
            raise ConfigError(f"--batch-tokens {self.batch_tokens}: give a positive number")

    def protocol(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(Protocol)}

    def items(self, task: str, data_dir: str | None):
        from ..tasks import load_items

        got = load_items(task, self.split, self.shots, self.limit, data_dir, self.skip_invalid, self.template)
        if got.n_skipped:
            print(got.skip_summary, file=sys.stderr)
        self.skipped_rows = got.sources  # kept in every table scored from these items (score_missing)
        if not got.items:
            raise ConfigError(f"task '{task}' gave no items to score")
        return got


PROTOCOL_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Protocol)}


def check_meta(where: str | os.PathLike, found: dict, wanted: dict, hint: str = "ask for the same ones or give another --out") -> None:
    """Refuse a cached table or folder scored with other settings, naming each one that differs.
    Settings older tables did not record count as their defaults (shots None was zero-shot)."""
    def norm(k, v):
        if v is None and k == "shots":
            return 0
        return v

    differ = {k: (norm(k, found.get(k, PROTOCOL_DEFAULTS.get(k))), norm(k, v)) for k, v in wanted.items()}
    differ = {k: ab for k, ab in differ.items() if ab[0] != ab[1]}
    if differ:
        raise ConfigError(f"{where} was scored with other settings ("
                          + ", ".join(f"{k}: {a!r} there, {b!r} asked" for k, (a, b) in differ.items())
                          + f"); {hint}")


def score_missing(model: str, task: str, protocol: Protocol, items: list,
                  tables: dict[Path, tuple[dict[str, str | None], dict]], progress: bool = True) -> list[Path]:
    """Score every table of ``tables`` (path -> ({head: adapter folder, None for the base model},
    extra metadata)) that is not on disk yet, with one load of the model; returns the new paths.
    Base-only tables are scored before any adapter is attached."""
    todo = {p: v for p, v in tables.items() if not p.exists()}
    if not todo:
        return []
    from ..models import attach_adapters, load_base, load_tokenizer
    from ..scoring.engine import Scorer
    from ..scoring.progress import ScoreLog

    base = load_base(model, protocol.dtype)
    tokenizer = load_tokenizer(model)
    meta = {"model": model, "task": task, **protocol.protocol()}
    if getattr(protocol, "skipped_rows", None):
        meta["skipped_rows"] = list(protocol.skipped_rows)
    order = sorted(todo, key=lambda p: any(a is not None for a in todo[p][0].values()))
    scorer, attached = Scorer(base, tokenizer, batch_tokens=protocol.batch_tokens, chat_template=protocol.chat_template), False
    for path in order:
        heads, extra = todo[path]
        if not attached and any(a is not None for a in heads.values()):
            adapters = {h: str(a) for hs, _ in todo.values() for h, a in hs.items() if a is not None}
            scorer = Scorer(attach_adapters(base, adapters), tokenizer, batch_tokens=protocol.batch_tokens,
                            chat_template=protocol.chat_template)
            attached = True
        print(f"scoring {path}", file=sys.stderr)
        names = [h if a is not None else "base" for h, a in heads.items()]
        log = ScoreLog(path.with_name(path.name + ".progress.jsonl"))  # a stopped run goes on from here
        scorer.score(items, names, progress=progress, meta={**meta, **extra}, log=log).save(path)
        log.remove()
    return list(order)


# ---- output folders ------------------------------------------------------------------------------

RUN_RECORD = "likra-run.json"
_locks: dict[Path, int] = {}
_created: set[Path] = set()  # folders whose run record this process wrote first


def claim_output(out: str | os.PathLike, command: str, settings: dict, overwrite: bool = False) -> Path:
    """Make ``out`` this run's folder: new, or a resume of the same command with the same settings.

    Another command or other settings in a used folder are refused (``--overwrite`` replaces the
    folder). An advisory lock is held until the process ends, so a second run on the same folder
    is refused while the first is alive (the kernel drops the lock of a dead process). Release it
    with ``release_output``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lock = os.open(out / ".likra.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(lock, 64, 0).decode(errors="replace").strip() or "another process"
        os.close(lock)
        raise OutputRefused(f"{out} is in use by another likra run (pid {holder}); wait for it or give another --out") from None
    os.ftruncate(lock, 0)
    os.pwrite(lock, str(os.getpid()).encode(), 0)
    _locks[out.resolve()] = lock
    try:
        _check_record(out, command, settings, overwrite)
    except BaseException:
        release_output(out)
        raise
    return out


def _grown(command: str, name: str, old, new) -> bool:
    """Whether ``new`` only adds entries to a list option that may grow in a used folder (a negative
    type or recipe variant added beside those already scored: their tables stay and are reused)."""
    fields = {f.name: f for f in dataclasses.fields(COMMANDS[command].options)} if command in COMMANDS else {}
    opt = fields[name].metadata.get("likra") if name in fields else None
    return bool(opt and opt.grows) and isinstance(old, list) and isinstance(new, list) and all(x in new for x in old)


def _check_record(out: Path, command: str, settings: dict, overwrite: bool) -> None:
    clean_stale_temporaries(out)
    record = out / RUN_RECORD
    settings = json.loads(json.dumps(settings))  # as it will read back
    if record.exists() and not overwrite:
        try:
            old = json.loads(record.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise OutputRefused(f"{record} is unreadable; remove it, or pass --overwrite to start afresh") from None
        if old.get("command") != command:
            raise OutputRefused(f"{out} holds the output of 'likra {old.get('command')}'; give another --out "
                                f"(or --overwrite to replace it)")
        # a setting added to likra after the folder was made counts as its default there
        defaults = option_defaults(COMMANDS[command].options) if command in COMMANDS else {}
        recorded = {k: old["settings"].get(k, defaults.get(k)) for k in settings}
        differ = {k: (recorded[k], v) for k, v in settings.items() if recorded[k] != v and not _grown(command, k, recorded[k], v)}
        if differ:
            raise OutputRefused(f"{out} was made with other settings ("
                                + ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in differ.items())
                                + "); give another --out, the same settings to resume, or --overwrite to replace it")
    elif overwrite:
        import shutil

        for p in out.iterdir():
            if p.name != ".likra.lock":
                shutil.rmtree(p) if p.is_dir() else p.unlink()
    if not record.exists():
        _created.add(out.resolve())
    write_json(record, {"command": command, "settings": settings})


def release_output(out: str | os.PathLike, failed: bool = False) -> None:
    """Drop the lock taken by ``claim_output`` (the end of the process drops it too). A run that
    that failed leaves no claim on a folder it was the first to use: the next command is free there."""
    key = Path(out).resolve()
    lock = _locks.pop(key, None)
    if key in _created:
        _created.discard(key)
        if failed:
            (key / RUN_RECORD).unlink(missing_ok=True)
    if lock is not None:
        os.close(lock)


def record_command(out: str | os.PathLike, argv: list[str], seconds: float) -> None:
    """Leave the exact command beside an output, so every table and figure can be traced to it."""
    import shlex

    from ..provenance import versions

    write_json(Path(out) / "likra-command.json", {"command": "likra " + " ".join(shlex.quote(a) for a in argv),
                                                   "seconds": round(seconds, 1), "versions": versions()})


def run_in_folder(cmd, options, argv: list[str], claim: bool = True):
    """Run a command as its own step: claim its --out (when it has one and ``claim``), run it,
    record the exact command and wall time there, release the folder. Returns (result, seconds).
    The CLI and ``likra reproduce`` both run commands through here."""
    import time

    from ..command import settings_of

    out = getattr(options, "out", None) if claim else None
    if out:
        claim_output(out, cmd.name, settings_of(cmd, options), getattr(options, "overwrite", False))
    failed, t0 = True, time.time()
    try:
        result = cmd.run(options, argv)
        seconds = time.time() - t0
        if out:
            record_command(out, argv, seconds)
        failed = False
    finally:
        if out:
            release_output(out, failed)
    return result, seconds

