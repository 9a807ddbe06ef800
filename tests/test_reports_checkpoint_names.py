"""Checkpoints are displayed by file name and short hash everywhere (summary table, failure
lines, leaderboard, radar, report, gate messages), never as a cut absolute path; the full path
stays in the run document."""

from __future__ import annotations

import dataclasses
import io
import os

import pytest
from rich.console import Console
from run_support import make_run

from remotesam.bench.cli.commands import checkpoint_labels, format_summary
from remotesam.bench.gate import GateError
from remotesam.bench.gate.baseline import select_checkpoint
from remotesam.bench.records.results import CheckpointRef, RunDocument
from remotesam.bench.reports.html import write_report
from remotesam.bench.reports.leaderboard import build_leaderboard
from remotesam.bench.reports.radar import build_radar

DEEP = os.sep + os.path.join("opt", "conda", "envs", "evaluation-environment", "lib",
                             "python3.11", "site-packages", "remotesam", "checkpoints",
                             "remotesam_tiny.safetensors")


def _with_checkpoint(doc: RunDocument, name: str, sha: str) -> RunDocument:
    ref = CheckpointRef(name=name, path=name, sha256=sha)
    return dataclasses.replace(doc, results=[dataclasses.replace(r, checkpoint=ref)
                                             for r in doc.results])


def _render(table) -> str:
    buf = io.StringIO()
    Console(file=buf, width=400).print(table)
    return buf.getvalue()


def test_summary_leaderboard_radar_report_and_gate_show_file_name_and_hash(tmp_path) -> None:
    sha = "3f2a1b4c" + "0" * 56
    doc = _with_checkpoint(make_run("x", run_id="r1"), DEEP, sha)
    label = "remotesam_tiny.safetensors (3f2a1b4c)"
    assert checkpoint_labels(doc) == {DEEP: label}
    text = _render(format_summary(doc))
    assert label in text and "…" not in text and "site-packages" not in text

    board = build_leaderboard([doc])
    assert board.rows == [label]
    md = board.render("md")
    assert label in md and "site-packages" not in md
    fig = build_radar([doc])
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == [label]
    path, _ = write_report([doc], tmp_path, tmp_path / "report.html")
    html = path.read_text()
    assert label in html
    with pytest.raises(GateError) as e:
        select_checkpoint(doc, "nothing-like-it")
    assert label in str(e.value) and "site-packages" not in str(e.value)
    assert doc.results[0].checkpoint.path == DEEP  # the document keeps the full path


def test_two_checkpoints_with_one_file_name_keep_the_folder_that_tells_them_apart() -> None:
    a = _with_checkpoint(make_run("a", run_id="ra"), "/runs/exp1/model.safetensors", "a" * 64)
    b = _with_checkpoint(make_run("b", run_id="rb"), "/runs/exp2/model.safetensors", "b" * 64)
    doc = dataclasses.replace(a, results=a.results + b.results)
    assert sorted(checkpoint_labels(doc).values()) == [
        "exp1/model.safetensors (aaaaaaaa)", "exp2/model.safetensors (bbbbbbbb)"]
