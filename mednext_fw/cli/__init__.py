"""Thin argparse front ends, one per console script. Nothing imports this package.

Every console script imports this package before torch, which is the only moment to switch on
torch's transparent-huge-page allocations: torch reads ``THP_MEM_ALLOC_ENABLE`` once, at its first
allocation. With it, Linux backs CPU tensors of 2 MB and more with 2 MB pages, so the few GB of
fresh activations a 3D network allocates per patch cost 35-80x fewer page faults. On the project's
CPU (``benchmarks/huge_pages.py``) a MedNeXt-S training step ran 1.23-1.27x faster with peak RSS
+3-4%; a 128^3 inference forward between 0.93x and 1.3x (what remains there is the kernel zeroing
fresh pages). Users opt out with ``THP_MEM_ALLOC_ENABLE=0``.

The same moment is the only one to stop OpenMP threads from spinning (``OMP_WAIT_POLICY=PASSIVE``,
see :func:`mednext_fw.devices.set_passive_wait_policy`): on a busy 2-core machine a MedNeXt
training step ran 3-20x slower with spinning threads (``benchmarks/under_load.py``).

The training commands (``mednext_train``, ``mednext_demo``) first restart themselves once so glibc
keeps freed memory for reuse, on glibc's own huge pages instead of torch's (:mod:`mednext_fw.heap`):
a further 1.35x on a training step. glibc reads that setting only at process start.
"""
import os

from mednext_fw.devices import set_passive_wait_policy
from mednext_fw.heap import reexec_for_training

reexec_for_training()
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
set_passive_wait_policy()
