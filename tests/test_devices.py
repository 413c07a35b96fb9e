"""Device choice, the CPU share from affinity + cgroup quota + load, and thread control."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from mednext_fw.devices import (DeviceError, cgroup_cpu_quota, gpu_free_memory_gb, gpu_planning_budget_gb,
                                other_load, plan_cpu_share, runnable_now, select_device, set_passive_wait_policy,
                                usable_cores)


def test_device_selection():
    assert select_device("cpu") == torch.device("cpu")
    assert select_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(DeviceError, match="unknown device 'tpu'"):
        select_device("tpu")
    if not torch.cuda.is_available():
        assert select_device("auto").type in ("cpu", "mps")
        with pytest.raises(DeviceError, match="no CUDA GPU"):
            select_device("cuda")


def test_gpu_budget_from_a_faked_device_query():
    gib = 2 ** 30
    free, total = gpu_free_memory_gb(0, query=lambda i: (20 * gib, 24 * gib))
    assert (free, total) == (20.0, 24.0)
    assert gpu_planning_budget_gb(free, total) == pytest.approx(20 - 2.4)  # 10% of the card
    assert gpu_planning_budget_gb(5.0, 6.0) == pytest.approx(4.0)  # at least 1 GiB margin
    assert gpu_planning_budget_gb(0.5, 80.0) == 0.0


@pytest.mark.parametrize("content,expected", [("max 100000", None), ("150000 100000", 1.5), ("50000 100000", 0.5)])
def test_cgroup_v2_quota(tmp_path, content, expected):
    (tmp_path / "cpu.max").write_text(content + "\n")
    assert cgroup_cpu_quota(tmp_path) == expected


def test_cgroup_v1_quota(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("200000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_quota(tmp_path) == 2.0
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_quota(tmp_path) is None
    assert cgroup_cpu_quota(tmp_path / "missing") is None


def test_usable_cores_takes_the_smaller_of_affinity_and_quota():
    eight = lambda: set(range(8))  # noqa: E731
    assert usable_cores(eight, quota=None) == 8
    assert usable_cores(eight, quota=2.5) == 3  # a fractional quota still runs on 3 cores part-time
    assert usable_cores(lambda: {0, 1}, quota=16.0) == 2
    assert usable_cores(eight, quota=0.2) == 1


def test_cpu_share_follows_cores_and_load():
    quiet = plan_cpu_share("cpu", 16, load=0.0)
    assert (quiet.threads, quiet.workers) == (12, 4)
    busy = plan_cpu_share("cpu", 16, load=10.0)  # ten cores already busy: only the idle ones
    assert (busy.threads, busy.workers) == (6, 4) and "load 10.0" in busy.reason
    two = plan_cpu_share("cpu", 2, load=0.0)
    assert (two.threads, two.workers) == (1, 1)
    assert plan_cpu_share("cpu", 2, load=5.0).threads == 1  # never below one
    assert plan_cpu_share("cpu", 1).workers == 0
    gpu = plan_cpu_share("cuda", 16)
    assert gpu.workers == 12 and gpu.threads == 4
    forced = plan_cpu_share("cpu", 16, threads=3, workers=0)
    assert (forced.threads, forced.workers) == (3, 0)


def test_passive_wait_policy_keeps_a_users_choice():
    env = {}
    set_passive_wait_policy(env)
    assert env == {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    set_passive_wait_policy(env)
    assert env["OMP_WAIT_POLICY"] == "ACTIVE"


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs /proc to count OS threads")
def test_threads_measurably_change_the_os_thread_count():
    """configure_threads(n) is what every command's --threads calls: count the OS threads that a
    parallel torch op actually runs on."""
    probe = textwrap.dedent("""
        import os, sys, torch
        from mednext_fw.devices import configure_threads
        n = configure_threads(int(sys.argv[1]))
        x = torch.randn(512, 512)
        for _ in range(20):
            x = torch.tanh(x @ x)
        print(n, len(os.listdir('/proc/self/task')))
    """)
    counts = {}
    for n in (1, 3):
        out = subprocess.run([sys.executable, "-c", probe, str(n)], capture_output=True, text=True, check=True,
                             env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
        reported, os_threads = map(int, out.stdout.split())
        assert reported == n
        counts[n] = os_threads
    assert counts[3] >= counts[1] + 2  # the OpenMP pool grows by (at least) the 2 extra threads


def test_other_load_trusts_the_runnable_count_when_the_average_lags(tmp_path):
    """Right after a heavy job ends the 1-minute average still reads busy; the count sampled now wins
    when lower, the average when the count is higher (a burst) or unreadable."""
    assert other_load(2, loadavg=lambda: (1.4, 1.3, 1.2), running=lambda: 0.0) == 0.0
    assert other_load(2, loadavg=lambda: (0.5, 0.5, 0.5), running=lambda: 3.0) == 0.5
    assert other_load(2, loadavg=lambda: (1.5, 1.0, 1.0), running=lambda: None) == 1.5
    stat = tmp_path / "stat"
    stat.write_text("cpu  1 2 3\nprocs_running 3\nprocs_blocked 0\n")
    assert runnable_now(samples=2, interval_s=0, stat=str(stat)) == 2.0  # ourselves not counted
    assert runnable_now(stat=str(tmp_path / "missing")) is None
