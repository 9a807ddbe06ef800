"""Task-plugin registry: lazy entry points, validation, did-you-mean, duplicates, conformance."""

from __future__ import annotations

import sys
import textwrap
from importlib.metadata import EntryPoint, distributions
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))

import bench_support as bs
from rsb_toy.data import write_dataset
from rsb_toy.fakemodel import FakeModel
from rsb_toy.toy import BlobsDataset, ToyCountTask

from remotesam.bench.api import MetricSpec, Scores, TaskPlugin
from remotesam.bench.api.registry import ENTRY_POINT_GROUP, Registry, validate_plugin_class
from remotesam.bench.errors import PluginError, UnknownTaskError
from remotesam.testing import PluginConformanceError, check_task_plugin


def _ep(name: str, value: str) -> EntryPoint:
    return EntryPoint(name, value, ENTRY_POINT_GROUP)


def test_get_loads_and_validates_toy_plugin():
    reg = Registry(bs.toy_entry_points())
    assert reg.names() == ["toy"]
    assert reg.get("toy") is ToyCountTask
    assert reg.resolve("all") == ["toy"]


def test_loading_is_lazy(tmp_path, monkeypatch):
    (tmp_path / "rsb_lazy_probe.py").write_text(textwrap.dedent("""
        import os
        os.environ["RSB_LAZY_PROBE_IMPORTED"] = "1"
        from rsb_toy.toy import ToyCountTask
        class Lazy(ToyCountTask):
            name = "lazy"
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("RSB_LAZY_PROBE_IMPORTED", raising=False)
    reg = Registry([*bs.toy_entry_points(), _ep("lazy", "rsb_lazy_probe:Lazy")])
    reg.resolve("toy,lazy")
    reg.get("toy")
    assert "rsb_lazy_probe" not in sys.modules, "a task that was not asked for was imported"
    assert reg.get("lazy").name == "lazy"
    assert "rsb_lazy_probe" in sys.modules


def test_unknown_task_suggests_close_names_and_lists_all():
    reg = Registry([*bs.toy_entry_points(), _ep("det", "x:y")])
    with pytest.raises(UnknownTaskError) as e:
        reg.resolve("toi")
    msg = str(e.value)
    assert "'toi'" in msg and "Did you mean 'toy'" in msg and "Available tasks: det, toy" in msg
    with pytest.raises(UnknownTaskError):
        reg.get("nope")


def _dist_dir(root: Path, name: str, entry: str) -> None:
    info = root / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry}\n")


def test_duplicate_names_rejected_naming_both_distributions(tmp_path):
    _dist_dir(tmp_path, "first_dist", "toy = rsb_toy.toy:ToyCountTask")
    _dist_dir(tmp_path, "second_dist", "toy = other_pkg.mod:Toy")
    eps = [ep for d in distributions(path=[str(tmp_path)]) for ep in d.entry_points]
    reg = Registry(eps)
    with pytest.raises(PluginError) as e:
        reg.get("toy")
    msg = str(e.value)
    assert "registered twice" in msg
    assert "first_dist 1.0" in msg and "second_dist 1.0" in msg
    assert "rsb_toy.toy:ToyCountTask" in msg and "other_pkg.mod:Toy" in msg


def test_broken_plugin_reported_without_taking_others_down():
    reg = Registry([*bs.toy_entry_points(), _ep("gone", "rsb_module_that_is_missing:Task"),
                    _ep("notaplugin", "json:dumps")])
    infos = {i.name: i for i in reg.info()}
    assert infos["toy"].ok and infos["toy"].plugin is ToyCountTask
    assert not infos["gone"].ok
    assert "entry point 'gone'" in infos["gone"].error
    assert "failed to import" in infos["gone"].error
    assert "ModuleNotFoundError" in infos["gone"].error
    assert not infos["notaplugin"].ok
    assert "subclass of remotesam.bench.api.TaskPlugin" in infos["notaplugin"].error
    with pytest.raises(PluginError, match="entry point 'gone'"):
        reg.get("gone")


def _variant(**attrs):
    return type("Variant", (ToyCountTask,), attrs)


@pytest.mark.parametrize(("attrs", "expected"), [
    ({"metrics": (MetricSpec("a"), MetricSpec("b"))}, "exactly one metric must have primary"),
    ({"metrics": (MetricSpec("a", primary=True), MetricSpec("b", primary=True))},
     "found 2"),
    ({"metrics": (MetricSpec("a", primary=True), MetricSpec("a"))}, "duplicate names"),
    ({"metrics": ()}, "'metrics' must be a non-empty tuple"),
    ({"version": "2"}, "'version' must be an int"),
    ({"version": True}, "'version' must be an int"),
    ({"name": ""}, "'name' must be"),
    ({"datasets": {}}, "'datasets' must be a non-empty mapping"),
    ({"datasets": {"blobs": dict}}, "must be a DatasetAdapter subclass"),
    ({"default_dataset": "missing"}, "'default_dataset'='missing' must be one of"),
])
def test_contract_violations_are_named(attrs, expected):
    problems = validate_plugin_class(_variant(**attrs), None)
    assert any(expected in p for p in problems), problems


def test_name_must_match_entry_point_and_methods_must_exist():
    assert any("differs from the entry-point name" in p
               for p in validate_plugin_class(ToyCountTask, "other"))

    class NoScore(TaskPlugin):
        name = "ns"
        version = 1
        metrics = (MetricSpec("m", primary=True),)
        datasets = {"blobs": BlobsDataset}  # noqa: RUF012
        default_dataset = "blobs"

        def predict(self, model, samples):
            return []

    assert any("does not implement ['score']" in p for p in validate_plugin_class(NoScore))
    assert validate_plugin_class(ToyCountTask, "toy") == []


# -- check_task_plugin -------------------------------------------------------------------------


@pytest.fixture
def blobs(tmp_path):
    return write_dataset(tmp_path / "toy_blobs", n=6)


def test_check_task_plugin_accepts_a_conforming_plugin(blobs):
    check_task_plugin(ToyCountTask)
    check_task_plugin(ToyCountTask, dataset_root=blobs, model=FakeModel(1.0, 0.0))


class _IntKeyPredictions(ToyCountTask):
    def predict(self, model, samples):
        return [{"count": 1.0, "per_class": {3: 1.0}} for _ in samples]


class _Misaligned(ToyCountTask):
    def score(self, samples, predictions):
        s = super().score(samples, predictions)
        s.per_sample["mae"] = s.per_sample["mae"][:-1]
        return s


class _MissingMetric(ToyCountTask):
    def score(self, samples, predictions):
        return Scores(metrics={"mae": 0.0})


class _BadSettings(ToyCountTask):
    def settings(self):
        return {"path": Path("/x")}


@pytest.mark.parametrize(("cls", "expected"), [
    (_IntKeyPredictions, "a dict key that is not a str"),
    (_Misaligned, "per_sample['mae'] has shape (5,), expected (6,)"),
    (_MissingMetric, "did not return the metric 'rmse'"),
    (_BadSettings, "settings() must be JSON-serialisable"),
])
def test_check_task_plugin_reports_violations(cls, expected, blobs):
    with pytest.raises(PluginConformanceError) as e:
        check_task_plugin(cls, dataset_root=blobs, model=FakeModel(1.0, 0.0), n_samples=6)
    assert expected in str(e.value)
    assert isinstance(e.value, AssertionError)


@pytest.mark.parametrize(("cls", "expected"), [
    (_IntKeyPredictions, "a dict key that is not a str"),
    (_Misaligned, "per_sample['mae'] has shape (5,), expected (6,)"),
    (_MissingMetric, "did not return the metric 'rmse'"),
    (_BadSettings, "settings() must be JSON-serialisable"),
])
def test_runner_and_check_task_plugin_apply_the_same_contract(cls, expected, blobs, tmp_path):
    """What check_task_plugin refuses, the runner refuses too, in the same words."""
    from remotesam.bench.run import RunConfig, run

    class OneTask(Registry):
        def get(self, name):
            return cls

    ckpt = bs.write_checkpoint(tmp_path / "c.json", gain=1.0, bias=0.0)
    cfg = RunConfig(tasks=["toy"], checkpoints=[str(ckpt)], data_root=blobs.parent,
                    results_dir=tmp_path / "r", device="cpu", progress=False, batch_size=6)
    out = run(cfg, registry=OneTask(bs.toy_entry_points()),
              model_factory=lambda p, **kw: FakeModel(1.0, 0.0))
    said = " ".join(out.errors) + " ".join(
        f["error"] for r in (out.document.results if out.document else []) for f in r.failures)
    assert expected in said


def test_check_task_plugin_reports_unreadable_dataset(tmp_path):
    with pytest.raises(PluginConformanceError, match=r"counts\.json not found"):
        check_task_plugin(ToyCountTask, dataset_root=tmp_path)


def _installed_names():
    try:
        return Registry().names()
    except Exception:  # an unreadable environment must not break collection
        return []


@pytest.mark.parametrize("name", _installed_names())
def test_every_installed_plugin_loads_and_conforms(name):
    """Registry-driven: every plugin installed in this environment (built-ins included)."""
    cls = Registry().get(name)
    check_task_plugin(cls)


def test_no_test_importorskips_our_own_modules():
    """An import regression in our code must fail the suite, never skip it."""
    import re

    repo = Path(__file__).resolve().parents[1]
    pattern = re.compile(r"importorskip\(\s*['\"](remotesam|remotesam_plugins)([.'\"])")
    offenders = [
        f"{p.relative_to(repo)}:{i}"
        for folder in ("tests", "benchmarks")
        for p in sorted((repo / folder).rglob("*.py"))
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []
