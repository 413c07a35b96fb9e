"""``python -m tests.slow_io DELAY MODULE ARGS...``: run ``mednext_fw.cli.MODULE`` with slowed file copies.

A conversion copies a few MB per file with ``sendfile``: the whole dataset is written in a few
milliseconds, faster than a test can poll for "a file is half-written". Here every
``shutil.copyfile`` writes in four flushed chunks with ``DELAY`` seconds between them, so a kill
during a copy really lands mid-write, on any machine. Only the speed changes, not the code path.
"""
import runpy
import shutil
import sys
import time

_CHUNKS = 4


def _slow_copyfile(delay: float):
    def copyfile(src, dst, *, follow_symlinks=True):
        with open(src, "rb") as fin, open(dst, "wb") as fout:
            data = fin.read()
            step = max(1, -(-len(data) // _CHUNKS))
            for start in range(0, len(data), step):
                fout.write(data[start:start + step])
                fout.flush()
                time.sleep(delay)
        return dst
    return copyfile


if __name__ == "__main__":
    delay, module, *args = sys.argv[1:]
    shutil.copyfile = _slow_copyfile(float(delay))
    sys.argv = [f"mednext_fw.cli.{module}", *args]
    runpy.run_module(f"mednext_fw.cli.{module}", run_name="__main__", alter_sys=True)
