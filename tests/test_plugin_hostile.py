"""Hostile dataset files: allocation-bomb pickles, FIFOs where files are expected, NaN boxes,
file names that point outside the data root.

Every test builds the hostile file itself (in ``tmp_path``) and checks that the adapter answers
with a clear :class:`DatasetError` naming the file (or skips the non-regular entry) instead of
allocating gigabytes, raising a bare ``MemoryError`` or blocking forever.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import struct
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from remotesam.bench.api import DatasetError
from remotesam.bench.kit import image_files, is_regular_file, member_path, read_text, regular_files
from remotesam.classes import DIOR_CLASSES, UCM_FOLDER_NAMES
from remotesam_plugins._refer import read_refer_pickle
from remotesam_plugins.cap import UCMCaptionsAdapter
from remotesam_plugins.cnt import DIORCountingAdapter
from remotesam_plugins.det import DIORDetectionAdapter, DOTADetectionAdapter
from remotesam_plugins.mcc import UCMercedAdapter
from remotesam_plugins.ref import RRSISDAdapter
from remotesam_plugins.vg import DIORRSVGAdapter

needs_fifo = pytest.mark.skipif(
    not hasattr(os, "mkfifo"), reason="os.mkfifo is not available on this system"
)

# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def deadline(seconds: int = 10) -> Iterator[None]:
    """Fail (instead of hanging the suite) when the body blocks, e.g. on opening a FIFO."""

    def _expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"blocked for more than {seconds} s (a FIFO was opened?)")

    old = signal.signal(signal.SIGALRM, _expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@contextlib.contextmanager
def peak_allocation(limit_bytes: int) -> Iterator[None]:
    """Assert that the body's Python allocations peak below ``limit_bytes``."""
    tracemalloc.start()
    try:
        yield
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < limit_bytes, f"allocated {peak} bytes"


def _fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


# --------------------------------------------------------------------------------------------
# REFER pickle allocation bombs
# --------------------------------------------------------------------------------------------

_GB15 = 1_500_000_000

#: bytearray(1.5e9) through the allowed builtins.bytearray global: 30 bytes -> 1.5 GB zeroed
BYTEARRAY_CALL = b"\x80\x02cbuiltins\nbytearray\nJ" + struct.pack("<i", _GB15) + b"\x85R."
#: bytearray(2**50): a bare MemoryError before
BYTEARRAY_2_50 = (
    b"\x80\x02cbuiltins\nbytearray\n\x8a\x07" + (2**50).to_bytes(7, "little") + b"\x85R."
)
#: protocol 4, a frame, then BINBYTES8 declaring 1.5 GB (allocated before it is read): 36 bytes
BINBYTES8 = (b"\x80\x04\x95" + struct.pack("<Q", 25) + b"]\x94\x8e" + struct.pack("<Q", _GB15)
             + b"abcdefghijklm.")
BOMBS = {
    "bytearray(1.5e9) call": (BYTEARRAY_CALL, r"bytearray\(1500000000\) would allocate"),
    "bytearray(2**50) call": (BYTEARRAY_2_50, r"bytearray\(1125899906842624\) would allocate"),
    "BINBYTES8 of 1.5 GB": (BINBYTES8, r"declares 1500000000 bytes but only 14 remain"),
    "BYTEARRAY8 of 1.5 GB": (
        b"\x80\x05\x96" + struct.pack("<Q", _GB15) + b"x.",
        r"declares 1500000000 bytes",
    ),
    "BINUNICODE8 of 2**50": (
        b"\x80\x04\x8d" + struct.pack("<Q", 2**50) + b"x.",
        r"declares 1125899906842624 bytes",
    ),
    "LONG4 of 2 GB": (
        b"\x80\x02\x8b" + struct.pack("<i", 2**31 - 1) + b"\x01.",
        r"declares 2147483647 bytes",
    ),
    "BINSTRING of -1": (b"\x80\x02T" + struct.pack("<i", -1) + b".", r"declares -1 bytes"),
    "FRAME of 2**50": (
        b"\x80\x04\x95" + struct.pack("<Q", 2**50) + b"N.",
        r"FRAME at byte 2 declares",
    ),
    "memo index 2**32-1": (
        b"\x80\x02]r" + struct.pack("<I", 2**32 - 1) + b".",
        r"memo index 4294967295",
    ),
    "text memo index": (b"(lp99999999999\n.", r"memo index 99999999999"),
    "numpy array of 2**40": (
        b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n\x8a\x06"
        + (2**40).to_bytes(6, "little")
        + b"\x85U\x01b\x87R.",
        r"numpy array of shape \(1099511627776,\) would allocate",
    ),
    "ndarray called directly": (
        b"\x80\x02cnumpy\nndarray\n\x8a\x06" + (2**40).to_bytes(6, "little") + b"\x85\x85R.",
        r"only be rebuilt through numpy's _reconstruct",
    ),
    "protocol 9": (b"\x80\x09N.", r"unsupported pickle protocol 9"),
    "no STOP": (b"\x80\x02]q\x00", r"no STOP opcode"),
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_refer_pickle_bombs_are_refused_without_allocating(tmp_path: Path, name: str) -> None:
    data, match = BOMBS[name]
    p = tmp_path / "refs(unc).p"
    p.write_bytes(data)
    with peak_allocation(16 * 2**20), pytest.raises(DatasetError) as err:
        read_refer_pickle(p)
    msg = str(err.value)
    assert str(p) in msg and "cannot unpickle" in msg
    assert __import__("re").search(match, msg), msg


def test_the_36_byte_pickle_is_36_bytes() -> None:
    assert len(BINBYTES8) == 36 and len(BYTEARRAY_CALL) <= 36


def test_numpy_object_array_state_must_carry_its_items(tmp_path: Path) -> None:
    # a legitimate small object array survives; one whose state declares 2**40 items does not
    good = pickle.dumps([np.array(["a", 1], dtype=object), np.arange(3), np.int64(7)], protocol=2)
    p = tmp_path / "ok.p"
    p.write_bytes(good)
    got = read_refer_pickle(p)
    assert got[0].tolist() == ["a", 1] and got[1].tolist() == [0, 1, 2] and got[2] == 7
    bad = good.replace(b"K\x02\x85", b"\x8a\x06" + (2**40).to_bytes(6, "little") + b"\x85", 1)
    assert bad != good
    p.write_bytes(bad)
    with peak_allocation(16 * 2**20), pytest.raises(DatasetError, match="does not carry its items"):
        read_refer_pickle(p)


def test_real_and_ordinary_pickles_still_load(real_data: Path, tmp_path: Path) -> None:
    refs = read_refer_pickle(
        real_data / "rrsisd" / "refer_reconstructed" / "rrsisd" / "refs(unc).p"
    )
    assert [r["ref_id"] for r in refs] and all(isinstance(r, dict) for r in refs)
    data = [
        {
            "sentences": [{"raw": "x", "sent": "x", "sent_id": 1}],
            "b": bytearray(b"ab"),
            "s": {1, 2},
            "t": (1, 2.5, None, True),
            "big": 2**70,
            "f": frozenset({"a"}),
        }
    ]
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        path = tmp_path / f"refs{proto}.p"
        path.write_bytes(pickle.dumps(data, protocol=proto))
        assert read_refer_pickle(path) == data, proto


# --------------------------------------------------------------------------------------------
# FIFOs and other non-regular files
# --------------------------------------------------------------------------------------------


@needs_fifo
def test_fifo_named_xml_in_rsvg_annotations_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "JPEGImages").mkdir()
    (tmp_path / "Annotations" / "00001.xml").write_text(
        "<annotation><filename>00001.jpg</filename><object><name>ship</name>"
        "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox>"
        "<description>a ship</description></object></annotation>")
    _fifo(tmp_path / "Annotations" / "x.xml")
    Image.new("RGB", (16, 16)).save(tmp_path / "JPEGImages" / "00001.jpg")
    (tmp_path / "test.txt").write_text("0\n")
    with deadline():
        samples = DIORRSVGAdapter(tmp_path).samples()
    assert [s.meta["xml"] for s in samples] == ["00001.xml"]


@needs_fifo
def test_listings_take_regular_files_only(tmp_path: Path) -> None:
    _fifo(tmp_path / "a.png")
    _fifo(tmp_path / "b.xml")
    (tmp_path / "c.png").write_bytes(b"x")
    (tmp_path / "d.png").mkdir()
    (tmp_path / "e.png").symlink_to(tmp_path / "a.png")  # a link to a FIFO is no file either
    (tmp_path / "f.png").symlink_to(tmp_path / "c.png")
    with deadline():
        assert [p.name for p in image_files(tmp_path)] == ["c.png", "f.png"]
        assert [p.name for p in regular_files(tmp_path, (".xml",))] == []
        assert not is_regular_file(tmp_path / "a.png") and is_regular_file(tmp_path / "c.png")
        with pytest.raises(
            DatasetError, match=r"b\.xml is a FIFO \(named pipe\), not a regular file"
        ):
            read_text(tmp_path / "b.xml", "annotation")


@needs_fifo
def test_fifo_images_in_dota_and_ucm_folders_are_skipped(tmp_path: Path) -> None:
    dota = tmp_path / "dota"
    Image.new("RGB", (8, 8)).save(
        (dota / "images").mkdir(parents=True) or dota / "images" / "a.png"
    )
    _fifo(dota / "images" / "b.png")
    (dota / "annfiles").mkdir()
    (dota / "annfiles" / "a.txt").write_text("1 1 5 1 5 5 1 5 plane 0\n")
    _fifo(dota / "annfiles" / "b.txt")
    ucm = tmp_path / "UCMerced_LandUse"
    for k, folder in enumerate(UCM_FOLDER_NAMES):
        (ucm / "Images" / folder).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(ucm / "Images" / folder / f"{folder}00.tif")
        if k == 0:
            _fifo(ucm / "Images" / folder / f"{folder}01.tif")
    with deadline():
        assert [s.sample_id for s in DOTADetectionAdapter(dota).samples()] == ["a"]
        ucm_samples = UCMercedAdapter(ucm).samples()
    assert len(ucm_samples) == len(UCM_FOLDER_NAMES)


@needs_fifo
def test_fifo_in_place_of_an_annotation_file_is_named(tmp_path: Path) -> None:
    caps = tmp_path / "UCM_captions"
    (caps / "Images").mkdir(parents=True)
    _fifo(caps / "dataset.json")
    cnt = tmp_path / "Counting"
    (cnt / "Images").mkdir(parents=True)
    _fifo(cnt / "Annotation" / "test_IMG_CT.json")
    ref = tmp_path / "refer"
    (ref / "images" / "rrsisd" / "JPEGImages").mkdir(parents=True)
    _fifo(ref / "rrsisd" / "refs(unc).p")
    (ref / "rrsisd" / "instances.json").write_text("{}")
    with deadline():
        with pytest.raises(
            DatasetError, match=r"dataset\.json is a FIFO \(named pipe\), not a regular file"
        ):
            UCMCaptionsAdapter(caps)
        with pytest.raises(DatasetError, match=r"test_IMG_CT\.json is a FIFO"):
            DIORCountingAdapter(cnt)
        with pytest.raises(DatasetError, match=r"refs\(unc\)\.p is a FIFO"):
            RRSISDAdapter(ref)
        with pytest.raises(DatasetError, match=r"refs\(unc\)\.p: not found or not a regular file"):
            read_refer_pickle(ref / "rrsisd" / "refs(unc).p")


@needs_fifo
def test_fifo_in_place_of_a_listed_image_counts_as_absent(tmp_path: Path) -> None:
    root = tmp_path / "UCM_captions"
    (root / "Images").mkdir(parents=True)
    _fifo(root / "Images" / "1.tif")
    (root / "dataset.json").write_text(json.dumps({"images": [
        {"filename": "1.tif", "imgid": 0, "split": "test", "sentences": [{"raw": "a farm ."}]}]}))
    with deadline(), pytest.raises(DatasetError, match=r"absent: .*1\.tif"):
        UCMCaptionsAdapter(root).samples()


# --------------------------------------------------------------------------------------------
# file names pointing outside the data root
# --------------------------------------------------------------------------------------------

ESCAPES = [
    "../../etc/passwd",
    "/etc/passwd",
    "Images/../../secret.tif",
    "..\\..\\x.tif",
    "C:/x.tif",
    "",
]


def _captions(root: Path, filename: str) -> Path:
    (root / "Images").mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8)).save(root / "Images" / "1.tif")
    (root / "dataset.json").write_text(json.dumps({"images": [
        {"filename": "1.tif", "imgid": 0, "split": "test", "sentences": [{"raw": "a farm ."}]},
        {"filename": filename, "imgid": 1, "split": "test", "sentences": [{"raw": "a road ."}]}]}))
    return root


@pytest.mark.parametrize("name", ESCAPES)
def test_caption_file_names_cannot_leave_the_image_folder(tmp_path: Path, name: str) -> None:
    root = _captions(tmp_path / "UCM_captions", name)
    with pytest.raises(
        DatasetError, match=r"dataset\.json: images\[1\]\.filename = .*must stay inside"
    ):
        UCMCaptionsAdapter(root).samples()


def test_caption_sub_folders_are_allowed(tmp_path: Path) -> None:
    root = _captions(tmp_path / "UCM_captions", "sub/2.tif")
    (root / "Images" / "sub").mkdir()
    Image.new("RGB", (8, 8)).save(root / "Images" / "sub" / "2.tif")
    assert [Path(s.image).name for s in UCMCaptionsAdapter(root).samples()] == ["1.tif", "2.tif"]


def test_dior_rsvg_and_refer_file_names_cannot_leave_the_image_folder(tmp_path: Path) -> None:
    dior = tmp_path / "DIORcoco"
    (dior / "Annotations").mkdir(parents=True)
    (dior / "JPEGImages").mkdir()
    (dior / "Annotations" / "DIOR_test.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "../../etc/passwd"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2]}],
        "categories": [{"id": k + 1, "name": c} for k, c in enumerate(DIOR_CLASSES)]}))
    with pytest.raises(
        DatasetError, match=r"DIOR_test\.json: images\[\] id 1 file_name = '\.\./\.\./etc/passwd'"
    ):
        DIORDetectionAdapter(dior).samples()
    rsvg = tmp_path / "RSVG"
    (rsvg / "Annotations").mkdir(parents=True)
    (rsvg / "JPEGImages").mkdir()
    (rsvg / "Annotations" / "00001.xml").write_text(
        "<annotation><filename>/etc/passwd</filename><object><name>ship</name>"
        "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox>"
        "<description>a ship</description></object></annotation>")
    (rsvg / "test.txt").write_text("0\n")
    with pytest.raises(DatasetError, match=r"00001\.xml <filename> = '/etc/passwd'"):
        DIORRSVGAdapter(rsvg).samples()
    ref = tmp_path / "refer"
    (ref / "rrsisd").mkdir(parents=True)
    (ref / "images" / "rrsisd" / "JPEGImages").mkdir(parents=True)
    (ref / "rrsisd" / "refs(unc).p").write_bytes(
        pickle.dumps(
            [
                {
                    "image_id": 1,
                    "split": "test",
                    "file_name": "../../../etc/passwd",
                    "category_id": 0,
                    "ann_id": 1,
                    "ref_id": 1,
                    "sentences": [{"raw": "x", "sent": "x", "sent_id": 1}],
                }
            ],
            protocol=2,
        )
    )
    (ref / "rrsisd" / "instances.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "x", "height": 4, "width": 4}],
        "annotations": [{"id": 1, "image_id": 1, "categories_id": 0,
                         "segmentation": [[0, 0, 2, 0, 2, 2, 0, 2]]}], "categories": []}))
    with pytest.raises(
        DatasetError, match=r"refs\(unc\)\.p: ref 1 file_name = '\.\./\.\./\.\./etc/passwd'"
    ):
        RRSISDAdapter(ref).samples()


@pytest.mark.parametrize("name", ["a.tif", "sub/a.tif", "x..y.tif", "..hidden.tif"])
def test_member_path_keeps_ordinary_names(tmp_path: Path, name: str) -> None:
    assert member_path(tmp_path, name, "f") == tmp_path / name
