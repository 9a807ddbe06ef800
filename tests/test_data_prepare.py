"""``remotesam-bench data prepare``: DIOR VOC XML -> RemoteSAM's COCO json, and DOTA images +
labelTxt -> 1024 px patches with the DOTA devkit's ``ImgSplit_multi_process`` rules.

The DOTA digests below were computed by running the devkit's own splitter
(github:CAPTAIN-WHU/DOTA_devkit, ``ImgSplit_multi_process.splitbase``, OpenCV 5.1, shapely 2)
on the same real files; our independent implementation must write the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from remotesam.bench.cli import main
from remotesam.bench.data.prepare import (
    clip_polygon_to_rect,
    dior_xml_to_coco,
    parse_dota_labels,
    prepare_dior,
    prepare_dota,
    split_dota_image,
    split_windows,
)

# devkit splitbase(gap, subsize) outputs: sha256 over sorted (folder/name, sha256(bytes))
DEVKIT_P1888_1024 = "b3b96a8ab702cbdfb4413de6101d29c46e743ae29e6802d00bd51f33dacebd98"
DEVKIT_P1888_256_GAP64 = "e3850d4098d422fd48a549b73dcb9f75bd276729663cb44a9b16c9a9a5fa90d3"
# the six other real labelTxt of the devkit example, on black images of (max x + 37, max y + 53)
# px, subsize 512 gap 128: 240 patches, 353 truncated objects (difficulty 2); label files only
DEVKIT_LABELS_512_GAP128 = "455f369f4d94c733baa4e9bf5fc7655950ba26a8b3b36d88de9744196fedab62"


def _digest(entries: list[tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    for name, data in sorted(entries):
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def _split_digest(img: np.ndarray, labels: Path, stem: str, subsize: int, gap: int,
                  images: bool = True) -> str:
    entries = []
    for name, patch, lines in split_dota_image(img, parse_dota_labels(labels), stem, subsize, gap):
        entries.append((f"labelTxt/{name}.txt", "".join(ln + "\n" for ln in lines).encode()))
        if images:
            ok, buf = cv2.imencode(".png", patch)
            assert ok
            entries.append((f"images/{name}.png", buf.tobytes()))
    return _digest(entries)


def test_dota_split_equals_the_devkit_on_the_real_full_image(real_data: Path) -> None:
    src = real_data / "dota" / "v1.0_full_image"
    img = cv2.imread(str(src / "images" / "P1888.png"), cv2.IMREAD_COLOR)
    labels = src / "labelTxt" / "P1888.txt"
    assert _split_digest(img, labels, "P1888", 1024, 200) == DEVKIT_P1888_1024
    assert _split_digest(img, labels, "P1888", 256, 64) == DEVKIT_P1888_256_GAP64


def test_dota_truncation_rules_equal_the_devkit_on_six_real_label_files(real_data: Path) -> None:
    entries = []
    n2 = 0
    for lab in sorted((real_data / "dota" / "v1.0_full_image" / "labelTxt").glob("*.txt")):
        if lab.stem == "P1888":
            continue
        objs = parse_dota_labels(lab)
        w = int(max(max(o.poly[0::2]) for o in objs)) + 37
        h = int(max(max(o.poly[1::2]) for o in objs)) + 53
        img = np.zeros((h, w, 3), np.uint8)
        for name, _, lines in split_dota_image(img, objs, lab.stem, 512, 128):
            entries.append((f"{name}.txt", "".join(ln + "\n" for ln in lines).encode()))
            n2 += sum(ln.endswith(" 2") for ln in lines)
    assert len(entries) == 240 and n2 == 353
    assert _digest(entries) == DEVKIT_LABELS_512_GAP128


def test_real_devkit_patch_is_reproduced(real_data: Path, tmp_path: Path) -> None:
    """P1478__1__853___962 (cut by the devkit, DOTA_devkit_YOLO demo): the last window of a
    1877 x 1986 image. The full image is not public: rebuild it around the patch with the
    patch's whole objects moved back to image coordinates; the splitter must cut the same
    window, the same PNG bytes and the same label lines for those objects."""
    patch_png = real_data / "dota" / "split_patch" / "images" / "P1478__1__853___962.png"
    patch_txt = real_data / "dota" / "split_patch" / "annfiles" / "P1478__1__853___962.txt"
    patch = cv2.imread(str(patch_png), cv2.IMREAD_COLOR)
    left, up = 853, 962
    full = np.zeros((up + 1024, left + 1024, 3), np.uint8)
    full[up:, left:] = patch
    whole = []
    for line in patch_txt.read_text().splitlines():
        p = line.split(" ")
        xy = [float(v) for v in p[:8]]
        if p[9] != "2" and all(1 < v < 1023 for v in xy):
            whole.append((xy, p[8], p[9], line))
    assert len(whole) > 250
    release = tmp_path / "release"
    (release / "images").mkdir(parents=True)
    (release / "labelTxt").mkdir()
    cv2.imwrite(str(release / "images" / "P1478.png"), full)
    (release / "labelTxt" / "P1478.txt").write_text("imagesource:GoogleEarth\ngsd:null\n" + "".join(
        " ".join(str(int(v + (left if i % 2 == 0 else up))) for i, v in enumerate(xy))
        + f" {name} {dif}\n" for xy, name, dif, _ in whole))
    assert (left, up) in split_windows(full.shape[1], full.shape[0])
    out = tmp_path / "root"
    prepare_dota(release, out, progress=lambda s: None)
    dst = out / "DOTAv2_patches" / "val"
    assert (dst / "images" / patch_png.name).read_bytes() == patch_png.read_bytes()
    got = (dst / "annfiles" / patch_txt.name).read_text().splitlines()
    assert got == [line for *_, line in whole]


def test_clipping_equals_shapely_on_random_quadrilaterals() -> None:
    shapely = pytest.importorskip("shapely", reason="shapely (dev extra) is the reference")
    from shapely.geometry import Polygon, box

    rng = np.random.default_rng(0)
    for _ in range(400):
        c = rng.uniform(-50, 150, 2)
        a, w, h = rng.uniform(0, np.pi), rng.uniform(5, 120), rng.uniform(5, 120)
        r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        pts = [tuple(c + r @ v) for v in ([-w, -h], [w, -h], [w, h], [-w, h])]
        ours = clip_polygon_to_rect(pts, 0, 0, 100, 100)
        ref = Polygon(pts).intersection(box(0, 0, 100, 100))
        if ref.area < 1e-9:
            assert ours == []
            continue
        assert shapely.geometry.Polygon(ours).area == pytest.approx(ref.area, rel=1e-9)
        assert len(ours) == len(ref.exterior.coords) - 1


def _dior_release(real_data: Path, root: Path) -> Path:
    src = root / "DIOR"
    ann = src / "Annotations" / "Oriented Bounding Boxes"
    ann.mkdir(parents=True)
    shutil.copy(real_data / "dior" / "Annotations" / "Oriented Bounding Boxes" / "00001.xml", ann)
    (src / "JPEGImages-trainval").mkdir()
    shutil.copy(real_data / "dior" / "JPEGImages" / "00001.jpg", src / "JPEGImages-trainval")
    (src / "ImageSets" / "Main").mkdir(parents=True)
    (src / "ImageSets" / "Main" / "test.txt").write_text("00001\n")
    return src


def test_dior_xml_to_coco_equals_the_reconstructed_sample(real_data: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    want = json.loads((real_data / "dior" / "Annotations"
                       / "DIOR_00001_coco_RECONSTRUCTED.json").read_text())
    assert dior_xml_to_coco([real_data / "dior" / "Annotations" / "Oriented Bounding Boxes"
                             / "00001.xml"]) == want
    src = _dior_release(real_data, tmp_path)
    out = tmp_path / "data"
    assert main(["data", "prepare", "dior", "--src", str(src), "--out", str(out)]) == 0
    assert json.loads((out / "DIORcoco" / "Annotations" / "DIOR_test.json").read_text()) == want
    assert (out / "DIORcoco" / "JPEGImages" / "00001.jpg").is_file()
    # idempotent: the second run does nothing and says so
    assert main(["data", "prepare", "dior", "--src", str(src), "--out", str(out)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    # the adapter reads what was written
    from remotesam_plugins.det import DIORDetectionAdapter

    s = DIORDetectionAdapter(out / "DIORcoco").samples()
    assert s[0].target["labels"] == ["golffield"] and s[0].target["bbox_xyxy"] == [[133, 237, 684,
                                                                                   672]]


def test_partial_release_is_one_clear_error_and_nothing_written(
        real_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _dior_release(real_data, tmp_path)
    (src / "JPEGImages-trainval" / "00001.jpg").unlink()
    out = tmp_path / "data"
    assert main(["data", "prepare", "dior", "--src", str(src), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "00001.jpg: missing from the release" in err and "Traceback" not in err
    assert not out.exists()
    dota = tmp_path / "dota"
    (dota / "images").mkdir(parents=True)
    (dota / "labelTxt").mkdir()
    shutil.copy(real_data / "dota" / "v1.0_full_image" / "images" / "P1888.png", dota / "images")
    assert main(["data", "prepare", "dotav2", "--src", str(dota), "--out", str(out)]) == 2
    assert "P1888.txt: missing label file" in capsys.readouterr().err
    assert not out.exists()


def test_dota_prepare_resumes_and_is_idempotent(real_data: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "val"
    shutil.copytree(real_data / "dota" / "v1.0_full_image", src)
    for lab in (src / "labelTxt").glob("*.txt"):  # keep the labels that have their image
        if lab.stem != "P1888":
            lab.unlink()
    img = cv2.imread(str(src / "images" / "P1888.png"))
    cv2.imwrite(str(src / "images" / "P9999.png"), img[:300, :400])
    shutil.copy(src / "labelTxt" / "P1888.txt", src / "labelTxt" / "P9999.txt")
    out = tmp_path / "data"
    assert main(["data", "prepare", "dotav2", "--src", str(src), "--out", str(out)]) == 0
    dst = out / "DOTAv2_patches" / "val"
    first = {p.name: p.read_bytes() for p in sorted((dst / "annfiles").iterdir())}
    assert set(first) == {"P1888__1__0___0.txt", "P9999__1__0___0.txt"}
    # interrupted after the first image: its marker is there, the second's is not
    (dst / ".prepare" / "P9999.done").unlink()
    (dst / "annfiles" / "P9999__1__0___0.txt").unlink()
    capsys.readouterr()
    assert main(["data", "prepare", "dotav2", "--src", str(src), "--out", str(out)]) == 0
    assert "[2/2] P9999.png" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in sorted((dst / "annfiles").iterdir())} == first
    assert main(["data", "prepare", "dotav2", "--src", str(src), "--out", str(out)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert not list(dst.rglob("*.tmp"))
    from remotesam_plugins.det import DOTADetectionAdapter

    assert len(DOTADetectionAdapter(out / "DOTAv2_patches").samples()) == 2


def test_prepare_on_the_procedural_benchmark_written_in_released_form(tmp_path: Path) -> None:
    """The synth benchmark's DIOR boxes written as DIOR VOC XML (HBB folder) and its DOTA
    scenes as full images with headed labelTxt: prepared, the adapters read the same boxes
    and polygons as from the synth's own converted files."""
    from remotesam.synth import generate
    from remotesam_plugins.det import DIORDetectionAdapter, DOTADetectionAdapter

    syn = tmp_path / "synth"
    generate(syn, seed=5, n_images=3, image_size=96, n_train=0, n_val=0)
    coco = json.loads((syn / "DIORcoco" / "Annotations" / "DIOR_test.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    rel = tmp_path / "DIOR"
    ann = rel / "Annotations" / "Horizontal Bounding Boxes"
    ann.mkdir(parents=True)
    (rel / "JPEGImages-test").mkdir()
    (rel / "ImageSets" / "Main").mkdir(parents=True)
    stems = []
    for im in coco["images"]:
        stem = Path(im["file_name"]).stem
        stems.append(stem)
        shutil.copy(syn / "DIORcoco" / "JPEGImages" / im["file_name"], rel / "JPEGImages-test")
        objs = "".join(
            f"<object><name>{names[a['category_id']]}</name><bndbox><xmin>{a['bbox'][0]}</xmin>"
            f"<ymin>{a['bbox'][1]}</ymin><xmax>{a['bbox'][0] + a['bbox'][2]}</xmax>"
            f"<ymax>{a['bbox'][1] + a['bbox'][3]}</ymax></bndbox></object>"
            for a in coco["annotations"] if a["image_id"] == im["id"])
        (ann / f"{stem}.xml").write_text(
            f"<annotation><filename>{im['file_name']}</filename><size><width>{im['width']}"
            f"</width><height>{im['height']}</height><depth>3</depth></size>{objs}</annotation>")
    (rel / "ImageSets" / "Main" / "test.txt").write_text("".join(s + "\n" for s in stems))
    out = tmp_path / "root"
    prepare_dior(rel, out, progress=lambda s: None)

    def boxes(samples: list) -> dict:
        return {s.sample_id: (s.target["labels"], s.target["bbox_xyxy"]) for s in samples}

    assert boxes(DIORDetectionAdapter(out / "DIORcoco").samples()) == boxes(
        DIORDetectionAdapter(syn / "DIORcoco").samples())

    dota = tmp_path / "DOTA" / "val"
    (dota / "images").mkdir(parents=True)
    (dota / "labelTxt").mkdir()
    patches = syn / "DOTAv2_patches" / "val"
    for p in sorted((patches / "images").glob("*.png")):
        stem = p.stem.split("__")[0]
        shutil.copy(p, dota / "images" / f"{stem}.png")
        (dota / "labelTxt" / f"{stem}.txt").write_text(
            "imagesource:GoogleEarth\ngsd:null\n" + (patches / "annfiles" / f"{p.stem}.txt")
            .read_text())
    prepare_dota(dota, out, progress=lambda s: None)
    ours = DOTADetectionAdapter(out / "DOTAv2_patches").samples()
    ref = DOTADetectionAdapter(patches.parent).samples()
    assert [s.sample_id for s in ours] == [s.sample_id for s in ref]
    for a, b in zip(ours, ref, strict=True):
        assert a.target["labels"] == b.target["labels"]
        assert np.array_equal(np.asarray(a.target["polygons"]), np.asarray(b.target["polygons"]))
        img = cv2.imread(str(a.image))
        assert img.shape == (1024, 1024, 3)  # padded as the devkit pads
        small = cv2.imread(str(b.image))
        assert np.array_equal(img[:small.shape[0], :small.shape[1]], small)
        assert not img[small.shape[0]:].any()
