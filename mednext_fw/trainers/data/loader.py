"""Wrap a batch loader + transforms into a (multi-process) iterator.

``num_workers == 0`` runs everything in the training process (tests, debugging, DDP smoke runs);
otherwise batchgenerators' non-deterministic multi-process augmenter keeps ``num_workers`` processes
busy so the accelerator does not wait for augmentation.
"""
from __future__ import annotations

import os
import threading

from batchgenerators.dataloading.nondet_multi_threaded_augmenter import NonDetMultiThreadedAugmenter
from batchgenerators.dataloading.single_threaded_augmenter import SingleThreadedAugmenter

from mednext_fw.errors import UsageError


def workers_from_env() -> int | None:
    """``MEDNEXT_n_proc_DA`` (or nnU-Net's ``nnUNet_n_proc_DA``) when set."""
    env = os.environ.get("MEDNEXT_n_proc_DA") or os.environ.get("nnUNet_n_proc_DA")
    if not env:
        return None
    try:
        return max(0, int(env))
    except ValueError:
        raise UsageError(f"MEDNEXT_n_proc_DA must be an integer, got '{env}'") from None


def default_num_workers(device_type: str) -> int:
    """The environment's choice, else the CPU share's (``mednext_fw.devices.plan_cpu_share``)."""
    from mednext_fw.devices import plan_cpu_share, usable_cores

    env = workers_from_env()
    return env if env is not None else plan_cpu_share(device_type, usable_cores()).workers


def make_augmenter(loader, transform, num_workers: int, seed: int, pin_memory: bool = False):
    if num_workers <= 0:
        return SingleThreadedAugmenter(loader, transform)
    seeds = [(seed * 1000 + i) % 2**32 for i in range(num_workers)]  # numpy seeds must fit 32 bits
    return NonDetMultiThreadedAugmenter(loader, transform, num_workers, num_cached=max(2, num_workers),
                                        seeds=seeds, pin_memory=pin_memory)


def close_augmenter(augmenter) -> None:
    """Stop the workers without a spurious traceback.

    Torch sends worker tensors by file descriptor; when a worker exits during shutdown while
    batchgenerators' results thread is still unpickling its last batch, that thread dies with
    ``FileNotFoundError`` (a known batchgenerators race). Once we asked for shutdown the batch is
    unwanted, so that thread's exceptions are dropped for the duration of the close; every other
    thread's still reach the previous hook.
    """
    finish = getattr(augmenter, "_finish", None)
    if finish is None:
        return
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if args.thread is not getattr(augmenter, "results_loop_thread", None):
            previous(args)

    threading.excepthook = hook
    try:
        finish()
    finally:
        threading.excepthook = previous
