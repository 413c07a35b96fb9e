"""Run one function over many cases in worker processes, with a progress bar.

Each worker handles one case at a time and writes its own outputs, so peak memory is bounded by
``num_processes`` x one case. A worker killed by the OS (usually out of memory) is reported with
the fix instead of hanging the pool, nnU-Net's most reported preprocessing failure.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Sequence

from tqdm import tqdm

from mednext_fw.errors import UserError


class WorkerDiedError(UserError, RuntimeError):
    pass


def _init_worker() -> None:
    # Parallelism comes from the processes; threads inside each would only oversubscribe the cores.
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    os.environ["OMP_NUM_THREADS"] = "1"


def run_parallel(fn: Callable[[Any], Any], jobs: Sequence[Any], num_processes: int, desc: str) -> list[Any]:
    """``[fn(job) for job in jobs]`` in ``num_processes`` processes (in-process when 1), order kept."""
    jobs = list(jobs)
    if num_processes <= 1 or len(jobs) <= 1:
        return [fn(job) for job in tqdm(jobs, desc=desc, disable=not jobs)]
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    results: list[Any] = [None] * len(jobs)
    try:
        with ProcessPoolExecutor(min(num_processes, len(jobs)), mp_context=ctx, initializer=_init_worker) as pool:
            futures = {pool.submit(fn, job): i for i, job in enumerate(jobs)}
            for fut in tqdm(as_completed(futures), total=len(jobs), desc=desc):
                results[futures[fut]] = fut.result()
    except BrokenProcessPool as exc:
        raise WorkerDiedError(
            f"{desc}: a worker process died (most likely out of memory). Re-run with a lower -np; "
            "finished cases are kept and skipped.") from exc
    return results
