"""The procedural benchmark: determinism, official formats read back by the real adapters,
content consistency, bad inputs."""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from remotesam.synth import SynthError, generate
from remotesam.synth.cli import add_subcommand
from remotesam.synth.expressions import referring_expressions
from remotesam.synth.scene import render_landuse_scene, render_object_scene
from remotesam.synth.vocab import ISAID_PALETTE, LANDUSE_TYPES

SMALL = {"n_images": 3, "image_size": 128, "n_train": 2, "n_val": 1, "landuse_per_class": 1}
IMAGE_SUFFIXES = {".jpg", ".png", ".tif"}


class _NoGlobals(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:  # pragma: no cover - must not run
        raise pickle.UnpicklingError(f"global {module}.{name} in a synthetic refs file")


def _hash_tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "bench"
    generate(out, seed=0, **SMALL)
    return out


def test_same_seed_same_bytes_other_seed_differs(synth_root: Path, tmp_path: Path) -> None:
    again = generate(tmp_path / "again", seed=0, **SMALL)
    first = _hash_tree(synth_root)
    assert first == _hash_tree(tmp_path / "again")
    # the manifest lists every other file with its hash
    manifest = json.loads((synth_root / "manifest.json").read_text())
    assert {k: v for k, v in first.items() if k != "manifest.json"} == manifest["files"]
    other = generate(tmp_path / "other", seed=1, **SMALL)
    assert other.digest() != again.digest()
    assert _hash_tree(tmp_path / "other") != first


def test_rerun_replaces_previous_output(tmp_path: Path) -> None:
    out = tmp_path / "b"
    big = generate(out, seed=3, **{**SMALL, "n_images": 4})
    small = generate(out, seed=3, **SMALL)
    assert len(small.files) < len(big.files)
    assert set(_hash_tree(out)) == set(small.files) | {"manifest.json"}


def _adapters() -> list[tuple[str, str, type]]:
    out = []
    for ep in sorted(entry_points(group="remotesam_bench.tasks"), key=lambda e: e.name):
        plugin = ep.load()
        for name, adapter in plugin.datasets.items():
            out.append((ep.name, name, adapter))
    return out


def test_every_written_file_is_read_by_the_real_adapters(synth_root: Path) -> None:
    import remotesam_plugins.ref  # noqa: F401  (an import error of our plugins must fail)
    used: set[Path] = set()
    read: set[str] = set()
    for task, name, adapter in _adapters():
        root = synth_root / adapter.default_subdir
        if not root.exists():
            continue
        for split in adapter.splits:
            try:
                a = adapter(root, split)
                samples = a.samples()
            except Exception as e:  # an absent split of a present dataset is fine, say which
                if split == adapter.default_split:
                    raise AssertionError(f"{task}.{name} default split {split}: {e}") from e
                continue
            assert samples, f"{task}.{name} split {split}: no samples"
            read.add(f"{task}.{name}")
            for s in samples:
                used.add(Path(s.image).resolve())
                for key in ("label_path",):
                    if key in s.target:
                        used.add(Path(s.target[key]).resolve())
                for key in ("label_file",):
                    if key in s.meta:
                        used.add(Path(s.meta[key]).resolve())
            for attr in ("ann_file", "refs_path", "instances_path"):
                if hasattr(a, attr):
                    used.add(Path(getattr(a, attr)).resolve())
    for required in (
        "ref.rrsisd",
        "seg.isaid",
        "det.dior",
        "det.dotav2",
        "vg.dior_rsvg",
        "mlc.dior",
        "mcc.ucmerced",
        "cap.ucm_captions",
        "cnt.dior",
        "cnt.dotav2",
        "ref.risbench",
        "ref.refsegrs",
        "seg.udd5",
        "seg.deepglobe",
        "seg.deepglobe_landcover",
        "det.isaid",
        "mlc.ucm_multilabel",
        "mlc.aid_multilabel",
        "mlc.multiscene",
        "mlc.mlrsnet",
        "seg.vaihingen",
    ):
        assert required in read, f"{required} did not read the synthetic output"
    written = [
        p
        for p in synth_root.rglob("*")
        if p.is_file()
        and p.suffix in IMAGE_SUFFIXES | {".json", ".p"}
        and p.name != "manifest.json"
    ]
    missing = sorted(str(p.relative_to(synth_root)) for p in written if p.resolve() not in used)
    assert not missing, f"written but read by no adapter: {missing[:10]}"


def test_refer_content_matches_scenes(synth_root: Path) -> None:
    with open(synth_root / "rrsisd" / "refs(unc).p", "rb") as f:
        refs = _NoGlobals(f).load()  # plain containers only
    inst = json.loads((synth_root / "rrsisd" / "instances.json").read_text())
    anns = {a["id"]: a for a in inst["annotations"]}
    assert {r["split"] for r in refs} == {"train", "val", "test"}
    keys = {
        "image_id",
        "split",
        "sentences",
        "file_name",
        "category_id",
        "ann_id",
        "sent_ids",
        "ref_id",
    }
    for r in refs:
        assert set(r) == keys and len(r["sentences"]) == 1
        s = r["sentences"][0]
        assert s["raw"] == s["sent"] and s["tokens"] == s["raw"].split()
        a = anns[r["ann_id"]]
        assert a["categories_id"] == r["category_id"] and isinstance(a["segmentation"], list)
        m = mask_utils.decode(a["segmentation"])  # H x W x 1, as the official loaders read it
        assert m.shape == (128, 128, 1)
        if r["split"] == "test":  # one-to-one expressions: non-empty masks inside their xyxy box
            ys, xs = np.nonzero(m[:, :, 0])
            assert xs.size > 0
            assert a["bbox"] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            assert "in the image" not in s["raw"]
    train = [r["sentences"][0]["raw"] for r in refs if r["split"] == "train"]
    assert any(t.endswith("in the image") or t.endswith("in the image.") for t in train)


def test_training_prompts_cover_every_benchmark_vocabulary() -> None:
    """Every class word the benchmarks prompt with is trained, as a positive or as a negative.

    A word the tiny model never saw keeps a random embedding and fires anywhere (captioning
    queries 37 classes), so the generator's "{category} in the image" refs must cover them all;
    captioning's "grass" is the one documented exception (drawn but never annotated).
    """
    from remotesam import classes as C
    from remotesam.synth import generator as g
    from remotesam.synth.vocab import refer_categories

    def norm(w: str) -> str:
        return w.replace(" ", "").replace("-", "").lower()

    trained = {norm(p) for phrases, *_ in g._PRESENCE for p in phrases} | {
        norm(p) for p, _ in g._NEVER
    }
    vocabularies = (
        C.CAPTION_POTENTIAL_CLASSES
        + C.DIOR_CLASSES
        + C.DOTA_CLASSES
        + C.ISAID_CLASSES
        + C.UCM_CLASSES
    )
    assert sorted({w for w in vocabularies if norm(w) not in trained}) == ["grass"]
    categories = {c["name"] for c in refer_categories()}
    assert {cat for _, cat, *_ in g._PRESENCE} <= categories
    assert {cat for _, cat in g._NEVER} <= categories


def test_isaid_masks_use_only_the_palette(synth_root: Path) -> None:
    allowed = {(0, 0, 0), *ISAID_PALETTE.values()}
    masks = sorted((synth_root / "iSAID" / "val" / "masks").glob("*_instance_color_RGB.png"))
    assert masks
    seen = set()
    for p in masks:
        arr = np.asarray(Image.open(p).convert("RGB")).reshape(-1, 3)
        cols = {tuple(int(v) for v in c) for c in np.unique(arr, axis=0)}
        assert cols <= allowed, p
        seen |= cols
    assert len(seen) > 2


def test_expressions_identify_exactly_one_object() -> None:
    for i in range(12):
        scene = render_object_scene(np.random.default_rng(i), 256)
        exprs = referring_expressions(scene, np.random.default_rng(100 + i))
        idx = [e.index for e in exprs]
        assert len(idx) == len(set(idx))
        for e in exprs:
            o = scene.objects[e.index]
            words = e.text.lower()
            if e.kind == "color" or e.kind == "color+position":
                assert o.color in words
                same = [
                    p
                    for j, p in enumerate(scene.objects)
                    if j != e.index and p.kind == o.kind and p.color == o.color
                ]
                if e.kind == "color":
                    assert not same, e
            if e.kind == "size" and "largest" in words:
                peers = [
                    p.area for j, p in enumerate(scene.objects) if j != e.index and p.kind == o.kind
                ]
                assert all(o.area > a for a in peers)
            if e.kind == "extreme" and "leftmost" in words:
                peers = [
                    p.center[0]
                    for j, p in enumerate(scene.objects)
                    if j != e.index and p.kind == o.kind
                ]
                assert all(o.center[0] < x for x in peers)


def test_scene_objects_do_not_overlap_and_landuse_types_render() -> None:
    scene = render_object_scene(np.random.default_rng(5), 256)
    total = np.zeros((256, 256), int)
    for o in scene.objects:
        total += o.mask
    assert total.max() <= 1
    for t in LANDUSE_TYPES:
        s = render_landuse_scene(np.random.default_rng(0), 96, t)
        assert s.image.shape == (96, 96, 3) and s.image.dtype == np.uint8
    with pytest.raises(ValueError, match="unknown land-use type"):
        render_landuse_scene(np.random.default_rng(0), 96, "volcano")


@pytest.mark.parametrize("seed", ["7", 1.5, True, None, -1])
def test_bad_seed_is_a_clear_error(seed: object, tmp_path: Path) -> None:
    with pytest.raises(SynthError, match="seed must be"):
        generate(tmp_path / "o", seed=seed, **SMALL)  # type: ignore[arg-type]
    assert not (tmp_path / "o" / "manifest.json").exists()


@pytest.mark.parametrize(
    "kw", [{"n_images": 0}, {"image_size": 32}, {"object_scale": 10.0}, {"n_train": "4"}]
)
def test_bad_sizes_are_clear_errors(kw: dict, tmp_path: Path) -> None:
    with pytest.raises(SynthError, match=next(iter(kw))):
        generate(tmp_path / "o", **{**SMALL, **kw})


def test_unusable_output_directories(tmp_path: Path) -> None:
    f = tmp_path / "a_file"
    f.write_text("x")
    with pytest.raises(SynthError, match="not a directory"):
        generate(f, **SMALL)
    with pytest.raises(SynthError, match="cannot create output directory"):
        generate(f / "sub", **SMALL)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(SynthError, match="not empty"):
        generate(foreign, **SMALL)
    assert (foreign / "thesis.tex").read_text() == "precious"
    if Path("/proc/self").is_dir():
        with pytest.raises(SynthError, match="output directory"):
            generate("/proc/remotesam_synth_cannot_write_here", **SMALL)


def test_cli_subcommand(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_subcommand(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["synth", "--out", str(tmp_path / "x"), "--seed", "abc"])
    assert args.func(args) == 2
    assert "--seed must be a whole number" in capsys.readouterr().err
    args = parser.parse_args(
        [
            "synth",
            "--out",
            str(tmp_path / "y"),
            "--seed",
            "4",
            "--n-images",
            "2",
            "--image-size",
            "96",
            "--n-train",
            "1",
            "--n-val",
            "1",
            "--landuse-per-class",
            "1",
        ]
    )
    assert args.func(args) == 0
    assert (tmp_path / "y" / "manifest.json").is_file()
    assert "remotesam-bench run --tasks all --data-root" in capsys.readouterr().out
