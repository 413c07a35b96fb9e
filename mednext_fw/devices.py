"""The machine this process runs on: which device, how much of it, how many threads and workers.

One owner for device choice (training, inference and the planner all ask here) and for the CPU
share a process may use. The share is what matters on shared machines: ``os.cpu_count()`` reports
the whole box, while a container's cgroup quota (``cpu.max``) or a ``taskset`` affinity may allow
far less, and torch's OpenMP threads that spin while waiting make an oversubscribed CPU 20-50x
slower instead of the 1.5-2x a fair share costs. Functions take their system queries as arguments
so tests can fake a GPU, a quota or a busy machine.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mednext_fw.errors import UserError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
# Left free on a GPU when planning from its free memory: the CUDA context of other processes may
# grow, and the allocator fragments. 10% of the card, at least 1 GiB.
GPU_MARGIN_FRACTION = 0.10
GPU_MARGIN_MIN_GB = 1.0
GIB = 2 ** 30


class DeviceError(UserError, ValueError):
    """A requested device is not there (reported to the user in one line)."""


# ---------------------------------------------------------------------------------------- devices
def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def resolve_device_type(preference: str = "auto") -> str:
    """``auto|cpu|cuda|mps`` (also ``cuda:1``) -> the device type that will be used, or DeviceError."""
    import torch

    pref = str(preference).lower()
    kind = pref.split(":")[0]
    if kind == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu"
    if kind == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"--device {preference} was requested but no CUDA GPU is visible to torch")
    if kind == "mps" and not _mps_available():
        raise DeviceError(f"--device {preference} was requested but MPS is not available")
    if kind not in DEVICE_CHOICES:
        raise DeviceError(f"unknown device '{preference}' (choose one of {', '.join(DEVICE_CHOICES)})")
    return kind


def select_device(preference="auto", local_rank: int = 0):
    """The ``torch.device`` to run on; under torchrun each local rank gets its own GPU."""
    import torch

    if isinstance(preference, torch.device):
        return preference
    kind = resolve_device_type(preference)
    if kind == "cuda":
        explicit = str(preference).lower().partition(":")[2]
        index = int(explicit) if explicit else local_rank % torch.cuda.device_count()
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return torch.device(kind)


def gpu_free_memory_gb(index: int = 0, query: Callable[[int], tuple[int, int]] | None = None) -> tuple[float, float]:
    """(free, total) GiB of GPU ``index`` as the driver reports it now (other processes' use excluded)."""
    if query is None:
        import torch

        query = torch.cuda.mem_get_info
    free, total = query(index)
    return free / GIB, total / GIB


def gpu_planning_budget_gb(free_gb: float, total_gb: float) -> float:
    """Free memory minus the safety margin (:data:`GPU_MARGIN_FRACTION`, at least :data:`GPU_MARGIN_MIN_GB`)."""
    return max(0.0, free_gb - max(GPU_MARGIN_MIN_GB, GPU_MARGIN_FRACTION * total_gb))


def available_ram_gb(meminfo: Path = Path("/proc/meminfo")) -> float:
    """RAM a new process can use without swapping (MemAvailable; the cgroup memory limit if lower)."""
    avail = None
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024 / GIB
    except OSError:
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES") / GIB
        except (ValueError, OSError, AttributeError):
            avail = 8.0
    limit = _cgroup_memory_limit_gb()
    return min(avail, limit) if limit else avail


def _cgroup_memory_limit_gb(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    for path in (root / "memory.max", root / "memory" / "memory.limit_in_bytes"):
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2 ** 60:
            return int(text) / GIB
    return None


# ------------------------------------------------------------------------------------ CPU share
def cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by the cgroup quota (v2 ``cpu.max``, v1 ``cfs_quota_us``/``cfs_period_us``); None: no limit."""
    try:
        quota, period = ((root / "cpu.max").read_text().split() + ["100000"])[:2]
        if quota != "max":
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def usable_cores(affinity: Callable[[], set] | None = None, quota: float | None | str = "read") -> int:
    """Cores this process may use: its CPU affinity, capped by the cgroup quota (rounded up)."""
    if affinity is None:
        affinity = (lambda: os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
            (lambda: set(range(os.cpu_count() or 1)))
    cores = len(affinity()) or 1
    q = cgroup_cpu_quota() if quota == "read" else quota
    if q is not None:
        cores = min(cores, max(1, math.ceil(q - 1e-9)))
    return cores


def runnable_now(samples: int = 5, interval_s: float = 0.02, stat: str = "/proc/stat") -> float | None:
    """Other runnable tasks at this moment: the kernel's ``procs_running`` (which counts us too),
    averaged over a few samples; None where /proc is missing."""
    import time

    counts = []
    for i in range(samples):
        try:
            with open(stat) as f:
                line = next(line for line in f if line.startswith("procs_running"))
        except (OSError, StopIteration):
            return None
        counts.append(int(line.split()[1]))
        if i + 1 < samples:
            time.sleep(interval_s)
    return max(0.0, sum(counts) / len(counts) - 1)


def other_load(cores: int, loadavg: Callable[[], tuple] | None = None,
               running: Callable[[], float | None] | None = None) -> float:
    """Runnable processes competing for ``cores`` right now, before we start: the 1-minute load average,
    or the runnable count sampled now when that is lower. The average lags by a minute, so right after
    a heavy job ends (the previous command of a script, a benchmark's previous engine) it still reads
    ~1 per busy core and would leave idle cores unused."""
    try:
        load = float((loadavg or os.getloadavg)()[0])
    except (OSError, AttributeError):
        load = 0.0
    now = (running or runnable_now)()
    return max(0.0, load if now is None else min(load, now))


@dataclass(frozen=True)
class CpuShare:
    """Threads for the math and worker processes for data, sized to the cores we may use."""

    cores: int
    threads: int
    workers: int
    reason: str

    def describe(self) -> str:
        return f"{self.threads} thread(s), {self.workers} worker process(es) ({self.reason})"


def plan_cpu_share(device_type: str, cores: int, load: float = 0.0, threads: int | None = None,
                   workers: int | None = None) -> CpuShare:
    """Default threads/workers (explicit ``threads``/``workers`` win).

    CPU training: the math and the augmentation compete for the same cores, so the workers take a
    quarter of them (at least one when there are two cores, at most four) and the math the rest;
    when other processes already keep cores busy, the math takes only the idle ones (at least one),
    because extra threads on a busy CPU only wait for each other. On a GPU the workers feed the card
    (all cores but one, at most 12) and the main process needs few threads.
    """
    idle = max(1, int(cores - load + 0.5))
    if device_type == "cuda":
        w = min(12, max(1, cores - 1)) if workers is None else workers
        t = max(1, min(4, cores)) if threads is None else threads
        return CpuShare(cores, t, w, f"{cores} usable core(s), GPU training")
    w = (0 if cores < 2 else max(1, min(4, cores // 4))) if workers is None else workers
    t = max(1, min(cores - min(w, cores - 1), idle)) if threads is None else threads
    why = f"{cores} usable core(s)" + (f", load {load:.1f} from other processes" if load >= 0.5 else "")
    return CpuShare(cores, t, w, why)


def cpu_share(device_type: str, threads: int | None = None, workers: int | None = None) -> CpuShare:
    """This process's share of the machine now (under torchrun: its share of the node's cores)."""
    per_node = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    cores = max(1, usable_cores() // per_node)
    return plan_cpu_share(device_type, cores, other_load(cores) / per_node, threads, workers)


def use_threads(device_type: str, threads: int | None, workers: int | None = None) -> CpuShare:
    """Apply ``threads`` (None: the default share) to this process; returns the share."""
    share = cpu_share(device_type, threads, workers)
    configure_threads(share.threads)
    return share


def configure_threads(threads: int) -> int:
    """Use ``threads`` threads for torch's intra-op math and SimpleITK's filters; returns the count."""
    import torch

    threads = max(1, int(threads))
    torch.set_num_threads(threads)
    try:
        import SimpleITK as sitk

        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    except ImportError:  # pragma: no cover - SimpleITK is a dependency
        pass
    return torch.get_num_threads()


def set_passive_wait_policy(environ: dict | None = None) -> None:
    """Tell the OpenMP runtimes to sleep, not spin, while idle; must run before torch is imported.

    A spinning OpenMP thread holds its core for a while after each parallel region; on a machine
    where another process (or our own augmentation workers) wants that core, every parallel region
    then waits for descheduled threads. Users may still choose otherwise in their environment.
    """
    env = os.environ if environ is None else environ
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # GNU and LLVM OpenMP (torch's Linux wheels)
    env.setdefault("KMP_BLOCKTIME", "0")  # Intel OpenMP (some conda builds)
