"""Acceptance: two checkpoints swept in one `run`, then leaderboard / radar / baseline / gate.

Uses the runner with the test-only `toy` plugin and its fake model (tests/fixtures), so the run
documents are produced by the real harness, not built by hand.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))

import bench_support as bs
from rsb_toy.data import write_dataset
from rsb_toy.fakemodel import load

from remotesam.bench.api.registry import Registry
from remotesam.bench.cli import main
from remotesam.bench.run import RunConfig, run


@pytest.fixture
def swept(tmp_path):
    """One run over two checkpoints (bias 0.25 and 0.75: the second has the larger MAE)."""
    write_dataset(tmp_path / "data" / "toy_blobs", n=16, seed=3)
    good = bs.write_checkpoint(tmp_path / "ckpts" / "good.json", gain=1.0, bias=0.25)
    bad = bs.write_checkpoint(tmp_path / "ckpts" / "bad.json", gain=1.0, bias=0.75)
    cfg = RunConfig(tasks=["toy"], checkpoints=[str(good), str(bad)],
                    data_root=tmp_path / "data", results_dir=tmp_path / "results",
                    batch_size=4, device="cpu", progress=False)
    out = run(cfg, registry=Registry(bs.toy_entry_points()),
              model_factory=lambda p, **kw: load(p))
    assert out.errors == [] and len(out.document.results) == 2
    return tmp_path, out.document


def test_sweep_gives_two_rows_in_every_format_and_a_radar(swept, capsys):
    tmp, doc = swept
    res = str(tmp / "results")
    for fmt in ("md", "csv", "html", "latex"):
        out = tmp / f"board.{fmt}"
        assert main(["leaderboard", "--results-dir", res, "--format", fmt, "--ci",
                     "--out", str(out)]) == 0
        text = out.read_text()
        for r in doc.results:
            assert r.checkpoint.sha256[:8] in text, fmt
    md = (tmp / "board.md").read_text()
    rows = [ln for ln in md.splitlines() if ln.startswith("| ") and "(" in ln.split("|")[1]]
    assert len(rows) == 2
    assert main(["radar", "--results-dir", res, "--out", str(tmp / "radar.png"),
                 "--metrics", "all"]) == 0
    with Image.open(tmp / "radar.png") as im:
        im.verify()
    assert (tmp / "radar.svg").stat().st_size > 0


def test_baseline_and_gate_on_real_run_documents(swept, capsys):
    tmp, doc = swept
    res = str(tmp / "results")
    base = tmp / "baseline.json"
    good = next(r for r in doc.results if Path(r.checkpoint.name).name == "good.json")
    bad = next(r for r in doc.results if Path(r.checkpoint.name).name == "bad.json")
    assert main(["baseline", "--results-dir", res, "--checkpoint", "good.json",
                 "--out", str(base)]) == 0
    assert json.loads(base.read_text())["checkpoint"]["sha256"] == good.checkpoint.sha256
    assert main(["gate", "--results-dir", res, "--baseline", str(base), "--checkpoint",
                 good.checkpoint.name]) == 0
    # the other checkpoint has a larger MAE (lower is better): a regression
    assert bad.metrics["mae"].value > good.metrics["mae"].value
    assert main(["gate", "--results-dir", res, "--baseline", str(base), "--checkpoint",
                 bad.checkpoint.sha256[:12]]) == 1
    # the run holds two checkpoints and the baseline names none: an error, not a guess
    assert main(["gate", "--results-dir", res, "--baseline", str(base)]) == 2
    assert "--checkpoint" in capsys.readouterr().err


def test_run_tables_are_not_wrapped_when_piped(swept, capsys):
    """A pipe or CI log gets whole table lines; checkpoint names keep their file name."""
    from types import SimpleNamespace

    from remotesam.bench.cli.commands import _console, _print_outcome, _report

    assert _console().width >= 10_000  # captured output is not a terminal
    tmp, doc = swept
    for r in doc.results:  # a long sweep path
        object.__setattr__(r.checkpoint, "name", "/experiments/" + "very_long_folder_name/" * 6
                           + Path(r.checkpoint.name).name)
    _print_outcome(SimpleNamespace(document=doc, errors=[], path=tmp / "run.json"))
    _report(doc, tmp / "results")
    out = capsys.readouterr().out
    md = [ln for ln in out.splitlines() if ln.startswith("|")]
    assert len(md) >= 4 and all(ln.rstrip().endswith("|") for ln in md)
    summary = [ln for ln in out.splitlines() if "│" in ln and ".json" in ln]
    assert len(summary) == 2  # one line per result, never folded
    assert any("good.json" in ln and "toy" in ln for ln in summary)
    # a short name (file name and hash), never a path cut in the middle (issue 20 item 5)
    assert not any("…" in ln or "/experiments/" in ln for ln in summary)
