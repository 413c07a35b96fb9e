"""Training commands restart once with glibc keeping freed memory (mednext_fw/heap.py)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from mednext_fw import heap

GLIBC = heap.libc_name() == "glibc"


def test_glibc_gets_the_tunables_appended_to_the_users_others():
    assert heap.heap_reuse_environ({}, "glibc") == {"GLIBC_TUNABLES": heap.TUNABLES, "THP_MEM_ALLOC_ENABLE": "0"}
    env = heap.heap_reuse_environ({"GLIBC_TUNABLES": "glibc.pthread.rseq=0", "X": "1"}, "glibc")
    assert env == {"X": "1", "GLIBC_TUNABLES": f"glibc.pthread.rseq=0:{heap.TUNABLES}", "THP_MEM_ALLOC_ENABLE": "0"}
    # glibc's huge pages replace torch's, unless the user chose torch's
    assert heap.heap_reuse_environ({"THP_MEM_ALLOC_ENABLE": "1"}, "glibc")["THP_MEM_ALLOC_ENABLE"] == "1"


def test_without_allocator_settings_undoes_the_restart_environment():
    env = heap.heap_reuse_environ({"PATH": "/bin"}, "glibc")
    assert heap.without_allocator_settings(env) == {"PATH": "/bin"}


@pytest.mark.parametrize("environ, libc", [
    ({}, "musl"), ({}, ""),
    ({"MEDNEXT_HEAP_REUSE": "0"}, "glibc"),
    ({"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}, "glibc"),
    ({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, "glibc"),  # the user's own malloc setting
    ({"GLIBC_TUNABLES": heap.TUNABLES}, "glibc"),  # already restarted: no loop
])
def test_left_alone(environ, libc):
    assert heap.heap_reuse_environ(environ, libc) is None


@pytest.mark.parametrize("argv, expected", [
    (["/venv/bin/python", "/venv/bin/mednext_train", "3d_fullres", "0"], "mednext_train"),
    (["python3", "-u", "-m", "mednext_fw.cli.train", "3d_fullres", "0"], "mednext_train"),
    (["python3", "-X", "faulthandler", "-m", "mednext_fw.cli.demo"], "mednext_demo"),
    (["python3", "/venv/bin/mednext_predict", "-i", "a"], None),
    (["python3", "-m", "pytest", "tests"], None),
    (["python3", "-c", "import mednext_fw.cli", "mednext_train"], None),
    (["python3"], None),
])
def test_entry_command(argv, expected):
    assert heap.entry_command(argv) == expected


def test_restart_keeps_the_command_line_and_environment():
    calls = []
    argv = ["python3", "-m", "mednext_fw.cli.train", "3d_fullres", "0"]
    done = heap.reexec_for_training(argv, {"RANK": "1"}, lambda *a: calls.append(a))
    if not GLIBC:
        assert not done and not calls
        return
    assert done and calls == [(sys.executable, argv, {"RANK": "1", "GLIBC_TUNABLES": heap.TUNABLES,
                                                      "THP_MEM_ALLOC_ENABLE": "0"})]
    assert not heap.reexec_for_training(["python3", "-m", "pytest"], {}, lambda *a: calls.append(a))


# A console script called mednext_train: it measures the page faults of re-allocating a freed
# 256 MB block. glibc's default serves it with a fresh mmap (65k faults); with heap reuse, none.
SCRIPT = """
import os, resource
import mednext_fw.cli
b = bytearray(256 * 2**20); del b
r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
b = bytearray(256 * 2**20)
print(os.getpid(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0)
"""


@pytest.mark.skipif(not GLIBC, reason="glibc malloc tunables")
@pytest.mark.parametrize("opt_out", [False, True])
def test_training_command_reuses_freed_memory_in_the_same_process(tmp_path, opt_out):
    script = tmp_path / "mednext_train"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    package_root = os.path.dirname(os.path.dirname(heap.__file__))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    if opt_out:
        env[heap.OPT_OUT] = "0"
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=120)
    pid, faults = map(int, out.split())
    assert pid == proc.pid  # restarted in place: a supervisor (torchrun, kill -9 tests) keeps its PID
    assert (faults > 10_000) if opt_out else (faults < 1_000)
