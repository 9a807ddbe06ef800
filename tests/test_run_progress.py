"""Progress in logs: when stderr is not a terminal, one line per task every N seconds with
done/total, throughput and ETA, and each task's time at the end; under torchrun rank 0 speaks for
the job."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))

import bench_support as bs
from rsb_toy.data import write_dataset

from remotesam.bench.errors import InputError
from remotesam.bench.run.progress import Progress, format_duration, progress_interval

LINE = re.compile(r"^remotesam-bench: progress (\S+) \[(\S+)\]: (\d+)/(\d+) \(([\d.]+)%\), "
                  r"([\d.]+) samples/s(?:, ([\d.]+) image-prompts/s)?, elapsed \d+:\d\d:\d\d, "
                  r"ETA (\d+:\d\d:\d\d|unknown)$")


def test_lines_with_eta_and_final_times() -> None:
    out = io.StringIO()  # not a terminal
    with Progress(None, interval=0.05, stream=out) as p:
        assert not p.rich and p.lines
        bar = p.bar("det.dior/test [tiny.safetensors]", 6)
        for _ in range(3):
            time.sleep(0.12)
            bar.advance(1, 20)
        time.sleep(0.12)
        bar.advance(3, 60)
        time.sleep(0.12)
    lines = out.getvalue().splitlines()
    progress = [LINE.match(line) for line in lines if " progress " in line]
    assert progress and all(progress), lines
    mid = [m for m in progress if m is not None and 0 < int(m.group(3)) < 6]
    assert mid, lines
    m = mid[-1]
    assert m.group(1) == "det.dior/test" and m.group(2) == "tiny.safetensors"
    assert m.group(4) == "6" and m.group(8) != "unknown"  # an ETA once something is done
    assert float(m.group(7)) == pytest.approx(20 * float(m.group(6)), rel=1e-2)
    assert any(line.startswith("remotesam-bench: done det.dior/test [tiny.safetensors]: 6/6 in ")
               for line in lines)
    assert lines[-1].startswith("remotesam-bench: prediction time per task (wall ")
    assert "det.dior/test [tiny.safetensors] " in lines[-1]


def test_interval_zero_and_no_progress_print_nothing(monkeypatch) -> None:
    for kwargs in ({"interval": 0.0}, {"interval": 0.01, "enabled": False}):
        out = io.StringIO()
        with Progress(kwargs.pop("enabled", None), stream=out, **kwargs) as p:
            p.bar("x", 2).advance(2)
            time.sleep(0.05)
        assert out.getvalue() == ""
    monkeypatch.setenv("REMOTESAM_PROGRESS_INTERVAL", "7.5")
    assert progress_interval() == 7.5 and progress_interval(2) == 2.0
    monkeypatch.setenv("REMOTESAM_PROGRESS_INTERVAL", "soon")
    with pytest.raises(InputError, match="REMOTESAM_PROGRESS_INTERVAL='soon'"):
        progress_interval()
    monkeypatch.delenv("REMOTESAM_PROGRESS_INTERVAL")
    assert progress_interval() == 30.0
    assert format_duration(3725.4) == "1:02:05"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return bs.installed_site(tmp_path_factory)


def _args(*extra):
    return ["run", "--tasks", "toy.blobs", "--ckpt", "ck.json", "--data-root", "data",
            "--device", "cpu", "--batch-size", "2", "--model-factory", bs.FACTORY,
            "--results-dir", "results", "--no-report", *extra]


@pytest.mark.slow
def test_a_run_with_stderr_to_a_file_prints_progress_lines(tmp_path, site) -> None:
    write_dataset(tmp_path / "data" / "toy_blobs", n=10, seed=3)
    bs.write_checkpoint(tmp_path / "ck.json")
    log = tmp_path / "stderr.log"
    with log.open("w") as err:
        p = subprocess.run([sys.executable, "-m", "remotesam.bench",
                            *_args("--progress-interval", "0.2")],
                           env=bs.cli_env(site, TOY_SLEEP=0.25), cwd=tmp_path, stderr=err,
                           stdout=subprocess.PIPE, text=True, timeout=300, check=False)
    text = log.read_text()
    assert p.returncode == 0, text
    lines = [m for m in map(LINE.match, text.splitlines()) if m]
    assert lines, text
    assert all(m.group(1) == "toy.blobs/test" and m.group(4) == "10" for m in lines)
    assert any(m.group(8) != "unknown" for m in lines)  # an ETA
    assert re.search(r"^remotesam-bench: done toy\.blobs/test \[ck\.json\]: 10/10 in ", text,
                     re.M), text
    assert re.search(r"^remotesam-bench: prediction time per task \(wall [\d.]+ s\): "
                     r"toy\.blobs/test \[ck\.json\] [\d.]+ s$", text, re.M), text

    # the environment variable sets the interval; 0 turns the lines off
    p = subprocess.run([sys.executable, "-m", "remotesam.bench", *_args("--run-id", "quiet",
                        "--retry-failed", "--results-dir", "other")],
                       env=bs.cli_env(site, REMOTESAM_PROGRESS_INTERVAL=0), cwd=tmp_path,
                       capture_output=True, text=True, timeout=300, check=False)
    assert p.returncode == 0, p.stderr
    assert "remotesam-bench: progress" not in p.stderr and "time per task" not in p.stderr
    p = subprocess.run([sys.executable, "-m", "remotesam.bench", *_args(
        "--progress-interval", "-1")], env=bs.cli_env(site), cwd=tmp_path,
        capture_output=True, text=True, timeout=300, check=False)
    assert p.returncode == 2 and "--progress-interval" in p.stderr


@pytest.mark.slow
@pytest.mark.distributed
def test_under_torchrun_rank_0_speaks_for_the_job(tmp_path, site) -> None:
    write_dataset(tmp_path / "data" / "toy_blobs", n=12, seed=3)
    bs.write_checkpoint(tmp_path / "ck.json")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           "--nproc_per_node=2", "-m", "remotesam.bench", *_args("--progress-interval", "0.2")]
    p = subprocess.run(cmd, env=bs.cli_env(site, TOY_SLEEP=0.25), cwd=tmp_path,
                       capture_output=True, text=True, timeout=600, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = [m for m in map(LINE.match, p.stderr.splitlines()) if m]
    assert lines and all(m.group(4) == "12" for m in lines), p.stderr  # the job's total
    done = [line for line in p.stderr.splitlines() if "remotesam-bench: done toy.blobs" in line]
    assert len(done) == 1 and ": 12/12 in " in done[0], p.stderr  # one voice, the job's count
    assert p.stderr.count("prediction time per task") == 1
