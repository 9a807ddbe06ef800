"""Tokenizer: golden token ids of the official wrapper, truncation, vocabulary checks, cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from remotesam.text import MAX_TOKENS, VOCAB_PATH, VOCAB_SIZE, Tokenizer, prompt


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer()


@pytest.fixture(scope="module")
def golden_ids(reference_dir: Path) -> dict[str, tuple[list[int], list[int]]]:
    with np.load(reference_dir / "postprocess_golden.npz") as f:
        wrapper = json.loads(str(f["results_json"]))["wrapper"]
    return {s: (v[0], v[1]) for s, v in wrapper["token_ids"].items()}


@pytest.mark.parity
def test_golden_wrapper_token_ids(tok: Tokenizer, golden_ids) -> None:
    sentences = list(golden_ids)
    ids, mask = tok.encode(sentences)
    assert ids.dtype == torch.int64 and mask.dtype == torch.int64
    assert ids.shape == mask.shape == (len(sentences), MAX_TOKENS)
    for row, s in enumerate(sentences):
        assert ids[row].tolist() == golden_ids[s][0], s
        assert mask[row].tolist() == golden_ids[s][1], s


@pytest.mark.parity
def test_golden_parity_tiny_ids(tok: Tokenizer, reference_dir: Path) -> None:
    with np.load(reference_dir / "parity_tiny.npz") as f:
        want_ids, want_mask = f["input_ids"], f["attention_mask"]
    ids, mask = tok.encode("the airplane on the right")
    np.testing.assert_array_equal(ids.numpy(), want_ids)
    np.testing.assert_array_equal(mask.numpy(), want_mask)


def test_long_sentence_truncated_without_sep(tok: Tokenizer) -> None:
    long = " ".join(["airplane"] * 30)
    ids, mask = tok.encode(long)
    assert ids[0, 0].item() == 101
    assert (ids[0] == 13297).sum().item() == MAX_TOKENS - 1  # [SEP] dropped, as the official code
    assert 102 not in ids[0].tolist()
    assert mask.sum().item() == MAX_TOKENS
    # exactly 18 words + [CLS] + [SEP] = 20 keeps the [SEP]
    ids18, mask18 = tok.encode(" ".join(["airplane"] * 18))
    assert ids18[0, -1].item() == 102 and mask18.sum().item() == 20


def test_matches_transformers_bert_tokenizer(tok: Tokenizer) -> None:
    from transformers import BertTokenizer

    with open(VOCAB_PATH, encoding="utf-8") as fh:
        vocab = {line.rstrip("\n"): i for i, line in enumerate(fh)}
    hf = BertTokenizer(vocab=vocab, do_lower_case=True)
    assert len(hf) == VOCAB_SIZE
    sentences = [
        "The airplane on the RIGHT",
        "storage-tank, 3 tennis courts!",
        "Héllo naïve café",
        "a [SEP] inside",
        "中文 mixed",
        "  tabs\tand\nnewlines  ",
        "expressway-service-area in the image.",
        "unbelievablyverylongwordthatwordpiecesplits",
    ]
    for s in sentences:
        assert list(tok.token_ids(s)) == hf.encode(s, add_special_tokens=True)[:MAX_TOKENS], s


def test_batch_equals_single_and_cache(tok: Tokenizer) -> None:
    t = Tokenizer(cache_size=2)
    ids, mask = t.encode(["ship in the image", "vehicle in the image", "ship in the image"])
    assert torch.equal(ids[0], ids[2])
    for i, s in enumerate(["ship in the image", "vehicle in the image"]):
        one_ids, one_mask = tok.encode(s)
        assert torch.equal(one_ids[0], ids[i]) and torch.equal(one_mask[0], mask[i])
    assert t.cache_info() == {"size": 2, "maxsize": 2}
    t.encode("harbor in the image")  # evicts the least recently used
    assert t.cache_info()["size"] == 2
    assert t.encode("ship in the image")[0].tolist() == tok.encode("ship in the image")[0].tolist()
    t0 = Tokenizer(cache_size=0)
    t0.encode("ship in the image")
    assert t0.cache_info()["size"] == 0


def test_prompt_templates() -> None:
    assert prompt("airplane") == "airplane in the image"
    assert prompt("airplane", "{} in the image.") == "airplane in the image."
    assert Tokenizer.prompt(Tokenizer(), "ship", "All {} in the image") == "All ship in the image"
    with pytest.raises(ValueError, match="exactly one '\\{\\}' field"):
        prompt("airplane", "in the image")
    with pytest.raises(ValueError, match="exactly one"):
        prompt("airplane", "{} and {}")
    with pytest.raises(ValueError, match="no other braces"):
        prompt("airplane", "{0} in the image")
    with pytest.raises(TypeError, match="class name must be a str"):
        prompt(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="template must be a str"):
        prompt("x", None)  # type: ignore[arg-type]


def test_encode_bad_input(tok: Tokenizer) -> None:
    with pytest.raises(TypeError, match=r"sentence 1 must be a str, got int"):
        tok.encode(["ok", 5])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="sentences must be a str or a sequence"):
        tok.encode(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sentences is empty"):
        tok.encode([])
    with pytest.raises(TypeError, match="sentence 0 must be a str, got bytes"):
        tok.token_ids(b"bytes")  # type: ignore[arg-type]


def test_dummy_vocab_rejected(tmp_path: Path) -> None:
    # transformers 5's BertTokenizerFast(vocab_file=...) silently builds such a 5-token vocab;
    # ours must refuse anything that is not the 30522-token bert-base-uncased vocabulary.
    small = tmp_path / "vocab.txt"
    small.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"has 5 tokens, expected 30522"):
        Tokenizer(small)


def test_vocab_checks(tmp_path: Path) -> None:
    lines = VOCAB_PATH.read_text(encoding="utf-8").split("\n")[:VOCAB_SIZE]
    dup = tmp_path / "dup.txt"
    dup.write_text("\n".join([*lines[:-1], lines[5]]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="appears twice"):
        Tokenizer(dup)
    swapped = list(lines)
    swapped[101], swapped[102] = swapped[102], swapped[101]
    bad = tmp_path / "swapped.txt"
    bad.write_text("\n".join(swapped) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"special token \[CLS\] has id 102, expected 101"):
        Tokenizer(bad)
    with pytest.raises(FileNotFoundError, match="BERT vocabulary not found"):
        Tokenizer(tmp_path / "missing.txt")
    # a valid copy elsewhere works (checksum is only enforced on the shipped file)
    good = tmp_path / "copy.txt"
    good.write_bytes(VOCAB_PATH.read_bytes())
    assert Tokenizer(good).vocab_size == VOCAB_SIZE
    with pytest.raises(ValueError, match="max_tokens must be an int >= 2"):
        Tokenizer(max_tokens=1)


def test_shipped_vocab_checksum_enforced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import remotesam.text as text

    lines = VOCAB_PATH.read_text(encoding="utf-8").split("\n")[:VOCAB_SIZE]
    lines[2000] = "tampered"
    fake = tmp_path / "bert-base-uncased-vocab.txt"
    fake.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setattr(text, "VOCAB_PATH", fake)
    with pytest.raises(ValueError, match=r"has sha256 .* expected 07eced37"):
        text.Tokenizer()


def test_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # Building the tokenizer must not touch the network: any socket use fails the test.
    import socket

    def no_net(*a, **k):
        raise AssertionError("Tokenizer tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_net)
    Tokenizer().encode("airplane in the image")


# issue 19 item 14
def test_lone_surrogates_are_dropped_as_the_official_bert_tokenizer_does(tok: Tokenizer) -> None:
    legacy = pytest.importorskip("transformers.models.bert.tokenization_bert_legacy",
                                 reason="the Python BertTokenizer of transformers")
    official = legacy.BertTokenizerLegacy(str(VOCAB_PATH))
    for text in ["\udc80 a red car", "a red\ud800car", "\udcff", "the ship \udfff at left"]:
        assert tok.token_ids(text) == tuple(official.encode(text)[:MAX_TOKENS]), repr(text)
    ids, mask = tok.encode(["\udc80 a red car", "a red car"])
    assert torch.equal(ids[0], ids[1]) and torch.equal(mask[0], mask[1])
