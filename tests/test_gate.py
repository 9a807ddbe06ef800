"""The regression gate: matched sample sets, failed samples, small-n statistics, baselines
(formats 1 and 2), CI outputs (JUnit, GitHub annotations, step summary) and the pytest plugin.

Run documents are built in code (no model needed) except in the one test marked slow, which
evaluates the bundled tiny checkpoint on a few samples of the embedded benchmark.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from remotesam.bench.api.registry import Registry
from remotesam.bench.cli import reports as reports_cli
from remotesam.bench.gate import (
    BASELINE_SCHEMA,
    N_FAILED,
    Baseline,
    GateError,
    compare,
    write_baseline,
)

# remotesam_gate: the fixture, imported as the pytest11 entry point installs it
from remotesam.bench.pytest_plugin import check_gate, remotesam_gate  # noqa: F401
from remotesam.bench.records.results import CheckpointRef, MetricValue, RunDocument, TaskResult
from remotesam.bench.records.stats import (
    exact_mcnemar_pvalue,
    largest_single_sample_effect,
    metric_ci,
    newcombe_paired_interval,
    paired_difference_interval,
    paired_permutation_pvalue,
    paired_test,
    sample_ci,
    t_quantile,
    wilson_interval,
)
from remotesam.bench.run import RunConfig
from remotesam.bench.run import run as run_bench

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "fixtures"))

import bench_support as bs  # noqa: E402 (test-only toy plugin beside this file)
from rsb_toy.data import write_dataset  # noqa: E402
from rsb_toy.fakemodel import load as load_toy_model  # noqa: E402
from run_support import (  # noqa: E402
    IDS,
    N,
    make_run,
    reports_cli_main,
)
from run_support import ckpt as _ckpt  # noqa: E402
from run_support import result as _result  # noqa: E402


def one_task_run(values: list[float], ids: list[str], *, n_total: int, failed: list[str] = (),
                 run_id: str = "r", task: str = "mcc", dataset: str = "ucmerced",
                 metric: str = "accuracy") -> RunDocument:
    """One task/dataset whose metric is the mean of per-sample values (in %)."""
    res = _result(_ckpt(), task, dataset,
                  {metric: (100 * float(np.mean(values)) if values else math.nan, True, True,
                            "%")},
                  per_sample={metric: {"sample_ids": list(ids), "values": list(values)}},
                  n=n_total)
    res.n_evaluated, res.n_failed = len(ids), len(failed)
    res.failures = [{"sample_id": s, "error": "OSError: cannot identify image file"}
                    for s in failed]
    return RunDocument(run_id=run_id, created="2026-01-01T00:00:00", results=[res])


def to_format_1(path: Path) -> None:
    """Rewrite a baseline file as format 1 would have written it (no samples, no n_failed)."""
    doc = json.loads(path.read_text())
    doc["schema"] = "remotesam-bench/baseline/1"
    for k in ("samples", "hard_min_samples"):
        doc.pop(k)
    doc["metrics"] = [m for m in doc["metrics"] if m["metric"] != N_FAILED]
    path.write_text(json.dumps(doc))


def _row(report, metric, label=None):
    return next(r for r in report.rows if r.metric == metric
                and (label is None or r.label == label))


# ------------------------------------------------------------------------------- issue 10 bugs


def test_run_on_6_samples_against_a_12_sample_baseline_is_not_comparable(tmp_path):
    """Was: 'regressed' with p = 1.000 (the 6-sample value judged against the 12-sample one)."""
    ids = [f"s{i:02d}" for i in range(12)]
    hits = [1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]  # 91.67 on 12, 83.33 on the first 6
    write_baseline(one_task_run(hits, ids, n_total=42), tmp_path / "b.json")
    base = Baseline.load(tmp_path / "b.json")
    limited = one_task_run(hits[:6], ids[:6], n_total=42)  # --limit 6: the same first samples
    rep = compare(limited, base)
    assert rep.exit_code == 2 and rep.verdict == "NOT COMPARABLE"
    row = _row(rep, "accuracy")
    assert row.status == "not comparable" and "regressed" not in [r.status for r in rep.rows]
    assert "baseline n=12, run n=6, in common 6" in row.note
    assert _row(rep, N_FAILED).status == "not comparable"
    # --intersection: scored on the 6 common samples, with the dropped counts shown
    rep = compare(limited, base, intersection=True)
    row = _row(rep, "accuracy")
    assert rep.exit_code == 0 and row.status == "pass"
    assert row.baseline == pytest.approx(250 / 3) and row.current == pytest.approx(250 / 3)
    assert "scored on the 6 samples evaluated in both (dropped 6 baseline-only, 0 run-only" \
        in row.note
    assert rep.groups[0].run.subset and "subset run" in rep.summary()
    # a real drop on the common samples is still found with --intersection
    worse = one_task_run([0, 0, 0, 0, 0, 0], ids[:6], n_total=42)
    assert compare(worse, base, intersection=True).exit_code == 1


def test_failed_samples_that_succeeded_in_the_baseline_are_a_regression(tmp_path):
    """Was: PASS (88.75 -> 93.75 on the 4 survivors of 8 mlc images, 4 unreadable)."""
    ids = [f"{i:05d}.jpg" for i in range(8)]
    acc = [1.0, 0.95, 0.9, 0.9, 0.8, 0.85, 0.8, 0.9]  # label-wise accuracy per image
    base_run = one_task_run(acc, ids, n_total=48, task="mlc", dataset="dior")
    assert base_run.results[0].metrics["accuracy"].value == pytest.approx(88.75)
    write_baseline(base_run, tmp_path / "b.json")
    broken = one_task_run(acc[:4], ids[:4], n_total=48, failed=ids[4:], task="mlc",
                          dataset="dior")
    assert broken.results[0].metrics["accuracy"].value == pytest.approx(93.75)
    rep = compare(broken, Baseline.load(tmp_path / "b.json"))
    assert rep.exit_code == 1 and rep.verdict == "REGRESSION"
    failed = _row(rep, N_FAILED)
    assert failed.status == "regressed" and (failed.baseline, failed.current) == (0, 4)
    assert "4 newly failed" in failed.note and "cannot identify image file" in failed.note
    acc_row = _row(rep, "accuracy")  # compared on the 4 samples both evaluated, not 88.75
    assert acc_row.status == "pass" and acc_row.baseline == pytest.approx(93.75)
    assert "4 failed sample(s)" in rep.summary()
    # a metric without per-sample values says its values rest on different samples
    broken.results[0].metrics["f1_macro"] = MetricValue(50.0, True)
    doc = json.loads((tmp_path / "b.json").read_text())
    doc["metrics"].append(dict(doc["metrics"][0], metric="f1_macro", value=50.0))
    del doc["metrics"][-1]["per_sample"]
    row = _row(compare(broken, Baseline.from_dict(doc)), "f1_macro")
    assert row.status == "pass" and "over different evaluated samples" in row.note
    broken.results[0].failures[0].update(kind="transient", error="CUDA out of memory")
    broken.results[0].failures.insert(0, broken.results[0].failures.pop(0))
    note = _row(compare(broken, Baseline.load(tmp_path / "b.json")), N_FAILED).note
    assert "first error: transient, retried by the next run: CUDA out of memory" in note
    # a format 1 baseline (no failure record) still catches it through its per-sample ids
    to_format_1(tmp_path / "b.json")
    rep = compare(broken, Baseline.load(tmp_path / "b.json"))
    assert rep.exit_code == 1 and _row(rep, N_FAILED).status == "regressed"
    assert any("format 1" in n for n in rep.notes)


def test_baseline_whose_values_are_all_nan_is_exit_2(tmp_path):
    """Was: PASS with nothing checked."""
    run = make_run()
    write_baseline(run, tmp_path / "b.json")
    doc = json.loads((tmp_path / "b.json").read_text())
    for m in doc["metrics"]:
        if m["metric"] != N_FAILED:
            m["value"] = "nan"
    rep = compare(run, Baseline.from_dict(doc))
    assert rep.exit_code == 2 and rep.verdict == "NOTHING CHECKED" and rep.n_checked == 0
    assert "nothing checked" in rep.summary()
    assert any("every baseline value is NaN" in n for n in rep.notes)
    assert all(r.status == "unchecked" for r in rep.rows if r.metric != N_FAILED)
    # the same for a format 1 file without n_failed rows
    to_format_1(tmp_path / "b.json")
    doc = json.loads((tmp_path / "b.json").read_text())
    for m in doc["metrics"]:
        m["value"] = "nan"
    assert compare(run, Baseline.from_dict(doc)).exit_code == 2


def _toy_run(tmp: Path, data: Path, results: Path, limit: int | None = None) -> RunDocument:
    """The runner on the test-only ``toy`` task (a fake model: fast, deterministic)."""
    ckpt = bs.write_checkpoint(tmp / "toy.json", gain=1.0, bias=0.25)
    out = run_bench(RunConfig(tasks=["toy"], checkpoints=[str(ckpt)], data_root=data,
                              results_dir=results, limit=limit, batch_size=4, device="cpu",
                              progress=False),
                    registry=Registry(bs.toy_entry_points()),
                    model_factory=lambda path, **kw: load_toy_model(path))
    return out.document


@pytest.mark.filterwarnings("ignore:evaluated .* a subset:UserWarning")
def test_end_to_end_unreadable_images_and_a_limit_run(tmp_path, capsys, monkeypatch):
    """The two gate bugs with the real runner: images that became unreadable, and --limit."""
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    write_dataset(tmp_path / "good" / "toy_blobs", n=8, seed=1)
    base_doc = _toy_run(tmp_path, tmp_path / "good", tmp_path / "res")
    write_baseline(base_doc, tmp_path / "b.json")
    broken = [f"{i:04d}.png" for i in range(4, 8)]
    write_dataset(tmp_path / "bad" / "toy_blobs", n=8, seed=1, corrupt=broken)
    bad_doc = _toy_run(tmp_path, tmp_path / "bad", tmp_path / "res")
    (res,) = bad_doc.results
    assert (res.n_evaluated, res.n_failed) == (4, 4)
    argv = ["gate", "--results-dir", str(tmp_path / "res"), "--baseline", str(tmp_path / "b.json")]
    assert _cli([*argv, "--run", bad_doc.run_id]) == 1
    out = capsys.readouterr().out
    assert "n_failed" in out and "4 newly failed" in out and "REGRESSION" in out
    # the same data again: PASS; a --limit 3 run: not comparable (exit 2) unless intersected
    assert _cli([*argv, "--run", base_doc.run_id]) == 0
    limited = _toy_run(tmp_path, tmp_path / "good", tmp_path / "res", limit=3)
    assert _cli([*argv, "--run", limited.run_id]) == 2
    assert "baseline n=8, run n=3, in common 3" in capsys.readouterr().out
    assert _cli([*argv, "--run", limited.run_id, "--intersection"]) == 0


# ------------------------------------------------------------------------------- sample sets


def test_a_changed_sample_set_of_the_same_size_is_not_comparable(tmp_path):
    ids = [f"s{i}" for i in range(8)]
    write_baseline(one_task_run([1.0] * 8, ids, n_total=8), tmp_path / "b.json")
    other = one_task_run([1.0] * 8, [f"t{i}" for i in range(8)], n_total=8)
    rep = compare(other, Baseline.load(tmp_path / "b.json"))
    assert rep.exit_code == 2 and "in common 0" in _row(rep, "accuracy").note
    rep = compare(other, Baseline.load(tmp_path / "b.json"), intersection=True)
    assert rep.exit_code == 2 and rep.verdict == "NOTHING CHECKED"


def test_metric_without_per_sample_values_is_matched_by_size(tmp_path):
    run = make_run()
    write_baseline(run, tmp_path / "b.json")
    base = Baseline.load(tmp_path / "b.json")
    assert base.samples[(None, "cnt", "dior", "test")].evaluated_ids is None
    assert compare(run, base).exit_code == 0
    assert any("matched by size only" in n for n in compare(run, base).notes)
    smaller = make_run()
    smaller.results[2].n_evaluated = 30  # cnt on 30 samples: no ids to intersect
    rep = compare(smaller, base, intersection=True)
    row = _row(rep, "accuracy", "cnt/dior")
    assert row.status == "not comparable" and "cannot intersect" in row.note
    assert rep.exit_code == 2


def test_failures_fixed_since_the_baseline_are_an_improvement(tmp_path):
    ids = [f"s{i}" for i in range(6)]
    write_baseline(one_task_run([1.0] * 4, ids[:4], n_total=6, failed=ids[4:]),
                   tmp_path / "b.json")
    base = Baseline.load(tmp_path / "b.json")
    assert base.samples[(None, "mcc", "ucmerced", "test")].failed_ids == ids[4:]
    rep = compare(one_task_run([1.0] * 6, ids, n_total=6), base)
    assert _row(rep, N_FAILED).status == "improved" and rep.exit_code == 0
    # the same failures again: pass; a tolerance of 1 allows one newly failed sample
    rep = compare(one_task_run([1.0] * 4, ids[:4], n_total=6, failed=ids[4:]), base)
    assert _row(rep, N_FAILED).status == "pass"
    write_baseline(one_task_run([1.0] * 6, ids, n_total=6), tmp_path / "t.json", failed_tol=1)
    one_more = one_task_run([1.0] * 5, ids[:5], n_total=6, failed=ids[5:])
    assert compare(one_more, Baseline.load(tmp_path / "t.json")).exit_code == 0
    two_more = one_task_run([1.0] * 4, ids[:4], n_total=6, failed=ids[4:])
    assert compare(two_more, Baseline.load(tmp_path / "t.json")).exit_code == 1


def test_tasks_selection_gates_only_those_entries(tmp_path):
    run = make_run()
    write_baseline(run, tmp_path / "b.json")
    base = Baseline.load(tmp_path / "b.json")
    only_vg = RunDocument(run_id="vg", created="x", results=[run.results[1]])
    assert compare(only_vg, base).exit_code == 2  # ref and cnt missing
    rep = compare(only_vg, base, tasks=["vg"])
    assert rep.exit_code == 0 and {r.label for r in rep.rows} == {"vg/dior_rsvg"}
    assert any("not selected" in n for n in rep.notes)
    assert compare(only_vg, base, tasks=["vg.dior_rsvg"]).exit_code == 0
    with pytest.raises(GateError, match="selects no entry"):
        compare(only_vg, base, tasks=["det"])


# ------------------------------------------------------------------------------- small n


def test_small_n_one_flipped_sample_is_judged_by_the_exact_test(tmp_path):
    ids = [f"s{i}" for i in range(6)]
    write_baseline(one_task_run([1.0] * 6, ids, n_total=42), tmp_path / "b.json")
    base = Baseline.load(tmp_path / "b.json")
    one = compare(one_task_run([0.0] + [1.0] * 5, ids, n_total=42), base)
    row = _row(one, "accuracy")
    # was: 'regressed, beyond the hard tolerance' (16.7 points > 3 x 0.5)
    assert row.status == "pass" and "not significant" in row.note and "exact McNemar" in row.note
    assert row.p_value == pytest.approx(0.5) and row.hard == pytest.approx(50.0)
    assert row.ci_low < row.delta < row.ci_high
    assert row.interval.startswith("[") and one.exit_code == 0
    four = compare(one_task_run([0.0] * 4 + [1.0] * 2, ids, n_total=42), base)
    assert _row(four, "accuracy").status == "regressed" and four.exit_code == 1


def test_gate_noise_rule_uses_the_paired_test(tmp_path):
    base_run = make_run(seed=4)
    write_baseline(base_run, tmp_path / "b.json", default_abs_tol=0.5, hard_factor=10.0)
    base = Baseline.load(tmp_path / "b.json")
    # consistent drop of 1.5 points on every sample: beyond tolerance, significant
    worse = make_run(seed=4, iou_shift=-0.015)
    row = _row(compare(worse, base), "mIoU", "ref/rrsisd")
    assert row.status == "regressed" and row.p_value < 0.05 and row.n_paired == N
    assert row.test.startswith("permutation")
    # the same-size drop made of large per-sample noise: beyond tolerance, not significant
    noisy = make_run(seed=4)
    vals = np.asarray(next(m for m in base.metrics if m.task == "ref" and m.metric == "mIoU")
                      .per_sample["values"])
    rng = np.random.default_rng(9)
    new = vals + rng.normal(0, 0.3, N)
    new += (vals.mean() - 0.015) - new.mean()
    noisy.results[0].per_sample["mIoU"]["values"] = new.tolist()
    noisy.results[0].metrics["mIoU"].value = 100 * new.mean()
    row = _row(compare(noisy, base), "mIoU", "ref/rrsisd")
    assert row.status == "pass" and row.p_value >= 0.05 and "not significant" in row.note
    # beyond the hard tolerance the test is not consulted
    noisy.results[0].metrics["mIoU"].value -= 10.0
    row = _row(compare(noisy, base), "mIoU", "ref/rrsisd")
    assert row.status == "regressed" and "hard" in row.note


def test_wilson_newcombe_and_t_match_reference_values():
    assert wilson_interval(0, 5) == (0.0, pytest.approx(0.43448, abs=1e-5))
    lo, hi = wilson_interval(3, 6)
    assert (lo, hi) == (pytest.approx(0.18762, abs=1e-5), pytest.approx(0.81238, abs=1e-5))
    assert wilson_interval(5, 5)[1] == 1.0 and math.isnan(wilson_interval(0, 0)[0])
    import scipy.stats as scipy_stats

    for df, q in itertools.product((1, 2, 3, 5, 9, 19, 60, 250), (0.9, 0.975, 0.995)):
        assert t_quantile(q, df) == pytest.approx(scipy_stats.t.ppf(q, df), rel=1e-6)
    a = np.array([1] * 13 + [0] * 9, dtype=float)
    b = np.array([1] * 8 + [0] * 5 + [1] * 4 + [0] * 5, dtype=float)
    lo, hi = newcombe_paired_interval(a, b)
    assert -1 <= lo < a.mean() - b.mean() < hi <= 1
    lo, hi = newcombe_paired_interval(np.ones(5), np.ones(5))  # 5 of 5 both: |diff| <= 0.43
    assert (lo, hi) == (pytest.approx(-wilson_interval(0, 5)[1]), pytest.approx(0.43448, abs=1e-5))


def _paired_from_table(n11: int, n10: int, n01: int, n00: int) -> tuple[np.ndarray, np.ndarray]:
    """0/1 outcomes (current, baseline) of a paired 2x2 table: ``n10`` hit only now."""
    cur = np.array([1] * (n11 + n10) + [0] * (n01 + n00), dtype=float)
    base = np.array([1] * n11 + [0] * n10 + [1] * n01 + [0] * n00, dtype=float)
    return cur, base


# Newcombe's square-and-add interval (method 10) with the continuity-corrected phi, worked
# by hand from the R references (contingencytables::Newcombe_square_and_add_CI_paired_2x2,
# biostatUZH::confIntPairedProportion) at alpha = 0.05: table (n11, n10, n01, n00) -> (L, U).
NEWCOMBE_R = {
    (1, 1, 7, 12): (-0.5069202267, -0.0255591242),   # Bentur et al. 2009 (the R example)
    (59, 6, 16, 80): (-0.1186211956, -0.0046251139),  # Cavo et al. 2012 (the R example)
    (7, 0, 0, 8): (-0.1173753318, 0.1173753318),  # a run against itself: A > n/2
    (10, 0, 0, 10): (-0.0897566594, 0.0897566594),
    (18, 0, 0, 2): (-0.1570716413, 0.1570716413),
    (13, 0, 4, 5): (-0.3536824284, 0.0038332118),
    (8, 5, 4, 5): (-0.2192292669, 0.3011398369),  # 0 <= A <= n/2: phi = 0
    (17, 1, 0, 2): (-0.1172111347, 0.2302118162),
    (40, 2, 3, 5): (-0.1260844107, 0.0839104622),
    (3, 1, 2, 0): (-0.5965431491, 0.3556484467),  # A < 0: phi = A / sqrt(margins)
    (0, 4, 3, 0): (-0.4990832709, 0.6835602895),
    (5, 0, 0, 0): (-0.4344824648, 0.4344824648),  # a margin is 0: phi = 0
}


@pytest.mark.parametrize("table", sorted(NEWCOMBE_R))
def test_newcombe_paired_interval_matches_the_r_references(table):
    lo, hi = newcombe_paired_interval(*_paired_from_table(*table))
    assert (lo, hi) == (pytest.approx(NEWCOMBE_R[table][0], abs=1e-9),
                        pytest.approx(NEWCOMBE_R[table][1], abs=1e-9))


def test_run_gated_against_itself_shows_the_reference_interval():
    """15 samples, 7 hits in both runs: +-11.7 points (the uncorrected phi gave +-1.4)."""
    cur, base = _paired_from_table(7, 0, 0, 8)
    lo, hi = paired_difference_interval(100 * cur, 100 * base)
    assert (lo, hi) == (pytest.approx(-11.73753, abs=1e-4), pytest.approx(11.73753, abs=1e-4))
    assert paired_test(cur, base) == (1.0, "exact McNemar")


def test_exact_methods_agree_with_scipy():
    import scipy.stats as scipy_stats

    for worse, better in ((5, 0), (3, 4), (12, 2), (0, 6), (40, 31)):
        ref = scipy_stats.binomtest(worse, worse + better, 0.5, alternative="greater").pvalue
        assert exact_mcnemar_pvalue(worse, better) == pytest.approx(ref, rel=1e-12)
    rng = np.random.default_rng(3)
    for n in (6, 11):
        base = rng.normal(size=n)
        cur = base - rng.normal(0.2, 0.5, size=n)
        ref = scipy_stats.permutation_test(
            (cur, base), lambda x, y, axis: y.mean(axis=axis) - x.mean(axis=axis),
            permutation_type="samples", alternative="greater", n_resamples=np.inf,
            vectorized=True).pvalue
        assert paired_permutation_pvalue(cur, base) == pytest.approx(ref)


def test_exact_tests_agree_with_brute_force_enumeration():
    assert exact_mcnemar_pvalue(5, 0) == pytest.approx(1 / 32)
    assert exact_mcnemar_pvalue(0, 3) == 1.0 and exact_mcnemar_pvalue(0, 0) == 1.0
    rng = np.random.default_rng(0)
    for n in (5, 9):
        base = rng.normal(size=n)
        cur = base - rng.normal(0.3, 0.5, size=n)
        brute = np.mean([
            (np.where(s, cur, base).mean() - np.where(s, base, cur).mean())
            >= base.mean() - cur.mean() - 1e-12
            for s in (np.array(bits, bool) for bits in itertools.product([0, 1], repeat=n))])
        assert paired_permutation_pvalue(cur, base) == pytest.approx(brute)
        num, den = rng.uniform(1, 5, n), rng.uniform(6, 9, n)
        p = paired_permutation_pvalue((num * 0.8, den), (num, den))
        assert p == pytest.approx(1 / 2**n)  # every sample worse: only the identity is as bad
    p, method = paired_test(np.array([0.0, 1, 1, 1, 1, 1]), np.ones(6))
    assert (p, method) == (0.5, "exact McNemar")
    big = rng.normal(size=200)
    p, method = paired_test(big - 0.2, big, n_perm=2000)
    assert p < 0.01 and method == "permutation (2000 draws)"
    assert paired_test(big - 0.2, big, n_perm=2000) == (p, method)  # deterministic
    assert largest_single_sample_effect(np.array([0.0, 1, 1]), np.ones(3)) == pytest.approx(1 / 3)
    lo, hi = paired_difference_interval(big - 0.2, big)
    assert lo == pytest.approx(-0.2) and hi == pytest.approx(-0.2)


def test_intervals_are_chosen_by_kind_and_sample_size():
    hits = np.array([1.0, 0, 1, 1, 1, 0, 1, 1])
    assert sample_ci(per_sample=hits) == wilson_interval(6, 8)
    cont = np.array([0.2, 0.5, 0.9, 0.4, 0.7])
    lo, hi = sample_ci(per_sample=cont)
    half = t_quantile(0.975, 4) * cont.std(ddof=1) / math.sqrt(5)
    assert (lo, hi) == (pytest.approx(cont.mean() - half), pytest.approx(cont.mean() + half))
    # hits stored in percent (0/100), as some plugins do: the same Wilson interval, in %
    lo, hi = sample_ci(per_sample=100 * hits)
    assert (lo, hi) == (pytest.approx(100 * wilson_interval(6, 8)[0]),
                        pytest.approx(100 * wilson_interval(6, 8)[1]))
    assert sample_ci(per_sample=np.full(4, 100.0))[0] < 100.0  # 4 of 4 is not certainty
    assert paired_test(np.array([0.0, 100, 100]), np.full(3, 100.0))[1] == "exact McNemar"
    res = one_task_run(hits.tolist(), [f"s{i}" for i in range(8)], n_total=8)
    lo, hi = metric_ci(res.results[0], "accuracy")
    assert (lo, hi) == (pytest.approx(100 * wilson_interval(6, 8)[0]),
                        pytest.approx(100 * wilson_interval(6, 8)[1]))


def test_misses_only_interval_is_in_the_metric_unit():
    """0 of 4 hits on a metric in percent: the interval is (0, 48.99) %, not (0, 0.49)."""
    from remotesam.bench.run.scoring import _bootstrap

    zeros = np.zeros(4)
    upper = wilson_interval(0, 4)[1]
    assert sample_ci(per_sample=zeros)[1] == pytest.approx(upper)
    assert sample_ci(per_sample=zeros, zero_hit=100.0)[1] == pytest.approx(100 * upper)
    # what the runner stores as ci95 (vg Acc@0.5 with no hit at --limit 4)
    assert _bootstrap(per_sample=zeros, unit="%")[1] == pytest.approx(100 * upper)
    assert _bootstrap(per_sample=zeros, unit="")[1] == pytest.approx(upper)
    # the leaderboard's interval from the stored per-sample values, for a run without ci95
    res = one_task_run([0.0] * 4, [f"s{i}" for i in range(4)], n_total=4)
    assert metric_ci(res.results[0], "accuracy")[1] == pytest.approx(100 * upper)


def test_interval_of_a_percentage_stays_within_0_and_100():
    """mlc label-wise accuracy on 4 images (85, 95, 100, 95 %): Student t overshoots 100."""
    from remotesam.bench.run.scoring import _bootstrap

    vals = np.array([85.0, 95.0, 100.0, 95.0])
    assert sample_ci(per_sample=vals)[1] > 100.0  # the raw t interval, unit-agnostic
    lo, hi = _bootstrap(per_sample=vals, unit="%")
    assert 0.0 <= lo < vals.mean() < hi == 100.0
    assert _bootstrap(per_sample=vals, unit="")[1] > 100.0  # a plain number is not clipped
    res = one_task_run((vals / 100).tolist(), [f"s{i}" for i in range(4)], n_total=4)
    assert metric_ci(res.results[0], "accuracy")[1] == 100.0
    near_zero = np.array([0.0, 5.0, 0.0, 1.0])
    assert _bootstrap(per_sample=near_zero, unit="%")[0] == 0.0


# ------------------------------------------------------------------------------- baselines


def test_gate_same_run_passes_and_doctored_baseline_fails(tmp_path):
    run = make_run()
    base = write_baseline(run, tmp_path / "base.json")
    loaded = Baseline.load(tmp_path / "base.json")
    assert loaded.schema == BASELINE_SCHEMA
    assert len([m for m in loaded.metrics if m.metric != N_FAILED]) == 6
    assert len([m for m in loaded.metrics if m.metric == N_FAILED]) == 3
    mi = next(m for m in loaded.metrics if m.task == "ref" and m.metric == "mIoU")
    assert mi.per_sample is not None and mi.tolerance.abs == 0.5
    assert next(m for m in loaded.metrics if m.metric == "mae").tolerance.rel == 0.02
    assert next(m for m in loaded.metrics if m.metric == N_FAILED).tolerance.abs == 0
    assert loaded.samples[(None, "ref", "rrsisd", "test")].evaluated_ids == IDS
    rep = compare(run, loaded)
    assert rep.exit_code == 0 and rep.count("pass") == 9
    # doctored: the baseline claims a better cnt acc (no per-sample values) -> regression
    doc = json.loads((tmp_path / "base.json").read_text())
    for m in doc["metrics"]:
        if m["metric"] == "accuracy":
            m["value"] += 2.0
    rep = compare(run, Baseline.from_dict(doc))
    assert rep.exit_code == 1
    row = _row(rep, "accuracy")
    assert row.status == "regressed" and row.delta == pytest.approx(-2.0)
    assert "regressed" in rep.to_text() and "REGRESSION" in rep.summary()
    # within tolerance (0.4 < 0.5 points) -> pass
    for m in doc["metrics"]:
        if m["metric"] == "accuracy":
            m["value"] -= 1.6
    assert compare(run, Baseline.from_dict(doc)).exit_code == 0
    assert base.source_run == run.run_id


def test_committed_and_format_1_baselines_load_and_gate(tmp_path):
    """The committed results/baseline.json (whatever its format) loads; a run that reproduces
    it passes; a format 1 file says what it could not check."""
    base = Baseline.load(REPO / "results" / "baseline.json")
    results: dict[tuple, TaskResult] = {}
    ck = CheckpointRef("tiny", "/x/tiny", (base.checkpoint or {}).get("sha256", "0" * 64))
    for m in base.metrics:
        key = (m.task, m.dataset, m.split)
        ss = base.samples.get((None, *key))
        r = results.setdefault(key, TaskResult(ck, m.task, 1, m.dataset, m.split))
        if m.metric == N_FAILED:
            continue
        r.metrics[m.metric] = MetricValue(m.value, m.higher_is_better, unit=m.unit)
        if m.per_sample:
            r.per_sample[m.metric] = m.per_sample
        if m.per_sample_ratio:
            r.per_sample_ratio[m.metric] = m.per_sample_ratio
        ids = (m.per_sample or m.per_sample_ratio or {}).get("sample_ids")
        if ss is not None:
            r.n_total, r.n_evaluated, r.n_failed = ss.n_total, ss.n_evaluated, ss.n_failed
            r.failures = [{"sample_id": s, "error": "x"} for s in ss.failed_ids or []]
        elif ids is not None:
            r.n_total = r.n_evaluated = len(ids)
    run = RunDocument("replay", "2026-01-01T00:00:00", results=list(results.values()))
    rep = compare(run, base)
    assert rep.exit_code == 0, rep.to_text()
    if any(math.isnan(m.value) for m in base.metrics):
        assert rep.count("unchecked") >= 1
    # format 1 written by the previous version of this module
    write_baseline(make_run(), tmp_path / "b.json")
    to_format_1(tmp_path / "b.json")
    old = Baseline.load(tmp_path / "b.json")
    rep = compare(make_run(), old)
    assert rep.exit_code == 0 and any("format 1" in n for n in rep.notes)
    cnt_failed = _row(rep, N_FAILED, "cnt/dior")
    assert cnt_failed.status == "pass" and "not recorded" in cnt_failed.note
    assert any("not checked" in n for n in rep.notes)


def test_baseline_records_no_absolute_checkpoint_path(tmp_path):
    run = make_run()
    base = write_baseline(run, tmp_path / "b.json")
    assert base.checkpoint["name"] == "ckpt_a"
    abs_run = make_run()
    for r in abs_run.results:
        r.checkpoint = CheckpointRef(str(tmp_path / "x" / "model.pth"), "p", r.checkpoint.sha256)
    assert write_baseline(abs_run, tmp_path / "c.json").checkpoint["name"] == "model.pth"
    # several checkpoints: entries name them by file name, and the gate matches that
    other = make_run("ckpt_b", 0.7, seed=2)
    for r in other.results:
        r.checkpoint = CheckpointRef(str(tmp_path / "y" / "other.pth"), "q", r.checkpoint.sha256)
    both = RunDocument("both", "x", results=abs_run.results + other.results)
    base = write_baseline(both, tmp_path / "d.json")
    assert {m.checkpoint for m in base.metrics} == {"model.pth", "other.pth"}
    assert str(tmp_path) not in (tmp_path / "d.json").read_text()
    assert compare(both, Baseline.load(tmp_path / "d.json")).exit_code == 0


@pytest.mark.parametrize("content, match", [
    (None, "does not exist"),
    ("{not json", "not valid JSON"),
    (json.dumps({"schema": "other"}), "field 'schema'"),
    (json.dumps({"schema": "remotesam-bench/baseline/9", "metrics": []}), "newer"),
    (json.dumps({"schema": BASELINE_SCHEMA, "metrics": []}), "non-empty list"),
    (json.dumps({"schema": BASELINE_SCHEMA, "metrics": [
        {"task": "ref", "dataset": "rrsisd", "split": "test", "metric": "mIoU"}]}),
     r"metrics\[0\]: lacks field 'value'"),
    (json.dumps({"schema": BASELINE_SCHEMA, "metrics": [
        {"task": "ref", "dataset": "rrsisd", "split": "test", "metric": "mIoU", "value": 1,
         "tolerance": {"abs": -1}}]}), r"tolerance\.abs: expected a number >= 0"),
    (json.dumps({"schema": BASELINE_SCHEMA, "metrics": [
        {"task": "ref", "dataset": "rrsisd", "split": "test", "metric": "mIoU", "value": 1,
         "per_sample": {"sample_ids": ["a"], "values": [1, 2]}}]}), "same length"),
    (json.dumps({"schema": BASELINE_SCHEMA, "samples": [
        {"task": "ref", "dataset": "rrsisd", "split": "test", "n_evaluated": 2,
         "evaluated_ids": ["a"], "failed_ids": [], "n_failed": 0}], "metrics": [
        {"task": "ref", "dataset": "rrsisd", "split": "test", "metric": "mIoU", "value": 1}]}),
     r"samples\[0\]: evaluated_ids holds 1 ids but n_evaluated is 2"),
    (json.dumps({"schema": BASELINE_SCHEMA, "samples": [
        {"task": "ref", "dataset": "rrsisd", "split": "test", "failed_ids": [3]}], "metrics": [
        {"task": "ref", "dataset": "rrsisd", "split": "test", "metric": "mIoU", "value": 1}]}),
     r"samples\[0\]\.failed_ids: expected a list of sample ids"),
])
def test_gate_bad_baseline_file_is_a_clear_error(tmp_path, content, match):
    path = tmp_path / "b.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(GateError, match=match):
        Baseline.load(path)


def test_gate_respects_lower_is_better(tmp_path):
    run = make_run(mae=1.0)
    write_baseline(run, tmp_path / "b.json")
    base = Baseline.load(tmp_path / "b.json")
    rep = compare(make_run(mae=1.5), base)
    row = _row(rep, "mae")
    assert row.status == "regressed" and rep.exit_code == 1 and row.worse == pytest.approx(0.5)
    rep = compare(make_run(mae=0.5), base)
    assert _row(rep, "mae").status == "improved" and rep.exit_code == 0
    assert compare(make_run(mae=1.01), base).exit_code == 0  # 2% relative default tolerance


def test_gate_missing_metric_exits_2(tmp_path):
    run = make_run()
    write_baseline(run, tmp_path / "b.json")
    base = Baseline.load(tmp_path / "b.json")
    del run.results[2].metrics["mae"]
    rep = compare(run, base)
    assert rep.exit_code == 2
    row = next(r for r in rep.rows if r.status == "missing")
    assert row.metric == "mae" and "has no metric 'mae'" in row.note
    run.results.pop(0)
    rep = compare(run, base)
    assert rep.count("missing") == 4 and rep.exit_code == 2  # ref oIoU, mIoU, n_failed; mae


def test_gate_several_checkpoints(tmp_path):
    a, b = make_run("ckpt_a", 0.55, seed=1), make_run("ckpt_b", 0.70, seed=2)
    both = RunDocument(run_id="both", created="2026-01-05T00:00:00",
                       results=a.results + b.results)
    base = write_baseline(both, tmp_path / "b.json")
    assert {m.checkpoint for m in base.metrics} == {"ckpt_a", "ckpt_b"}
    assert compare(both, Baseline.load(tmp_path / "b.json")).exit_code == 0
    single = write_baseline(a, tmp_path / "a.json")
    assert all(m.checkpoint is None for m in single.metrics)
    with pytest.raises(GateError, match="pass --checkpoint"):
        compare(both, single)
    assert compare(both, single, checkpoint="ckpt_a").exit_code == 0
    assert compare(both, single, checkpoint="ckpt_b").exit_code in (0, 1)
    with pytest.raises(GateError, match="no checkpoint 'nope'"):
        compare(both, single, checkpoint="nope")


# ------------------------------------------------------------------------------- context + CI


_cli = reports_cli_main


@pytest.fixture
def results_dir(tmp_path) -> Path:
    for run in (make_run("ckpt_a", 0.55, created="2026-01-01T00:00:00", seed=1, mae=1.5),
                make_run("ckpt_b", 0.70, created="2026-01-02T00:00:00", seed=2, mae=0.9)):
        run.save(tmp_path / "results" / "runs" / f"{run.run_id}.json")
    return tmp_path / "results"


def test_cli_baseline_and_gate_exit_codes(results_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    base = tmp_path / "baseline.json"
    assert _cli(["baseline", "--results-dir", str(results_dir), "--out", str(base)]) == 0
    assert json.loads(base.read_text())["schema"] == BASELINE_SCHEMA
    assert "the sample sets of 3 task/dataset(s)" in capsys.readouterr().err
    # the newest run is ckpt_b: gate it against itself
    assert _cli(["gate", "--results-dir", str(results_dir), "--baseline", str(base)]) == 0
    # ckpt_a is worse than ckpt_b on every metric
    assert _cli(["gate", "--results-dir", str(results_dir), "--baseline", str(base),
                 "--run", "run-ckpt_a", "--json", str(tmp_path / "rep.json")]) == 1
    rep = json.loads((tmp_path / "rep.json").read_text())
    assert rep["exit_code"] == 1 and any(r["status"] == "regressed" for r in rep["rows"])
    out = capsys.readouterr().out
    assert "regressed" in out and "::error" not in out  # no annotations outside GitHub
    # errors: missing baseline, malformed baseline, unknown run, no runs at all
    assert _cli(["gate", "--results-dir", str(results_dir), "--baseline",
                 str(tmp_path / "nope.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("[1, 2")
    assert _cli(["gate", "--results-dir", str(results_dir), "--baseline",
                 str(tmp_path / "bad.json")]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert _cli(["gate", "--results-dir", str(results_dir), "--baseline", str(base),
                 "--run", "run-zzz"]) == 2
    assert "run-ckpt_a" in capsys.readouterr().err  # lists the run ids that exist
    (results_dir / "runs" / "run-ckpt_a.json").rename(results_dir / "runs" / "renamed.json")
    assert _cli(["baseline", "--results-dir", str(results_dir), "--run", "run-ckpt_a",
                 "--out", str(tmp_path / "a.json")]) == 0
    assert _cli(["gate", "--results-dir", str(results_dir), "--baseline",
                 str(tmp_path / "a.json"), "--run", "run-ckpt_"]) == 2
    assert "ambiguous" in capsys.readouterr().err
    # missing metric
    doc = json.loads(base.read_text())
    doc["metrics"].append(dict(doc["metrics"][0], metric="Prec@0.9"))
    base.write_text(json.dumps(doc))
    assert _cli(["gate", "--results-dir", str(results_dir), "--baseline", str(base)]) == 2
    assert "missing" in capsys.readouterr().out


def test_cli_not_comparable_and_intersection(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    ids = [f"s{i:02d}" for i in range(12)]
    hits = [1, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1, 1]
    write_baseline(one_task_run(hits, ids, n_total=42), tmp_path / "b.json")
    one_task_run(hits[:6], ids[:6], n_total=42, run_id="limited").save(
        tmp_path / "res" / "runs" / "limited.json")
    argv = ["gate", "--results-dir", str(tmp_path / "res"), "--baseline", str(tmp_path / "b.json")]
    assert _cli(argv) == 2
    out = capsys.readouterr().out
    assert "NOT COMPARABLE" in out and "baseline n=12, run n=6, in common 6" in out
    assert "subset" in out and "6/42" in out
    assert _cli([*argv, "--intersection"]) == 0
    assert "in common 6; scored on the 6 common samples (intersection)" in capsys.readouterr().out


def test_ci_outputs_junit_annotations_and_step_summary(tmp_path, capsys, monkeypatch):
    ids = [f"{i:05d}.jpg" for i in range(8)]
    acc = [1.0, 0.95, 0.9, 0.9, 0.8, 0.85, 0.8, 0.9]
    write_baseline(one_task_run(acc, ids, n_total=48, task="mlc", dataset="dior"),
                   tmp_path / "b.json")
    broken = one_task_run(acc[:4], ids[:4], n_total=48, failed=ids[4:], task="mlc",
                          dataset="dior", run_id="broken")
    broken.results[0].synthetic = True  # the embedded procedural benchmark
    broken.save(tmp_path / "res" / "runs" / "broken.json")
    monkeypatch.setattr(reports_cli, "find_run", lambda spec, results_dir: broken)
    summary = tmp_path / "step_summary.md"
    summary.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert _cli(["gate", "--results-dir", str(tmp_path / "res"), "--baseline",
                 str(tmp_path / "b.json"), "--junit", str(tmp_path / "gate.xml"),
                 "--summary", str(tmp_path / "own.md")]) == 1
    out = capsys.readouterr().out
    errors = [ln for ln in out.splitlines() if ln.startswith("::error ")]
    assert len(errors) == 1
    assert errors[0].startswith(
        "::error title=remotesam-bench gate%3A mlc/dior n_failed regressed::"
    )
    assert "4 newly failed" in errors[0] and "\n" not in errors[0]
    assert any(ln.startswith("::warning ") and "synthetic data" in ln for ln in out.splitlines())
    # JUnit: one testcase per gated metric, the failure carries the message
    root = ET.parse(tmp_path / "gate.xml").getroot()
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["accuracy", N_FAILED]
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    failure = cases[1].find("failure")
    assert failure is not None and "4 newly failed" in failure.get("message")
    assert cases[0].find("failure") is None
    # Markdown: appended to $GITHUB_STEP_SUMMARY, and written to --summary
    md = summary.read_text()
    assert md.startswith("# earlier step\n") and "remotesam-bench gate: REGRESSION" in md
    header = next(ln for ln in md.splitlines() if ln.startswith("| task/dataset"))
    for col in ("metric", "baseline", "run", "delta", "95% CI of delta", "p"):
        assert f"| {col} |" in header
    assert "| mlc/dior |" in md and "synthetic data" in md and "4 failed sample(s)" in md
    assert (tmp_path / "own.md").read_text() == md[len("# earlier step\n"):]


def test_junit_marks_not_comparable_as_errors_and_nothing_checked(tmp_path):
    ids = [f"s{i:02d}" for i in range(12)]
    write_baseline(one_task_run([1.0] * 12, ids, n_total=42), tmp_path / "b.json")
    rep = compare(one_task_run([1.0] * 6, ids[:6], n_total=42), Baseline.load(tmp_path / "b.json"))
    suite = ET.fromstring(rep.to_junit()).find("testsuite")
    assert suite.get("errors") == "3" and suite.get("failures") == "0"  # 2 rows + nothing checked
    names = [c.get("name") for c in suite.findall("testcase")]
    assert names == ["accuracy", N_FAILED, "nothing checked"]
    err = suite.findall("testcase")[0].find("error")
    assert err.get("type") == "not comparable" and "in common 6" in err.get("message")
    assert any(a.startswith("::error title=") and "not comparable" in a
               for a in rep.github_annotations())
    assert "NOT COMPARABLE" in rep.to_markdown() and "**not comparable**" in rep.to_markdown()


def test_ci_outputs_when_the_gate_cannot_run(tmp_path, capsys, monkeypatch):
    summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    make_run().save(tmp_path / "res" / "runs" / "r.json")
    assert _cli(["gate", "--results-dir", str(tmp_path / "res"), "--baseline",
                 str(tmp_path / "missing.json"), "--junit", str(tmp_path / "gate.xml")]) == 2
    captured = capsys.readouterr()
    assert "does not exist" in captured.err
    assert captured.out.startswith("::error title=remotesam-bench gate could not run::baseline")
    suite = ET.parse(tmp_path / "gate.xml").getroot().find("testsuite")
    assert suite.get("errors") == "1" and "does not exist" in suite.find("testcase/error").text
    assert "could not run" in summary.read_text()


def test_gate_marks_subset_synthetic_and_failed_context(tmp_path):
    ids = [f"s{i}" for i in range(8)]
    run = one_task_run([1.0] * 6, ids[:6], n_total=40, failed=ids[6:])
    run.results[0].synthetic = True
    write_baseline(run, tmp_path / "b.json")
    base = Baseline.load(tmp_path / "b.json")
    assert base.samples[(None, "mcc", "ucmerced", "test")].synthetic is True
    rep = compare(run, base)
    g = rep.groups[0]
    assert g.flags == ["subset", "synthetic", "2 failed"]
    assert "run evaluated 6, 2 failed of 40 samples (subset, synthetic)" in g.describe()
    assert rep.context_flags == ["subset run (1 of 1 task/datasets)", "synthetic data",
                                 "2 failed sample(s)"]
    assert "6/40 +2 failed subset synthetic" in rep.to_text(width=300)
    assert "6/40 +2 failed subset synthetic" in rep.to_markdown(show_all=True)
    d = rep.to_dict()
    assert d["groups"][0]["subset"] and d["groups"][0]["synthetic"] and d["context"]
    run.results[0].synthetic = False
    assert any("baseline was measured on synthetic data, the run on real data" in n
               for n in compare(run, base).notes)


# ------------------------------------------------------------------------------- pytest plugin


def test_pytest_fixture_passes_and_fails(tmp_path, remotesam_gate):  # noqa: F811 (fixture)
    run = make_run()
    run_path = run.save(tmp_path / "runs" / "r.json")
    write_baseline(run, tmp_path / "b.json")
    report = remotesam_gate(run_path, tmp_path / "b.json")
    assert report.passed
    assert remotesam_gate(tmp_path, tmp_path / "b.json").passed  # folder -> newest run
    worse = make_run(mae=3.0)
    with pytest.raises(pytest.fail.Exception, match="regressed"):
        remotesam_gate(worse, tmp_path / "b.json")
    with pytest.raises(pytest.fail.Exception, match="does not exist"):
        check_gate(run, tmp_path / "missing.json")
    with pytest.raises(pytest.fail.Exception, match="give baseline="):
        check_gate(run)


pytest_plugins = ["pytester"]


def test_pytest_plugin_marker_in_a_users_suite(pytester, tmp_path, monkeypatch):
    run = make_run()
    run_path = run.save(tmp_path / "runs" / "r.json")
    write_baseline(run, tmp_path / "good.json")
    write_baseline(make_run(mae=0.1), tmp_path / "strict.json")
    strict = str(tmp_path / "strict.json")
    pytester.makepyfile(f"""
        import pytest

        @pytest.mark.remotesam_gate(run={str(run_path)!r}, baseline={str(tmp_path / "good.json")!r})
        def test_ok():
            pass

        @pytest.mark.remotesam_gate(run={str(run_path)!r}, baseline={strict!r})
        def test_regressed():
            pass

        def test_fixture(remotesam_gate):
            remotesam_gate({str(run_path)!r}, {str(tmp_path / "strict.json")!r})

        @pytest.mark.remotesam_gate(baseline={str(tmp_path / "good.json")!r})
        def test_nothing_to_gate():
            pass
    """)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = pytester.runpytest_inprocess("-p", "remotesam.bench.pytest_plugin",
                                          "--strict-markers")
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines(["*gate REGRESSION*"])
    result.stdout.fnmatch_lines(["*needs run= (a run document or results folder) or tasks=*"])


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:evaluated .* a subset:UserWarning")  # --limit on purpose
def test_pytest_fixture_evaluates_the_bundled_checkpoint_and_gates_it(
        tmp_path, remotesam_gate):  # noqa: F811 (fixture)
    """A user's CI job as one pytest step: evaluate a few samples, gate them."""
    from remotesam.bench.run import evaluate

    work = tmp_path / "results"
    doc = evaluate(tasks="mcc", limit=3, results_dir=work, device="cpu", progress=False)
    (res,) = doc.results
    assert (res.task, res.n_evaluated, res.n_failed, res.n_total) == ("mcc", 3, 0, 21)
    write_baseline(doc, tmp_path / "b.json")
    # same tasks and limit: comparable, cached predictions, passes
    report = remotesam_gate(baseline=tmp_path / "b.json", tasks=["mcc"], limit=3,
                            results_dir=work, device="cpu", junit=tmp_path / "gate.xml")
    assert report.passed and report.groups[0].run.subset
    assert ET.parse(tmp_path / "gate.xml").getroot().find("testsuite").get("tests") == "5"
    # a baseline that claims more: the fixture fails the test with the table
    doc_b = json.loads((tmp_path / "b.json").read_text())
    for m in doc_b["metrics"]:
        if m["metric"] == "macro_f1":
            m["value"] = m["value"] + 40.0
    (tmp_path / "strict.json").write_text(json.dumps(doc_b))
    with pytest.raises(pytest.fail.Exception, match="gate REGRESSION"):
        remotesam_gate(baseline=tmp_path / "strict.json", tasks="mcc", limit=3,
                       results_dir=work, device="cpu")
    # against the committed full baseline: not comparable, unless scored on the intersection
    full = REPO / "results" / "baseline.json"
    with pytest.raises(pytest.fail.Exception, match="NOT COMPARABLE"):
        remotesam_gate(baseline=full, tasks="mcc", limit=3, results_dir=work, device="cpu")
    report = remotesam_gate(baseline=full, tasks="mcc", limit=3, results_dir=work,
                            device="cpu", intersection=True)
    assert _row(report, "accuracy").n_paired == 3


# issue 19 item 17
def test_junit_parses_when_names_hold_control_characters(tmp_path):
    ids = [f"s{i:02d}" for i in range(12)]
    vals = [1.0] * 12
    for name in ("acc\x1b[31m", "acc\x00\x0b\ufffe", "acc\udc80"):
        write_baseline(one_task_run(vals, ids, n_total=12, metric=name, run_id="b"),
                       tmp_path / "b.json")
        rep = compare(one_task_run([*vals[:11], 0.0], ids, n_total=12, metric=name,
                                   dataset="ucm\x1b"), Baseline.load(tmp_path / "b.json"))
        text = rep.to_junit()
        root = ET.fromstring(text)  # well-formed XML 1.0
        names = [c.get("name") for c in root.iter("testcase")]
        assert "acc" + repr(name[3:])[1:-1] in names
        assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]", text)
        (tmp_path / "g.xml").write_text(text, encoding="utf-8")
        ET.parse(tmp_path / "g.xml")
    from remotesam.bench.gate.verdict import error_junit

    junit = error_junit("bad file \x1b[0m\udcff.json")
    assert "bad file \\x1b[0m\\udcff.json" in ET.fromstring(junit).find(".//error").get("message")


def test_a_result_without_per_sample_values_is_matched_by_its_sample_ids(tmp_path):
    """A task without per-sample metrics (det: AP is not decomposable) records the ids it
    evaluated on the result itself, so a same-size but different sample set is not comparable
    (it used to pass as comparable, matched by count)."""
    def det_run(ids: list[str], value: float = 40.0) -> RunDocument:
        res = _result(_ckpt(), "det", "dior", {"mAP50": (value, True, True, "%")}, n=len(ids))
        res.sample_ids = list(ids)
        return RunDocument(run_id="r", created="2026-01-01T00:00:00", results=[res])

    ids = [f"{i:05d}.jpg" for i in range(8)]
    write_baseline(det_run(ids), tmp_path / "b.json")
    base = Baseline.load(tmp_path / "b.json")
    assert base.samples[(None, "det", "dior", "test")].evaluated_ids == ids
    assert compare(det_run(ids, 40.0), base).exit_code == 0
    other = det_run([f"{i:05d}.jpg" for i in range(4, 12)])  # 8 samples, 4 in common
    rep = compare(other, base)
    assert rep.exit_code == 2 and "in common 4" in _row(rep, "mAP50").note
    # the run document keeps the ids
    doc = RunDocument.from_json(other.to_json())
    assert doc.results[0].sample_ids == other.results[0].sample_ids


def test_every_scored_result_records_its_sample_ids(tmp_path):
    from remotesam.bench.api import Sample
    from remotesam.bench.run.jobs import Job
    from remotesam.bench.run.scoring import score_job
    from remotesam_plugins.det import DetectionTask

    samples = [Sample(sample_id=f"{i}.jpg", image=f"{i}.jpg",
                      target={"bbox_xyxy": [[0, 0, 4, 4]], "labels": ["airplane"]},
                      meta={"dataset": "dior", "image_id": i}) for i in (3, 1, 2)]
    preds = {s.sample_id: {"hbb": {"boxes": [[0, 0, 4, 4]], "scores": [0.9],
                                   "labels": ["airplane"]}, "size": [8, 8]}
             for s in samples[:2]}
    job = Job("det", DetectionTask(), "dior", "test", tmp_path, samples, 3, {}, "h")
    res = score_job(job, _ckpt(), preds, {samples[2].sample_id: "OSError: broken"})
    assert res.sample_ids == ["3.jpg", "1.jpg"] and res.n_failed == 1
    assert not res.per_sample and not res.per_sample_ratio  # det: nothing else holds the ids
