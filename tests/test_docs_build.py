"""The documentation: ``mkdocs build --strict`` with no warning, and the generated tasks page.

The build runs the API reference (mkdocstrings reading the docstrings of the public faces) and
``docs/gen_tasks.py`` (every installed task plugin). The page function is also run on a
registry holding the test-only third-party plugins, a broken one and a described dataset.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Mapping
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import ClassVar

import pytest

from remotesam.bench.api import DatasetAdapter, DatasetInfo, MetricSpec, Scores, TaskPlugin
from remotesam.bench.api.registry import PluginInfo, Registry

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))

import bench_support as bs

REPO = Path(__file__).resolve().parents[1]
DOCS_TOOLS = ("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python", "mkdocs_gen_files")


def _missing_tools() -> list[str]:
    missing = []
    for name in DOCS_TOOLS:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(name)
    return missing


def _gen_tasks():
    """``docs/gen_tasks.py`` as a module (imported under its own name, it writes nothing)."""
    spec = importlib.util.spec_from_file_location("gen_tasks", REPO / "docs" / "gen_tasks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.skipif(bool(_missing_tools()),
                    reason=f"docs tools not installed ({', '.join(_missing_tools())}); "
                           "pip install -e '.[docs]'")
def test_mkdocs_build_strict_without_warning(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "DISABLE_MKDOCS_2_WARNING": "true", "NO_COLOR": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH"))
                                         if p)}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site),
         "--config-file", str(REPO / "mkdocs.yml")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "WARNING" not in output, output
    # The reference holds the faces' members; the tasks page every registered task.
    reference = (site / "reference" / "remotesam" / "index.html").read_text()
    for method in ("referring_seg", "semantic_seg", "detection", "visual_grounding",
                   "multi_label_cls", "multi_class_cls", "counting", "captioning"):
        assert f'id="remotesam.predictor.RemoteSAM.{method}"' in reference, method
    api = (site / "reference" / "api" / "index.html").read_text()
    for name in ("TaskPlugin", "DatasetAdapter", "Sample", "Scores", "MetricSpec"):
        assert f'id="remotesam.bench.api.task.{name}"' in api, name
    assert 'id="remotesam.bench.api.datainfo.DatasetInfo"' in api
    assert 'id="remotesam.bench.api.registry.Registry"' in api
    kit = (site / "reference" / "kit" / "index.html").read_text()
    assert 'id="remotesam.bench.kit.options.check_options"' in kit
    bench = (site / "reference" / "bench" / "index.html").read_text()
    assert 'id="remotesam.bench.run.evaluate.evaluate"' in bench
    # Sphinx roles of the docstrings became links (docs/griffe_sphinx_roles.py), not text.
    for page in (reference, api, kit, bench):
        assert ":class:" not in page and ":meth:" not in page and ":func:" not in page
    assert 'href="#remotesam.bench.api.task.TaskPlugin.settings"' in api
    tasks = (site / "tasks" / "index.html").read_text()
    for name in Registry().names():
        assert f'id="{name}"' in tasks, name


def test_tasks_page_lists_third_party_and_broken_plugins() -> None:
    eps = [*bs.toy_entry_points(),
           EntryPoint("broken_import", "rsb_broken.import_error:Task", bs.GROUP)]
    page = _gen_tasks().tasks_page(Registry(eps))
    assert "## `toy`" in page
    assert "count white squares (test-only third-party plugin)" in page
    assert "| `mae` | - | no | yes | no |" in page
    assert "#### `toy.blobs` (default)" in page and "#### `toy.other`" in page
    # The adapter's own check names its option; the task checks none through check_options.
    assert "* dataset options: `index`" in page
    assert "* task options: not declared through `check_options`" in page
    assert "options: ``offset``" in page  # the class docstring, in full
    assert "* splits: `test`, `val` (default `test`)" in page
    assert "## `broken_import`\n\nThis plugin does not load" in page


def test_tasks_page_builtin_options_match_the_plugins_checks() -> None:
    page = _gen_tasks().tasks_page(Registry())
    det = page[page.index("## `det`"):page.index("## `mcc`")]
    task_options = next(line for line in det.splitlines() if line.startswith("* task options"))
    for name in ("box_type", "epoc", "coco_backend", "difficult", "max_dets", "image_ids"):
        assert f"`{name}`" in task_options, name  # the options det's docstring documents
    dota = det[det.index("#### `det.dotav2`"):]
    dataset_options = next(line for line in dota.splitlines() if "dataset options" in line)
    assert "`coords`" in dataset_options and "`label_dir`" in dataset_options
    mcc = page[page.index("## `mcc`"):page.index("## `mlc`")]
    assert "* task options: none" in mcc and "* dataset options: none" in mcc


class _Described(DatasetAdapter):
    """A dataset with provenance; ``<root>`` stays text, and so does <root> outside code."""

    name: ClassVar[str] = "described"
    info: ClassVar[DatasetInfo | None] = DatasetInfo(
        title="Described-1", source="https://example.org/described", licence="CC BY 4.0",
        split="test", size=1234, layout=("images/*.png", "labels.json"),
        how_to_get="remotesam-bench data prepare described SRC DST",
        counts={"images/*.png": 1234})
    layout: ClassVar[str] = "<root>/\n  images/\n  labels.json\n"
    classes: ClassVar[tuple[str, ...]] = ("a", "b", "c")

    def samples(self):  # pragma: no cover - never read by the page
        return []


class _DescribedTask(TaskPlugin):
    name: ClassVar[str] = "described"
    version: ClassVar[int] = 3
    description: ClassVar[str] = "a task whose dataset has a DatasetInfo"
    metrics: ClassVar[tuple[MetricSpec, ...]] = (MetricSpec("IoU", primary=True),)
    datasets: ClassVar[Mapping[str, type[DatasetAdapter]]] = {"described": _Described}
    default_dataset: ClassVar[str] = "described"

    def score(self, samples, predictions):  # pragma: no cover - never read by the page
        return Scores(metrics={})


class _OneTask:
    def info(self) -> list[PluginInfo]:
        return [PluginInfo("described", "x:y", "test", True, "", _DescribedTask)]


def test_tasks_page_shows_dataset_info() -> None:
    page = _gen_tasks().tasks_page(_OneTask())
    assert "#### `described.described`: Described-1 (default)" in page
    assert "* licence: CC BY 4.0" in page
    assert "* official split: `test`, 1,234 samples" in page
    assert "* required paths: `images/*.png`, `labels.json`" in page
    assert "* file counts: `images/*.png`: 1,234" in page
    assert "remotesam-bench data prepare described SRC DST" in page
    assert "* classes: 3 (a, b, c)" in page
    assert "``<root>`` stays text" in page  # code spans are left as they are
    assert "```text\n<root>/\n  images/" in page  # the layout drawing, verbatim
    assert "and so does &lt;root&gt; outside code" in page  # escaped: not an HTML tag
    assert "* task options: not declared" in page  # no check in the constructor
