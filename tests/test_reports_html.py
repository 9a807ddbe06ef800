"""The HTML report: content, thumbnails and their cache, comparison, sweep, CLI; and the page
opened in a real headless Chromium (file://, network off): no console error, sorting works,
the gallery shows images with overlays. The screenshot is written under pytest's tmp_path and,
when ``REMOTESAM_TEST_ARTIFACTS`` is set, copied into that folder (CI uploads it)."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))

import bench_support as bs
from rsb_toy.data import write_dataset
from rsb_toy.fakemodel import load

from remotesam.bench.api import Sample
from remotesam.bench.api.registry import Registry
from remotesam.bench.reports.export import SampleRecord
from remotesam.bench.reports.html import render_report, write_report
from remotesam.bench.reports.html.data import checkpoint_step, order_checkpoints
from remotesam.bench.reports.html.pages import leaderboard_html
from remotesam.bench.reports.html.painters import painter_for
from remotesam.bench.reports.html.thumbs import ThumbnailCache
from remotesam.bench.run import RunConfig, run

#: runs with --limit here evaluate a subset on purpose; the subset note is tested elsewhere
#: (tests/test_run_runner.py::test_limit_task_options_and_cache_key)
pytestmark = pytest.mark.filterwarnings("ignore:evaluated .* a subset:UserWarning")


@pytest.fixture
def toy_sweep(tmp_path):
    """Two checkpoints named by training step, one toy task, 16 samples."""
    write_dataset(tmp_path / "data" / "toy_blobs", n=16, seed=3)
    a = bs.write_checkpoint(tmp_path / "ckpts" / "step_2000.json", gain=1.0, bias=0.75)
    b = bs.write_checkpoint(tmp_path / "ckpts" / "step_1000.json", gain=1.0, bias=0.25)
    registry = Registry(bs.toy_entry_points())
    out = run(RunConfig(tasks=["toy"], checkpoints=[str(a), str(b)], data_root=tmp_path / "data",
                        results_dir=tmp_path / "results", device="cpu", progress=False),
              registry=registry, model_factory=lambda p, **kw: load(p))
    assert out.errors == []
    return tmp_path, out.document, registry


def test_report_is_self_contained_with_gallery_comparison_and_sweep(toy_sweep):
    tmp, doc, registry = toy_sweep
    text, stats = render_report([doc], tmp / "results", gallery_k=3, registry=registry)
    # nothing is fetched: no external URL in src/href, images inline
    assert not re.search(r'(src|href)="(https?:)?//', text)
    assert "<script src" not in text and '<link rel="stylesheet"' not in text
    imgs = re.findall(r'<img src="([^"]+)"', text)
    assert imgs and all(u.startswith("data:image/jpeg;base64,") for u in imgs)
    # leaderboard, gallery (3 worst + 3 random per checkpoint), comparison, sweep
    assert 'id="leaderboard"' in text and "worst 3 by" in text and "3 random samples" in text
    assert 'id="compare"' in text and "changed most" in text
    assert 'id="sweep"' in text and "training step from the checkpoint names" in text
    assert stats.thumbnails == len(imgs) and stats.left_out == 0
    # thumbnails are cached: a second report draws nothing
    again, stats2 = render_report([doc], tmp / "results", gallery_k=3, registry=registry)
    assert stats2.drawn == 0 and stats2.cache_hits == stats2.thumbnails
    assert again == text  # deterministic
    assert list((tmp / "results" / "report_cache" / "thumbs").glob("*.jpg"))


def test_third_party_titles_in_leaderboard_radar_and_report(toy_sweep):
    """A third-party task and dataset appear under the titles their plugin gives, recorded in
    the run document, so reports of the stored run need no plugin; without titles, the keys."""
    from remotesam.bench.records.results import RunDocument
    from remotesam.bench.reports.leaderboard import build_leaderboard
    from remotesam.bench.reports.radar import axis_label

    tmp, doc, registry = toy_sweep
    assert {(r.task_title, r.dataset_title) for r in doc.results} == {("Toy counting",
                                                                       "Toy Blobs")}
    stored = RunDocument.from_json(doc.to_json())  # as read back from <results>/runs
    board = build_leaderboard([stored], metrics="primary")
    assert "Toy counting<br>Toy Blobs" in leaderboard_html(board)
    assert "Toy counting (Toy Blobs)" in board.to_latex()
    assert axis_label(board.columns[0]).startswith("Toy counting\nToy Blobs · mae")
    text, _ = render_report([stored], tmp / "results", gallery_k=1, registry=registry)
    assert "<h2>Toy counting · Toy Blobs <small>(toy/blobs:test)" in text
    for r in stored.results:  # a run document of an older version: no titles, the keys
        r.task_title = r.dataset_title = ""
    board = build_leaderboard([stored], metrics="primary")
    assert "toy<br>blobs" in leaderboard_html(board)


def test_report_caps_thumbnails_and_says_so(toy_sweep):
    tmp, doc, registry = toy_sweep
    text, stats = render_report([doc], tmp / "results", gallery_k=8, registry=registry,
                                max_thumbnails=5)
    assert stats.thumbnails == 5 and stats.left_out > 0
    assert f"{stats.left_out} thumbnail(s) left out" in text


def test_report_marks_synthetic_and_subset(toy_sweep):
    tmp, doc, registry = toy_sweep
    for r in doc.results:
        r.synthetic = True
    doc.results[0].n_total = 40
    text, _ = render_report([doc], tmp / "results", gallery_k=1, registry=registry)
    assert "synthetic embedded benchmark" in text and 'class="badge subset"' in text
    assert 'class="flag flag-synthetic"' in text


def test_report_without_datasets_still_shows_numbers(toy_sweep):
    tmp, doc, registry = toy_sweep
    shutil.rmtree(tmp / "data")
    text, stats = render_report([doc], tmp / "results", registry=registry)
    assert stats.load_errors and "could not be read again" in text
    assert 'id="leaderboard"' in text


def test_compare_names_unknown_checkpoints(toy_sweep):
    tmp, doc, registry = toy_sweep
    with pytest.raises(ValueError, match="matches no checkpoint"):
        render_report([doc], tmp / "results", compare=["nope", "step_1000.json"],
                      registry=registry)
    text, _ = render_report([doc], tmp / "results", compare=["step_1000.json", "step_2000.json"],
                            registry=registry)
    assert "B = <b>step_2000.json" in text


def test_hostile_strings_are_escaped_once_and_inert(toy_sweep):
    """Names, tables and titles from runs and plugins go through the templates' escaping."""
    from remotesam.bench.records.results import MetricValue

    tmp, doc, registry = toy_sweep
    evil = '<script>alert(1)</script>"><img src=x onerror=alert(2)>&amp;'
    for res in doc.results:
        res.tables = {evil: [{evil: evil, "n": 1.5}], "kv " + evil: {evil: evil},
                      "grid": [[evil, 1]], "text": evil}
        res.metrics[evil] = MetricValue(12.5, unit="%", ci95=(10.0, 15.0))
    text, _ = render_report([doc], tmp / "results", gallery_k=1, registry=registry,
                            title=evil)
    assert text.count("<script") == 1 and "<img src=x" not in text
    from html.parser import HTMLParser

    found: list[tuple[str, dict]] = []

    class Tags(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, dict(attrs)))

    Tags().feed(text)
    assert [t for t, _ in found].count("script") == 1
    assert not [a for _, a in found if "onerror" in a]  # the attribute stays text
    assert not [a for t, a in found if t == "img" and a.get("src") == "x"]
    assert any(a.get("title", "").startswith("toy/blobs <script>") for _, a in found)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&amp;amp;" in text  # escaped once: the literal "&amp;" shows as typed
    assert "&amp;amp;amp;" not in text


def test_cli_report(toy_sweep, monkeypatch, capsys):
    from remotesam.bench.cli import main
    from remotesam.bench.cli import reports as reports_cli

    tmp, _, registry = toy_sweep
    monkeypatch.setattr(reports_cli, "_registry", lambda: registry)
    assert main(["report", "--results-dir", str(tmp / "results"), "--gallery-k", "2"]) == 0
    assert (tmp / "results" / "report.html").stat().st_size > 1000
    assert "thumbnail(s)" in capsys.readouterr().err
    assert main(["report", "--results-dir", str(tmp / "results"), "--gallery-k", "-1"]) == 2


@pytest.mark.parametrize("name, expected", [
    ("runs/a/step_12000.pth", (12000.0, "step")), ("ckpt/checkpoint-500/model.safetensors",
                                                  (500.0, "step")),
    ("out/ep3.pth", (3.0, "epoch")), ("epoch_10.pt", (10.0, "epoch")),
    ("global_step250.ckpt", (250.0, "step")), ("final.pth", None)])
def test_checkpoint_step(name, expected):
    assert checkpoint_step(name) == expected


def test_sweep_step_from_safetensors_metadata(tmp_path):
    import torch
    from safetensors.torch import save_file

    from remotesam.bench.reports.html.data import checkpoint_metadata

    path = tmp_path / "final.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={"global_step": "1500"})
    meta = checkpoint_metadata(str(path))
    assert checkpoint_step("final.safetensors", meta) == (1500.0, "step")
    assert order_checkpoints(["final.safetensors", "step_200.pth"],
                             {"final.safetensors": meta}) == (
        ["step_200.pth", "final.safetensors"], "step")
    assert checkpoint_metadata(str(tmp_path / "missing.safetensors")) == {}


def test_sweep_order_falls_back_to_run_order():
    assert order_checkpoints(["b/step_20.pth", "a/step_3.pth"]) == (
        ["a/step_3.pth", "b/step_20.pth"], "step")
    assert order_checkpoints(["x.pth", "step_1.pth"]) == (["step_1.pth", "x.pth"], "index")


def test_box_painter_draws_overlays_and_image_ap(tmp_path):
    img = tmp_path / "im.png"
    Image.fromarray(np.full((100, 120, 3), 128, np.uint8)).save(img)
    sample = Sample("im", img, target={"bbox_xyxy": [[10, 10, 40, 40], [60, 50, 100, 90]],
                                       "labels": ["ship", "ship"]})
    pred = {"hbb": {"boxes": [[11, 11, 41, 41], [0, 0, 5, 5]], "scores": [0.9, 0.8],
                    "labels": ["ship", "ship"]}}
    rec = SampleRecord(sample, pred)
    assert painter_for(pred)[0] == "hbb"
    th = ThumbnailCache(None).get(rec, {"classes": ("ship",)})
    arr = np.asarray(Image.open(__import__("io").BytesIO(th.jpeg)).convert("RGB")).astype(int)
    assert (np.abs(arr - 128).sum(axis=2) > 60).sum() > 100  # boxes and labels drawn


# ----------------------------------------------------------------------------- browser


def _chromium():
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which(
        "google-chrome")
    driver = shutil.which("chromedriver")
    if exe is None or driver is None:
        pytest.skip("headless Chromium not installed (Debian: apt-get install chromium "
                    "chromium-driver); CI installs it")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[dev]')")
    opts = webdriver.ChromeOptions()
    opts.binary_location = exe
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1800", "--proxy-server=http://127.0.0.1:9",
                "--host-resolver-rules=MAP * ~NOTFOUND"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=opts)


def _artifact(path: Path) -> None:
    folder = os.environ.get("REMOTESAM_TEST_ARTIFACTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(folder) / path.name)


def check_in_browser(report: Path, screenshot: Path) -> dict:
    """Open ``report`` offline in headless Chromium and check it; returns what was seen."""
    from selenium.webdriver.common.by import By

    driver = _chromium()
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0})
        driver.get(report.resolve().as_uri())
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert errors == [], errors
        resources = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)")
        assert not [r for r in resources if r.startswith("http")], resources
        # the gallery: every image decoded, drawn with an overlay painter
        imgs = driver.find_elements(By.CSS_SELECTOR, "figure.card img")
        assert imgs
        widths = driver.execute_script(
            "return Array.from(document.querySelectorAll('figure.card img'))"
            ".map(i => i.complete ? i.naturalWidth : 0)")
        assert all(w > 0 for w in widths), widths
        kinds = {i.get_attribute("data-kind") for i in imgs}
        assert kinds - {"plain"}, kinds
        # sorting: the first sortable table whose second column holds several distinct
        # numbers (the leaderboard when there are several checkpoints), clicked twice
        def column(table) -> list[float]:
            cells = table.find_elements(By.CSS_SELECTOR, "tbody tr td:nth-child(2)")
            vals = [c.get_attribute("data-v") for c in cells]
            return [float(v) for v in vals if v not in (None, "")]

        tables = driver.find_elements(By.CSS_SELECTOR, "table.sortable")
        table = next(t for t in tables if len(set(column(t))) >= 2)
        header = table.find_elements(By.CSS_SELECTOR, "thead th")[1]
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", header)
        header.click()
        asc = column(table)
        assert asc == sorted(asc) and header.get_attribute("data-dir") == "asc"
        header.click()
        desc = column(table)
        assert desc == sorted(asc, reverse=True)
        assert asc != desc
        assert driver.get_log("browser") == []
        driver.save_screenshot(str(screenshot))
        return {"images": len(imgs), "kinds": kinds}
    finally:
        driver.quit()


def test_report_in_headless_chromium(toy_sweep):
    tmp, doc, registry = toy_sweep
    path, _ = write_report([doc], tmp / "results", tmp / "report.html", gallery_k=2,
                           registry=registry)
    shot = tmp / "report_toy_screenshot.png"
    seen = check_in_browser(path, shot)
    assert seen["images"] >= 4 and "count" in seen["kinds"]
    with Image.open(shot) as im:
        assert im.size[0] >= 1000
    _artifact(shot)


@pytest.mark.slow
def test_report_of_every_builtin_task_in_headless_chromium(tmp_path):
    """The bundled checkpoint on 4 samples of every task of the embedded benchmark."""
    from remotesam.bench.run.embedded import ensure_embedded_benchmark

    data = ensure_embedded_benchmark(tmp_path)
    out = run(RunConfig(tasks=["all"], data_root=data, limit=4, results_dir=tmp_path,
                        device="cpu", progress=False))
    path, stats = write_report([out.document], tmp_path, tmp_path / "report.html", gallery_k=2)
    assert stats.load_errors == [] and stats.thumbnails > 0
    text = path.read_text()
    for task in ("ref", "seg", "det", "vg", "mlc", "mcc", "cnt"):
        assert f'id="task-{task}-' in text, task
    assert "confusion_matrix" in text and "diagonal" in text and "precision-recall" in text
    assert text.count("<svg") >= 3  # radar + curves
    shot = tmp_path / "report_builtin_screenshot.png"
    seen = check_in_browser(path, shot)
    assert {"mask", "hbb", "box", "masks_net"} <= seen["kinds"]
    _artifact(shot)
