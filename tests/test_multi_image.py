"""Multi-image samples (``Sample.images``, e.g. bitemporal change-detection pairs): validation,
the input fingerprint (every image's bytes), ``check_task_plugin`` and the harness's cache."""

from __future__ import annotations

import textwrap
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from remotesam.bench.api import Sample
from remotesam.bench.api.registry import Registry
from remotesam.bench.records.identity import sample_fingerprints
from remotesam.bench.run import RunConfig, run
from remotesam.testing import PluginConformanceError, check_task_plugin

# A bitemporal plugin: the share of pixels that changed between "t1" and "t2".
PLUGIN = textwrap.dedent('''
    from pathlib import Path

    import numpy as np
    from PIL import Image

    from remotesam.bench.api import DatasetAdapter, MetricSpec, Sample, Scores, TaskPlugin
    from remotesam.bench.kit import check_score_lengths, require_dir


    class Pairs(DatasetAdapter):
        name = "pairs"
        default_subdir = "pairs"

        def samples(self):
            root = require_dir(self.root / "t1", "pairs")
            return [Sample(p.stem, self.root / "t2" / p.name, target={"changed": 0.5},
                           images={"t1": p, "t2": self.root / "t2" / p.name})
                    for p in sorted(root.glob("*.png"))]


    class ChangeShare(TaskPlugin):
        name = "pairdiff"
        version = 1
        metrics = (MetricSpec("err", primary=True, higher_is_better=False, unit=""),)
        datasets = {"pairs": Pairs}
        default_dataset = "pairs"

        def predict(self, model, samples):
            out = []
            for s in samples:
                a, b = (np.asarray(Image.open(s.images[k])) for k in ("t1", "t2"))
                out.append({"changed": float(model.share(a, b))})
            return out

        def score(self, samples, predictions):
            check_score_lengths(samples, predictions)
            e = np.array([abs(p["changed"] - s.target["changed"])
                          for s, p in zip(samples, predictions)])
            return Scores({"err": float(e.mean())}, per_sample={"err": e},
                          sample_ids=[s.sample_id for s in samples])
''')


class ShareModel:
    """Counts its calls; the share of differing pixels."""

    calls = 0

    def share(self, a: np.ndarray, b: np.ndarray) -> float:
        ShareModel.calls += 1
        return float((a != b).mean())


def _factory(path, *, device, precision, batch_size):
    return ShareModel()


@pytest.fixture
def pairs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "pairdiff_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    root = tmp_path / "data" / "pairs"
    for k in ("t1", "t2"):
        (root / k).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        a = rng.integers(0, 2, (8, 8), dtype=np.uint8) * 255
        Image.fromarray(a).save(root / "t1" / f"{i}.png")
        Image.fromarray(255 - a).save(root / "t2" / f"{i}.png")
    ckpt = tmp_path / "model.bin"
    ckpt.write_bytes(b"weights")
    ep = EntryPoint("pairdiff", "pairdiff_plugin:ChangeShare", "remotesam_bench.tasks")
    return {"tmp": tmp_path, "root": root, "ckpt": ckpt, "registry": Registry([ep])}


def test_sample_images_are_validated() -> None:
    s = Sample("a", "t2.png", images={"t1": "t1.png", "t2": Path("t2.png")})
    assert s.all_images() == {"image": "t2.png", "t1": "t1.png", "t2": Path("t2.png")}
    assert Sample("b", "x.png").all_images() == {"image": "x.png"}
    with pytest.raises(ValueError, match="'image' is reserved for the primary image"):
        Sample("a", "x.png", images={"image": "y.png"})
    with pytest.raises(ValueError, match="image names must be non-empty str"):
        Sample("a", "x.png", images={"": "y.png"})
    with pytest.raises(TypeError, match=r"images\['t1'\] is int; expected a path"):
        Sample("a", "x.png", images={"t1": 3})
    with pytest.raises(TypeError, match="images must be a mapping"):
        Sample("a", "x.png", images=["y.png"])  # type: ignore[arg-type]


def test_fingerprint_covers_every_image(tmp_path: Path) -> None:
    paths = {k: tmp_path / f"{k}.png" for k in ("t1", "t2")}
    for k, p in paths.items():
        Image.fromarray(np.full((4, 4), 7 if k == "t1" else 9, np.uint8)).save(p)
    single = Sample("s", paths["t2"])
    pair = Sample("s", paths["t2"], images=dict(paths))
    before_single = sample_fingerprints([single])["s"]
    before_pair = sample_fingerprints([pair])["s"]
    assert before_pair != before_single  # the second image is part of the input
    Image.fromarray(np.full((4, 4), 8, np.uint8)).save(paths["t1"])  # edit only t1
    assert sample_fingerprints([single])["s"] == before_single
    assert sample_fingerprints([pair])["s"] != before_pair
    renamed = Sample("s", paths["t2"], images={"before": paths["t1"], "t2": paths["t2"]})
    assert sample_fingerprints([renamed])["s"] != sample_fingerprints([pair])["s"]


def test_check_task_plugin_checks_every_image(pairs: dict) -> None:
    from pairdiff_plugin import ChangeShare

    check_task_plugin(ChangeShare, dataset_root=pairs["root"], model=ShareModel(), n_samples=2)
    (pairs["root"] / "t1" / "1.png").rename(pairs["root"] / "t1" / "1.tmp")
    (pairs["root"] / "t2" / "2.png").unlink()
    with pytest.raises(
        PluginConformanceError, match=r"sample '2': images\['t2'\] = '.*2\.png' is not a file"
    ):
        check_task_plugin(ChangeShare, dataset_root=pairs["root"])


def test_harness_repredicts_a_pair_when_either_image_changes(pairs: dict) -> None:
    cfg = RunConfig(tasks=["pairdiff"], checkpoints=[str(pairs["ckpt"])],
                    data_root=pairs["root"].parent, results_dir=pairs["tmp"] / "results",
                    batch_size=2, device="cpu", progress=False)
    ShareModel.calls = 0
    first = run(cfg, registry=pairs["registry"], model_factory=_factory)
    assert first.errors == [] and ShareModel.calls == 3
    assert first.document.results[0].metrics["err"].value == pytest.approx(0.5)
    again = run(cfg, registry=pairs["registry"], model_factory=_factory)
    assert ShareModel.calls == 3 and again.n_cached == 3  # nothing changed: all cached
    t1 = pairs["root"] / "t1" / "1.png"
    Image.fromarray(np.asarray(Image.open(pairs["root"] / "t2" / "1.png"))).save(t1)  # t1 := t2
    third = run(cfg, registry=pairs["registry"], model_factory=_factory)
    assert ShareModel.calls == 4 and third.n_cached == 2 and third.n_predicted == 1
    assert third.document.results[0].metrics["err"].value == pytest.approx(0.5)  # (.5 + .5 + .5)/3
