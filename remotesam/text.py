"""Text side of RemoteSAM: bert-base-uncased WordPiece tokenisation to 20 tokens, prompt templates.

The official wrapper encodes a sentence with the bert-base-uncased tokenizer
(``encode(sentence, add_special_tokens=True)``), i.e. ``[CLS] word pieces [SEP]``, keeps the first
20 ids (so a long sentence loses its ``[SEP]``), pads with id 0 and builds a 1/0 attention mask.
:class:`Tokenizer` does exactly that from the vocabulary shipped with this package
(``remotesam/assets/bert-base-uncased-vocab.txt``), fully offline, with the Rust ``tokenizers``
WordPiece implementation (the one behind ``transformers.BertTokenizerFast``).

Example::

    tok = Tokenizer()
    ids, mask = tok.encode(["airplane in the image", "the airplane on the right"])
    # ids: (2, 20) int64, [[101, 13297, 1999, 1996, 3746, 102, 0, ...], ...]
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import torch

__all__ = [
    "DEFAULT_TEMPLATE",
    "MAX_TOKENS",
    "VOCAB_PATH",
    "VOCAB_SHA256",
    "VOCAB_SIZE",
    "Tokenizer",
    "prompt",
]

#: Number of token positions the official model was trained and evaluated with.
MAX_TOKENS = 20
#: Size of the bert-base-uncased vocabulary.
VOCAB_SIZE = 30522
#: The vocabulary shipped with the package.
VOCAB_PATH = Path(__file__).resolve().parent / "assets" / "bert-base-uncased-vocab.txt"
#: sha256 of the shipped bert-base-uncased ``vocab.txt``.
VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
#: Prompt template of the official task methods (``"{classname} in the image"``, no period).
DEFAULT_TEMPLATE = "{} in the image"

_SPECIAL = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103}
_VERIFIED: set[tuple[str, int, int]] = (
    set()
)  # (path, mtime_ns, size) of vocab files already checked
_VERIFY_LOCK = threading.Lock()


def prompt(classname: str, template: str = DEFAULT_TEMPLATE) -> str:
    """Fill a prompt template with a class name.

    Args:
        classname: the class name, e.g. ``"airplane"``.
        template: a ``str.format`` template with exactly one ``{}`` field. The official task
            methods use ``"{} in the image"``; the official SEG evaluation uses
            ``"{} in the image."`` (with a period, which changes the token ids).

    Raises:
        TypeError: ``classname`` or ``template`` is not a ``str``.
        ValueError: ``template`` does not contain exactly one ``{}`` field.
    """
    if not isinstance(classname, str):
        raise TypeError(f"class name must be a str, got {type(classname).__name__}: {classname!r}")
    if not isinstance(template, str):
        raise TypeError(f"prompt template must be a str, got {type(template).__name__}")
    rest = template.replace("{}", "", 1)
    if "{}" not in template or "{" in rest or "}" in rest:
        raise ValueError(
            f"prompt template {template!r} must contain exactly one '{{}}' field and no other "
            "braces, e.g. '{} in the image'"
        )
    return template.format(classname)


def _read_vocab(path: Path, expected_sha256: str | None) -> dict[str, int]:
    """Read a BERT ``vocab.txt`` (one token per line, id = line number) and validate it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"BERT vocabulary not found at {path}; it ships with the package as "
            "remotesam/assets/bert-base-uncased-vocab.txt (reinstall remotesam-bench)"
        ) from None
    if expected_sha256 is not None:
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size)
        with _VERIFY_LOCK:
            if key not in _VERIFIED:
                digest = hashlib.sha256(data).hexdigest()
                if digest != expected_sha256:
                    raise ValueError(
                        f"BERT vocabulary {path} has sha256 {digest}, expected {expected_sha256} "
                        "(bert-base-uncased vocab.txt); the file is corrupt or a different "
                        "vocabulary"
                    )
                _VERIFIED.add(key)
    lines = data.decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    vocab: dict[str, int] = {}
    for i, token in enumerate(lines):
        token = token.rstrip("\r")
        if token in vocab:
            raise ValueError(
                f"BERT vocabulary {path}: token {token!r} appears twice (lines {vocab[token] + 1} "
                f"and {i + 1})"
            )
        vocab[token] = i
    if len(vocab) != VOCAB_SIZE:
        raise ValueError(
            f"BERT vocabulary {path} has {len(vocab)} tokens, expected {VOCAB_SIZE} "
            "(bert-base-uncased); RemoteSAM's text encoder needs exactly that vocabulary"
        )
    for tok, idx in _SPECIAL.items():
        if vocab.get(tok) != idx:
            raise ValueError(
                f"BERT vocabulary {path}: special token {tok} has id {vocab.get(tok)}, expected "
                f"{idx}"
            )
    return vocab


#: Lone surrogates (``"\\udc80"``: a string decoded with ``surrogateescape``, or a JSON escape).
_SURROGATES = re.compile("[\ud800-\udfff]")


class Tokenizer:
    """bert-base-uncased WordPiece encoder producing RemoteSAM's fixed-length token ids.

    Lone surrogates in a sentence are dropped, as the official ``BertTokenizer`` (the Python one)
    drops every character of Unicode category ``C*`` when it cleans the text.

    Built once (reading and checking the vocabulary takes ~0.1 s); encodings of sentences seen
    before come from an LRU cache. Thread-safe.

    Args:
        vocab_path: a bert-base-uncased ``vocab.txt``; defaults to the shipped copy, whose
            sha256 is verified the first time it is read in a process.
        max_tokens: sequence length (20 for every official model).
        cache_size: number of sentences whose encodings are kept (0 disables the cache).

    Raises:
        FileNotFoundError: the vocabulary file does not exist.
        ValueError: the vocabulary is not bert-base-uncased (wrong checksum for the shipped file,
            not 30522 tokens, duplicate tokens or misplaced special tokens), or
            ``max_tokens < 2``.
    """

    def __init__(
        self,
        vocab_path: str | Path | None = None,
        *,
        max_tokens: int = MAX_TOKENS,
        cache_size: int = 4096,
    ) -> None:
        from tokenizers import Tokenizer as _RustTokenizer
        from tokenizers import normalizers, pre_tokenizers, processors
        from tokenizers.models import WordPiece

        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 2:
            raise ValueError(f"max_tokens must be an int >= 2, got {max_tokens!r}")
        path = VOCAB_PATH if vocab_path is None else Path(vocab_path)
        vocab = _read_vocab(path, VOCAB_SHA256 if vocab_path is None else None)

        tok = _RustTokenizer(WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
        # Same components as BertTokenizer(do_lower_case=True): clean text, CJK spacing,
        # lowercase + strip accents, whitespace/punctuation split, [CLS] x [SEP].
        tok.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
        )
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.post_processor = processors.BertProcessing(
            ("[SEP]", _SPECIAL["[SEP]"]), ("[CLS]", _SPECIAL["[CLS]"])
        )
        # Special tokens typed in a sentence stay single tokens, as in the official tokenizer.
        tok.add_special_tokens(list(_SPECIAL))
        size = tok.get_vocab_size(with_added_tokens=True)
        if size != VOCAB_SIZE:  # guards against a silently substituted dummy vocabulary
            raise ValueError(
                f"tokenizer built from {path} has {size} tokens, expected {VOCAB_SIZE}"
            )
        self._tok = tok
        self.vocab_path = path
        self.max_tokens = max_tokens
        self.vocab_size = size
        self._cache_size = max(int(cache_size), 0)
        self._cache: OrderedDict[str, tuple[int, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Tokenizer(vocab={str(self.vocab_path)!r}, max_tokens={self.max_tokens})"

    def token_ids(self, sentence: str) -> tuple[int, ...]:
        """Ids of ``[CLS] sentence [SEP]`` truncated to ``max_tokens`` (unpadded).

        Raises:
            TypeError: ``sentence`` is not a ``str``.
        """
        return self._ids_many([sentence])[0]

    def _ids_many(self, sentences: Sequence[str]) -> list[tuple[int, ...]]:
        for i, s in enumerate(sentences):
            if not isinstance(s, str):
                raise TypeError(
                    f"sentence {i} must be a str, got {type(s).__name__}: {s!r}"
                )
        out: list[tuple[int, ...] | None] = [None] * len(sentences)
        missing: dict[str, list[int]] = {}
        with self._lock:
            for i, s in enumerate(sentences):
                hit = self._cache.get(s)
                if hit is not None:
                    self._cache.move_to_end(s)
                    out[i] = hit
                else:
                    missing.setdefault(s, []).append(i)
        if missing:
            todo = list(missing)
            # the Rust tokenizer takes no lone surrogates; BertTokenizer's clean_text drops them
            encs = self._tok.encode_batch([_SURROGATES.sub("", t) for t in todo],
                                          add_special_tokens=True)
            with self._lock:
                for s, enc in zip(todo, encs):
                    ids = tuple(enc.ids[: self.max_tokens])
                    for i in missing[s]:
                        out[i] = ids
                    if self._cache_size:
                        self._cache[s] = ids
                        self._cache.move_to_end(s)
                        while len(self._cache) > self._cache_size:
                            self._cache.popitem(last=False)
        return out  # type: ignore[return-value]

    def encode(self, sentences: str | Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode sentences to fixed-length ids and attention masks.

        Args:
            sentences: one sentence or a sequence of N sentences.

        Returns:
            ``(input_ids, attention_mask)``, both ``(N, max_tokens)`` int64 CPU tensors (N = 1 for a
            single sentence). ``input_ids`` is ``[CLS] pieces [SEP]`` truncated to ``max_tokens``
            (a long sentence loses its ``[SEP]``) and padded with 0; the mask is 1 on real tokens
            and 0 on padding.

        Raises:
            TypeError: a sentence is not a ``str``, or ``sentences`` is not a str/sequence.
            ValueError: ``sentences`` is an empty sequence.
        """
        if isinstance(sentences, str):
            sentences = [sentences]
        elif not isinstance(sentences, Sequence):
            raise TypeError(
                f"sentences must be a str or a sequence of str, got {type(sentences).__name__}"
            )
        if len(sentences) == 0:
            raise ValueError("sentences is empty; give at least one sentence to encode")
        rows = self._ids_many(list(sentences))
        ids = torch.zeros((len(rows), self.max_tokens), dtype=torch.int64)
        mask = torch.zeros((len(rows), self.max_tokens), dtype=torch.int64)
        for r, row in enumerate(rows):
            ids[r, : len(row)] = torch.tensor(row, dtype=torch.int64)
            mask[r, : len(row)] = 1
        return ids, mask

    def prompt(self, classname: str, template: str = DEFAULT_TEMPLATE) -> str:
        """``template`` filled with ``classname`` (see :func:`prompt`)."""
        return prompt(classname, template)

    def cache_info(self) -> dict[str, int]:
        """Number of cached sentences and the cache capacity."""
        with self._lock:
            return {"size": len(self._cache), "maxsize": self._cache_size}
