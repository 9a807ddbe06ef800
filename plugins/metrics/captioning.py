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
directory instead of the installed package.

Without Java, :func:`python_ptb_tokenize` mimics that tokenisation in pure Python (a deviation:
the official numbers use the jar). It reproduces what the PTB tokenizer does to caption text:
lower-casing; punctuation split off words and removed (``. , ; : ? ! - -- ...``, quotes);
clitics split (``don't`` -> ``do n't``, ``can't`` -> ``ca n't``, ``it's`` -> ``it 's``,
``cannot`` -> ``can not``, ``gonna`` -> ``gon na``); brackets written as ``-lrb-``/``-rrb-``...
and *kept* (pycocoevalcap's removal list has them in upper case, after lower-casing, so they
survive there too); hyphenated words, ``and/or``, ``2.5``, ``1,000``, ``12:30``, acronyms
(``u.s.``, ``a.m.``) and common abbreviations (``etc.``, ``mr.``, ``no.`` before a number) kept
whole; ``&``, ``%``, ``$`` as tokens of their own. Also what the jar does to non-ASCII text:
characters it cannot tokenise are deleted (emoji and everything outside the Basic Multilingual
Plane, variation selectors, zero-width joiners, most currency signs such as ``₹ ₩ ₽``), a word
around one split there; curly quotes read as straight ones (``harbour’s`` -> ``harbour 's``),
em and en dashes as ``--``, ``…`` as ``...``; other Unicode symbols are tokens of their own
(``© → ★ ± ² ¥ ฿``); currency normalised (``£`` -> ``#``, ``€`` -> ``$``, ``¢`` -> ``cents``,
``us$`` / ``hk$`` one token) and vulgar fractions written out (``½`` -> ``1/2``); a number
followed by a fraction is one token joined by a no-break space (``3 1/2`` -> ``3\xa01/2``);
stand-alone clitics (``'s``, ``'re``) and ``'til``, ``'em``, ``'cause``, ``'n'``, ``'90s``
stay whole, ``'tis`` -> ``'t is``; ``http(s)://`` URLs stay whole. Not reproduced: the jar's
rarer rules (British spellings are not rewritten by the jar either; ``ftp:`` and ``mailto:``
addresses, a clitic glued to a hyphenated word such as ``'s-hertogenbosch``).

Agreement with the jar, measured (``tests/test_plugin_cap_nojava.py``): on the 155 real UCM-captions
reference sentences in ``data/real/ucm_captions`` the token sequences are identical for
155/155 (100.0 %), so BLEU-1..4, ROUGE-L, CIDEr and CIDEr-D on them differ by exactly 0 (each
image's first reference scored as the candidate against the other four); on a hand-written
set of 34 hard cases (clitics, quotes, brackets, abbreviations, numbers, ellipses) 34/34 agree,
and on 109 strings of the non-ASCII classes above (emoji, stand-alone clitics, URLs, fractions,
currency, curly quotes, dashes, symbols) 109/109 agree (86 differed before these rules).
:func:`simple_tokenize` is an older, cruder Java-free approximation (alphanumeric words only;
2 of the 155 real sentences differ from the jar: hyphenated words are split), kept for
``tokenizer=simple``.
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
    "METEOR_UNAVAILABLE",
    "PTB_PUNCTUATION",
    "PYTHON_TOKENIZER_NOTE",
    "SPICE_UNAVAILABLE",
    "cider",
    "cider_variants",
    "java_available",
    "ptb_tokenize",
    "pycocoevalcap_scores",
    "python_ptb_sentence",
    "python_ptb_tokenize",
    "simple_tokenize",
]

#: Tokens removed after PTB tokenisation (as pycocoevalcap does).
PTB_PUNCTUATION = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-",
     "--", "...", ";"]
)  # fmt: skip

#: Why METEOR is NaN when Java is absent.
METEOR_UNAVAILABLE = (
    "unavailable: needs Java (pycocoevalcap's METEOR 1.5 is a Java program); install a Java "
    "runtime >= 8 (e.g. apt-get install default-jre-headless) to report it"
)

#: The deviation flag of scores computed on :func:`python_ptb_tokenize` tokens.
PYTHON_TOKENIZER_NOTE = (
    "deviation: no Java, so the text was tokenised by the pure-Python imitation of the Stanford "
    "PTB tokenizer (identical tokens on 155/155 real UCM-captions references); the official "
    "numbers use the Java tokenizer. Install Java >= 8 for the official tokenisation."
)

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
            f"PTB tokenizer failed (exit {proc.returncode}): "
            f"{proc.stderr.decode(errors='replace')[:500]}"
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


_PTB_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-", "{": "-lcb-", "}": "-rcb-"}
#: Words the PTB tokenizer keeps with their final period (lower case, without the period).
_PTB_ABBREVIATIONS = frozenset({
    "mr", "mrs", "ms", "dr", "prof", "st", "vs", "etc", "jr", "sr", "inc", "ltd", "co", "corp",
    "mt", "ft", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov",
    "dec", "gen", "col", "capt", "sgt", "lt", "rev", "gov", "sen", "rep", "ave", "blvd", "dept",
    "est", "fig", "approx",
})  # fmt: skip
_PTB_SPLIT_WORDS = {"cannot": ("can", "not"), "gonna": ("gon", "na"), "wanna": ("wan", "na"),
                    "gotta": ("got", "ta"), "gimme": ("gim", "me"), "lemme": ("lem", "me")}
_PTB_CLITIC = re.compile(r"^(.+?)(n't|'s|'m|'re|'ve|'ll|'d)$")
_PTB_ACRONYM = re.compile(r"^(?:[a-z]\.){2,}$")
_PTB_INNER = re.compile(r"(?<!\d)([,:;])|([,:;])(?!\d)")


#: Characters the jar (PTBLexer 3.4.1) cannot tokenise and deletes (a word around one is split
#: there): characters outside the Basic Multilingual Plane (emoji, flags, skin tones), emoji
#: variation selectors and joiners, and the currency signs its lexer does not know.
_PTB_DELETED = re.compile(
    "[\U00010000-\U0010FFFF\uFE0E\uFE0F\u200D\u20A1-\u20A3\u20A5-\u20AB\u20AD-\u20BF]+")
#: Unicode punctuation the jar reads as its ASCII form: curly quotes, dashes, the ellipsis.
_PTB_UNICODE_PUNCT = {"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'",
                      "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"',
                      "\u2014": " -- ", "\u2013": " -- ", "\u2026": " ... "}
_PTB_UNICODE_PUNCT_RE = re.compile("[" + "".join(_PTB_UNICODE_PUNCT) + "]")
#: Symbols the jar writes differently (currency normalisation, vulgar fractions).
_PTB_SYMBOL_MAP = {"\u00a3": "#", "\u20ac": "$", "\u20a0": "$", "\u00a4": "$",
                   "\u00a2": "cents", "\u00bd": "1/2", "\u00bc": "1/4", "\u00be": "3/4",
                   "\u2153": "1/3", "\u2154": "2/3"}


def _symbol_class() -> str:
    """A regex character class of the non-ASCII BMP characters the jar makes a token of their
    own: Unicode symbols (``Sm Sc Sk So``: ``€ ¥ ฿ © ™ → ★ ± × ☀ ✈``...), "other numbers"
    (``No``: ``² ¼``) and ``• § ¶ † ‡ ‰``. Deleted characters are removed before."""
    import unicodedata

    keep = set("\u2022\u00a7\u00b6\u2020\u2021\u2030")
    chars = [chr(c) for c in range(0x80, 0x10000) if not 0xD800 <= c <= 0xDFFF
             and (unicodedata.category(chr(c)) in ("Sm", "Sc", "Sk", "So", "No")
                  or chr(c) in keep)]
    ranges: list[str] = []
    start = prev = ord(chars[0])
    for c in [*map(ord, chars[1:]), -1]:
        if c != prev + 1:
            ranges.append(re.escape(chr(start)) + ("-" + re.escape(chr(prev)) if prev > start
                                                     else ""))
            start = c
        prev = c
    return "[" + "".join(ranges) + "]"


#: Symbols that are a token of their own: ``& % $ °``, a currency prefix (``us$``, ``hk$``),
#: and every non-ASCII symbol (:func:`_symbol_class`).
_PTB_SYMBOL = re.compile(r"((?<![a-z])[a-z]{1,3}\$|[&%$°]|" + _symbol_class() + ")")
_PTB_URL = re.compile(r"^https?://\S+$")
_PTB_LONE_CLITIC = re.compile(r"^'(s|m|re|ve|ll|d)(?![a-z])")
_PTB_FRACTION = re.compile(r"^\d+/\d+")
#: Words the jar keeps with their leading apostrophe (``'til``, ``'90s``) or splits after it.
_PTB_APOS_WORD = re.compile(r"^('til|'em|'cause|'n'|'\d+s|'tis|'twas)(?=[.,;:!?\"]*$)")


def _ptb_symbol(tok: str) -> bool:
    return bool(tok) and _PTB_SYMBOL.fullmatch(tok) is not None


def _ptb_word(word: str) -> list[str]:
    """Tokens of a chunk whose leading/trailing punctuation is already split off."""
    out: list[str] = []
    for part in _PTB_SYMBOL.split(word):
        if not part:
            continue
        if _ptb_symbol(part):
            out.append(_PTB_SYMBOL_MAP.get(part, part))
            continue
        for piece in _PTB_INNER.split(part):
            if not piece:
                continue
            if piece in _PTB_SPLIT_WORDS:
                out.extend(_PTB_SPLIT_WORDS[piece])
            elif m := _PTB_CLITIC.match(piece):
                out.extend(m.groups())
            else:
                out.append(piece)
    return out


def _ptb_keeps_period(chunk: str, next_chunk: str) -> bool:
    stem = chunk[:-1]
    return bool(_PTB_ACRONYM.match(chunk)) or stem in _PTB_ABBREVIATIONS or (
        stem == "no" and next_chunk[:1].isdigit())


def python_ptb_sentence(text: str) -> list[str]:
    """PTB-style tokens of one sentence, lower-cased, punctuation tokens still present
    (quotes as ``````/``''``, brackets as ``-lrb-``...); see the module docstring."""
    text = _PTB_DELETED.sub(" ", text)
    text = _PTB_UNICODE_PUNCT_RE.sub(lambda m: _PTB_UNICODE_PUNCT[m.group()], text)
    text = re.sub(r"(?<=[^\s-])--+(?=[^\s-])", " -- ", text)  # "word--dash": split
    chunks = text.lower().split()
    tokens: list[str] = []
    for i, chunk in enumerate(chunks):
        nxt = chunks[i + 1] if i + 1 < len(chunks) else ""
        frac = _PTB_FRACTION.match(chunk)
        if frac and i and chunks[i - 1].isdigit() and tokens and tokens[-1] == chunks[i - 1]:
            tokens[-1] += "\u00a0" + frac.group()  # "3 1/2": one token, a no-break space
            chunk = chunk[frac.end():]
            if not chunk:
                continue
        if apos := _PTB_APOS_WORD.match(chunk):
            word = apos.group(1)
            tokens += ["'t", word[2:]] if word in ("'tis", "'twas") else [word]
            tokens += [{'"': "''"}.get(c, c) for c in chunk[apos.end():]]
            continue
        lead: list[str] = []
        trail: list[str] = []
        while chunk:  # leading punctuation
            if _PTB_LONE_CLITIC.match(chunk):  # a stand-alone "'s", "'re"...: a token
                break
            if chunk.startswith(("...", "--")):
                n = 3 if chunk[0] == "." else 2
                lead.append(chunk[:n])
                chunk = chunk[n:]
            elif chunk[0] in _PTB_BRACKETS:
                lead.append(_PTB_BRACKETS[chunk[0]])
                chunk = chunk[1:]
            elif chunk[0] in "\"'`-":
                lead.append("``" if chunk[0] == '"' else chunk[0])
                chunk = chunk[1:]
            else:
                break
        while chunk:  # trailing punctuation, innermost last
            last = chunk[-1]
            if chunk.endswith(".."):
                stripped = chunk.rstrip(".")
                trail.insert(0, "...")
                chunk = stripped
            elif chunk.endswith("--"):
                trail.insert(0, "--")
                chunk = chunk[:-2]
            elif last in "?!":
                stripped = chunk.rstrip("?!")
                trail.insert(0, chunk[len(stripped):])
                chunk = stripped
            elif last in _PTB_BRACKETS:
                trail.insert(0, _PTB_BRACKETS[last])
                chunk = chunk[:-1]
            elif last in "\"'`,;:-":
                trail.insert(0, "''" if last == '"' else last)
                chunk = chunk[:-1]
            elif last == "." and not (len(chunk) > 1 and _ptb_keeps_period(chunk, nxt)):
                trail.insert(0, ".")
                chunk = chunk[:-1]
            else:
                break
        if _PTB_URL.match(chunk):  # a URL stays whole
            tokens += [*lead, chunk, *trail]
            continue
        tokens += lead + (_ptb_word(chunk) if chunk else []) + trail
    return tokens


def python_ptb_tokenize(captions: Captions) -> dict[Hashable, list[str]]:
    """Java-free imitation of :func:`ptb_tokenize` (same output format: lower-cased tokens of
    each sentence joined by spaces, :data:`PTB_PUNCTUATION` removed), keys and order preserved.

    A deviation from the official tokenisation (the jar); how close it is, and what it does not
    reproduce, is in the module docstring.
    """
    return {k: [" ".join(w for w in python_ptb_sentence(s) if w not in PTB_PUNCTUATION)
                for s in v] for k, v in captions.items()}


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
    """BLEU-1..4 (``option='closest'``), ROUGE-L and METEOR from ``pycocoevalcap`` on tokenised
    text.

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

