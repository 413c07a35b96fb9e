"""Kill a real command with SIGKILL at a chosen moment, then check what it left and re-run it.

``kill -9`` gives a process no chance to clean up, so this is the test of "nothing half-written":
whatever the moment, every file a later run or a user can see under a real name must be complete,
the leftovers must be temporaries (``io.atomic.is_temporary``), and re-running the same command
must finish the work (and sweep the temporaries).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from mednext_fw.io.atomic import is_temporary

REPO = Path(__file__).resolve().parents[1]


def start(module: str, args: Sequence[str], env: dict[str, str] | None = None,
          slow_copy: float = 0.0) -> subprocess.Popen:
    """``python -m mednext_fw.cli.<module> ARGS`` in its own process group (its workers die with it);
    ``slow_copy`` > 0 spreads each file copy over that many seconds x 4 (``tests/slow_io.py``)."""
    full_env = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    full_env.setdefault("OMP_NUM_THREADS", "1")
    command = ["-m", "tests.slow_io", str(slow_copy), module] if slow_copy else ["-m", f"mednext_fw.cli.{module}"]
    return subprocess.Popen([sys.executable, *command, *args], env=full_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def kill_when(proc: subprocess.Popen, moment: Callable[[], bool], timeout: float = 600.0,
              poll: float = 0.005) -> bool:
    """SIGKILL the command (and its workers) as soon as ``moment()`` holds; False if it ended first."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if moment():
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return True
            if proc.poll() is not None:
                return False
            time.sleep(poll)
        raise TimeoutError(f"the moment never came within {timeout} s")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def kill_at_moments(module: str, args: Sequence[str], moments: Sequence[Callable[[], bool]], watched: Path,
                    check: Callable[[], None] = lambda: None, slow_copy: float = 0.0) -> int:
    """Start the command and kill it at each moment in turn (each start resumes the last); after every
    kill nothing under ``watched`` may be partial and ``check()`` must hold. Returns how many kills hit."""
    kills = 0
    for moment in moments:
        kills += kill_when(start(module, args, slow_copy=slow_copy), moment)
        assert_nothing_partial(watched)
        check()
    return kills


def run(module: str, args: Sequence[str], env: dict[str, str] | None = None, timeout: float = 900.0) -> None:
    """Run a command to its end; fail with its stderr when it does not exit 0."""
    proc = start(module, args, env)
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"mednext_fw.cli.{module} {' '.join(args)} exited {proc.returncode}:\n{err.decode()}"


def files_appeared(folder: Path, pattern: str, count: int = 1, temporaries: bool = False) -> Callable[[], bool]:
    """A moment: ``count`` files matching ``pattern`` (temporaries only, or real files only) exist below ``folder``."""
    def moment() -> bool:
        if not folder.exists():
            return False
        found = [p for p in folder.rglob(pattern) if is_temporary(p.name) == temporaries]
        return len(found) >= count
    return moment


def _readable(p: Path) -> None:
    name = p.name.lower()
    if name.endswith(".npy"):
        np.load(p)  # a truncated array raises
    elif name.endswith(".npz"):
        with np.load(p) as z:
            [z[k] for k in z.files]
    elif name.endswith(".json"):
        json.loads(p.read_text())
    elif name.endswith(".pth"):
        import torch

        torch.load(p, map_location="cpu", weights_only=False)
    elif name.endswith((".nii.gz", ".nii", ".nrrd", ".mha")):
        import gzip

        import SimpleITK as sitk

        if name.endswith(".gz"):  # SimpleITK would read a cut-off stream as zeros
            with gzip.open(p) as f:
                while f.read(1 << 24):
                    pass
        sitk.ReadImage(str(p))
    elif name.endswith(".png"):
        from PIL import Image

        with Image.open(p) as im:
            im.load()


def assert_nothing_partial(folder: Path) -> list[Path]:
    """Every file under a real name below ``folder`` reads completely; returns the temporaries found."""
    temporaries = []
    for p in sorted(folder.rglob("*")) if folder.exists() else []:
        if any(is_temporary(part) for part in p.relative_to(folder).parts):
            temporaries.append(p)
            continue
        if p.is_file():
            try:
                _readable(p)
            except Exception as exc:  # noqa: BLE001 - any failure to read is the finding
                raise AssertionError(f"{p}: partial or unreadable after kill -9 ({exc!r})") from exc
    return temporaries


def assert_no_temporaries(folder: Path) -> None:
    left = [p for p in folder.rglob("*") if is_temporary(p.name)] if folder.exists() else []
    assert not left, f"temporaries left after the re-run: {left}"
