"""The CPUs this process may use, and OpenMP waiting that does not spin on a busy machine.

Two facts of a shared machine (a CI runner, a laptop, a cluster node shared by jobs):

* **Waiting.** PyTorch's CPU kernels run in OpenMP parallel regions. By default libgomp's
  threads *spin* for a while at the end of every region, waiting for the next one. When other
  processes keep the cores busy, a spinning thread burns the time slice that its partner thread
  needs to finish the region, so every operation waits for the scheduler: measured on 2 cores
  beside other busy processes, a forward of the tiny checkpoint took 10.2 s with 2 spinning
  threads, 0.27 s with the same 2 threads waiting passively and 0.54 s with 1 thread.
  ``OMP_WAIT_POLICY=PASSIVE`` (waiting threads sleep) avoids that, but on a quiet machine it
  costs every parallel region a wake-up: the whole main job took 71-79 s instead of 56-59 s
  on 2 quiet cores, and 136 s instead of 428 s beside two busy processes. So
  :func:`choose_wait_policy` (called by ``remotesam-bench run`` and ``paper`` before torch is
  imported) looks at the machine for a fifth of a second and asks for passive waiting only
  when other processes keep at least half a core busy; a policy in the environment always
  wins. The thread count, and so every number, is the same either way.
* **How many CPUs.** ``os.cpu_count()`` counts the machine; a process may be limited by its
  affinity mask (``taskset``, Slurm's ``--cpus-per-task``) and by a cgroup CPU quota
  (containers, Kubernetes limits). :func:`available_cpus` takes the smallest; the engine never
  runs more intra-op threads than that (:func:`cap_torch_threads`).
* **How many of them are free.** When other processes keep CPUs busy, two intra-op threads on
  two cores wait for each other at every operation whenever the scheduler runs a neighbour
  instead: measured on the 2-core development machine beside two busy processes, the main job
  took 139 s with 2 threads waiting passively and 120 s with 1 (53 s quiet with 2). So
  :func:`choose_wait_policy` also remembers how many CPUs others kept busy, and
  :func:`cap_torch_threads` runs no more intra-op threads than are free (at least one). Unlike
  the waiting policy this can change the last bits of CPU logits (as a batch composition can;
  docs/SCALING.md, *Tolerance otherwise*); ``OMP_NUM_THREADS`` in the environment fixes the
  count.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["available_cpus", "busy_cpus_elsewhere", "cap_torch_threads", "cgroup_cpu_quota",
           "choose_wait_policy", "free_cpus", "prefer_passive_waiting"]

#: CPUs other processes kept busy when :func:`choose_wait_policy` looked (None: not looked).
_busy_elsewhere: float | None = None


def prefer_passive_waiting() -> None:
    """``OMP_WAIT_POLICY=PASSIVE`` unless the environment already chooses a policy.

    Effective only before the OpenMP runtime is loaded (``import torch``); harmless after.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def cgroup_cpu_quota(root: str | Path = "/sys/fs/cgroup") -> float | None:
    """The CPU quota of this process's cgroup in CPUs (``1.5`` = 150 ms per 100 ms), or None.

    Reads cgroup v2 (``cpu.max``: ``"QUOTA PERIOD"`` or ``"max PERIOD"``) and v1
    (``cpu/cpu.cfs_quota_us`` with ``cpu.cfs_period_us``; ``-1`` is no limit).
    """
    root = Path(root)
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us


def available_cpus() -> int:
    """The CPUs this process may use: affinity mask and cgroup quota (rounded up), at least 1."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        n = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    if quota is not None:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)


def free_cpus() -> int:
    """:func:`available_cpus` less the CPUs other processes kept busy when
    :func:`choose_wait_policy` looked (rounded), at least 1; :func:`available_cpus` when it did
    not look."""
    n = available_cpus()
    if _busy_elsewhere is not None:
        total = os.cpu_count() or n
        n = min(n, max(1, total - round(_busy_elsewhere)))
    return n


def cap_torch_threads() -> int:
    """Lower PyTorch's intra-op thread count to :func:`free_cpus`; returns the count.

    A count the user chose (``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` in the environment) is
    left alone.
    """
    import torch

    n = torch.get_num_threads()
    if not (os.environ.get("OMP_NUM_THREADS") or os.environ.get("MKL_NUM_THREADS")):
        cap = free_cpus()
        if n > cap:
            torch.set_num_threads(cap)
            n = cap
    return n


def _proc_stat() -> tuple[int, int, int]:
    """``(busy jiffies of the machine, all jiffies, this process's jiffies)``."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    with open("/proc/self/stat", encoding="ascii") as f:
        own = f.read().rpartition(")")[2].split()
    return sum(fields) - idle, sum(fields), int(own[11]) + int(own[12])  # utime + stime


def busy_cpus_elsewhere(interval: float = 0.2,
                        read: Callable[[], tuple[int, int, int]] = _proc_stat) -> float | None:
    """How many CPUs other processes kept busy during ``interval`` seconds (Linux; None
    where ``/proc/stat`` cannot be read)."""
    try:
        b0, t0, o0 = read()
        time.sleep(interval)
        b1, t1, o1 = read()
    except (OSError, ValueError, IndexError):
        return None
    if t1 <= t0:
        return None
    n = os.cpu_count() or 1
    return max(0.0, (b1 - b0) - (o1 - o0)) / (t1 - t0) * n


def choose_wait_policy(interval: float = 0.2, threshold: float = 0.5,
                       busy: Callable[[float], float | None] = busy_cpus_elsewhere
                       ) -> str | None:
    """``OMP_WAIT_POLICY=PASSIVE`` when other processes keep ``threshold`` CPUs or more busy;
    returns the policy set, or None (the environment already chooses one, torch is already
    imported, or the machine is quiet). What it saw also caps the intra-op threads
    (:func:`free_cpus`) unless ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` chooses."""
    global _busy_elsewhere
    if "torch" in sys.modules:
        return None
    policy_set = "OMP_WAIT_POLICY" in os.environ
    count_set = bool(os.environ.get("OMP_NUM_THREADS") or os.environ.get("MKL_NUM_THREADS"))
    if policy_set and count_set:
        return None
    others = busy(interval)
    if others is None or others < threshold:
        return None
    _busy_elsewhere = others
    if policy_set:
        return None
    prefer_passive_waiting()
    return os.environ["OMP_WAIT_POLICY"]
