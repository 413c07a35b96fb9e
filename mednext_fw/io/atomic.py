"""Write-then-rename, the one rule every stage writes by, and the sweep that cleans up after kill -9.

A file is written under a *temporary name* beside its target and renamed onto it when complete, so a
reader never sees a partial file under a real name. The temporary name is hidden and says whose it
is: ``.NAME.tmp-<pid>-<random>.<suffixes>`` (the final suffixes are kept because SimpleITK and
``np.save`` pick the format from the ending). A listing of data therefore skips it (``is_temporary``;
every lister here also skips hidden files), and a later run removes it with ``sweep_temporaries``
once the process that wrote it is gone: an exception removes its own temporary, but a killed process
cannot, so each command sweeps the folders it writes when it starts.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterator

import numpy as np

# ``pid-`` is absent in names written before the pid was recorded; such leftovers are always stale.
_TEMP_RE = re.compile(r"^\.(?P<stem>.*)\.tmp-(?:(?P<pid>\d+)-)?[0-9a-f]{8}(?:\..*)?$")


def temporary_path(path: str | os.PathLike) -> Path:
    """The temporary sibling of ``path`` this process writes before renaming onto ``path``."""
    path = Path(path)
    stem, dot, ext = path.name.partition(".")
    return path.with_name(f".{stem}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{dot}{ext}")


def is_temporary(name: str | os.PathLike) -> bool:
    """Whether a file (or folder) name is one of our temporaries, never data."""
    return _TEMP_RE.match(Path(name).name) is not None


def _writer_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def is_stale_temporary(path: str | os.PathLike) -> bool:
    """A temporary whose writer no longer runs (killed, crashed): nothing will ever rename it."""
    m = _TEMP_RE.match(Path(path).name)
    if m is None:
        return False
    return m.group("pid") is None or not _writer_alive(int(m.group("pid")))


def sweep_temporaries(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Remove the stale temporaries in ``folder`` (and below); returns what was removed.

    Temporaries of a process that still runs (a concurrent command, another DDP rank) are left alone.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in filenames + dirnames:
            p = Path(dirpath) / name
            if is_stale_temporary(p):
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
                removed.append(p)
        dirnames[:] = [d for d in dirnames if not is_temporary(d)] if recursive else []
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists() or tmp.is_symlink():
            tmp.unlink()


def write_json_atomic(obj: Any, path: str | os.PathLike, indent: int | None = 2) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=indent, sort_keys=False, default=_json_default)
            f.write("\n")


def write_text_atomic(text: str, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_npy_atomic(array: np.ndarray, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:  # a file handle stops np.save from appending '.npy'
            np.save(f, array)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
