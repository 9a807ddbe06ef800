"""The SATIN multi-label sets of Fig. 7 (``mlc``): UCM_MultiLabel, AID_MultiLabel, MultiScene,
MLRSNet, read from their owners' release formats.

Data: the procedural benchmark (each set written in its release format), and label rows copied
verbatim from public copies of the releases (MLRSNet ``labels/airplane.csv`` from
github.com/cugbrs/MLRSNet, AID ``multilabel.csv`` rows from the Hugging Face mirror
marjandl/AID-MLC) over generated images. The official label-wise accuracy is compared with
scikit-learn (``1 - hamming_loss``).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from remotesam.bench.api import DatasetError
from remotesam.bench.data.check import check_dataset, dataset_entries
from remotesam.bench.records.published import load_published
from remotesam.classes import (
    MLRSNET_CLASSES,
    MULTISCENE_CLASSES,
    MULTISCENE_RELEASE_NAMES,
    UCM_MULTILABEL_CLASSES,
)
from remotesam.synth import generate
from remotesam_plugins._satin_multilabel import (
    AIDMultiLabelAdapter,
    MLRSNetAdapter,
    MultiSceneCleanAdapter,
    UCMMultiLabelAdapter,
)
from remotesam_plugins.mlc import MultiLabelClassificationTask

SETS = {
    "ucm_multilabel": ("UCMerced_LandUse", UCMMultiLabelAdapter),
    "aid_multilabel": ("AID_multilabel", AIDMultiLabelAdapter),
    "multiscene": ("MultiScene-Clean", MultiSceneCleanAdapter),
    "mlrsnet": ("MLRSNet", MLRSNetAdapter),
}


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    generate(out, seed=5, n_images=10, image_size=64, object_scale=1.6)
    return out


def _copy(synth_root: Path, tmp_path: Path, sub: str) -> Path:
    shutil.copytree(synth_root / sub, tmp_path / sub)
    return tmp_path / sub


def test_every_set_is_registered_with_satin_classes() -> None:
    ds = MultiLabelClassificationTask.datasets
    for name, (sub, cls) in SETS.items():
        assert ds[name] is cls and cls.default_subdir == sub and cls.default_split == "all"
        assert cls.info is not None and cls.info.split == "all"
    assert len(UCMMultiLabelAdapter.classes) == 17 and len(MULTISCENE_CLASSES) == 36
    assert len(MLRSNET_CLASSES) == 60 and "habor" in MLRSNET_CLASSES  # released spelling


@pytest.mark.parametrize("name", list(SETS))
def test_adapter_reads_the_release_tables_written_by_synth(
    synth_root: Path, tmp_path: Path, name: str
) -> None:
    sub, cls = SETS[name]
    root = _copy(synth_root, tmp_path, sub)
    samples = cls(root).samples()
    assert len(samples) >= 4 and len({s.sample_id for s in samples}) == len(samples)
    for s in samples:
        assert Path(s.image).is_file() and set(s.target["labels"]) <= set(cls.classes)
    assert any(s.target["labels"] for s in samples)
    # the table as a plain csv reader sees it
    first = samples[0]
    table = Path(first.meta["label_file"]).read_text().splitlines()
    delim = "\t" if table[0].startswith("IMAGE\\LABEL") else ","
    header = table[0].split(delim)
    row = table[first.meta["line"] - 1].split(delim)
    assert row[0] == first.sample_id
    # every release table lists its label columns in the class order
    assert len(header) == len(cls.classes) + 1
    pos = {c for c, v in zip(cls.classes, row[1:]) if v == "1"}
    assert pos == set(first.target["labels"])


def test_splits_of_aid_and_multiscene(synth_root: Path, tmp_path: Path) -> None:
    aid = _copy(synth_root, tmp_path, "AID_multilabel")
    n_all = len(AIDMultiLabelAdapter(aid).samples())
    n_tr = len(AIDMultiLabelAdapter(aid, "train").samples())
    n_te = len(AIDMultiLabelAdapter(aid, "test").samples())
    assert n_tr == 2 and n_tr + n_te == n_all
    ms = _copy(synth_root, tmp_path, "MultiScene-Clean")
    assert len(MultiSceneCleanAdapter(ms, "train").samples()) == 2
    assert len(MultiSceneCleanAdapter(ms).samples()) == n_all


def test_accuracy_equals_sklearn_hamming(synth_root: Path, tmp_path: Path) -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    root = _copy(synth_root, tmp_path, "MLRSNet")
    samples = MLRSNetAdapter(root).samples()
    classes = list(MLRSNET_CLASSES)
    rng = np.random.default_rng(0)
    preds = []
    y_true = np.zeros((len(samples), len(classes)), int)
    y_pred = np.zeros_like(y_true)
    for i, s in enumerate(samples):
        scores = rng.random(len(classes))
        for c in s.target["labels"]:
            scores[classes.index(c)] = min(1.0, scores[classes.index(c)] + 0.4)
            y_true[i, classes.index(c)] = 1
        labels = [c for c, v in zip(classes, scores) if v > 0.5]
        y_pred[i, [classes.index(c) for c in labels]] = 1
        preds.append({"classnames": classes, "scores": scores.tolist(), "labels": labels})
    sc = MultiLabelClassificationTask().score(samples, preds)
    want = 100.0 * (1.0 - metrics.hamming_loss(y_true, y_pred))
    assert sc.metrics["accuracy"] == pytest.approx(want, abs=1e-9)
    assert sc.metrics["f1_micro"] == pytest.approx(
        100.0 * metrics.f1_score(y_true, y_pred, average="micro", zero_division=0), abs=1e-9)


# real label rows over generated images ------------------------------------------------------

# github.com/cugbrs/MLRSNet labels/airplane.csv: header and its first two rows, verbatim
_MLRSNET_REAL = (
    "image,airplane,airport,bare soil,baseball diamond,basketball court,beach,bridge,buildings,"
    "cars,chaparral,cloud,containers,crosswalk,dense residential area,desert,dock,factory,field,"
    "football field,forest,freeway,golf course,grass,greenhouse,gully,habor,intersection,island,"
    "lake,mobile home,mountain,overpass,park,parking lot,parkway,pavement,railway,"
    "railway station,river,road,roundabout,runway,sand,sea,ships,snow,snowberg,"
    "sparse residential area,stadium,swimming pool,tanks,tennis court,terrace,track,trail,"
    "transmission tower,trees,water,wetland,wind turbine\n"
    "airplane_00001.jpg,1,1,0,0,0,0,0,1,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,"
    "1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,0,0,0\n"
    "airplane_00002.jpg,1,0,0,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,"
    "1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0\n"
)

# AID multi-label multilabel.csv (Hugging Face marjandl/AID-MLC copy): header and two rows
_AID_REAL = (
    "IMAGE/LABEL,airplane,bare-soil,buildings,cars,chaparral,court,dock,field,grass,mobile-home,"
    "pavement,sand,sea,ship,tanks,trees,water\n"
    "airport_1,1,1,1,1,0,0,0,0,1,0,1,0,0,0,0,0,0\n"
    "airport_26,1,1,1,1,0,0,0,0,1,0,1,0,0,0,0,1,1\n"
)


# UC Merced LandUse_Multilabeled.txt (a verbatim public copy, github.com/HingedGuide/
# DeepLearningMGI12 @0b4d4ad; its label counts equal aitlas's published table): header, 2 rows
_UCM_REAL = (
    "IMAGE\\LABEL\tairplane\tbare-soil\tbuildings\tcars\tchaparral\tcourt\tdock\tfield\tgrass\t"
    "mobile-home\tpavement\tsand\tsea\tship\ttanks\ttrees\twater\n"
    "agricultural00\t0\t0\t0\t0\t0\t0\t0\t1\t0\t0\t0\t0\t0\t0\t0\t1\t0\n"
    "tenniscourt99\t0\t1\t0\t1\t0\t1\t0\t0\t1\t0\t1\t0\t0\t0\t0\t1\t0\n"
)


def _img(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(path)


def test_real_ucm_rows(tmp_path: Path) -> None:
    root = tmp_path / "UCMerced_LandUse"
    root.mkdir()
    (root / "LandUse_Multilabeled.txt").write_text(_UCM_REAL)
    _img(root / "Images" / "agricultural" / "agricultural00.tif")
    _img(root / "Images" / "tenniscourt" / "tenniscourt99.tif")
    a, b = UCMMultiLabelAdapter(root).samples()
    assert a.target["labels"] == ["field", "trees"]
    assert b.target["labels"] == ["bare soil", "cars", "court", "grass", "pavement", "trees"]


def test_real_mlrsnet_rows(tmp_path: Path) -> None:
    root = tmp_path / "MLRSNet"
    (root / "labels").mkdir(parents=True)  # the GitHub copy's lower-case folder
    (root / "labels" / "airplane.csv").write_text(_MLRSNET_REAL)
    for n in ("airplane_00001.jpg", "airplane_00002.jpg"):
        _img(root / "Images" / "airplane" / n)
    s1, s2 = MLRSNetAdapter(root).samples()
    assert s1.target["labels"] == ["airplane", "airport", "buildings", "cars", "pavement", "trees"]
    assert s2.target["labels"] == ["airplane", "cars", "pavement"]


def test_real_aid_rows(tmp_path: Path) -> None:
    root = tmp_path / "AID_multilabel"
    root.mkdir()
    (root / "multilabel.csv").write_text(_AID_REAL)
    _img(root / "images_tr" / "airport" / "airport_1.jpg")
    _img(root / "images_test" / "airport" / "airport_26.jpg")
    a, b = AIDMultiLabelAdapter(root).samples()
    assert a.target["labels"] == ["airplane", "bare soil", "buildings", "cars", "grass", "pavement"]
    assert b.target["labels"][-2:] == ["trees", "water"]
    assert [s.sample_id for s in AIDMultiLabelAdapter(root, "test").samples()] == ["airport_26"]


def test_real_mlrsnet_layout_crlf_and_data_check(tmp_path: Path) -> None:
    """The owners' copy: lower-case ``labels/``, CRLF line ends, the ``swimmimg_pool`` spelling.
    ``data check`` used to look for ``Labels/`` only and failed on that layout."""
    root = tmp_path / "MLRSNet"
    (root / "labels").mkdir(parents=True)
    crlf = _MLRSNET_REAL.replace("\n", "\r\n").encode()
    (root / "labels" / "airplane.csv").write_bytes(crlf)
    header = _MLRSNET_REAL.splitlines()[0]
    pool = header + "\r\nswimmimg_pool_00001.jpg," + ",".join(
        "1" if c in ("swimming pool", "trees") else "0" for c in MLRSNET_CLASSES) + "\r\n"
    (root / "labels" / "swimmimg_pool.csv").write_bytes(pool.encode())
    for n in ("airplane_00001.jpg", "airplane_00002.jpg"):
        _img(root / "Images" / "airplane" / n)
    _img(root / "Images" / "swimmimg_pool" / "swimmimg_pool_00001.jpg")
    _, s2, s3 = MLRSNetAdapter(root).samples()
    assert s2.target["labels"] == ["airplane", "cars", "pavement"]
    assert s3.target["labels"] == ["swimming pool", "trees"] and s3.meta["line"] == 2
    (entry,) = dataset_entries("mlc.mlrsnet")
    items = {it.what: it for it in check_dataset(entry, tmp_path).items}
    assert items["layout labels/*.csv | Labels/*.csv"].ok
    assert items["count labels/*.csv | Labels/*.csv"].found == "2"  # 46 in the release
    assert items["adapter opens the dataset"].ok


def test_real_aid_backslash_header_capital_file_and_scene_folders(tmp_path: Path) -> None:
    """Readers of the release index its image column as ``IMAGE\\LABEL`` and read
    ``Multilabel.csv``; images lie in per-scene folders (``images_tr/Airport/...``)."""
    root = tmp_path / "AID_multilabel"
    root.mkdir()
    (root / "Multilabel.csv").write_text(_AID_REAL.replace("IMAGE/LABEL", "IMAGE\\LABEL"))
    _img(root / "images_tr" / "Airport" / "airport_1.jpg")
    _img(root / "images_test" / "Airport" / "airport_26.jpg")
    a, _ = AIDMultiLabelAdapter(root).samples()
    assert a.sample_id == "airport_1" and a.image.parent.name == "Airport"
    assert a.target["labels"] == ["airplane", "bare soil", "buildings", "cars", "grass", "pavement"]
    assert [s.sample_id for s in AIDMultiLabelAdapter(root, "train").samples()] == ["airport_1"]
    (entry,) = dataset_entries("mlc.aid_multilabel")
    items = {it.what: it for it in check_dataset(entry, tmp_path).items}
    assert items["layout multilabel.csv | Multilabel.csv"].ok
    assert items["count images_tr/*/*.jpg | images_tr/*.jpg"].found == "1"  # 2,400 released


def test_multiscene_owner_loader_header(tmp_path: Path) -> None:
    """The owners' loader's class names (CamelCase, with its typos ``OilFiled``,
    ``SolarPannel``, ``WindTrubine``) used to be rejected as unknown columns."""
    root = tmp_path / "MultiScene-Clean"
    (root / "images").mkdir(parents=True)
    header = "name," + ",".join(MULTISCENE_RELEASE_NAMES)
    on = {"OilFiled", "SolarPannel", "WindTrubine", "LakePond"}
    row = "000123," + ",".join("1" if n in on else "0" for n in MULTISCENE_RELEASE_NAMES)
    (root / "Tra.csv").write_text(header + "\n")
    (root / "Test.csv").write_text(header + "\n" + row + "\n")
    _img(root / "images" / "000123.jpg")
    (s,) = MultiSceneCleanAdapter(root, "test").samples()
    assert s.target["labels"] == ["lake or pond", "oil field", "solar panel", "wind turbine"]
    # a header naming only some classes is read by position, as the owners' loader does
    partial = "name," + ",".join(["Apron", *(f"c{k}" for k in range(35))])
    (root / "Test.csv").write_text(partial + "\n" + row + "\n")
    (s,) = MultiSceneCleanAdapter(root, "test").samples()
    assert s.target["labels"] == ["lake or pond", "oil field", "solar panel", "wind turbine"]


def test_multiscene_positional_header_and_blank_cells(tmp_path: Path) -> None:
    root = tmp_path / "MultiScene-Clean"
    header = "name," + ",".join(str(k) for k in range(36))
    row = "7," + ",".join("1" if k in (0, 35) else "" for k in range(36))
    (root / "images").mkdir(parents=True)
    (root / "Tra.csv").write_text(header + "\n")
    (root / "Test.csv").write_text(header + "\n" + row + "\n")
    _img(root / "images" / "7.jpg")
    (s,) = MultiSceneCleanAdapter(root).samples()
    assert s.target["labels"] == ["apron", "sea"]


# hostile input -----------------------------------------------------------------------------


def _first_table(root: Path, name: str) -> Path:
    if name == "mlrsnet":
        return sorted((root / "labels").glob("*.csv"))[0]
    return root / {"ucm_multilabel": "LandUse_Multilabeled.txt", "aid_multilabel": "multilabel.csv",
                   "multiscene": "Test.csv"}[name]


@pytest.mark.parametrize("name", list(SETS))
def test_missing_table_names_the_file(synth_root: Path, tmp_path: Path, name: str) -> None:
    sub, cls = SETS[name]
    root = _copy(synth_root, tmp_path, sub)
    table = _first_table(root, name)
    if name == "mlrsnet":
        shutil.rmtree(root / "labels")
        table = root / "labels"
    else:
        table.unlink()
    with pytest.raises(DatasetError) as e:
        cls(root).samples()
    assert str(table) in str(e.value)


def _mutate(table: Path, fn: Any) -> None:
    lines = table.read_text().splitlines()
    table.write_text("\n".join(fn(lines)) + "\n")


@pytest.mark.parametrize("name", list(SETS))
@pytest.mark.parametrize(
    ("fn", "match"),
    [
        (lambda ls: [ls[0], ls[1].rsplit(ls[1][-2], 1)[0] + ls[1][-2] + "2", *ls[2:]],
         r"line 2, column .*: value '2'; expected 0 or 1"),
        (lambda ls: [ls[0], ls[1] + ls[1][-2] + "0", *ls[2:]], r"line 2: \d+ fields, expected"),
        (lambda ls: [ls[0].replace(ls[0].split(ls[0][len(ls[0].split()[0].split(',')[0])])[1],
                                   "volcano", 1), *ls[1:]], r"line 1: column\(s\) \['volcano'\]"),
        (lambda ls: [*ls, ls[1]], r"already listed on line 2"),
    ],
)
def test_bad_rows_name_file_and_line(synth_root: Path, tmp_path: Path, name: str, fn: Any,
                                     match: str) -> None:  # fmt: skip
    sub, cls = SETS[name]
    root = _copy(synth_root, tmp_path, sub)
    table = _first_table(root, name)
    if len(table.read_text().splitlines()) < 2:
        pytest.skip("table without data rows")
    _mutate(table, fn)
    if name == "multiscene" and "volcano" in match:
        # MultiScene's own reader takes its 36 label columns by position, whatever the header
        assert cls(root).samples()
        return
    with pytest.raises(DatasetError, match=match) as e:
        cls(root).samples()
    assert str(table) in str(e.value)


@pytest.mark.parametrize("name", list(SETS))
def test_image_listed_but_absent(synth_root: Path, tmp_path: Path, name: str) -> None:
    sub, cls = SETS[name]
    root = _copy(synth_root, tmp_path, sub)
    s = cls(root).samples()[0]
    Path(s.image).unlink()
    with pytest.raises(DatasetError, match=f"image '{s.sample_id}' not found"):
        cls(root).samples()


def test_published_fig7_rows() -> None:
    table = load_published()
    want = {"ucm_multilabel": (41.0, 69.0), "aid_multilabel": (46.0, 61.0),
            "multiscene": (39.0, 65.0), "mlrsnet": (28.0, 58.0)}  # fmt: skip
    for name, (gsam, ours) in want.items():
        split = MultiLabelClassificationTask.datasets[name].default_split
        recs = table.lookup("mlc", name, split, "accuracy", protocol="unstated")
        assert {r.model: r.value for r in recs} == {"GroundedSAM2": gsam, "RemoteSAM": ours}
        assert {r.source for r in recs} == {"Fig. 7"}
        assert table.lookup("mlc", name, split, "accuracy") == []  # never beside official columns
    assert table.canonical_model("Grounded-SAM-2") == "GroundedSAM2"
    assert [r.value for r in table.lookup("mlc", "UC_Merced_LandUse_MultiLabel", "all", "acc",
                                          ["RemoteSAM"], protocol="unstated")] == [69.0]
    assert set(UCM_MULTILABEL_CLASSES) >= {"bare soil", "mobile home"}


@pytest.mark.parametrize("name", ["mlrsnet"])
def test_harness_scores_the_synth_set(synth_root: Path, tmp_path: Path, name: str) -> None:
    from plugin_support import run_harness_tiny

    root = _copy(synth_root, tmp_path, SETS[name][0])
    res = run_harness_tiny(tmp_path, f"mlc.{name}", root, limit=2)
    assert res.dataset == name and res.split == "all"
    assert 0.0 <= res.metrics["accuracy"].value <= 100.0
