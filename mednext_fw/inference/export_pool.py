"""Export workers with bounded memory: at most ``num_workers`` cases wait in or for a worker, so
the prediction loop blocks instead of piling up probability arrays (nnU-Net's RAM blow-up).

A case sent to a worker exists three times for a while (the caller's array, its pickle, the
worker's copy) while the next case is predicted, so callers export large cases, and the last one
(nothing to overlap with), ``inline``."""
from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Callable


class ExportPool:
    def __init__(self, num_workers: int):
        self.num_workers = max(0, int(num_workers))
        self._executor = None
        self._pending: set[Future] = set()

    def __enter__(self) -> "ExportPool":
        if self.num_workers > 0:
            # spawn: workers must not inherit the parent's torch thread pools (fork can deadlock).
            self._executor = ProcessPoolExecutor(self.num_workers, mp_context=mp.get_context("spawn"))
        return self

    def submit(self, fn: Callable[..., Any], *args: Any, inline: bool = False) -> None:
        if self._executor is None or inline:
            fn(*args)
            return
        while len(self._pending) >= self.num_workers:
            self._collect(FIRST_COMPLETED)
        self._pending.add(self._executor.submit(fn, *args))

    def _collect(self, how) -> None:
        done, self._pending = wait(self._pending, return_when=how)
        for f in done:
            f.result()  # re-raise a worker's error in the caller

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None and self._pending:
                self._collect("ALL_COMPLETED")
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True, cancel_futures=exc_type is not None)
