"""Small shared helpers below every layer: atomic writes, the dtype names, the per-character score.

Every result likra writes goes through ``atomic_write`` or ``atomic_dir``: the data go to a
temporary name beside the target, are flushed to disk, and replace the target in one rename, so a
killed or disk-full run leaves the old file or none, never half of a new one. A write the system
refuses (disk full, quota, read-only, no permission) ends the command with :class:`WriteFailed`, a
one-line message naming the file, instead of a traceback.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import LikraError

DTYPES = ("fp32", "bf16", "bf16-mixed")  # what each means: likra.models.load_base

# what the system says when the storage, not likra, refuses a write
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.EFBIG})


class WriteFailed(LikraError, OSError):
    """A result that could not be written; nothing partial was left under its name."""


def _refused(path: Path, err: BaseException) -> BaseException:
    """``err`` as a WriteFailed naming ``path`` when the storage refused the write; else unchanged."""
    if isinstance(err, OSError) and err.errno in STORAGE_ERRNOS:
        reason = os.strerror(err.errno) if isinstance(err, WriteFailed) else err.strerror or os.strerror(err.errno)
    elif not isinstance(err, (OSError, LikraError)) and _nearly_full(path.parent):
        reason = f"{type(err).__name__} with the disk nearly full"  # libraries (safetensors, torch) wrap ENOSPC
    else:
        return err
    failed = WriteFailed(f"could not write {path} ({reason}); nothing partial was kept under that name: "
                         f"free space (or fix the permission) and run the same command again to finish")
    failed.errno = err.errno if isinstance(err, OSError) and err.errno else errno.EIO
    return failed


def _nearly_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < (1 << 20)
    except OSError:
        return False


def _fsync(path: Path) -> None:
    """Flush one file to the disk: the point where a full disk says so, before the rename."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def per_char(loglik, n_chars):
    """lm-eval's acc_norm score: the log-likelihood divided by the continuation's characters."""
    return loglik / n_chars


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path for a writer that wants a file name (e.g. parquet); on success it
    is fsynced and renamed onto ``path``, on failure removed."""
    path = Path(path)
    tmp = _tmp_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        failed = _refused(path, err)
        if failed is err:
            raise
        raise failed from err


def atomic_write(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` all at once or not at all."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomic JSON; NaN and infinities are refused (they are not JSON, and no likra number is one)."""
    return atomic_write(path, json.dumps(obj, indent=1, allow_nan=False))


def atomic_dir(final: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Build a folder under a temporary name with ``write(tmp)``, then swap it in for ``final``."""
    final = Path(final)
    tmp = _tmp_name(final)
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        write(tmp)
        for f in sorted(tmp.rglob("*")):  # every file on disk before the folder takes the final name
            if f.is_file():
                _fsync(f)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        failed = _refused(final, err)
        if failed is err:
            raise
        raise failed from err
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


def clean_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove temporaries (``.NAME.tmp-PID``) left by processes that are gone, at any depth (a killed
    curve leaves its half-written table in ``run0/tables/``)."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for p in sorted(folder.rglob(".*.tmp-*")):
        pid = p.name.rsplit("-", 1)[-1]
        if any(q in removed for q in p.parents):
            continue  # inside a temporary folder already removed
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
