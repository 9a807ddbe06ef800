"""``remotesam-bench data list / check / fetch`` and the procedural benchmark's ISPRS sets."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from remotesam.bench.cli import main
from remotesam.bench.data.check import dataset_entries, glob_files
from remotesam.bench.data.fetch import MIRRORS, Mirror, fetch_mirror
from remotesam.bench.errors import InputError
from remotesam.synth import generate


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    generate(root, seed=3, n_images=3, image_size=96, n_train=0, n_val=0)
    return root


def test_every_builtin_evaluation_dataset_is_described() -> None:
    entries = dataset_entries(None)
    undescribed = {e.key for e in entries if e.info is None}
    assert undescribed <= {"seg.label_png"}, undescribed
    for e in entries:
        if e.info is not None:
            assert e.info.layout and e.info.how_to_get and e.info.licence and e.info.source


def test_list_json_names_source_licence_split_size_layout(capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    assert main(["data", "list", "--tasks", "vg,det.dior", "--format", "json"]) == 0
    rows = {f"{r['task']}.{r['dataset']}": r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"vg.dior_rsvg", "det.dior"}
    assert rows["vg.dior_rsvg"]["size"] == 7500 and rows["vg.dior_rsvg"]["split"] == "test"
    assert "data prepare dior" in rows["det.dior"]["how_to_get"]
    assert main(["data", "list"]) == 0
    assert "ISPRS Potsdam" in capsys.readouterr().out
    assert main(["data", "list", "--tasks", "det.nope"]) == 2


def test_synth_writes_potsdam_and_vaihingen_that_the_adapters_read(synth_root: Path) -> None:
    from remotesam_plugins.seg import PotsdamAdapter, VaihingenAdapter

    for cls, sub in ((PotsdamAdapter, "potsdam"), (VaihingenAdapter, "vaihingen")):
        samples = cls(synth_root / sub).samples()
        assert len(samples) == 3
        lab = np.asarray(Image.open(samples[0].target["label_path"]))
        assert lab.dtype == np.uint8 and set(np.unique(lab)) <= set(range(1, 7))
        assert len(np.unique(lab)) >= 2


def test_check_synth_root_complete_then_a_removed_file_is_named(
        synth_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "check", "--data-root", str(synth_root)]) == 0
    out = capsys.readouterr().out
    assert "complete (synthetic)" in out and "seg.potsdam" in out
    root = tmp_path / "copy"
    shutil.copytree(synth_root, root)
    (root / "DIORcoco" / "Annotations" / "DIOR_test.json").unlink()
    assert main(["data", "check", "--data-root", str(root), "--tasks", "det,vg"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "DIOR_test.json" in err and "data prepare dior" in err
    # a changed byte is named too
    ann = root / "potsdam" / "ann_dir" / "val"
    first = sorted(ann.iterdir())[0]
    first.write_bytes(first.read_bytes() + b"\0")
    assert main(["data", "check", "--data-root", str(root), "--tasks", "seg.potsdam",
                 "--format", "json"]) == 2
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["status"] == "incomplete"
    assert any(first.name in i["path"] and "sha256" in i["found"] for i in rows[0]["items"])


def test_check_real_layout_counts_and_pinned_checksums(real_data: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    """The real DIOR-RSVG split files carry the pinned sha256; one image is far below the
    official 17,402: incomplete, and the count line says so."""
    rsvg = tmp_path / "RSVG"
    shutil.copytree(real_data / "dior_rsvg", rsvg)
    assert main(["data", "check", "--data-root", str(tmp_path), "--tasks", "vg",
                 "--format", "json"]) == 2
    items = {i["what"]: i for i in json.loads(capsys.readouterr().out)[0]["items"]}
    assert items["sha256 test.txt"]["ok"] and items["sha256 train.txt"]["ok"]
    assert not items["count Annotations/*.xml"]["ok"]
    assert items["count Annotations/*.xml"]["found"] == "1"
    (rsvg / "val.txt").write_text("0\n")
    assert main(["data", "check", "--data-root", str(tmp_path), "--tasks", "vg",
                 "--format", "json"]) == 2
    items = {i["what"]: i for i in json.loads(capsys.readouterr().out)[0]["items"]}
    assert not items["sha256 val.txt"]["ok"]


def test_check_missing_dataset_and_bad_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    assert main(["data", "check", "--data-root", str(tmp_path), "--tasks", "mcc"]) == 2
    err = capsys.readouterr().err
    assert "mcc.ucmerced" in err and "UCMerced_LandUse" in err and "Traceback" not in err
    assert main(["data", "check", "--data-root", str(tmp_path / "nope")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_glob_is_literal_for_brackets_and_parentheses(tmp_path: Path) -> None:
    (tmp_path / "rrsisd").mkdir()
    (tmp_path / "rrsisd" / "refs(unc).p").write_bytes(b"x")
    (tmp_path / "a[1]").mkdir()
    (tmp_path / "a[1]" / "x.png").write_bytes(b"x")
    assert glob_files(tmp_path, "rrsisd/refs(unc).p") == [tmp_path / "rrsisd" / "refs(unc).p"]
    assert glob_files(tmp_path, "a[1]/*.png") == [tmp_path / "a[1]" / "x.png"]


REPO, COMMIT = "someone/tiny-mirror", "0123456789abcdef0123456789abcdef01234567"


def _hub_cache(cache: Path, payload: bytes) -> None:
    """huggingface_hub's cache layout for a dataset repository at COMMIT."""
    repo = cache / ("datasets--" + REPO.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True)
    (repo / "refs").mkdir()
    digest = hashlib.sha256(payload).hexdigest()
    (repo / "blobs" / digest).write_bytes(payload)
    snap = repo / "snapshots" / COMMIT / "test"
    snap.mkdir(parents=True)
    os.symlink(repo / "blobs" / digest, snap / "labels.json")
    (repo / "refs" / "main").write_text(COMMIT)


def test_fetch_from_a_pinned_mirror_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def refuse(self: socket.socket, *args: object, **kwargs: object) -> None:
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    payload = b'{"labels": [1, 2, 3]}\n'
    cache = tmp_path / "hf"
    _hub_cache(cache, payload)
    mirror = Mirror(REPO, COMMIT, {"test/labels.json": hashlib.sha256(payload).hexdigest()},
                    subdir="Tiny")
    dst = fetch_mirror(mirror, tmp_path / "out", cache_dir=cache)
    assert (dst / "test" / "labels.json").read_bytes() == payload
    fetch_mirror(mirror, tmp_path / "out", cache_dir=cache)  # present: kept
    assert "present, sha256 ok" in capsys.readouterr().out
    bad = Mirror(REPO, COMMIT, {"test/labels.json": "0" * 64}, subdir="Bad")
    with pytest.raises(InputError, match="differs from the pinned"):
        fetch_mirror(bad, tmp_path / "out", cache_dir=cache)
    assert not (tmp_path / "out" / "Bad").exists()
    other = Mirror(REPO, "f" * 40, {"test/labels.json": "0" * 64})
    with pytest.raises(InputError, match="not in the local hub cache"):
        fetch_mirror(other, tmp_path / "out", cache_dir=cache)


def test_fetch_without_a_mirror_says_where_to_download(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    assert "dior_rsvg" not in MIRRORS
    assert main(["data", "fetch", "vg.dior_rsvg", "--out", str(tmp_path)]) == 2
    assert "1hTqtYsC6B-m4ED2ewx5oKuYZV13EoJp_" in capsys.readouterr().out
    assert main(["data", "fetch", "nope", "--out", str(tmp_path)]) == 2


def _hub_cache_file(cache: Path, rel: str, payload: bytes) -> None:
    """Add ``rel`` with ``payload`` to the cached snapshot of REPO at COMMIT."""
    repo = cache / ("datasets--" + REPO.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    digest = hashlib.sha256(payload).hexdigest()
    (repo / "blobs" / digest).write_bytes(payload)
    snap = repo / "snapshots" / COMMIT / rel
    snap.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(repo / "blobs" / digest, snap)


def _zip(members: dict[str, bytes]) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_fetch_unpacks_a_pinned_archive_offline(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A zip mirror in RefSegRS's release layout (one top-level folder) unpacks into the
    adapter's folder, which the adapter then reads; a second fetch keeps it."""
    from remotesam_plugins._refsegrs import RefSegRSAdapter

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import numpy as np
    from PIL import Image

    def tif(a: np.ndarray) -> bytes:
        import io

        b = io.BytesIO()
        Image.fromarray(a).save(b, format="TIFF")
        return b.getvalue()

    img = np.zeros((8, 8, 3), np.uint8)
    mask = np.zeros((8, 8), np.uint8)
    mask[2:5, 2:5] = 255
    members = {"RefSegRS/images/1.tif": tif(img), "RefSegRS/masks/1.tif": tif(mask)}
    for split in ("train", "val", "test"):
        members[f"RefSegRS/output_phrase_{split}.txt"] = b"1 paved road\n"
    payload = _zip(members)
    cache = tmp_path / "hf"
    _hub_cache_file(cache, "RefSegRS.zip", payload)
    mirror = Mirror(REPO, COMMIT, {"RefSegRS.zip": hashlib.sha256(payload).hexdigest()},
                    subdir="RefSegRS", unpack=("RefSegRS.zip",), size=len(payload))
    dst = fetch_mirror(mirror, tmp_path / "out", cache_dir=cache)
    assert dst == tmp_path / "out" / "RefSegRS"
    assert (dst / "masks" / "1.tif").is_file() and not (dst / "RefSegRS.zip").exists()
    samples = RefSegRSAdapter(dst).samples()
    assert len(samples) == 1
    fetch_mirror(mirror, tmp_path / "out", cache_dir=cache)
    assert "already unpacked" in capsys.readouterr().out
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_fetch_refuses_unsafe_archives_and_non_empty_targets(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = tmp_path / "hf"
    evil = _zip({"../escape.txt": b"x"})
    _hub_cache_file(cache, "evil.zip", evil)
    mirror = Mirror(REPO, COMMIT, {"evil.zip": hashlib.sha256(evil).hexdigest()},
                    subdir="Evil", unpack=("evil.zip",))
    with pytest.raises(InputError, match="outside"):
        fetch_mirror(mirror, tmp_path / "out", cache_dir=cache)
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "out" / "Evil").exists()
    assert not [p for p in (tmp_path / "out").iterdir()]
    good = _zip({"a.txt": b"a"})
    _hub_cache_file(cache, "good.zip", good)
    (tmp_path / "out" / "Busy").mkdir()
    (tmp_path / "out" / "Busy" / "mine.txt").write_text("keep")
    busy = Mirror(REPO, COMMIT, {"good.zip": hashlib.sha256(good).hexdigest()},
                  subdir="Busy", unpack=("good.zip",))
    with pytest.raises(InputError, match="not empty"):
        fetch_mirror(busy, tmp_path / "out", cache_dir=cache)
    assert (tmp_path / "out" / "Busy" / "mine.txt").read_text() == "keep"


def test_refsegrs_mirror_is_pinned_to_the_adapters_folder() -> None:
    from remotesam_plugins._refsegrs import RefSegRSAdapter

    m = MIRRORS["ref.refsegrs"]
    assert len(m.revision) == 40 and int(m.revision, 16) >= 0
    assert all(len(d) == 64 and int(d, 16) >= 0 for d in m.files.values())
    assert m.subdir == RefSegRSAdapter.default_subdir and set(m.unpack) <= set(m.files)
