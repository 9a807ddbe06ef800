"""``remotesam-bench paper``: the paper's evaluation as a suite, its tables and Fig. 1."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from remotesam.bench.cli import main
from remotesam.bench.cli.paper import (
    FIG1_AXES,
    FIG1_VALUES,
    paper_pairs,
    paper_tables,
    render_latex,
    save_fig1_radar,
)
from remotesam.synth import generate


def test_tables_cover_the_papers_tables_in_order() -> None:
    names = [t.name for t in paper_tables()]
    for n in range(2, 14):
        assert f"Table {n}" in names
    assert names.index("Table 2") < names.index("Table 13")
    t3 = next(t for t in paper_tables() if t.name == "Table 3")
    assert {m for *_, m in t3.columns} == {"oIoU", "mIoU"}
    t4 = next(t for t in paper_tables() if t.name == "Table 4")
    assert ("seg", "potsdam", "test", "mF1") in t4.columns
    keys = {f"{p.task}.{p.dataset}" for p in paper_pairs()}
    assert {"seg.vaihingen", "ref.rrsisd", "det.dotav2", "cap.ucm_captions"} <= keys
    assert len(FIG1_AXES) == 8 and all(len(v) == 8 for v in FIG1_VALUES.values())


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    generate(root, seed=1, n_images=2, image_size=64, n_train=0, n_val=0)
    return root


def test_dry_run_states_samples_prompts_time_and_unavailable_pairs(
        tiny_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["paper", "--data-root", str(tiny_root), "--results-dir", str(tmp_path),
                 "--dry-run", "--ms-per-prompt", "10"]) == 0
    out = capsys.readouterr().out
    plan = json.loads((tmp_path / "paper" / "plan.json").read_text())
    ok = [p for p in plan if p["status"] == "ok"]
    n_p = sum(p["image_prompts"] for p in ok)
    assert f"{sum(p['samples'] for p in ok):,} samples, {n_p:,} image-prompts" in out
    assert f"about {n_p * 10 / 1000:,.0f} s" in out
    assert any(p["status"] != "ok" for p in plan) or len(plan) >= 20
    for p in plan:
        if p["status"] != "ok":
            assert f"{p['task']}.{p['dataset']}" in out and p["status"] in out
    seg = {p["dataset"]: p for p in plan if p["task"] == "seg"}
    assert seg["potsdam"]["status"] == "ok" and seg["potsdam"]["image_prompts"] == 2 * 6


def test_full_suite_writes_every_table_and_the_radar(
        tiny_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["paper", "--data-root", str(tiny_root), "--results-dir", str(tmp_path),
                 "--device", "cpu", "--tasks", "mlc,seg.potsdam"]) == 0
    out = tmp_path / "paper"
    for t in paper_tables():
        slug = t.name.lower().replace(". ", "_").replace(" ", "_")
        md = (out / f"{slug}.md").read_text()
        assert "| RemoteSAM |" in md and "**ours" in md
        selected = all(task == "mlc" or (task, ds) == ("seg", "potsdam")
                       for task, ds, _, _ in t.columns)
        if not selected:
            assert "- not run: " in md  # every pair not run is listed, not dropped
        assert (out / f"{slug}.tex").read_text().startswith("\\begin{table}")
    t6 = (out / "table_6.md").read_text()
    ours = next(ln for ln in t6.splitlines() if ln.startswith("| **ours"))
    assert ours.count("n/a") == 0  # DIOR and DOTA multi-label both ran
    assert "ours (synthetic data)" in ours and "procedural benchmark, not comparable" in t6
    assert Image.open(out / "fig1_radar.png").size[0] > 300


def test_radar_states_its_scale(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    for scale in ("common", "per-axis"):
        p = save_fig1_radar([50.0] * 8, tmp_path / f"{scale}.png", scale)
        assert p.is_file()
    from remotesam.bench.errors import InputError

    with pytest.raises(InputError, match="per-axis"):
        save_fig1_radar(None, tmp_path / "x.png", "log")


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex is not installed (apt-get install texlive-latex-recommended)")
def test_latex_tables_compile_without_overfull_boxes(tmp_path: Path) -> None:
    body = "\n".join(render_latex(t) for t in paper_tables())
    doc = ("\\documentclass{article}\n\\usepackage{graphicx}\n\\begin{document}\n" + body
           + "\n\\end{document}\n")
    (tmp_path / "t.tex").write_text(doc)
    subprocess.run(["pdflatex", "-interaction=nonstopmode", "t.tex"], cwd=tmp_path,
                   capture_output=True, timeout=120, check=False)
    log = (tmp_path / "t.log").read_text(errors="replace")
    assert "Overfull \\hbox" not in log and (tmp_path / "t.pdf").is_file()


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex is not installed (apt-get install texlive-latex-recommended)")
@pytest.mark.parametrize("n_tasks", [1, 3, 8])
def test_leaderboard_latex_fits_the_line_width(tmp_path: Path, n_tasks: int) -> None:
    """The leaderboard's LaTeX at 1, 3 and 8 task columns groups, with published rows and notes,
    compiles without an overfull box (scaled down when wider, notes in a ragged parbox)."""
    from run_support import make_run, result

    from remotesam.bench.reports.leaderboard import build_leaderboard

    runs = [make_run("/experiments/very_long_directory_name/ckpt_a.pth", run_id="r1"),
            make_run("/experiments/another_long_directory/ckpt_b.pth", run_id="r2", seed=3)]
    extra = [("seg", "isaid", "mIoU"), ("det", "dior", "mAP50"), ("mlc", "dior", "accuracy"),
             ("mcc", "ucmerced", "accuracy"), ("cap", "ucm_captions", "CIDEr")]
    for run in runs:
        run.results = run.results[:min(n_tasks, 3)]
        for task, ds, metric in extra[:max(0, n_tasks - 3)]:
            run.results.append(result(run.results[0].checkpoint, task, ds,
                                      {metric: (55.5, True, True, "%")}))
        run.results[0].n_evaluated = 10  # a subset note under the table
    body = build_leaderboard(runs, published=True, metrics="all").to_latex(
        caption="All tasks")
    doc = ("\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{booktabs}\n"
           "\\usepackage{graphicx}\n\\begin{document}\n" + body + "\\end{document}\n")
    (tmp_path / "t.tex").write_text(doc, encoding="utf-8")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    log = (tmp_path / "t.log").read_text(errors="replace")
    assert "Overfull \\hbox" not in log, log[-3000:]


def test_leaderboard_radar_states_and_applies_its_scale() -> None:
    from run_support import make_run

    from remotesam.bench.reports.radar import build_radar, radar_axes

    runs = [make_run("a", run_id="r1"), make_run("b", quality=0.8, run_id="r2", seed=2)]
    common = build_radar(runs, scale="common")
    pct = [a for a in radar_axes(common) if a.column.unit == "%"]
    assert pct and all((a.lo, a.hi) == (0.0, 100.0) for a in pct)
    assert any(t.get_text().startswith("Scale: common") for t in common.texts)
    per = build_radar(runs, scale="per-axis")
    assert any((a.lo, a.hi) != (0.0, 100.0) for a in radar_axes(per) if a.column.unit == "%")
    assert any(t.get_text().startswith("Scale: per axis") for t in per.texts)
    default = build_radar(runs)
    assert any(t.get_text().startswith("Scale: ") for t in default.texts)
    with pytest.raises(ValueError, match="scale"):
        build_radar(runs, scale="log")
