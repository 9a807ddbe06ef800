"""Captioning metrics: the official CIDEr (corpus IDF) and the pycocoevalcap metrics.

Inputs are dicts ``key -> list of sentences``: ``gts`` holds every reference of an image,
``res`` exactly one candidate per image, same keys.

* **Official CIDEr** (RemoteSAM ``CAP.py``: ``CIDErEvalCap(gts, res, df='corpus')`` of the
  ``cidereval`` package, key ``'CIDEr'``, printed x100): PTB-tokenised text, n = 1..4,
  TF-IDF vectors with IDF from the test references (``df = 'corpus'``), plain cosine
  similarity per n (**no** clipping, **no** length penalty), mean over n, mean over
  references, x10. :func:`cider` with ``variant="cider"`` implements it.
* **CIDEr-D** (the variant the COCO caption evaluation and ``pycocoevalcap.cider.Cider``
  compute: clipped n-gram counts and a Gaussian length penalty, sigma 6):
  :func:`cider` with ``variant="cider-d"``, tested equal to ``pycocoevalcap`` called directly.
* BLEU-1..4, METEOR and ROUGE-L are computed by ``pycocoevalcap`` itself
  (:func:`pycocoevalcap_scores`). SPICE is not computed: its jar downloads Stanford CoreNLP
  models at first use, which a benchmark run must not do (:data:`SPICE_UNAVAILABLE`).

Tokenisation: :func:`ptb_tokenize` runs the Stanford PTB tokenizer jar shipped with
``pycocoevalcap`` (Java needed) exactly as ``pycocoevalcap.tokenizer.PTBTokenizer`` does
(lower-cased, punctuation tokens removed) but with its temporary file in the system temp
directory instead of the installed package. :func:`simple_tokenize` is a Java-free
approximation (not official).
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "PTB_PUNCTUATION",
    "SPICE_UNAVAILABLE",
    "cider",
    "cider_variants",
    "java_available",
    "ptb_tokenize",
    "pycocoevalcap_scores",
    "simple_tokenize",
]

#: Tokens removed after PTB tokenisation (as pycocoevalcap does).
PTB_PUNCTUATION = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-",
     "--", "...", ";"]
)  # fmt: skip

SPICE_UNAVAILABLE = (
    "SPICE is not computed: pycocoevalcap's SPICE jar downloads Stanford CoreNLP models "
    "(~1 GB) from the internet on first use and needs Java 8; benchmark runs never fetch "
    "anything. The official RemoteSAM evaluation does not report SPICE either."
)

Captions = Mapping[Hashable, Sequence[str]]


def java_available() -> bool:
    """True when a ``java`` executable is on ``PATH``."""
    return shutil.which("java") is not None


def _pycocoevalcap_dir() -> Path:
    import pycocoevalcap

    return Path(next(iter(pycocoevalcap.__path__)))


def ptb_tokenize(captions: Captions) -> dict[Hashable, list[str]]:
    """Stanford PTB tokenisation as ``pycocoevalcap.tokenizer.PTBTokenizer`` (same jar, flags
    ``-preserveLines -lowerCase``, same punctuation removal), keys and order preserved.

    Raises:
        RuntimeError: Java is missing or the tokenizer fails (message says what to install).
    """
    if not java_available():
        raise RuntimeError(
            "the official CIDEr uses the Stanford PTB tokenizer, which needs Java: install a "
            "Java runtime (e.g. apt-get install default-jre-headless), or pass the task option "
            "tokenizer=simple (not official)"
        )
    jar = _pycocoevalcap_dir() / "tokenizer" / "stanford-corenlp-3.4.1.jar"
    if not jar.is_file():
        raise RuntimeError(f"PTB tokenizer jar not found at {jar}; reinstall pycocoevalcap")
    keys = [k for k, v in captions.items() for _ in range(len(v))]
    sentences = "\n".join(s.replace("\n", " ") for v in captions.values() for s in v)
    with tempfile.TemporaryDirectory(prefix="remotesam_ptb_") as tmp:
        src = Path(tmp) / "sentences.txt"
        src.write_bytes(sentences.encode())
        cmd = ["java", "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer",
               "-preserveLines", "-lowerCase", str(src)]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"PTB tokenizer failed (exit {proc.returncode}): {proc.stderr.decode(errors='replace')[:500]}"
        )
    lines = proc.stdout.decode().split("\n")
    out: dict[Hashable, list[str]] = {k: [] for k in captions}
    for k, line in zip(keys, lines):
        out[k].append(" ".join(w for w in line.rstrip().split(" ") if w not in PTB_PUNCTUATION))
    for k, v in captions.items():  # sentences lost to an empty tokenizer line stay aligned
        while len(out[k]) < len(v):
            out[k].append("")
    return out


_SIMPLE_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def simple_tokenize(captions: Captions) -> dict[Hashable, list[str]]:
    """Java-free approximation of the PTB tokenisation: lower-case alphanumeric words only
    (not official; differs on contractions and hyphenated words)."""
    return {k: [" ".join(_SIMPLE_TOKEN.findall(s.lower())) for s in v] for k, v in captions.items()}


def _ngrams(sentence: str, n: int) -> Counter[tuple[str, ...]]:
    words = sentence.split()
    c: Counter[tuple[str, ...]] = Counter()
    for k in range(1, n + 1):
        for i in range(len(words) - k + 1):
            c[tuple(words[i : i + k])] += 1
    return c


def cider(
    gts: Captions, res: Captions, *, variant: str = "cider", n: int = 4, sigma: float = 6.0
) -> tuple[float, np.ndarray]:
    """CIDEr with IDF from the references of ``gts`` (``df='corpus'``), on tokenised text.

    Args:
        gts: key -> reference sentences (tokenised, space-separated).
        res: key -> ``[candidate]`` (exactly one, tokenised). Same keys as ``gts``.
        variant: ``"cider"`` (official RemoteSAM: cosine of TF-IDF vectors) or ``"cider-d"``
            (pycocoevalcap / COCO: clipped counts and Gaussian length penalty).
        n: maximum n-gram length.
        sigma: length-penalty width (``cider-d`` only).

    Returns:
        ``(corpus score, per-key scores (m,) float64)`` on the x10 scale of the original code
        (multiply by 100 more for the "x100" figures); the corpus score is the mean.

    Raises:
        ValueError: keys differ, a candidate list is not of length 1, or references are empty.
    """
    return cider_variants(gts, res, variants=(variant,), n=n, sigma=sigma)[variant]


def cider_variants(
    gts: Captions,
    res: Captions,
    *,
    variants: Sequence[str] = ("cider", "cider-d"),
    n: int = 4,
    sigma: float = 6.0,
) -> dict[str, tuple[float, np.ndarray]]:
    """:func:`cider` for several variants at once (the TF-IDF vectors are built once)."""
    for v in variants:
        if v not in ("cider", "cider-d"):
            raise ValueError(f"unknown CIDEr variant {v!r}; expected 'cider' or 'cider-d'")
    if set(gts) != set(res):
        raise ValueError("gts and res must have the same keys")
    keys = list(gts)
    for k in keys:
        if len(res[k]) != 1:
            raise ValueError(f"res[{k!r}] must hold exactly one candidate, found {len(res[k])}")
        if len(gts[k]) == 0:
            raise ValueError(f"gts[{k!r}] has no reference sentence")
    crefs = [[_ngrams(r, n) for r in gts[k]] for k in keys]
    ctest = [_ngrams(res[k][0], n) for k in keys]
    df: Counter[tuple[str, ...]] = Counter()
    for refs in crefs:
        df.update({g for r in refs for g in r})
    ref_len = math.log(float(len(crefs))) if crefs else 0.0
    # idf of an n-gram never seen in the references: ref_len - log(max(1, 0)) = ref_len
    idf = {g: ref_len - math.log(max(1.0, float(c))) for g, c in df.items()}

    def vec(cnts: Counter[tuple[str, ...]]) -> tuple[list[dict], list[float], int]:
        v: list[dict] = [{} for _ in range(n)]
        norm = [0.0] * n
        length = 0
        for g, tf in cnts.items():
            i = len(g) - 1
            w = tf * idf.get(g, ref_len)
            v[i][g] = w
            norm[i] += w * w
            if i == 1:  # the original counts bigrams as "length"; kept for cider-d parity
                length += tf
        return v, [math.sqrt(x) for x in norm], length

    do_plain, do_d = "cider" in variants, "cider-d" in variants
    plain = np.zeros(len(keys), dtype=np.float64)
    clipped = np.zeros(len(keys), dtype=np.float64)
    two_sigma2 = 2 * sigma**2
    for idx, (test, refs) in enumerate(zip(ctest, crefs)):
        vh, nh, lh = vec(test)
        acc_p = 0.0
        acc_d = 0.0
        for ref in refs:
            vr, nr, lr = vec(ref)
            pen = math.exp(-float(lh - lr) ** 2 / two_sigma2) if do_d else 0.0
            for i in range(n):
                ri = vr[i]
                sp = sd = 0.0
                for g, w in vh[i].items():
                    r = ri.get(g)
                    if r is not None:
                        sp += w * r
                        sd += (w if w < r else r) * r
                if nh[i] != 0 and nr[i] != 0:
                    den = nh[i] * nr[i]
                    sp /= den
                    sd /= den
                acc_p += sp
                acc_d += sd * pen
        plain[idx] = acc_p / n / len(refs) * 10.0
        clipped[idx] = acc_d / n / len(refs) * 10.0
    out: dict[str, tuple[float, np.ndarray]] = {}
    for name, arr, on in (("cider", plain, do_plain), ("cider-d", clipped, do_d)):
        if on:
            out[name] = (float(np.mean(arr)) if len(arr) else float("nan"), arr)
    return out


def pycocoevalcap_scores(
    gts: Captions, res: Captions, *, meteor: bool = True
) -> dict[str, float | np.ndarray]:
    """BLEU-1..4 (``option='closest'``), ROUGE-L and METEOR from ``pycocoevalcap`` on tokenised text.

    Returns fractions (not x100): ``BLEU_1``..``BLEU_4``, ``ROUGE_L``, ``METEOR`` (NaN when
    ``meteor`` is False), and ``ROUGE_L_per_sample`` (``(m,)``, mean = ``ROUGE_L``).

    METEOR starts a Java process (~10 s); it raises ``RuntimeError`` without Java.
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.rouge.rouge import Rouge

    g = {k: list(v) for k, v in gts.items()}
    r = {k: list(v) for k, v in res.items()}
    out: dict[str, float | np.ndarray] = {}
    with contextlib.redirect_stdout(io.StringIO()):
        bleu, _ = Bleu(4).compute_score(g, r, verbose=0)
    for i, b in enumerate(bleu):
        out[f"BLEU_{i + 1}"] = float(b)
    rouge, rouge_each = Rouge().compute_score(g, r)
    out["ROUGE_L"] = float(rouge)
    out["ROUGE_L_per_sample"] = np.asarray(rouge_each, dtype=np.float64)
    if meteor:
        if not java_available():
            raise RuntimeError(
                "METEOR needs Java: install a Java runtime or pass the task option meteor=false"
            )
        from pycocoevalcap.meteor.meteor import Meteor

        m = Meteor()
        try:
            score, _ = m.compute_score(g, r)
        finally:
            with contextlib.suppress(Exception):
                m.meteor_p.stdin.close()
                m.meteor_p.kill()
                m.meteor_p.wait()
        out["METEOR"] = float(score)
    else:
        out["METEOR"] = float("nan")
    return out

