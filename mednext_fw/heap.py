"""Training keeps freed CPU memory for reuse instead of handing it back to the kernel (glibc malloc).

Why: glibc serves every allocation above 32 MB with a fresh ``mmap`` and returns it with ``munmap``
when freed. A 3D training step allocates and frees gigabytes of activations and gradients, so each
step the kernel faults in and zeroes every page again: 4-5 s of system time in a 9-12 s MedNeXt-S
step on the project's 2-core CPU, even with torch's huge pages (``benchmarks/huge_pages.py``). With
``mmap`` and trimming off, freed blocks stay in the heap and the next step reuses them; glibc backs
the heap with huge pages itself (``hugetlb=1``), so torch's own huge-page mode is switched off (its
2 MB alignment fragments the heap). Measured in three interleaved rounds: the step 1.35x faster
(1.30-1.83x), peak RSS +21-23% (fragmentation; it stops growing after a few steps). Prediction keeps
glibc's defaults: there the same setting cost +72% peak RSS, and host memory is what a CT-sized
prediction runs out of.

glibc reads its tunables once, when the process starts, so the console scripts that train re-exec
themselves with ``GLIBC_TUNABLES`` set before anything is loaded. Left alone: other C libraries
(musl, macOS, Windows), an allocator the user preloads (jemalloc, tcmalloc), malloc tunables the
user set, and ``MEDNEXT_HEAP_REUSE=0``.
"""
from __future__ import annotations

import os
import sys
from typing import Callable, Mapping, Sequence

# no mmap, trim only above 64 GB, heap on huge pages (glibc >= 2.35; older ones ignore the name)
TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736:glibc.malloc.hugetlb=1"
OPT_OUT = "MEDNEXT_HEAP_REUSE"
# console script -> the module ``python -m`` (e.g. under torchrun) runs for it
TRAINING_COMMANDS = {"mednext_train": "mednext_fw.cli.train", "mednext_demo": "mednext_fw.cli.demo"}
_OPTIONS_WITH_VALUE = {"-W", "-X", "-Q"}


def libc_name() -> str:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").split()[0]  # "glibc 2.36"
    except (AttributeError, ValueError, OSError, IndexError):
        return ""


def without_allocator_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` less the allocator variables this module sets: the defaults a plain process gets
    (what the benchmarks compare against)."""
    return {k: v for k, v in environ.items() if k not in ("GLIBC_TUNABLES", "THP_MEM_ALLOC_ENABLE")}


def heap_reuse_environ(environ: Mapping[str, str], libc: str) -> dict[str, str] | None:
    """The environment to restart with, or None when the allocator is to stay as it is."""
    if environ.get(OPT_OUT, "1") == "0" or libc != "glibc":
        return None
    if any(name in environ.get("LD_PRELOAD", "") for name in ("jemalloc", "tcmalloc", "mimalloc")):
        return None
    current = environ.get("GLIBC_TUNABLES", "")
    if "glibc.malloc." in current:  # the user's choice, or ours already in force
        return None
    return {"THP_MEM_ALLOC_ENABLE": "0", **environ, "GLIBC_TUNABLES": f"{current}:{TUNABLES}" if current else TUNABLES}


def entry_command(orig_argv: Sequence[str]) -> str | None:
    """The console command a Python command line runs: ``python .../mednext_train ARGS`` and
    ``python -m mednext_fw.cli.train ARGS`` both give ``mednext_train``; anything else None."""
    modules = {module: name for name, module in TRAINING_COMMANDS.items()}
    args = iter(orig_argv[1:])
    for arg in args:
        if arg == "-m":
            return modules.get(next(args, ""))
        if arg == "-c" or arg == "-":
            return None
        if arg in _OPTIONS_WITH_VALUE:
            next(args, None)
        elif not arg.startswith("-"):
            name = os.path.basename(arg)
            return name if name in TRAINING_COMMANDS else None
    return None


def reexec_for_training(orig_argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None,
                        execve: Callable = os.execve) -> bool:
    """Restart a training console command with heap reuse on; returns False when nothing was done
    (the call does not return when the restart happens)."""
    orig_argv = list(sys.orig_argv if orig_argv is None else orig_argv)
    environ = os.environ if environ is None else environ
    if entry_command(orig_argv) is None:
        return False
    new_env = heap_reuse_environ(environ, libc_name())
    if new_env is None:
        return False
    try:
        execve(sys.executable, orig_argv, new_env)
    except OSError:  # cannot restart (an odd interpreter path): run on with glibc's defaults
        return False
    return True
