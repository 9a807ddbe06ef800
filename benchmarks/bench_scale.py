"""Scale rehearsal: one task at full image size through the whole harness, memory sampled.

``N`` procedural DIOR-layout test images of 800 px (``remotesam.synth``; 2,000 for the full
rehearsal, fewer on a small machine) evaluated for detection with the simulated accelerator of
``bench_accelerator.py`` (10 ms per image-prompt + 1 ms per call, sleeping, CPU free), batch 8.
Reported (``benchmark.extra_info`` and printed):

* resident memory (``/proc/self/statm``) sampled every 0.25 s during the run: peak, and the
  peak of the first and of the last quarter of the prediction phase (flat memory: the last
  quarter is not above the first by more than a few percent);
* store size per prediction (``store.sqlite`` + WAL bytes / predictions);
* host cost per image-prompt (prediction wall time / image-prompts) and the busy fraction;
* scoring time (``remotesam-bench score``: re-reading predictions and computing COCO AP) and
  leaderboard time (``build_leaderboard`` + markdown) for the run.

Ratios and sizes, no timed assertion. Run::

    REMOTESAM_SCALE_N=2000 python benchmarks/bench_scale.py          # script, prints a summary
    python -m pytest benchmarks/bench_scale.py --benchmark-only -s   # N from the env, default 48
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_accelerator as acc

PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def rehearse(n_images: int, work: Path, data: Path | None = None) -> dict[str, Any]:
    """Write (or reuse) the data, run det with the simulated accelerator, measure."""
    from remotesam.bench.reports.leaderboard import build_leaderboard
    from remotesam.bench.run import score_run

    if data is None:
        data = work / f"synth800-n{n_images}"
        if not (data / "manifest.json").is_file():
            # in a process of its own: the generator's memory (about 10 MB per image) must not
            # count as the harness's
            import subprocess

            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "remotesam.bench", "synth", "--out", str(data),
                            "--seed", "0", "--n-images", str(n_images), "--image-size", "800",
                            "--n-train", "0", "--n-val", "0", "--landuse-per-class", "1"],
                           check=True, stdout=subprocess.DEVNULL)
            print(
                f"wrote {n_images} images of 800 px in {time.perf_counter() - t0:.0f} s", flush=True
            )
    samples: list[tuple[float, int]] = []
    stop = threading.Event()

    def sampler() -> None:
        while not stop.is_set():
            samples.append((time.perf_counter(), _rss()))
            time.sleep(0.25)

    results = work / "results"
    rss0 = _rss()
    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    try:
        res = acc.measure(data, ["det"], results)
    finally:
        stop.set()
        th.join()
    t_ready = acc._LAST["t_ready"]
    t_end = t_ready + res["predict_wall_s"]
    during = [r for t, r in samples if t_ready <= t <= t_end]
    q = max(1, len(during) // 4)
    store_bytes = sum(p.stat().st_size for p in results.glob("store.sqlite*"))
    from remotesam.bench.records.results import RunDocument, runs_dir

    doc_path = sorted(runs_dir(results).glob("*.json"))[-1]
    doc = RunDocument.load(doc_path)
    t0 = time.perf_counter()
    score_run(doc, results_dir=results, run_id="rescored")
    t_score = time.perf_counter() - t0
    t0 = time.perf_counter()
    board = build_leaderboard([doc])
    board.to_markdown()
    t_board = time.perf_counter() - t0
    return {
        "n_images": n_images,
        "image_size": 800,
        "task": "det",
        "data": "synthetic (remotesam.synth)",
        "image_prompts": res["image_prompts"],
        "forward_calls": res["forward_calls"],
        "busy_fraction": res["busy_fraction"],
        "predict_wall_s": res["predict_wall_s"],
        "host_ms_per_image_prompt": round(1e3 * res["predict_wall_s"] / res["image_prompts"], 2),
        "rss_start_mb": round(rss0 / 2**20, 1),
        "rss_peak_mb": round(max(r for _, r in samples) / 2**20, 1),
        "rss_first_quarter_peak_mb": round(max(during[:q]) / 2**20, 1) if during else None,
        "rss_last_quarter_peak_mb": round(max(during[-q:]) / 2**20, 1) if during else None,
        "rss_samples": len(during),
        "store_bytes": store_bytes,
        "predictions": res["samples"],
        "store_bytes_per_prediction": round(store_bytes / max(res["samples"], 1)),
        "score_s": round(t_score, 3),
        "leaderboard_s": round(t_board, 3),
        "run_wall_s": res["run_wall_s"],
    }


def test_scale_rehearsal(benchmark: Any, tmp_path: Path) -> None:
    n = int(os.environ.get("REMOTESAM_SCALE_N", "48"))
    out: dict[str, Any] = {}
    benchmark.pedantic(lambda: out.update(rehearse(n, tmp_path)), rounds=1, iterations=1)
    benchmark.extra_info.update(out)
    print("\nscale rehearsal:", out)
    assert out["predictions"] == n


if __name__ == "__main__":
    n = int(os.environ.get("REMOTESAM_SCALE_N", "48"))
    work = Path(os.environ.get("REMOTESAM_SCALE_DIR") or tempfile.mkdtemp(prefix="scale-"))
    work.mkdir(parents=True, exist_ok=True)
    for k, v in rehearse(n, work).items():
        print(f"{k:28s} {v}")
