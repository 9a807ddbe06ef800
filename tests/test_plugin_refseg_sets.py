"""RISBench and RefSegRS (``ref`` task, phrase-list layout) on the procedural benchmark.

The metric check recomputes oIoU / mIoU / Pr@X the way LGCE's ``train.py::evaluate`` and
RMSIN/LAVT's ``test.py`` do (numpy masks: ``I = sum(pred & gt)``, ``U = sum(pred | gt)``,
IoU 0 for an empty union, mIoU = mean IoU, oIoU = cum I / cum U, Pr@t = share with IoU >= t),
after PIL nearest resizing to the evaluation size (RemoteSAM's REF protocol).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from plugin_support import check_plugin_tiny, run_harness_tiny

from remotesam.bench.api import DatasetError
from remotesam.bench.kit.masks import mask_to_rle, rle_to_mask
from remotesam.synth import generate
from remotesam_plugins._phrase_refer import parse_phrase_file, read_binary_mask
from remotesam_plugins.ref import ReferringSegmentationTask, RefSegRSAdapter, RISBenchAdapter

ADAPTERS = [(RISBenchAdapter, "RISBench", "img_rgb", "mask"),
            (RefSegRSAdapter, "RefSegRS", "images", "masks")]


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("refseg_synth")
    generate(root, seed=0, n_images=6, image_size=64)
    return root


def _lgce_metrics(preds: list[np.ndarray], gts: list[np.ndarray], size: int) -> dict[str, float]:
    """oIoU / mIoU / Pr@X as LGCE and RMSIN compute them, at ``size`` x ``size`` (nearest)."""
    cum_i = cum_u = 0
    ious = []
    for p, g in zip(preds, gts):
        p = np.asarray(Image.fromarray(p.astype(np.uint8)).resize((size, size), Image.NEAREST))
        g = np.asarray(Image.fromarray(g.astype(np.uint8)).resize((size, size), Image.NEAREST))
        i = np.sum(np.logical_and(p, g))
        u = np.sum(np.logical_or(p, g))
        ious.append(0.0 if u == 0 else i / u)
        cum_i += i
        cum_u += u
    ious_a = np.array(ious)
    out = {"mIoU": 100 * ious_a.mean(), "oIoU": 100 * cum_i / cum_u}
    for t in (0.5, 0.6, 0.7, 0.8, 0.9):
        out[f"Pr@{t:g}"] = 100 * np.mean(ious_a >= t)
    return out


@pytest.mark.parametrize(("cls", "folder", "images", "masks"), ADAPTERS)
def test_adapter_reads_release_layout(synth_root: Path, cls: type, folder: str, images: str,
                                      masks: str) -> None:
    root = synth_root / folder
    lines = parse_phrase_file(root / "output_phrase_test.txt", "phrases")
    ds = cls(root)
    assert ds.split == "test" and cls.info.split == "test"
    samples = ds.samples()
    assert [s.meta["sentence"] for s in samples] == [pl.phrase for pl in lines]
    assert [s.meta["index"] for s in samples] == [pl.index for pl in lines]
    for s in samples[:6]:
        mask_file = next((root / masks).glob(f"{s.meta['index']}.*"))
        expected = np.asarray(Image.open(mask_file)) == 255
        np.testing.assert_array_equal(rle_to_mask(s.target["mask_rle"]).astype(bool), expected)
        assert s.target["size"] == list(expected.shape)
        assert Path(s.image).parent == root / images
    assert len(cls(root, "train").samples()) > 0 and len(cls(root, "val").samples()) > 0


@pytest.mark.parametrize("eval_size", [64, 896])
def test_metrics_equal_lgce_formula(synth_root: Path, eval_size: int) -> None:
    samples = RefSegRSAdapter(synth_root / "RefSegRS").samples()
    rng = np.random.default_rng(0)
    preds, gts, predictions = [], [], []
    for k, s in enumerate(samples):
        gt = rle_to_mask(s.target["mask_rle"]).astype(bool)
        pred = gt.copy()
        if k % 4 == 1:  # shifted
            pred = np.roll(gt, int(rng.integers(1, 6)), axis=int(rng.integers(2)))
        elif k % 4 == 2:  # noisy
            pred = gt ^ (rng.random(gt.shape) < 0.05)
        elif k % 4 == 3:  # empty
            pred = np.zeros_like(gt)
        preds.append(pred)
        gts.append(gt)
        predictions.append({"mask": mask_to_rle(pred), "mask_net": mask_to_rle(pred)})
    scores = ReferringSegmentationTask({"eval_size": eval_size}).score(samples, predictions)
    expected = _lgce_metrics(preds, gts, eval_size)
    for name, value in expected.items():
        assert scores.metrics[name] == pytest.approx(value, abs=1e-9), name


def test_check_task_plugin_and_harness(synth_root: Path, tmp_path: Path) -> None:
    check_plugin_tiny(ReferringSegmentationTask, synth_root / "RISBench", dataset="risbench")
    res = run_harness_tiny(tmp_path, "ref.refsegrs", synth_root / "RefSegRS", limit=2)
    assert res.dataset == "refsegrs" and res.split == "test"
    assert res.n_evaluated == 2 and res.n_failed == 0
    assert 0.0 <= res.metrics["oIoU"].value <= 100.0


# --------------------------------------------------------------------------------------------
# hostile input: one clear error naming the file
# --------------------------------------------------------------------------------------------


def _tiny_set(root: Path, lines: str, mask: np.ndarray | None = None) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "images" / "1.tif")
    m = np.zeros((8, 8), np.uint8) if mask is None else mask
    Image.fromarray(m).save(root / "masks" / "1.tif")
    (root / "output_phrase_test.txt").write_text(lines, encoding="utf-8")
    return root


def test_bad_line_names_file_and_line(tmp_path: Path) -> None:
    root = _tiny_set(tmp_path / "r", "1 the road\n\n17\n")
    with pytest.raises(DatasetError, match=r"output_phrase_test\.txt: line 3 is '17'"):
        RefSegRSAdapter(root).samples()


def test_missing_mask_and_image_name_the_path(tmp_path: Path) -> None:
    root = _tiny_set(tmp_path / "r", "1 the road\n")
    (root / "masks" / "1.tif").unlink()
    with pytest.raises(DatasetError, match=r"line 1: no mask .*masks[/\\]1\.\*"):
        RefSegRSAdapter(root).samples()
    (root / "output_phrase_test.txt").write_text("2 a car\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"line 1: no image .*images[/\\]2\.\*"):
        RefSegRSAdapter(root).samples()


def test_missing_phrase_file_and_folder(tmp_path: Path) -> None:
    root = _tiny_set(tmp_path / "r", "1 the road\n")
    with pytest.raises(DatasetError, match=r"output_phrase_val\.txt"):
        RefSegRSAdapter(root, "val")
    with pytest.raises(DatasetError, match=r"img_rgb"):
        RISBenchAdapter(root)


def test_bad_mask_values(tmp_path: Path) -> None:
    m = np.zeros((8, 8), np.uint8)
    m[2:4, 2:4] = 255
    m[0, 0] = 7
    root = _tiny_set(tmp_path / "r", "1 the road\n", m)
    with pytest.raises(DatasetError, match=r"masks[/\\]1\.tif: mask value\(s\) \[7\]"):
        RefSegRSAdapter(root).samples()
    (s,) = RefSegRSAdapter(root, mask_threshold=128).samples()
    assert rle_to_mask(s.target["mask_rle"]).sum() == 4
    # 0/1 masks (what third-party loaders' `mask != 0` reads): the message names the option
    Image.fromarray((m == 255).astype(np.uint8)).save(root / "masks" / "1.tif")
    with pytest.raises(DatasetError, match=r"mask_threshold=1: every non-zero value"):
        RefSegRSAdapter(root).samples()
    (s,) = RefSegRSAdapter(root, mask_threshold=1).samples()
    assert rle_to_mask(s.target["mask_rle"]).sum() == 4
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[0, 0, 1] = 255
    Image.fromarray(rgb).save(root / "masks" / "1.tif")
    with pytest.raises(DatasetError, match=r"unequal channels"):
        read_binary_mask(root / "masks" / "1.tif")
    with pytest.raises(DatasetError, match=r"foreground_value"):
        RefSegRSAdapter(root, foreground_value="white")


def test_repeated_index_gets_unique_ids(tmp_path: Path) -> None:
    root = _tiny_set(tmp_path / "r", "1 the road\n1 the other road\n")
    ids = [s.sample_id for s in RefSegRSAdapter(root).samples()]
    assert ids == ["1", "1:1"]
