"""The CPUs a process may use, and passive OpenMP waiting (remotesam.cpu)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from remotesam.cpu import available_cpus, cap_torch_threads, cgroup_cpu_quota


def _policy_in_fresh_process(env: dict[str, str]) -> str:
    code = ("from remotesam.cpu import prefer_passive_waiting; import os; "
            "prefer_passive_waiting(); print(os.environ.get('OMP_WAIT_POLICY'))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


def test_passive_waiting_is_opt_in_and_keeps_the_users_choice() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert _policy_in_fresh_process(env) == "PASSIVE"
    assert _policy_in_fresh_process({**env, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"
    code = "import remotesam, os; print(os.environ.get('OMP_WAIT_POLICY'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "None"  # importing remotesam changes nothing


@pytest.mark.parametrize(("files", "expected"), [
    ({"cpu.max": "150000 100000\n"}, 1.5),
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 0.5),
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({}, None),
])
def test_cgroup_quota_v1_and_v2(tmp_path: Path, files: dict[str, str],
                                expected: float | None) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cgroup_cpu_quota(tmp_path) == expected


def test_available_cpus_respects_the_affinity_mask() -> None:
    n = available_cpus()
    assert 1 <= n <= len(os.sched_getaffinity(0))


def test_torch_threads_are_capped_at_the_available_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.setattr("remotesam.cpu.available_cpus", lambda: 1)
    try:
        torch.set_num_threads(2)
        assert cap_torch_threads() == 1 and torch.get_num_threads() == 1
        # a count the user chose stays
        torch.set_num_threads(2)
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        assert cap_torch_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow
def test_the_prepared_gpu_script_runs_end_to_end_at_toy_size_on_the_cpu(tmp_path: Path) -> None:
    """benchmarks/bench_gpu.py (issue 20 item 8) cannot rot while no GPU is lent: its quick mode
    runs the same code paths (throughput table, harness busy fraction) on the CPU."""
    import json

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "gpu.json"
    subprocess.run([sys.executable, str(root / "benchmarks" / "bench_gpu.py"), "--device", "cpu",
                    "--quick", "--out", str(out)], check=True, cwd=tmp_path, capture_output=True)
    result = json.loads(out.read_text())
    assert [r["batch"] for r in result["throughput"]] == [1, 2]
    assert all(r["image_prompts_per_s"] > 0 for r in result["throughput"])
    assert [r["task"] for r in result["pipeline"]] == ["det", "ref"]
    for row in result["pipeline"]:
        assert row["failed"] == 0 and row["image_prompts"] > 0 and 0 < row["busy_fraction"] <= 1


def test_passive_waiting_is_chosen_only_when_other_processes_keep_cpus_busy(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import remotesam.cpu as cpu
    from remotesam.cpu import busy_cpus_elsewhere, choose_wait_policy

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setattr(cpu, "_busy_elsewhere", None)
    monkeypatch.delitem(sys.modules, "torch")  # as in a fresh `remotesam-bench run`
    assert choose_wait_policy(0, busy=lambda _: 0.1) is None
    assert "OMP_WAIT_POLICY" not in os.environ
    assert choose_wait_policy(0, busy=lambda _: None) is None  # no /proc/stat
    assert choose_wait_policy(0, busy=lambda _: 1.8) == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # the user's choice wins
    assert choose_wait_policy(0, busy=lambda _: 1.8) is None
    # two samples of /proc/stat: 150 of 200 jiffies busy, 50 of them this process's
    reads = iter([(1000, 2000, 10), (1150, 2200, 60)])
    n = os.cpu_count() or 1
    assert busy_cpus_elsewhere(0, read=lambda: next(reads)) == pytest.approx(100 / 200 * n)
    assert busy_cpus_elsewhere(0.1) is not None  # the real /proc/stat reads


def test_intra_op_threads_are_capped_at_the_cpus_other_processes_leave_free(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    import remotesam.cpu as cpu

    monkeypatch.setattr(cpu, "_busy_elsewhere", None)
    monkeypatch.setattr(cpu, "available_cpus", lambda: 2)
    monkeypatch.setattr(cpu.os, "cpu_count", lambda: 2)
    for var in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    assert cpu.free_cpus() == 2  # nobody looked: every available CPU
    torch_module = sys.modules.pop("torch")
    try:
        assert cpu.choose_wait_policy(0, busy=lambda _: 0.2) is None  # quiet
        assert cpu.free_cpus() == 2
        assert cpu.choose_wait_policy(0, busy=lambda _: 1.9) == "PASSIVE"
    finally:
        sys.modules["torch"] = torch_module
    assert cpu.free_cpus() == 1
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert cpu.cap_torch_threads() == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the user's count wins
        torch.set_num_threads(2)
        assert cpu.cap_torch_threads() == 2
    finally:
        torch.set_num_threads(before)
    # a policy in the environment is kept, the busy CPUs are still seen
    monkeypatch.setattr(cpu, "_busy_elsewhere", None)
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    monkeypatch.delenv("OMP_NUM_THREADS")
    sys.modules.pop("torch")
    try:
        assert cpu.choose_wait_policy(0, busy=lambda _: 1.9) is None
    finally:
        sys.modules["torch"] = torch_module
    assert cpu.free_cpus() == 1 and os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
