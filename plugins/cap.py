"""Image captioning (``cap``): UCM-captions (Karpathy-style ``dataset.json``), CIDEr.

Protocol reproduced (official ``tasks/code/eval/CAP.py``, ``RuleBasedCaptioning.py``):

* Data: ``UCM_captions/dataset.json`` entries with ``split == <split>`` (official default
  ``test``: ``CAP.sh`` passes no ``--split``), references = every sentence's ``raw`` text,
  image ``Images/<filename>`` (UC Merced tiles renamed ``N.tif``).
* ``model.captioning(image, POTENTIAL_CLASSES, region_split=4)``: detection over the 37
  "potential classes" **without EPOC** (the CAP script does not pass ``--EPOC``), existence
  sentence + one distribution sentence per 2x2 region.
* **CIDEr** (official, primary): ``CIDErEvalCap(gts, res, df='corpus')['CIDEr'] * 100`` - PTB
  tokenizer, TF-IDF with IDF from the split's references, plain cosine (no clipping, no length
  penalty), see :mod:`.metrics.captioning`.

Added under their own names (the paper reports only CIDEr): ``CIDEr_D`` (the COCO / pycocoevalcap
CIDEr-D), ``BLEU_1``..``BLEU_4``, ``METEOR``, ``ROUGE_L`` computed by ``pycocoevalcap`` on the
same PTB tokens; all x100. ``SPICE`` is reported as NaN: its jar downloads Stanford CoreNLP
models at first use, which a benchmark must not do (reason in ``tables["notes"]``).

Deviations, deliberate:

* The official templates are drawn with an **unseeded** ``random.choice`` (scores change from
  run to run). Here every caption is seeded with a seed derived from the sample id
  (sha256 of ``"<seed>:<sample_id>"``), so runs are deterministic and independent of batching
  and sharding; the ``seed`` option shifts all of them.
* ``filename`` must name a file inside ``Images/``: an absolute path or a ``..`` component
  (``../../etc/passwd``) is a :class:`DatasetError` naming the entry (the official
  ``os.path.join`` would read whatever it points at).
* An image listed twice (one ``filename`` under two ``imgid``s): the official ``gts`` dict is
  keyed by file name, so both entries' references belong to one image, scored once. The same
  here by default (one sample with the references of every entry, in file order; id = the first
  ``imgid``), with a :class:`~remotesam.bench.api.DatasetWarning` giving the count; the dataset
  option ``duplicates=error`` refuses such a file instead.
* The PTB tokenizer runs from a temporary directory instead of writing into the installed
  ``pycocoevalcap`` package (same jar, flags and punctuation removal; tested equal).

Without Java (no ``java`` on ``PATH``, or the option ``java=false``), deviations flagged in the
result (``tables["notes"]`` names each affected metric, ``tables["tokenizer"]`` says which
tokenizer ran):

* the text is tokenised by :func:`~.metrics.captioning.python_ptb_tokenize`, a pure-Python
  imitation of the PTB tokenizer: identical tokens on 155/155 real UCM-captions references
  (CIDEr, CIDEr-D, BLEU, ROUGE-L on them differ by exactly 0) and on 34/34 hand-written hard
  cases; rare constructs it does not reproduce are listed in :mod:`.metrics.captioning`. CIDEr
  is then still flagged, as not computed on the official tokens;
* ``METEOR`` is NaN with the reason "unavailable: needs Java" (it is a Java program).

Task options: ``region_split`` (4 official, or 9), ``seed`` (int, default 0), ``epoc``
(``false`` official / ``true`` / ``auto``); scoring only: ``tokenizer`` (``auto`` = ``ptb`` with
Java, else ``python``; ``ptb`` official, needs Java; ``python`` the pure-Python imitation;
``simple`` a cruder Java-free one, not official), ``meteor`` (``auto`` = when Java is there /
``true`` / ``false``; METEOR starts Java, ~10 s), ``java`` (``auto`` / ``false``: score as on a
machine without Java).

System requirement for the official numbers: a Java runtime >= 8 (PTB tokenizer, METEOR).

Lone surrogates in a reference or a caption (``"\\ud800"``: a malformed JSON escape, not text)
are dropped before scoring, as the model's tokenizer drops them (:mod:`remotesam.text`); the
official code would fail on the whole split (they cannot be written to the Java tokenizer).
Each affected sample is named in ``tables["notes"]["text"]``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from remotesam.bench.api import (
    DatasetAdapter,
    DatasetError,
    DatasetWarning,
    MetricSpec,
    Prediction,
    Sample,
    Scores,
    TaskPlugin,
)
from remotesam.bench.api.datainfo import DatasetInfo
from remotesam.bench.api.predictions import CaptionPrediction, PredictionFormatError
from remotesam.bench.kit import (
    check_images_exist,
    check_options,
    check_score_lengths,
    member_path,
    option_path,
    parse_bool_option,
    read_json,
    require_dir,
    require_file,
)
from remotesam.classes import CAPTION_POTENTIAL_CLASSES, UCM_FOLDER_NAMES

from ._datasets import DATASET_INFO
from ._detection_common import stable_seed
from .metrics.captioning import (
    METEOR_UNAVAILABLE,
    PYTHON_TOKENIZER_NOTE,
    SPICE_UNAVAILABLE,
    cider_variants,
    java_available,
    ptb_tokenize,
    pycocoevalcap_scores,
    python_ptb_tokenize,
    simple_tokenize,
)

__all__ = ["POTENTIAL_CLASSES", "UCM_CLASSES", "CaptioningTask", "UCMCaptionsAdapter"]

#: Lone surrogates: not text (a malformed JSON escape); dropped before scoring.
_SURROGATES = re.compile("[\ud800-\udfff]")

#: The 37 "potential classes" the official captioning detects, in official order.
POTENTIAL_CLASSES: tuple[str, ...] = CAPTION_POTENTIAL_CLASSES

#: UC Merced's 21 folder names (alphabetical): ``N.tif`` is ``UCM_CLASSES[(N-1)//100]`` tile
#: ``(N-1) % 100``.
UCM_CLASSES: tuple[str, ...] = UCM_FOLDER_NAMES


class UCMCaptionsAdapter(DatasetAdapter):
    """UCM-captions: ``dataset.json`` (Karpathy style) + ``Images/N.tif``.

    Options: ``ann_file`` (the json), ``image_dir``, ``duplicates`` (``merge``: official,
    default, an image listed under several ``imgid``s is one sample with all their references;
    ``error``: refuse the file).

    ``Sample``: ``sample_id`` = ``imgid`` as str (the first one of a merged image);
    ``target["references"]`` = the ``raw``
    sentences; ``meta``: ``filename``, ``imgid``, ``scene`` (UC Merced class from the file
    number, None when the name is not ``N.tif``).
    """

    name: ClassVar[str] = "ucm_captions"
    info: ClassVar[DatasetInfo | None] = DATASET_INFO["ucm_captions"]
    title: ClassVar[str] = "UCM-Captions"
    splits: ClassVar[tuple[str, ...]] = ("test", "val", "train")
    default_split: ClassVar[str] = "test"
    default_subdir: ClassVar[str] = "UCM_captions"
    classes: ClassVar[tuple[str, ...]] = POTENTIAL_CLASSES
    layout: ClassVar[str] = (
        "<root>/                 (e.g. refer/data/UCM_captions)\n"
        '  dataset.json          ({"images": [{"filename": "1.tif", "imgid": 0, "split": ...,\n'
        '                          "sentences": [{"raw": ...}, ...]}, ...]})\n'
        "  Images/1.tif ... Images/2100.tif\n"
    )
    _OPTIONS: ClassVar[frozenset[str]] = frozenset({"ann_file", "image_dir", "duplicates"})

    def __init__(self, root: str | Path, split: str | None = None, **options: Any) -> None:
        super().__init__(root, split, **options)
        check_options(type(self).__name__, self.options, self._OPTIONS)
        self.duplicates = str(self.options.get("duplicates", "merge"))
        if self.duplicates not in ("merge", "error"):
            raise DatasetError(
                f"{self.name}: option duplicates must be merge (official) "
                f"or error, got {self.duplicates!r}"
            )
        self.ann_file = option_path(self.options, "ann_file", self.root / "dataset.json")
        self.image_dir = option_path(self.options, "image_dir", self.root / "Images")
        require_file(self.ann_file, "UCM-captions dataset.json", self.layout)
        require_dir(self.image_dir, "UCM-captions image folder", self.layout)

    def samples(self) -> list[Sample]:
        """Entries of the split in file order.

        Raises:
            DatasetError: malformed json (file + ``images[i].field``), duplicate ``imgid``, an
                entry without sentences, a ``filename`` pointing outside the image folder,
                images listed but absent, an empty split.
        """
        data = read_json(self.ann_file, "UCM-captions dataset.json")
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise DatasetError(
                f"{self.ann_file}: expected an object with an 'images' list (Karpathy format)"
            )
        out: list[Sample] = []
        seen: set[int] = set()
        by_file: dict[str, Sample] = {}
        merged: dict[str, int] = {}  # filename -> extra entries merged into its sample
        splits_found: set[str] = set()
        for i, im in enumerate(data["images"]):
            where = f"{self.ann_file}: images[{i}]"
            if not isinstance(im, dict):
                raise DatasetError(f"{where} is not an object")
            for key in ("filename", "imgid", "split", "sentences"):
                if key not in im:
                    raise DatasetError(f"{where} has no {key!r} field")
            splits_found.add(str(im["split"]))
            if im["split"] != self.split:
                continue
            try:
                imgid = int(im["imgid"])
            except (TypeError, ValueError):
                raise DatasetError(f"{where}.imgid = {im['imgid']!r} is not an integer") from None
            if imgid in seen:
                raise DatasetError(f"{where}.imgid = {imgid} appears twice")
            seen.add(imgid)
            sents = im["sentences"]
            if not isinstance(sents, list) or not sents:
                raise DatasetError(f"{where}.sentences: expected a non-empty list")
            refs = []
            for j, s in enumerate(sents):
                if not isinstance(s, dict) or not isinstance(s.get("raw"), str):
                    raise DatasetError(f"{where}.sentences[{j}].raw: expected a string")
                refs.append(s["raw"])
            fn = im["filename"]
            if not isinstance(fn, str):
                raise DatasetError(f"{where}.filename = {fn!r} is not a string")
            image = member_path(self.image_dir, fn, f"{where}.filename")
            if fn in by_file:
                if self.duplicates == "error":
                    raise DatasetError(
                        f"{where}.filename = {fn!r} is listed again (already under imgid "
                        f"{by_file[fn].meta['imgid']}); drop the option duplicates=error "
                        "to merge the references as the official code does"
                    )
                by_file[fn].target["references"].extend(refs)
                merged[fn] = merged.get(fn, 0) + 1
                continue
            out.append(
                Sample(
                    sample_id=str(imgid),
                    image=image,
                    target={"references": refs},
                    meta={"filename": fn, "imgid": imgid, "scene": _scene_of(fn)},
                )
            )
            by_file[fn] = out[-1]
        if not out:
            raise DatasetError(
                f"{self.ann_file}: no entry with split {self.split!r}; splits present: "
                f"{sorted(splits_found)}"
            )
        check_images_exist(
            (Path(s.image) for s in out), f"{self.name} ({self.image_dir})", self.layout
        )
        if merged:
            warnings.warn(
                f"{self.ann_file}: {len(merged)} image file(s) listed under more than one imgid "
                f"({sum(merged.values())} extra entries, e.g. {next(iter(merged))!r}): their "
                "references are merged into one sample each, as the official code keys its "
                "references by file name; --dataset-opt "
                f"cap.{self.name}.duplicates=error refuses such a file",
                DatasetWarning,
                stacklevel=2,
            )
        return out


def _scene_of(filename: str) -> str | None:
    stem = Path(filename).stem
    if not stem.isdigit() or not 1 <= int(stem) <= 100 * len(UCM_CLASSES):
        return None
    return UCM_CLASSES[(int(stem) - 1) // 100]


class CaptioningTask(TaskPlugin):
    """Rule-based captioning from detections: official CIDEr (corpus IDF, x100) and the COCO
    metrics."""

    name: ClassVar[str] = "cap"
    title: ClassVar[str] = "Captioning"
    version: ClassVar[int] = 1
    description: ClassVar[str] = "zero-shot captioning (UCM-captions): CIDEr x100"
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("CIDEr", primary=True, unit="", official=True,
                   description="CIDEr x100, PTB tokens, IDF from the references (official, Table "
                               "11)"),
        MetricSpec("CIDEr_D", unit="", official=False, description="COCO CIDEr-D x100 "
                                                                   "(pycocoevalcap)"),
        MetricSpec("BLEU_1", unit="", official=False, description="BLEU-1 x100 (pycocoevalcap)"),
        MetricSpec("BLEU_2", unit="", official=False, description="BLEU-2 x100 (pycocoevalcap)"),
        MetricSpec("BLEU_3", unit="", official=False, description="BLEU-3 x100 (pycocoevalcap)"),
        MetricSpec("BLEU_4", unit="", official=False, description="BLEU-4 x100 (pycocoevalcap)"),
        MetricSpec("METEOR", unit="", official=False, description="METEOR x100 (pycocoevalcap, "
                                                                  "Java; NaN without Java)"),
        MetricSpec("ROUGE_L", unit="", official=False, description="ROUGE-L x100 (pycocoevalcap)"),
        MetricSpec("SPICE", unit="", official=False, description="not computed (needs a CoreNLP "
                                                                 "download): NaN"),
    )  # fmt: skip
    datasets: ClassVar[Mapping[str, type[DatasetAdapter]]] = {"ucm_captions": UCMCaptionsAdapter}
    default_dataset: ClassVar[str] = "ucm_captions"
    _OPTIONS: ClassVar[frozenset[str]] = frozenset(
        {"region_split", "seed", "epoc", "tokenizer", "meteor", "java"}
    )

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        check_options("cap task", self.options, self._OPTIONS, error=ValueError)
        try:
            self.region_split = int(self.options.get("region_split", 4))
            self.seed = int(self.options.get("seed", 0))
        except (TypeError, ValueError):
            raise ValueError("cap task: options region_split and seed must be integers") from None
        if self.region_split not in (4, 9):
            raise ValueError(
                f"cap task: region_split must be 4 (official) or 9, got {self.region_split}"
            )
        self.epoc = parse_bool_option(
            "cap", "epoc", self.options.get("epoc", False), allow_auto=True
        )
        self.tokenizer = str(self.options.get("tokenizer", "auto")).lower()
        if self.tokenizer not in ("auto", "ptb", "python", "simple"):
            raise ValueError(
                f"cap task: tokenizer must be auto, ptb (official, Java), python or "
                f"simple, got {self.tokenizer!r}"
            )
        self.meteor = parse_bool_option(
            "cap", "meteor", self.options.get("meteor", "auto"), allow_auto=True
        )
        java = parse_bool_option("cap", "java", self.options.get("java", "auto"), allow_auto=True)
        if java is True:
            raise ValueError("cap task: option java takes auto (use Java when installed) or false")
        self.use_java = java is None
        if not self.use_java and (self.tokenizer == "ptb" or self.meteor is True):
            raise ValueError(
                "cap task: java=false contradicts tokenizer=ptb / meteor=true (both run Java)"
            )

    def scoring_setup(self) -> tuple[str, bool]:
        """``(tokenizer, meteor)`` that :meth:`score` will use on this machine: ``auto`` resolved
        by whether Java is installed (and the ``java`` option).

        Raises:
            RuntimeError: ``tokenizer=ptb`` or ``meteor=true`` without Java (says what to do).
        """
        java = self.use_java and java_available()
        tokenizer = self.tokenizer if self.tokenizer != "auto" else ("ptb" if java else "python")
        meteor = java if self.meteor is None else self.meteor
        if not java and (tokenizer == "ptb" or meteor):
            what = "tokenizer=ptb" if tokenizer == "ptb" else "meteor=true"
            raise RuntimeError(
                f"cap task: {what} needs Java, and no java executable is on PATH: "
                "install a Java runtime >= 8 (e.g. apt-get install "
                "default-jre-headless), or drop the option to score without Java "
                "(pure-Python tokens, METEOR unavailable)"
            )
        return tokenizer, bool(meteor)

    def settings(self) -> dict[str, Any]:
        """Prediction settings: ``region_split``, ``seed``, ``epoc``."""
        return {"epoc": "auto" if self.epoc is None else self.epoc,
                "region_split": self.region_split, "seed": self.seed}  # fmt: skip

    def sample_seed(self, sample: Sample) -> int:
        """The caption seed of a sample: sha256 of ``"<seed option>:<sample_id>"``, 31 bits."""
        return stable_seed(sample.sample_id, self.seed)

    def requests(self, s: Sample) -> list[Any]:
        """One request: the potential-class prompts, masks and probabilities at the original
        size (and the EPOC boundary map when EPOC is on)."""
        from remotesam.engine import Request
        from remotesam.text import prompt

        return [
            Request(
                s.image,
                tuple(prompt(c) for c in POTENTIAL_CLASSES),
                frozenset({"mask", "prob"}),
                boundary=self.epoc,
            )
        ]

    def reduce(self, s: Sample, answers: Sequence[Any]) -> Prediction:
        """Detections, then the seeded rule-based caption (:func:`remotesam.reduce.caption`), as
        :meth:`predict`."""
        from remotesam import reduce as rd
        from remotesam.postprocess import seeded_chooser
        from remotesam.predictor import DEFAULTS

        (ans,) = answers
        names = tuple(POTENTIAL_CLASSES)
        seed = self.sample_seed(s)
        dets = rd.detections(
            ans,
            names,
            "hbb",
            use_boundary=ans.boundary is not None,
            epoc_threshold=DEFAULTS["epoc_threshold_detection"],
            epoc_area_ratio=DEFAULTS["epoc_area_ratio"],
            conf_threshold=DEFAULTS["conf_threshold"],
            nms_iou=DEFAULTS["nms_iou"],
            remove_inner=True,
        )
        res = rd.caption(dets, names, ans.hw, self.region_split, seeded_chooser(seed))
        return CaptionPrediction(str(res.text), seed).encode()

    def score(self, samples: Sequence[Sample], predictions: Sequence[Prediction]) -> Scores:
        """All caption metrics x100 on the scored samples (IDF from their references).

        ``per_sample``: ``CIDEr``, ``CIDEr_D``, ``ROUGE_L`` per image (their means are the
        corpus values). BLEU and METEOR are corpus-level (no per-sample decomposition).

        Without Java the scores are computed on pure-Python tokens and METEOR is NaN, each
        flagged in ``tables["notes"]`` (see the module docstring).

        Raises:
            RuntimeError: ``tokenizer=ptb`` or ``meteor=true`` asked for without Java (message
                says what to do).
        """
        check_score_lengths(samples, predictions)
        notes = {"SPICE": SPICE_UNAVAILABLE}
        if not samples:
            return Scores(
                metrics={m.name: float("nan") for m in self.metrics}, tables={"notes": notes}
            )
        gts: dict[Hashable, list[str]] = {}  # sample id -> captions (the metrics' Captions)
        res: dict[Hashable, list[str]] = {}
        dropped: list[str] = []  # samples whose text held lone surrogates
        for s, p in zip(samples, predictions):
            try:
                cap = CaptionPrediction.decode(p).caption
            except PredictionFormatError as e:
                raise ValueError(f"prediction for sample {s.sample_id}: {e}") from None
            refs = [str(r) for r in s.target["references"]]
            cleaned = [_SURROGATES.sub("", t) for t in (*refs, cap)]
            if cleaned != [*refs, cap]:
                dropped.append(str(s.sample_id))
            gts[s.sample_id] = cleaned[:-1]
            res[s.sample_id] = [cleaned[-1]]
        if dropped:
            notes["text"] = (
                f"lone surrogates (not text) dropped from the references or caption of "
                f"{len(dropped)} sample(s): {', '.join(dropped[:5])}"
                + (" ..." if len(dropped) > 5 else "")
            )
        tokenizer, meteor = self.scoring_setup()
        tok = {"ptb": ptb_tokenize, "python": python_ptb_tokenize, "simple": simple_tokenize}[
            tokenizer
        ]
        if tokenizer != "ptb":
            notes["tokenizer"] = (
                PYTHON_TOKENIZER_NOTE
                if tokenizer == "python"
                else "tokenizer=simple: Java-free tokenisation, numbers are not official"
            )
            for name in ("CIDEr", "CIDEr_D", "BLEU_1", "BLEU_2", "BLEU_3", "BLEU_4", "ROUGE_L"):
                notes[name] = (
                    f"deviation: computed on tokenizer={tokenizer} tokens, not the PTB jar's"
                )
        g_t, r_t = tok(gts), tok(res)
        both = cider_variants(g_t, r_t, variants=("cider", "cider-d"))
        c, c_each = both["cider"]
        cd, cd_each = both["cider-d"]
        coco = pycocoevalcap_scores(g_t, r_t, meteor=meteor)
        if not meteor:
            notes["METEOR"] = (
                "not computed (meteor=false)" if self.meteor is False else METEOR_UNAVAILABLE
            )
        keys = [str(k) for k in gts]  # the sample ids
        metrics = {
            "CIDEr": 100.0 * c,
            "CIDEr_D": 100.0 * cd,
            **{f"BLEU_{n}": 100.0 * float(coco[f"BLEU_{n}"]) for n in (1, 2, 3, 4)},
            "METEOR": 100.0 * float(coco["METEOR"]),
            "ROUGE_L": 100.0 * float(coco["ROUGE_L"]),
            "SPICE": float("nan"),
        }
        return Scores(
            metrics=metrics,
            per_sample={
                "CIDEr": 100.0 * c_each,
                "CIDEr_D": 100.0 * cd_each,
                "ROUGE_L": 100.0 * np.asarray(coco["ROUGE_L_per_sample"], dtype=np.float64),
            },
            tables={
                "notes": notes,
                "tokenizer": tokenizer,
                "n_images": len(keys),
                "n_references": sum(len(v) for v in gts.values()),
            },
            sample_ids=keys,
            deviations=({"CIDEr": notes["CIDEr"]} if tokenizer != "ptb" else {}),
        )
