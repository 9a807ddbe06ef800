"""Reports: bootstrap statistics, published numbers, leaderboards, radar charts, gate, CLI.

Run documents are built in code (no model needed): two checkpoints scored on three tasks, with
per-sample values (mean and ratio metrics) where a real plugin would store them.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from run_support import make_run, reports_cli_main

from remotesam.bench.records.published import load_published, normalise_name
from remotesam.bench.records.results import RunDocument
from remotesam.bench.records.stats import bootstrap_ci, metric_ci, paired_permutation_pvalue
from remotesam.bench.reports.leaderboard import build_leaderboard
from remotesam.bench.reports.radar import axis_label, build_radar, radar_axes, save_radar


@pytest.fixture
def two_runs() -> list[RunDocument]:
    return [make_run("ckpt_a", 0.55, created="2026-01-01T00:00:00", seed=1, mae=1.5),
            make_run("ckpt_b", 0.70, created="2026-01-02T00:00:00", seed=2, mae=0.9)]


# ------------------------------------------------------------------------------- stats


def test_bootstrap_ci_deterministic_and_covers_the_estimate():
    x = np.random.default_rng(3).random(400)
    lo, hi = bootstrap_ci(x, seed=7)
    assert (lo, hi) == bootstrap_ci(x, seed=7)
    assert lo < x.mean() < hi
    assert bootstrap_ci(x, seed=8) != (lo, hi)
    # the interval shrinks roughly like 1/sqrt(n)
    lo4, hi4 = bootstrap_ci(np.tile(x, 4), seed=7)
    assert (hi4 - lo4) < 0.7 * (hi - lo)
    # width close to the normal approximation 2 * 1.96 * sd / sqrt(n)
    expected = 2 * 1.96 * x.std(ddof=1) / math.sqrt(x.size)
    assert abs((hi - lo) - expected) < 0.15 * expected


def test_bootstrap_ci_ratio_resamples_num_and_den_together():
    rng = np.random.default_rng(0)
    den = rng.uniform(1, 10, 300)
    num = 0.4 * den  # every sample has ratio 0.4, so every resample too
    lo, hi = bootstrap_ci(ratio=(num, den))
    assert lo == pytest.approx(0.4) and hi == pytest.approx(0.4)
    num2 = num + rng.normal(0, 0.5, 300)
    lo, hi = bootstrap_ci(ratio=(num2, den))
    assert lo < num2.sum() / den.sum() < hi


@pytest.mark.parametrize("kwargs, match", [
    ({}, "exactly one"),
    ({"per_sample": [1.0], "ratio": ([1.0], [1.0])}, "exactly one"),
    ({"ratio": ([1.0, 2.0], [1.0])}, "aligned"),
    ({"per_sample": [[1.0, 2.0]]}, "1-D"),
    ({"per_sample": [1.0], "n_boot": 0}, "n_boot"),
])
def test_bootstrap_ci_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bootstrap_ci(**kwargs)


def test_bootstrap_ci_edge_cases():
    assert all(math.isnan(v) for v in bootstrap_ci([]))
    assert all(math.isnan(v) for v in bootstrap_ci([1.0, float("nan")]))
    assert bootstrap_ci([0.3]) == (0.3, 0.3)


def test_paired_permutation_pvalue_separates_consistent_drop_from_noise():
    rng = np.random.default_rng(5)
    base = rng.random(200)
    # every sample 0.03 worse: a real, consistent drop
    assert paired_permutation_pvalue(base - 0.03, base, n_perm=2000) < 0.01
    # same mean drop carried by noise of 0.3 per sample: not significant
    noisy = base - 0.03 + rng.normal(0, 0.6, 200)
    noisy += (base.mean() - 0.03) - noisy.mean()  # exact same mean drop
    assert paired_permutation_pvalue(noisy, base, n_perm=2000) > 0.05
    # improvement and equality give p = 1; direction flips for lower-is-better
    assert paired_permutation_pvalue(base + 0.01, base) == 1.0
    assert paired_permutation_pvalue(base, base) == 1.0
    assert paired_permutation_pvalue(base - 0.03, base, higher_is_better=False) == 1.0
    assert paired_permutation_pvalue(base + 0.03, base, higher_is_better=False,
                                     n_perm=2000) < 0.01
    # ratio metrics, and determinism
    den = rng.uniform(1, 5, 200)
    p1 = paired_permutation_pvalue((base * den - 0.1, den), (base * den, den), n_perm=2000,
                                   seed=1)
    assert p1 < 0.01 and p1 == paired_permutation_pvalue((base * den - 0.1, den),
                                                          (base * den, den), n_perm=2000,
                                                          seed=1)
    with pytest.raises(ValueError, match="both"):
        paired_permutation_pvalue((base, den), base)


def test_metric_ci_scales_fraction_per_sample_values_to_percent():
    run = make_run()
    ref = run.results[0]
    lo, hi = metric_ci(ref, "mIoU")
    assert lo < ref.metrics["mIoU"].value < hi and hi > 1.0  # percent scale
    lo, hi = metric_ci(ref, "oIoU")
    assert lo < ref.metrics["oIoU"].value < hi
    assert metric_ci(run.results[2], "accuracy") is None  # no per-sample values
    # per-sample values that do not reproduce the metric give no interval
    ref.metrics["mIoU"].value += 5.0
    assert metric_ci(ref, "mIoU") is None


# ------------------------------------------------------------------------------- published


def test_published_numbers_match_the_paper_tables():
    table = load_published()

    def one(task, ds, metric, model="RemoteSAM", split="test", protocol="official"):
        recs = table.lookup(task, ds, split, metric, [model], protocol=protocol)
        assert len(recs) == 1, (task, ds, metric, model, recs)
        return recs[0]

    assert one("ref", "rrsisd", "mIoU").value == 71.75
    assert one("ref", "rrsisd", "oIoU").value == 80.04
    assert one("ref", "rrsisd", "Pr@0.9", "RS2-SAM2").value == 29.73
    assert one("ref", "risbench", "mIoU", "CroBIM").value == 69.33
    assert one("seg", "isaid", "mIoU", split="val").value == 64.72
    assert one("seg", "potsdam", "mF1").value == 91.80
    assert one("det", "dior", "mAP50").value == 62.74
    assert one("det", "dotav2", "mAP50_obb", "Falcon", "test-dev", "unstated").value == 23.29
    assert one("vg", "dior_rsvg", "Acc@0.5").value == 74.36
    assert one("mlc", "dior", "accuracy").value == 94.0
    assert one("cnt", "dior", "accuracy").value == 62.0
    cap = one("cap", "ucm_captions", "CIDEr")
    assert cap.value == 12.370 and cap.unit == ""
    assert one("cnt", "dior", "accuracy", "Falcon").source == "Fig. 1 radar"
    # aliases and name normalisation
    assert one("vg", "RSVG", "AP50").value == 74.36
    assert one("ref", "RRSIS-D", "prec_0.5").value == 84.46
    assert one("ref", "rrsisd", "Pr@0.5").value == 84.46
    assert one("det", "DOTA", "AP50", split="test-dev", protocol="unstated").value == 20.17
    assert one("mlc", "dior", "acc").value == 94.0
    assert one("cap", "ucm", "cider").value == 12.370
    assert table.lookup("mcc", "ucmerced", "test", "accuracy") == []
    assert table.model_names()[0] == "RemoteSAM"
    assert normalise_name("Acc@0.5") == "acc05"
    tasks = {r.task for r in table.results}
    assert tasks == {"ref", "seg", "det", "vg", "mlc", "cnt", "cap"}
    assert all(r.model in table.models for r in table.results)


def test_published_file_errors_name_the_record(tmp_path):
    bad = tmp_path / "pub.json"
    bad.write_text(json.dumps({"schema": "remotesam-bench/published/1", "results": [
        {"model": "X", "task": "ref", "dataset": "rrsisd", "split": "test", "metric": "mIoU",
         "value": "high", "unit": "%", "higher_is_better": True, "source": "T1"}]}))
    with pytest.raises(ValueError, match=r"results\[0\]\.value"):
        load_published(bad)
    bad.write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_published(bad)


def _builtin_plugin_classes():
    from importlib.metadata import entry_points

    out = []
    for ep in entry_points(group="remotesam_bench.tasks"):
        if ep.value.startswith("remotesam_plugins."):
            try:
                out.append(ep.load())
            except Exception:  # not written yet or broken: covered by its own tests
                continue
    return out


def test_published_metric_names_match_the_builtin_plugins():
    """Every published (task, metric) resolves to a metric a built-in plugin reports."""
    classes = _builtin_plugin_classes()
    if not classes:
        pytest.skip("no built-in task plugin importable yet")
    table = load_published()
    problems = []
    for cls in classes:
        ours = {table.canonical_metric(cls.name, m.name) for m in cls.metrics}
        published = {table.canonical_metric(r.task, r.metric) for r in table.results
                     if r.task == cls.name}
        missing = published - ours
        if missing:
            problems.append(f"{cls.name}: published metrics {sorted(missing)} match none of "
                            f"{[m.name for m in cls.metrics]}")
    assert not problems, "; ".join(problems)


# ------------------------------------------------------------------------------- leaderboard


def test_leaderboard_two_checkpoints_every_format(two_runs):
    board = build_leaderboard(two_runs)
    sha_a, sha_b = (r.results[0].checkpoint.sha256[:8] for r in two_runs)
    assert board.rows == [f"ckpt_a ({sha_a})", f"ckpt_b ({sha_b})"]
    labels = [c.label for c in board.columns]
    # primary metric of each task first
    assert labels[:2] == ["ref/rrsisd oIoU", "ref/rrsisd mIoU"]
    assert labels.index("vg/dior_rsvg Acc@0.5") < labels.index("vg/dior_rsvg mIoU")
    assert "cnt/dior mae ↓" in labels
    for fmt in ("md", "csv", "html", "latex"):
        text = board.render(fmt)
        for row in board.rows:
            shown = row.replace("_", "\\_") if fmt == "latex" else row
            assert shown in text, (fmt, row)
    md = board.to_markdown()
    assert len([ln for ln in md.splitlines() if ln.startswith("| ckpt_")]) == 2
    csv = pd.read_csv(io.StringIO(board.to_csv()), index_col=0)
    assert csv.shape == (2, len(board.columns))
    assert csv.loc[board.rows[1], "cnt/dior mae ↓"] == pytest.approx(0.9)
    html = board.to_html()
    assert html.count("<tr") == 3 and "<strong>" in html  # header + 2 rows
    latex = board.to_latex()
    assert "DIOR-RSVG" in latex and "\\textbf{" in latex and "\\begin{tabular}" in latex
    assert "\\begin{table}" in latex and "\\caption{" in latex and "\\cmidrule" in latex
    with pytest.raises(ValueError, match="unknown leaderboard format"):
        board.render("xlsx")


def test_leaderboard_marks_best_direction_aware(two_runs):
    board = build_leaderboard(two_runs)
    a, b = board.rows
    assert board.best.at[b, "cnt/dior accuracy"] and not board.best.at[a, "cnt/dior accuracy"]
    # MAE: ckpt_a has 1.5, ckpt_b 0.9 -> the lower one is best
    assert board.best.at[b, "cnt/dior mae ↓"] and not board.best.at[a, "cnt/dior mae ↓"]
    assert "**0.900**" in board.to_markdown()
    two_runs[1].results[2].metrics["mae"].value = 2.0
    board = build_leaderboard(two_runs)
    assert board.best.at[a, "cnt/dior mae ↓"] and not board.best.at[b, "cnt/dior mae ↓"]


def test_leaderboard_newest_run_wins_and_selection(two_runs):
    rerun = make_run("ckpt_a", 0.55, run_id="run-a2", created="2026-01-03T00:00:00", seed=1,
                     mae=0.5)
    board = build_leaderboard([*two_runs, rerun], metrics="primary")
    assert len(board.rows) == 2
    assert [c.metric for c in board.columns] == ["oIoU", "Acc@0.5", "accuracy"]
    board = build_leaderboard([*two_runs, rerun], metrics="mae", tasks=["cnt"])
    assert board.values.iloc[0, 0] == 0.5
    with pytest.raises(ValueError, match="no column has metric"):
        build_leaderboard(two_runs, metrics="CIDEr")
    with pytest.raises(ValueError, match="no results for task"):
        build_leaderboard(two_runs, tasks=["det"])
    with pytest.raises(ValueError, match="no task results"):
        build_leaderboard([])


def test_leaderboard_confidence_intervals(two_runs):
    board = build_leaderboard(two_runs, ci=True)
    cell = board.cells[(board.rows[0], "ref/rrsisd mIoU")]
    assert cell.ci95 is not None and cell.ci95[0] < cell.value < cell.ci95[1]
    assert board.cells[(board.rows[0], "cnt/dior accuracy")].ci95 is None
    # a stored interval is used as is
    two_runs[0].results[2].metrics["accuracy"].ci95 = (1.0, 2.0)
    board = build_leaderboard(two_runs, ci=True)
    assert board.cells[(board.rows[0], "cnt/dior accuracy")].ci95 == (1.0, 2.0)
    md = board.to_markdown()
    assert "[1.00, 2.00]" in md
    csv = pd.read_csv(io.StringIO(board.to_csv()), index_col=0)
    assert csv.loc[board.rows[0], "cnt/dior accuracy ci_lo"] == 1.0
    assert build_leaderboard(two_runs, ci=True).cells == board.cells  # deterministic


def test_leaderboard_published_reference_rows(two_runs):
    board = build_leaderboard(two_runs, published=True)
    assert "RemoteSAM [paper]" in board.published_rows
    assert board.values.at["RemoteSAM [paper]", "ref/rrsisd mIoU"] == 71.75
    assert board.values.at["RemoteSAM [paper]", "vg/dior_rsvg Acc@0.5"] == 74.36
    assert math.isnan(board.values.at["RemoteSAM [paper]", "cnt/dior mae ↓"])
    # every published row has at least one number in the columns shown
    assert all(board.values.loc[r].notna().any() for r in board.published_rows)
    for fmt in ("md", "csv", "html", "latex"):
        assert "RemoteSAM [paper]" in board.render(fmt)
    assert "†" in board.to_markdown()  # Falcon's counting value exists only in Fig. 1
    only = build_leaderboard(two_runs, published=True, published_models=["RemoteSAM"])
    assert only.published_rows == ["RemoteSAM [paper]"] and len(only.rows) == 3
    # the paper's own spellings of a model name are accepted (Table 12 prints "Qwen-VL-chat")
    alias = build_leaderboard(two_runs, published=True, published_models=["qwen-vl-chat"])
    canon = build_leaderboard(two_runs, published=True, published_models=["Qwen-VL-Chat"])
    assert alias.published_rows == canon.published_rows and alias.rows == canon.rows
    with pytest.raises(ValueError, match="unknown published model"):
        build_leaderboard(two_runs, published=True, published_models=["GPT-9"])
    # a run's failures are reported under the table
    two_runs[0].results[0].n_failed = 3
    assert "3 of 60 samples failed" in build_leaderboard(two_runs).to_markdown()


def test_leaderboard_keeps_a_row_per_model_factory_and_precision():
    # The same weights through another model factory (a constant floor) or another precision
    # are another model: their run must not replace the trained model's row.
    trained = make_run("ckpt_a", 0.90, created="2026-01-01T00:00:00", seed=1)
    floor = make_run("ckpt_a", 0.10, created="2026-01-02T00:00:00", seed=1)
    floor.provenance["model_factory"] = "remotesam.testing:constant_foreground_model"
    half = make_run("ckpt_a", 0.50, created="2026-01-03T00:00:00", seed=1)
    half.provenance["precision"] = "bf16"
    board = build_leaderboard([trained, floor, half])
    assert len(board.rows) == 3
    assert any(r.endswith("[constant_foreground_model]") for r in board.rows)
    assert any(r.endswith("[bf16]") for r in board.rows)
    values = sorted(board.values["ref/rrsisd mIoU"].round(6).tolist())
    assert len(set(values)) == 3


def test_leaderboard_marks_subset_synthetic_and_failed_in_every_format(two_runs):
    a_ref = two_runs[0].results[0]
    a_ref.n_evaluated, a_ref.n_total = 12, 60  # --limit 12
    b_vg = two_runs[1].results[1]
    b_vg.n_evaluated, b_vg.n_failed = 57, 3
    for r in two_runs[1].results:
        r.synthetic = True
    board = build_leaderboard(two_runs)
    a, b = board.rows
    assert board.cells[(a, "ref/rrsisd oIoU")].flags == ["subset"]
    assert board.cells[(b, "vg/dior_rsvg Acc@0.5")].flags == ["synthetic", "failed"]
    md = board.to_markdown()
    assert "ᵖ" in md and "ˢ" in md and "ᶠ" in md
    assert "subset (--limit), samples selected: 12 of 60 on ref/rrsisd:test" in md
    assert "3 of 60 samples failed" in md and "synthetic: measured on the procedural" in md
    csv = pd.read_csv(io.StringIO(board.to_csv()), index_col=0)
    assert csv.loc[a, "ref/rrsisd oIoU context"] == "subset 12/60"
    assert csv.loc[b, "vg/dior_rsvg Acc@0.5 context"] == "synthetic; 3 failed"
    html = board.to_html()
    assert 'class="flag flag-subset"' in html and 'class="flag flag-synthetic"' in html
    latex = board.to_latex()
    assert "\\textsuperscript{p}" in latex and "\\textsuperscript{s}" in latex


def test_published_rows_only_beside_comparable_results(two_runs):
    # synthetic everywhere: no published row at all, and a note saying why
    for run in two_runs:
        for r in run.results:
            r.synthetic = True
    board = build_leaderboard(two_runs, published=True)
    assert board.published_rows == []
    assert any("left out" in n and "synthetic" in n for n in board.notes)
    # one real checkpoint on vg only: published numbers appear in vg's columns only
    for r in two_runs[0].results:
        r.synthetic = r.task != "vg"
    board = build_leaderboard(two_runs, published=True, published_models=["RemoteSAM"])
    assert board.published_rows == ["RemoteSAM [paper]"]
    row = board.values.loc["RemoteSAM [paper]"]
    assert row["vg/dior_rsvg Acc@0.5"] == 74.36 and math.isnan(row["ref/rrsisd mIoU"])


def test_published_rows_need_the_default_protocol(two_runs):
    for run in two_runs:
        run.provenance["config"] = {"task_options": {"vg": {"box_thr": 0.3}}}
    board = build_leaderboard(two_runs, published=True, published_models=["RemoteSAM"])
    assert math.isnan(board.values.at["RemoteSAM [paper]", "vg/dior_rsvg Acc@0.5"])
    assert board.values.at["RemoteSAM [paper]", "ref/rrsisd mIoU"] == 71.75
    assert any("options set" in n for n in board.notes)


def test_synthetic_or_subset_never_bold_against_published(two_runs):
    board = build_leaderboard(two_runs, published=True, published_models=["RemoteSAM"])
    a, b = board.rows[:2]
    col = "vg/dior_rsvg Acc@0.5"
    assert board.values.at[b, col] > 74.36  # ckpt_b beats the paper's number ...
    assert board.best.at[b, col]
    for r in two_runs[1].results:  # ... but on synthetic data it is not marked best
        r.synthetic = True
    two_runs[0].results[1].n_evaluated = 30  # and ckpt_a scored a subset
    board = build_leaderboard(two_runs, published=True, published_models=["RemoteSAM"])
    assert not board.best.at[b, col] and not board.best.at[a, col]
    assert board.best.at["RemoteSAM [paper]", col]
    # without published rows, measured results compete among themselves as before
    assert build_leaderboard(two_runs).best.at[b, col]


def test_leaderboard_second_best_underlined_and_missing_as_dashes(two_runs):
    third = make_run("ckpt_c", 0.40, created="2026-01-03T00:00:00", seed=3, mae=2.5)
    third.results = third.results[:2]  # no counting result: missing cells
    board = build_leaderboard([*two_runs, third])
    a, b, _ = board.rows
    assert board.best.at[b, "cnt/dior accuracy"] and board.second.at[a, "cnt/dior accuracy"]
    latex = board.to_latex(caption="Tiny & co.", label="tab:x")
    assert "\\underline{" in latex and "\\caption{Tiny \\& co.}" in latex
    assert "\\label{tab:x}" in latex and "nan" not in latex
    body = [ln for ln in latex.splitlines() if ln.startswith("ckpt\\_c")]
    assert body and body[0].count("--") == 2  # accuracy and mae missing
    assert "\\multicolumn{2}{c}{Referring seg. (RRSIS-D)}" in latex
    assert "\\cmidrule(lr){2-3}" in latex


def _pdflatex_compiles(tmp_path, body: str) -> None:
    import shutil
    import subprocess

    exe = shutil.which("pdflatex")
    if exe is None:
        pytest.skip("pdflatex is not installed (Debian: apt-get install texlive-latex-extra); "
                    "CI installs it")
    doc = ("\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{booktabs}\n"
           "\\usepackage{graphicx}\n\\begin{document}\n" + body + "\\end{document}\n")
    (tmp_path / "t.tex").write_text(doc, encoding="utf-8")
    proc = subprocess.run([exe, "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (tmp_path / "t.pdf").stat().st_size > 1000


def test_latex_compiles_with_pdflatex(two_runs, tmp_path):
    two_runs[0].results[0].n_evaluated = 10
    for r in two_runs[1].results:
        r.synthetic = True
    runs = [*two_runs, make_run("/exp/a_b/ckpt#1.pth", run_id="r3", seed=5)]
    body = build_leaderboard(runs, ci=True, published=True).to_latex(caption="All & more")
    body += build_leaderboard(runs, metrics="all").to_latex(label="tab:all")
    _pdflatex_compiles(tmp_path, body)


def test_row_labels_use_the_shortest_distinguishing_path():
    runs = [make_run("/exp/a/ckpt.pth", run_id="r1"), make_run("/exp/b/ckpt.pth", run_id="r2"),
            make_run("/other/final.pth", run_id="r3")]
    rows = build_leaderboard(runs).rows
    assert [r.split(" (")[0] for r in rows] == ["a/ckpt.pth", "b/ckpt.pth", "final.pth"]


# ------------------------------------------------------------------------------- radar


def test_radar_png_svg_axes_and_lines(two_runs, tmp_path):
    fig = build_radar(two_runs, title="test")
    ax = fig.axes[0]
    assert ax.name == "polar"
    axes = radar_axes(fig)
    assert [a.label for a in axes] == ["Referring seg.\nRRSIS-D · oIoU",
                                       "Visual grounding\nDIOR-RSVG · Acc@0.5",
                                       "Counting\nDIOR counting (Falcon) · accuracy"]
    assert [ln.get_label() for ln in ax.lines] == build_leaderboard(two_runs).rows
    texts = {t.get_text() for t in ax.texts}
    assert {a.label for a in axes} <= texts
    a_oiou = two_runs[0].results[0].metrics["oIoU"].value
    assert f"{a_oiou:.1f}" in texts  # vertices carry their values (few checkpoints)
    png, svg, pdf = save_radar(fig, tmp_path / "out" / "radar.png")
    with Image.open(png) as im:
        im.verify()
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 300
    text = svg.read_text()
    assert svg.suffix == ".svg" and text.lstrip().startswith("<?xml")
    # editable text: the task names are <text> elements, not glyph paths
    assert ">Visual grounding<" in text or "Visual grounding</text>" in text
    assert pdf.read_bytes().startswith(b"%PDF")
    with pytest.raises(ValueError, match=r"\.png, \.svg or \.pdf"):
        save_radar(fig, tmp_path / "radar.jpg")


def test_radar_axes_have_their_own_labelled_ranges(two_runs):
    board = build_leaderboard(two_runs, metrics="all")
    fig = build_radar(two_runs, metrics="all")
    for a in radar_axes(fig):
        vals = board.values[a.column.label].to_numpy(dtype=float)
        # every value lies inside its axis' range, ranges differ between axes
        assert a.lo <= vals.min() and vals.max() <= a.hi, a
        assert len(a.ticks) == 4 and a.ticks[-1] == pytest.approx(a.hi)
        if a.column.unit == "%":
            assert a.lo >= 0.0 and a.hi <= 100.0
    by = {a.column.label: a for a in radar_axes(fig)}
    assert (by["cnt/dior mae ↓"].lo, by["cnt/dior mae ↓"].hi) != (
        by["ref/rrsisd oIoU"].lo, by["ref/rrsisd oIoU"].hi)
    assert by["cnt/dior mae ↓"].inverted
    # one model: axes start at zero (a single polygon is never a regular octagon)
    single = radar_axes(build_radar(two_runs[:1], metrics="all"))
    assert all(a.lo == 0.0 for a in single)
    assert {(a.lo, a.hi) for a in single if a.column.unit == "%"} == {(0.0, 100.0)}
    radii = {round(a.radius(v), 3) for a, v in zip(
        single, build_leaderboard(two_runs[:1], metrics="all").values.iloc[0])}
    assert len(radii) > 2


def test_radar_labels_never_overlap(tmp_path):
    # many close checkpoints: value labels that find no free spot are dropped, never overprinted
    runs = [make_run(f"c{i}", 0.6 + 0.002 * i, run_id=f"r{i}", seed=i) for i in range(4)]
    fig = build_radar(runs, metrics="all", published=True)
    renderer = fig.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in fig.axes[0].texts
             if t.get_visible() and t.get_text()]
    for i, (ta, a) in enumerate(boxes):
        for tb, b in boxes[i + 1:]:
            assert not a.overlaps(b), (ta, tb)


def test_radar_needs_three_axes(two_runs, tmp_path):
    with pytest.raises(ValueError, match="at least 3 axes, got 1"):
        build_radar(two_runs, tasks=["ref"])
    results_dir = tmp_path / "res"
    for run in two_runs:
        run.save(results_dir / "runs" / f"{run.run_id}.json")
    assert _cli(["radar", "--results-dir", str(results_dir), "--tasks", "vg",
                 "--out", str(tmp_path / "r.pdf")]) == 2
    assert not (tmp_path / "r.pdf").exists()


def test_radar_pdf_out_writes_every_format(two_runs, tmp_path, capsys):
    results_dir = tmp_path / "res"
    for run in two_runs:
        run.save(results_dir / "runs" / f"{run.run_id}.json")
    assert _cli(["radar", "--results-dir", str(results_dir), "--out",
                 str(tmp_path / "fig" / "radar.pdf")]) == 0
    assert (tmp_path / "fig" / "radar.pdf").read_bytes()[:4] == b"%PDF"
    assert (tmp_path / "fig" / "radar.png").is_file() and (tmp_path / "fig" / "radar.svg").is_file()


def test_radar_never_overlays_paper_models_on_synthetic_scores(two_runs):
    for run in two_runs:
        for r in run.results:
            r.synthetic = True  # the run document field read with getattr
    fig = build_radar(two_runs, published=True)
    labels = [ln.get_label() for ln in fig.axes[0].lines]
    assert not any(label.endswith("[paper]") for label in labels)
    context = " ".join(t.get_text() for t in fig.texts)
    assert "Synthetic" in context and "not overlaid" in context


def test_radar_published_overlay_and_inverted_lower_is_better(two_runs):
    fig = build_radar(two_runs, metrics="all", published=True)
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.lines}
    pub = [k for k in lines if k.endswith("[paper]")]
    assert "RemoteSAM [paper]" in pub and "Falcon [paper]" in pub
    assert all(lines[k].get_linestyle() == "--" for k in pub)
    labels = [a.label for a in radar_axes(fig)]
    assert "Counting\nDIOR counting (Falcon) · mae ↓" in labels
    j = labels.index("Counting\nDIOR counting (Falcon) · mae ↓")
    a, b = (lines[r].get_ydata()[j] for r in build_leaderboard(two_runs).rows)
    assert b > a  # ckpt_b has the lower (better) MAE, so it lies further out
    assert axis_label(build_leaderboard(two_runs).columns[0]) == "Referring seg.\nRRSIS-D · oIoU"


# ------------------------------------------------------------------------------- CLI


_cli = reports_cli_main


@pytest.fixture
def results_dir(tmp_path, two_runs) -> Path:
    for run in two_runs:
        run.save(tmp_path / "results" / "runs" / f"{run.run_id}.json")
    return tmp_path / "results"


def test_cli_leaderboard_every_format(results_dir, tmp_path, capsys):
    for fmt in ("md", "csv", "html", "latex"):
        out = tmp_path / f"lb.{fmt}"
        assert _cli(["leaderboard", "--results-dir", str(results_dir), "--format", fmt,
                     "--out", str(out)]) == 0
        text = out.read_text().replace("\\_", "_")  # LaTeX escapes underscores
        assert "ckpt_a" in text and "ckpt_b" in text
    assert _cli(["leaderboard", "--results-dir", str(results_dir), "--published",
                 "--published-models", "RemoteSAM", "--ci"]) == 0
    stdout = capsys.readouterr().out
    assert "RemoteSAM [paper]" in stdout and "[" in stdout
    assert _cli(["leaderboard", "--results-dir", str(results_dir), "--run", "run-ckpt_b",
                 "--format", "csv"]) == 0
    assert "ckpt_a" not in capsys.readouterr().out


def test_cli_leaderboard_html_is_a_standalone_sortable_page(results_dir, tmp_path):
    out = tmp_path / "lb.html"
    assert _cli(["leaderboard", "--results-dir", str(results_dir), "--format", "html",
                 "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>") and 'class="sortable leaderboard"' in text
    assert "<script>" in text and "http" not in text.replace("http://www.w3.org", "")


def test_cli_leaderboard_latex_primary_by_default(results_dir, tmp_path):
    out = tmp_path / "t.tex"
    assert _cli(["leaderboard", "--results-dir", str(results_dir), "--format", "latex",
                 "--caption", "Main results", "--label", "tab:main", "--out", str(out)]) == 0
    tex = out.read_text()
    assert "\\caption{Main results}" in tex and "\\label{tab:main}" in tex
    assert "mIoU" not in tex and "oIoU" in tex  # primary metrics only
    assert _cli(["leaderboard", "--results-dir", str(results_dir), "--format", "latex",
                 "--metrics", "oIoU,mIoU", "--out", str(out)]) == 0
    assert "mIoU" in out.read_text()


def test_cli_radar(results_dir, tmp_path, capsys):
    assert _cli(["radar", "--results-dir", str(results_dir), "--out",
                 str(tmp_path / "r.png"), "--published"]) == 0
    with Image.open(tmp_path / "r.png") as im:
        im.verify()
    assert (tmp_path / "r.svg").is_file()


# issue 19 item 20
def test_export_of_an_unknown_task_is_refused_naming_the_known_ones(tmp_path, capsys):
    res = tmp_path / "res"
    make_run().save(res / "runs" / "r.json")
    out = tmp_path / "out"
    assert reports_cli_main(["export", "--results-dir", str(res), "--tasks", "nosuch",
                             "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "nosuch" in err and "cnt, ref, vg" in err and err.count("\n") == 1
    assert not out.exists()


# issue 19 item 20
@pytest.mark.parametrize("n_boot", ["0", "-1"])
def test_leaderboard_refuses_fewer_than_one_bootstrap_resample(tmp_path, capsys, n_boot):
    res = tmp_path / "res"
    make_run().save(res / "runs" / "r.json")
    assert reports_cli_main(["leaderboard", "--results-dir", str(res), "--ci", "--n-boot",
                             n_boot]) == 2
    err = capsys.readouterr().err
    assert f"--n-boot {n_boot}: expected an integer >= 1" in err and err.count("\n") == 1
    with pytest.raises(ValueError, match="minimum is 1"):
        build_leaderboard([make_run()], ci=True, n_boot=int(n_boot))


# issue 19 item 20
def test_interval_of_a_non_negative_metric_is_clipped_at_its_bound():
    from remotesam.bench.api import MetricSpec
    from remotesam.bench.api.registry import Registry
    from remotesam.bench.records.results import MetricValue

    specs = {m.name: m for m in Registry().get("cnt").metrics}
    assert specs["mae"].bounds() == (0.0, None) and specs["rmse"].bounds() == (0.0, None)
    assert specs["accuracy"].bounds() == (0.0, 100.0)  # a percentage, as before
    assert MetricSpec("x", unit="").bounds() == (None, None)
    run = make_run()
    counting = run.results[2]
    errors = [0.0, 0.0, 0.0, 4.0]  # a small, skewed sample: Student t reaches below zero
    counting.n_total = counting.n_evaluated = len(errors)
    counting.per_sample = {"mae": {"sample_ids": ["a", "b", "c", "d"], "values": errors}}
    counting.metrics["mae"] = MetricValue(1.0, False, False, "", False)  # bounds not recorded
    lo, _hi = metric_ci(counting, "mae")
    assert lo < 0  # what an unbounded metric gets
    counting.metrics["mae"] = MetricValue(1.0, False, False, "", False, None, 0.0, None)
    lo, hi = metric_ci(counting, "mae")
    assert lo == 0.0 and hi > 1.0
    board = build_leaderboard([run], ci=True, metrics=["mae"])
    (cell,) = board.cells.values()
    assert cell.ci95 is not None and cell.ci95[0] == 0.0
    assert "[-" not in board.to_markdown()
    again = RunDocument.from_json(run.to_json())  # the bounds travel with the document
    assert again.results[2].metrics["mae"].lower == 0.0


def test_a_bf16_row_carries_a_precision_note_in_every_format():
    """A reduced-precision row is not an fp32 number: one note line says so and points to the
    measured drift (docs/SCALING.md); an fp32 row gets none."""
    fp32 = make_run("ckpt_a", 0.90, created="2026-01-01T00:00:00", seed=1)
    half = make_run("ckpt_a", 0.80, created="2026-01-03T00:00:00", seed=1)
    half.provenance["precision"] = "bf16"
    board = build_leaderboard([fp32, half])
    row = next(r for r in board.rows if r.endswith("[bf16]"))
    drift = [n for n in board.notes if "autocast" in n]
    assert len(drift) == 1 and drift[0].startswith(f"{row}: bf16 autocast")
    assert "docs/SCALING.md" in drift[0]
    for text in (board.to_markdown(), board.to_html()):  # CSV: numbers only, label [bf16]
        assert "bf16 autocast: the numbers are not fp32" in text
    assert not [n for n in build_leaderboard([fp32]).notes if "autocast" in n]
