"""Tests of the ``cap`` plugin (UCM-captions) and ``metrics.captioning``.

Real data: ``ucm_captions/dataset.json`` (31 REAL entries, verbatim) and the 31 REAL UC Merced
tiles renamed ``N.tif`` (SOURCES.md). Caption metrics are compared with ``pycocoevalcap`` called
directly (PTB tokenizer and METEOR need Java: marked ``java``; METEOR is also ``slow``).
"""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from plugin_support import check_plugin_tiny, tiny_predictor

from remotesam.bench.api import DatasetError, Sample
from remotesam.types import Caption, Detections
from remotesam_plugins.cap import POTENTIAL_CLASSES, CaptioningTask, UCMCaptionsAdapter
from remotesam_plugins.metrics.captioning import (
    cider,
    java_available,
    ptb_tokenize,
    pycocoevalcap_scores,
    simple_tokenize,
)

needs_java = pytest.mark.skipif(
    not java_available(), reason="no Java runtime (PTB tokenizer / METEOR)"
)


@pytest.fixture
def ucm_root(real_data: Path, tmp_path: Path) -> Path:
    root = tmp_path / "UCM_captions"
    shutil.copytree(real_data / "ucm_captions", root)
    return root


class FakeCapModel:
    """Builds a caption from the seed like the real predictor's seeded template choice."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def captioning(
        self,
        image: np.ndarray,
        classnames: list[str],
        region_split: int = 4,
        seed: int = 0,
        *,
        epoc: bool | None = None,
    ) -> Caption:
        self.calls.append(
            {"classnames": classnames, "region_split": region_split, "seed": seed, "epoc": epoc}
        )
        rng = random.Random(seed)
        text = rng.choice(["It contains many trees.", "There are buildings in the image.",
                           "This image features a road."])
        empty = Detections(
            tuple(classnames), "hbb", np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64)
        )
        return Caption(text=text, detections=empty)


def _gts_res(real_data: Path, seed: int = 0) -> tuple[dict, dict]:
    d = json.loads((real_data / "ucm_captions" / "dataset.json").read_text())
    gts = {im["imgid"]: [s["raw"] for s in im["sentences"]] for im in d["images"]}
    rng = np.random.default_rng(seed)
    keys = list(gts)
    res = {k: [gts[keys[int(rng.integers(len(keys)))]][int(rng.integers(5))]] for k in keys}
    return gts, res


# --------------------------------------------------------------------------------------------
# adapter
# --------------------------------------------------------------------------------------------


@pytest.mark.realdata
def test_reads_real_dataset_json(ucm_root: Path) -> None:
    test = UCMCaptionsAdapter(ucm_root).samples()
    assert len(test) == 23
    assert [len(UCMCaptionsAdapter(ucm_root, s).samples()) for s in ("train", "val")] == [5, 3]
    by_file = {s.meta["filename"]: s for s in test}
    assert by_file["191.tif"].meta["scene"] == "airplane"
    assert by_file["81.tif"].meta["scene"] == "agricultural"
    assert by_file["497.tif"].meta["scene"] == "buildings"  # buildings96, 247x247 (off-size)
    assert by_file["81.tif"].target["references"][0] == "There is a piece of farmland ."
    assert all(len(s.target["references"]) == 5 for s in test)
    assert test[0].sample_id == str(test[0].meta["imgid"])


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d["images"][0].pop("sentences"), r"images\[0\] has no 'sentences' field"),
        (lambda d: d["images"][0].update(imgid="x", split="test"), r"images\[0\]\.imgid = 'x'"),
        (
            lambda d: d["images"][1].update(
                imgid=d["images"][0]["imgid"], split=d["images"][0]["split"]
            ),
            r"images\[1\]\.imgid = \d+ appears twice",
        ),
        (
            lambda d: d["images"][0].update(sentences=[{"tokens": []}], split="test"),
            r"images\[0\]\.sentences\[0\]\.raw",
        ),
        (lambda d: d.pop("images"), "expected an object with an 'images' list"),
    ],
)
def test_malformed_dataset_json(ucm_root: Path, mutate, match: str) -> None:
    p = ucm_root / "dataset.json"
    d = json.loads(p.read_text())
    mutate(d)
    p.write_text(json.dumps(d))
    split = "train" if "twice" in match else "test"
    with pytest.raises(DatasetError, match=match):
        UCMCaptionsAdapter(ucm_root, split).samples()


def test_truncated_json_absent_image_empty_split(ucm_root: Path, tmp_path: Path) -> None:
    p = ucm_root / "dataset.json"
    text = p.read_text()
    p.write_text(text[:1000])
    with pytest.raises(
        DatasetError, match=r"dataset\.json is not valid JSON.*line \d+, column \d+"
    ):
        UCMCaptionsAdapter(ucm_root).samples()
    p.write_text(text)
    (ucm_root / "Images" / "191.tif").unlink()
    with pytest.raises(DatasetError, match=r"absent: .*191\.tif"):
        UCMCaptionsAdapter(ucm_root).samples()
    d = json.loads(text)
    d["images"] = [im for im in d["images"] if im["split"] != "val"]
    p.write_text(json.dumps(d))
    with pytest.raises(
        DatasetError, match=r"no entry with split 'val'; splits present: \['test', 'train'\]"
    ):
        UCMCaptionsAdapter(ucm_root, "val").samples()
    with pytest.raises(DatasetError, match="Expected layout"):
        UCMCaptionsAdapter(tmp_path / "nowhere")


# --------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------


def test_cider_hand_computed() -> None:
    # Two images; every n-gram occurs in one image's references only: idf = log(2) for all.
    gts = {"a": ["a b"], "b": ["c d"]}
    same = cider(gts, {"a": ["a b"], "b": ["c d"]})
    # n = 1, 2 cosine 1, n = 3, 4 empty -> 0: mean 0.5, x10
    assert same[0] == pytest.approx(5.0) and same[1].tolist() == pytest.approx([5.0, 5.0])
    # "a a b" vs "a b": unigram tf-idf (2w, w) vs (w, w) -> cos = 3/sqrt(10); bigrams
    # {aa, ab} vs {ab} -> cos = 1/sqrt(2)
    plain, _ = cider(gts, {"a": ["a a b"], "b": ["c d"]})
    assert plain == pytest.approx((10 * (3 / math.sqrt(10) + 1 / math.sqrt(2)) / 4 + 5.0) / 2)
    # CIDEr-D clips counts (min(2w, w) -> 2/sqrt(10)) and penalises the bigram-count difference 1
    d, _ = cider(gts, {"a": ["a a b"], "b": ["c d"]}, variant="cider-d")
    pen = math.exp(-1 / 72)
    assert d == pytest.approx((10 * pen * (2 / math.sqrt(10) + 1 / math.sqrt(2)) / 4 + 5.0) / 2)
    with pytest.raises(ValueError, match="exactly one candidate"):
        cider(gts, {"a": ["x", "y"], "b": ["c d"]})
    with pytest.raises(ValueError, match="same keys"):
        cider(gts, {"a": ["x"]})


@pytest.mark.parametrize("seed", [0, 1])
def test_cider_d_equals_pycocoevalcap(real_data: Path, seed: int) -> None:
    from pycocoevalcap.cider.cider import Cider

    gts, res = _gts_res(real_data, seed)
    g, r = simple_tokenize(gts), simple_tokenize(res)
    ours, each = cider(g, r, variant="cider-d")
    ref, ref_each = Cider().compute_score(g, r)
    assert ours == pytest.approx(ref, abs=1e-12)
    np.testing.assert_allclose(each, ref_each, atol=1e-12)


@pytest.mark.java
@needs_java
def test_ptb_tokenizer_equals_pycocoevalcap(real_data: Path) -> None:
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    gts, _ = _gts_res(real_data)
    gts["extra"] = ["Don't split (this) -- here's a \"quote\", ok?", "semi; colon: dash - end ."]
    ref = PTBTokenizer().tokenize({k: [{"caption": c} for c in v] for k, v in gts.items()})
    assert ptb_tokenize(gts) == ref


@pytest.mark.java
@needs_java
def test_plugin_scores_equal_pycocoevalcap_called_directly(real_data: Path, ucm_root: Path) -> None:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    samples = UCMCaptionsAdapter(ucm_root).samples()
    rng = np.random.default_rng(5)
    preds = [
        {
            "caption": samples[int(rng.integers(len(samples)))].target["references"][
                int(rng.integers(5))
            ],
            "seed": 0,
        }
        for _ in samples
    ]
    sc = CaptioningTask({"meteor": "false"}).score(samples, preds)
    tok = PTBTokenizer()
    g = tok.tokenize(
        {s.sample_id: [{"caption": c} for c in s.target["references"]] for s in samples}
    )
    r = tok.tokenize({s.sample_id: [{"caption": p["caption"]}] for s, p in zip(samples, preds)})
    bleu, _ = Bleu(4).compute_score(g, r, verbose=0)
    for n in range(4):
        assert sc.metrics[f"BLEU_{n + 1}"] == pytest.approx(100 * bleu[n], abs=1e-9)
    assert sc.metrics["ROUGE_L"] == pytest.approx(100 * Rouge().compute_score(g, r)[0], abs=1e-9)
    assert sc.metrics["CIDEr_D"] == pytest.approx(100 * Cider().compute_score(g, r)[0], abs=1e-9)
    assert sc.metrics["CIDEr"] == pytest.approx(100 * cider(g, r)[0], abs=1e-9)
    assert sc.per_sample["CIDEr"].mean() == pytest.approx(sc.metrics["CIDEr"], abs=1e-9)
    assert math.isnan(sc.metrics["SPICE"]) and "CoreNLP" in sc.tables["notes"]["SPICE"]
    assert math.isnan(sc.metrics["METEOR"])
    assert set(sc.metrics) == {m.name for m in CaptioningTask.metrics}


@pytest.mark.slow
@pytest.mark.java
@needs_java
def test_meteor_equals_pycocoevalcap(real_data: Path) -> None:
    from pycocoevalcap.meteor.meteor import Meteor

    gts, res = _gts_res(real_data, 3)
    g, r = ptb_tokenize(gts), ptb_tokenize(res)
    ours = pycocoevalcap_scores(g, r, meteor=True)["METEOR"]
    m = Meteor()
    try:
        ref, _ = m.compute_score(g, r)
    finally:
        m.meteor_p.kill()
    assert ours == pytest.approx(ref, abs=1e-12)


# --------------------------------------------------------------------------------------------
# predict / options
# --------------------------------------------------------------------------------------------


@pytest.mark.realdata
def test_predict_is_seeded_per_sample(ucm_root: Path) -> None:
    samples = UCMCaptionsAdapter(ucm_root).samples()[:6]
    task = CaptioningTask()
    model = tiny_predictor()  # built-in plugins predict through requests and reduce
    p1 = task.predict(model, samples)
    p2 = task.predict(model, list(reversed(samples)))
    assert p1 == list(reversed(p2))  # independent of order / batching
    assert json.loads(json.dumps(p1)) == p1
    assert len({p["seed"] for p in p1}) == len(p1)
    prompts = {p for r in task.requests(samples[0]) for p in r.prompts}
    assert len(POTENTIAL_CLASSES) == 37 and all(
        any(c in p for p in prompts) for c in POTENTIAL_CLASSES)
    shifted = CaptioningTask({"seed": 1}).predict(model, samples)
    assert [p["seed"] for p in shifted] != [p["seed"] for p in p1]


def test_simple_tokenizer_option_and_bad_inputs() -> None:
    s = [Sample("1", "1.tif", {"references": ["A road .", "Some trees ."]})]
    sc = CaptioningTask({"tokenizer": "simple", "meteor": False}).score(s, [{"caption": "A road."}])
    assert sc.metrics["BLEU_1"] > 0 and "not official" in sc.tables["notes"]["tokenizer"]
    with pytest.raises(ValueError, match="field 'caption' missing"):
        CaptioningTask({"tokenizer": "simple"}).score(s, [{"text": "x"}])
    for opts in (
        {"region_split": 5},
        {"tokenizer": "nltk"},
        {"seed": "x"},
        {"meteor": "maybe"},
        {"z": 1},
    ):
        with pytest.raises(ValueError):
            CaptioningTask(opts)
    assert CaptioningTask().settings() == {"epoc": False, "region_split": 4, "seed": 0}


def test_check_task_plugin() -> None:
    from remotesam import testing

    testing.check_task_plugin(CaptioningTask)


class _CaptioningNoMeteor(CaptioningTask):
    """The cap plugin with METEOR off by default: check_task_plugin builds plugins without
    options, and METEOR's Java start-up is already covered by test_meteor_equals_pycocoevalcap."""

    def __init__(self, options=None) -> None:
        super().__init__({"meteor": False, **dict(options or {})})


@pytest.mark.slow
@pytest.mark.java
@needs_java
@pytest.mark.realdata
def test_end_to_end_tiny_model(ucm_root: Path) -> None:
    """predict + score via check_task_plugin with the tiny random model on a real test image."""
    check_plugin_tiny(_CaptioningNoMeteor, ucm_root)


@pytest.mark.realdata
def test_image_listed_twice_is_merged_as_the_official_gts(ucm_root: Path) -> None:
    """Official ``CAP.py`` keys ``gts`` by file name: an image listed under two ``imgid``s is one
    image whose references are both entries' sentences. The harness scores the same (one
    sample, merged references, CIDEr on the filename-keyed dicts) and warns with the count;
    ``duplicates=error`` refuses instead."""
    from remotesam.bench.api import DatasetWarning

    p = ucm_root / "dataset.json"
    d = json.loads(p.read_text())
    test = [im for im in d["images"] if im["split"] == "test"]
    dup = dict(test[3], imgid=max(im["imgid"] for im in d["images"]) + 1,
               sentences=[{"raw": "A plane parked beside a long runway ."},
                          {"raw": "Two white planes are on the grey apron ."}])
    d["images"].append(dup)
    p.write_text(json.dumps(d))
    with pytest.warns(DatasetWarning, match=r"1 image file\(s\) listed under more than one imgid"):
        samples = UCMCaptionsAdapter(ucm_root).samples()
    assert len(samples) == len(test)
    merged = next(s for s in samples if s.meta["filename"] == dup["filename"])
    assert merged.target["references"] == [s["raw"] for s in test[3]["sentences"]] + [
        s["raw"] for s in dup["sentences"]]
    assert merged.sample_id == str(test[3]["imgid"])
    # CIDEr against the official dict construction (gts keyed by filename, references merged)
    gts: dict[str, list[str]] = {}
    for im in d["images"]:
        if im["split"] == "test":
            gts.setdefault(im["filename"], []).extend(s["raw"] for s in im["sentences"])
    rng = np.random.default_rng(3)
    preds = [{"caption": samples[int(rng.integers(len(samples)))].target["references"][0],
              "seed": 0} for _ in samples]
    res = {s.meta["filename"]: [pr["caption"] for pr in [q]] for s, q in zip(samples, preds)}
    sc = CaptioningTask({"meteor": "false", "java": "false"}).score(samples, preds)
    from remotesam_plugins.metrics.captioning import python_ptb_tokenize

    want, _ = cider(python_ptb_tokenize(gts), python_ptb_tokenize(res))
    assert sc.metrics["CIDEr"] == pytest.approx(100 * want, abs=1e-9)
    with pytest.raises(DatasetError, match=r"images\[\d+\]\.filename = '\d+\.tif' is listed again"):
        UCMCaptionsAdapter(ucm_root, duplicates="error").samples()
    with pytest.raises(DatasetError, match="duplicates must be merge"):
        UCMCaptionsAdapter(ucm_root, duplicates="keep")


@pytest.mark.parametrize("meteor", ["false", "auto"])
def test_lone_surrogates_in_text_are_dropped_not_fatal(ucm_root: Path, meteor: str) -> None:
    """A reference and a caption holding lone surrogates (malformed JSON escapes) score as
    the same text without them, and the sample is named; the split is not lost."""
    samples = UCMCaptionsAdapter(ucm_root).samples()[:6]
    preds = [{"caption": s.target["references"][0], "seed": 0} for s in samples]
    bad = [
        Sample(s.sample_id, s.image,
               {**s.target, "references": [r.replace(" ", " \ud800", 1)
                                           for r in s.target["references"]]})
        if i == 1 else s
        for i, s in enumerate(samples)
    ]
    bad_preds = [dict(p) for p in preds]
    bad_preds[2]["caption"] = "\udc80" + bad_preds[2]["caption"]
    task = CaptioningTask({"meteor": meteor})
    clean = task.score(samples, preds)
    dirty = task.score(bad, bad_preds)
    for name in ("CIDEr", "BLEU_4", "ROUGE_L"):
        assert dirty.metrics[name] == pytest.approx(clean.metrics[name], abs=1e-9)
    note = dirty.tables["notes"]["text"]
    assert "2 sample(s)" in note and str(samples[1].sample_id) in note
    assert "text" not in clean.tables["notes"]
