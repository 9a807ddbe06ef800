"""The ``cap`` task without Java: the pure-Python PTB tokenizer (its agreement with the Stanford
jar on the REAL UCM-captions references of ``data/real/ucm_captions``), scores flagged as a
deviation and METEOR reported as unavailable with the reason.

Comparisons with the jar need Java (marked ``java``, skipped without it); the no-Java behaviour
is tested everywhere (Java hidden from ``PATH`` or the ``java=false`` option)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from remotesam.bench.api import Sample
from remotesam_plugins.cap import CaptioningTask
from remotesam_plugins.metrics.captioning import (
    METEOR_UNAVAILABLE,
    cider_variants,
    java_available,
    ptb_tokenize,
    pycocoevalcap_scores,
    python_ptb_tokenize,
)

needs_java = pytest.mark.skipif(not java_available(), reason="no Java runtime (PTB tokenizer)")

#: Hard cases for a PTB imitation: clitics, quotes, brackets, abbreviations, numbers, ellipses.
HARD = [
    "It's a plane's wing and the dogs' house.", "Don't go; can't stop, won't stop!",
    "Cannot gonna wanna I'm you're we've they'll he'd",
    'A "quoted" word (in parens) [brackets] {braces}.', "Two - three -- four ... five..",
    "and/or 2.5 km 1,000 cars 10% & more", "e.g. etc. U.S. a.m. Mr. Smith vs. Dr. No.",
    "The colour of the harbour is grey.", "o'clock 'quoted' `tick`", "Hello?! What... yes.",
    "a 3x3 grid, 4-lane road, 90° turn", "There are many  spaces   here .",
    "semi:colon 12:30 5/6 #hash @at $5", "Trees,buildings and roads.Cars", "It is a tennis-court.",
    "...start", "end-", "-start", "x_y under_score", "naïve café résumé", "He said: 'yes'.",
    "black&white", "1980s", "didn't isn't aren't couldn't shouldn't wouldn't hasn't", "ma'am",
    "ain't", "three-quarters 1/2", "Is it OK?", "T.V. and A.B.C.", "No. 5", "etc.",
    "U.S.A. is big.", "Don't split (this) -- here's a \"quote\", ok?", "semi; colon: dash - end .",
]  # fmt: skip


#: Classes where the pure-Python tokenizer once differed from the jar (emoji, stand-alone
#: clitics, URLs, fractions, currency, curly quotes, Unicode dashes and symbols), with the
#: jar's output (pycocoevalcap's PTBTokenizer, stanford-corenlp-3.4.1, Java 17) recorded here
#: so that machines without Java test them too.
UNICODE_CLASSES = [
    ('A plane 😀 on the runway.', 'a plane on the runway'),
    ('Two ships 🚢🚢 in the harbour', 'two ships in the harbour'),
    ('emoji at end 👍', 'emoji at end'),
    ("The car 's roof is red.", "the car 's roof is red"),
    ("the building ' s roof", 'the building s roof'),
    ("the ship 's", "the ship 's"),
    ('visit http://example.com/a?b=c&d=e for details',
     'visit http://example.com/a?b=c&d=e for details'),
    ('see https://www.usgs.gov/ now.', 'see https://www.usgs.gov/ now'),
    ('www.example.com is a site', 'www.example.com is a site'),
    ('mail me at foo@bar.com please', 'mail me at foo@bar.com please'),
    ('½ of the field and ¼ of the road', '1/2 of the field and 1/4 of the road'),
    ('3 1/2 miles', '3\xa01/2 miles'),
    ('1/2 of the lake', '1/2 of the lake'),
    ('£5 and €10 and ¥20 and $5.50', '# 5 and $ 10 and ¥ 20 and $ 5.50'),
    ('it costs 5¢ or US$10', 'it costs 5 cents or us$ 10'),
    ('“curly quotes” and ‘single curly’ here', 'curly quotes and single curly here'),
    ('the harbour’s boats', "the harbour 's boats"),
    ('don’t stop', "do n't stop"),
    ('It’s a plane.', "it 's a plane"),
    ('“Hello,” she said.', 'hello she said'),
    ('a word—dash and en–dash', 'a word dash and en dash'),
    ('ellipsis… here', 'ellipsis here'),
    ('ﬁne ligature', 'ﬁne ligature'),
    ('word--dash and a--b', 'word dash and a b'),
    ('3 ½ miles and 2 1/4 km', '3 1/2 miles and 2\xa01/4 km'),
    ('½', '1/2'),
    ('1/2', '1/2'),
    ('the 1/2 way', 'the 1/2 way'),
    ('x 3/4 y', 'x 3/4 y'),
    ('¾ ⅓ ⅔ ⅛ ⅜', '3/4 1/3 2/3 ⅛ ⅜'),
    ('¢5 and 5 ¢ and ¢', 'cents 5 and 5 cents and cents'),
    ('£ 5 and £', '# 5 and #'),
    ('€ and ¥ and ₹5 and ₩3 and ฿3', '$ and ¥ and 5 and 3 and ฿ 3'),
    ('$ 5', '$ 5'),
    ('US$ 10 A$5 C$5 HK$5 S$5', 'us$ 10 a$ 5 c$ 5 hk$ 5 s$ 5'),
    ('© 2020 ™ ® → ★ • § ± × µ ° ∞ ≈ ≠ ≤', '© 2020 ™ ® → ★ • § ± × µ ° ∞ ≈ ≠ ≤'),
    ('中文 字 and العربية and русский', '中文 字 and العربية and русский'),
    ('see http://x.com.', 'see http://x.com'),
    ('see http://x.com/path, then', 'see http://x.com/path then'),
    ("the car 'S roof", "the car 's roof"),
    ("you 're right and we 'll see and he 'd go and I 'm here and they 've",
     "you 're right and we 'll see and he 'd go and i 'm here and they 've"),
    ("is n't it", "is n't it"),
    ("do n't", "do n't"),
    ("' s", 's'),
    ("'s", "'s"),
    ("the dog's", "the dog 's"),
    ('🏠house', 'house'),
    ('house🏠', 'house'),
    ('a🙂b', 'a b'),
    ('—', ''),
    ('–', ''),
    ('…', ''),
    ('“', ''),
    ('the ‘ word ’', 'the word'),
    ('There are 2 ½ planes near the “big” hangar 😀.',
     'there are 2 1/2 planes near the big hangar'),
    ('It’s the harbour’s best view — really…', "it 's the harbour 's best view really"),
    ("The plane ’s wing, the car 's door and 'S", "the plane 's wing the car 's door and 's"),
    ('Visit https://example.org/x_y?q=1&r=2, or http://a.b/c.',
     'visit https://example.org/x_y?q=1&r=2 or http://a.b/c'),
    ('Costs £3.50, €2, ¥100 and 20¢ today!', 'costs # 3.50 $ 2 ¥ 100 and 20 cents today'),
    ('3 1/2 and 10 3/4 and 2 1/2km', '3\xa01/2 and 10\xa03/4 and 2\xa01/2 km'),
    ("I 'm sure you 're right 'til then", "i 'm sure you 're right 'til then"),
    ("the dog's 's", "the dog 's 's"),
    ("'sup", 'sup'),
    ('He said ‘hi’ and “bye”.', 'he said hi and bye'),
    ('a—b–c', 'a b c'),
    ('A ✈ plane✈ and ⛵boats', 'a ✈ plane ✈ and ⛵ boats'),
    ('temperatures of 30°C and 5²', 'temperatures of 30 ° c and 5 ²'),
    ('a • list § 3', 'a • list § 3'),
    ('(https://x.org)', '-lrb- https://x.org -rrb-'),
    ('"https://x.org"', 'https://x.org'),
    ('don’t can’t won’t isn’t', "do n't ca n't wo n't is n't"),
    ('1–2 and 1—2', '1 2 and 1 2'),
    ("'til then", "'til then"),
    ("'em all", "'em all"),
    ("'cause why", "'cause why"),
    ("'tis fine", "'t is fine"),
    ("'twas here", "'t was here"),
    ("'n' roll", "'n' roll"),
    ("'round here", 'round here'),
    ("'bout time", 'bout time'),
    ("'kay", 'kay'),
    ("'ello", 'ello'),
    ('1/2km here', '1/2km here'),
    ('a 1/2km', 'a 1/2km'),
    ('3 1/2.', '3\xa01/2'),
    ('3 1/2, 4', '3\xa01/2 4'),
    ('3 1/2-inch', '3\xa01/2 inch'),
    ('3 ½km', '3 1/2 km'),
    ("'90s music", "'90s music"),
    ("the 'S' shape", "the 's shape"),
    ('a₠b 5₠ ₠5 ₠', 'a $ b 5 $ $ 5 $'),
    ('a₡b 5₡ ₡5 ₡', 'a b 5 5'),
    ('a₤b 5₤ ₤5 ₤', 'a ₤ b 5 ₤ ₤ 5 ₤'),
    ('a₩b 5₩ ₩5 ₩', 'a b 5 5'),
    ('a€b 5€ €5 €', 'a $ b 5 $ $ 5 $'),
    ('a₹b 5₹ ₹5 ₹', 'a b 5 5'),
    ('a☀b 5☀ ☀5 ☀', 'a ☀ b 5 ☀ ☀ 5 ☀'),
    ('a✈b 5✈ ✈5 ✈', 'a ✈ b 5 ✈ ✈ 5 ✈'),
    ('a❤️b 5❤️ ❤️5 ❤️', 'a ❤ b 5 ❤ ❤ 5 ❤'),
    ('a👨\u200d👩b 5👨\u200d👩 👨\u200d👩5 👨\u200d👩', 'a b 5 5'),
    ('a🇺🇸b 5🇺🇸 🇺🇸5 🇺🇸', 'a b 5 5'),
    ('a🏽b 5🏽 🏽5 🏽', 'a b 5 5'),
    ('a®b 5® ®5 ®', 'a ® b 5 ® ® 5 ®'),
    ('a★b 5★ ★5 ★', 'a ★ b 5 ★ ★ 5 ★'),
    ('a×b 5× ×5 ×', 'a × b 5 × × 5 ×'),
    ('a≈b 5≈ ≈5 ≈', 'a ≈ b 5 ≈ ≈ 5 ≈'),
    ('a¦b 5¦ ¦5 ¦', 'a ¦ b 5 ¦ ¦ 5 ¦'),
    ('a¯b 5¯ ¯5 ¯', 'a ¯ b 5 ¯ ¯ 5 ¯'),
    ('a¼b 5¼ ¼5 ¼', 'a 1/4 b 5 1/4 1/4 5 1/4'),
]  # fmt: skip


def _references(real_data: Path) -> dict[str, list[str]]:
    d = json.loads((real_data / "ucm_captions" / "dataset.json").read_text(encoding="utf-8"))
    return {str(i["imgid"]): [s["raw"] for s in i["sentences"]] for i in d["images"]}


def _leave_one_out(tokens: dict[str, list[str]]) -> dict[str, float]:
    """Each image's first reference as the candidate, scored against the other references."""
    gts = {k: v[1:] for k, v in tokens.items()}
    res = {k: v[:1] for k, v in tokens.items()}
    out = {
        k: v
        for k, v in pycocoevalcap_scores(gts, res, meteor=False).items()
        if isinstance(v, float) and k != "METEOR"
    }
    both = cider_variants(gts, res)
    out["CIDEr"], out["CIDEr_D"] = both["cider"][0], both["cider-d"][0]
    return out


def test_python_tokenizer_examples() -> None:
    got = python_ptb_tokenize(
        {
            "a": ["Don't park (here) -- it's the U.S. harbour, ok?"],
            "b": ["Some 4-lane roads ... and 1,000 cars."],
        }
    )
    assert got == {
        "a": ["do n't park -lrb- here -rrb- it 's the u.s. harbour ok"],
        "b": ["some 4-lane roads and 1,000 cars"],
    }


@pytest.mark.java
@pytest.mark.realdata
@needs_java
def test_agreement_with_the_ptb_jar_on_real_references(real_data: Path) -> None:
    refs = _references(real_data)
    jar, ours = ptb_tokenize(refs), python_ptb_tokenize(refs)
    pairs = [(a, b) for k in refs for a, b in zip(jar[k], ours[k])]
    exact = sum(a == b for a, b in pairs)
    assert len(pairs) == 155 and exact == 155, [p for p in pairs if p[0] != p[1]][:5]
    m_jar, m_ours = _leave_one_out(jar), _leave_one_out(ours)
    assert set(m_jar) == {"BLEU_1", "BLEU_2", "BLEU_3", "BLEU_4", "ROUGE_L", "CIDEr", "CIDEr_D"}
    for name, value in m_jar.items():
        assert m_ours[name] == value, name  # identical tokens: identical numbers
    hard = {str(i): [t] for i, t in enumerate(HARD)}
    assert python_ptb_tokenize(hard) == ptb_tokenize(hard)


def _samples() -> tuple[list[Sample], list[dict]]:
    s = [
        Sample("1", "1.tif", {"references": ["A road crosses the farmland .", "Some trees ."]}),
        Sample("2", "2.tif", {"references": ["Many buildings and a 4-lane road .", "Houses ."]}),
    ]
    return s, [{"caption": "A road crosses farmland."}, {"caption": "There are many buildings."}]


def _check_no_java_scores(sc) -> None:
    for name in ("CIDEr", "CIDEr_D", "BLEU_1", "BLEU_4", "ROUGE_L"):
        assert math.isfinite(sc.metrics[name])
        assert sc.tables["notes"][name].startswith("deviation: computed on tokenizer=python")
    assert sc.metrics["BLEU_1"] > 0 and sc.metrics["CIDEr"] > 0
    assert math.isnan(sc.metrics["METEOR"])
    assert sc.tables["notes"]["METEOR"] == METEOR_UNAVAILABLE
    assert sc.tables["notes"]["METEOR"].startswith("unavailable: needs Java")
    assert sc.tables["tokenizer"] == "python"
    assert (
        "deviation" in sc.tables["notes"]["tokenizer"]
        and "155/155" in sc.tables["notes"]["tokenizer"]
    )


def test_option_java_false_scores_without_java() -> None:
    samples, preds = _samples()
    _check_no_java_scores(CaptioningTask({"java": "false"}).score(samples, preds))
    same = CaptioningTask({"tokenizer": "python", "meteor": "false"}).score(samples, preds)
    assert (
        same.metrics["CIDEr"]
        == CaptioningTask({"java": "false"}).score(samples, preds).metrics["CIDEr"]
    )
    assert same.tables["notes"]["METEOR"] == "not computed (meteor=false)"
    for bad in (
        {"java": "false", "tokenizer": "ptb"},
        {"java": "false", "meteor": "true"},
        {"java": "true"},
        {"tokenizer": "nltk"},
    ):
        with pytest.raises(ValueError, match="cap task"):
            CaptioningTask(bad)


def test_no_java_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    import remotesam_plugins.cap as cap

    monkeypatch.setattr(cap, "java_available", lambda: False)
    samples, preds = _samples()
    _check_no_java_scores(CaptioningTask().score(samples, preds))
    with pytest.raises(
        RuntimeError, match=r"tokenizer=ptb needs Java.*install a Java runtime >= 8"
    ):
        CaptioningTask({"tokenizer": "ptb"}).score(samples, preds)
    with pytest.raises(RuntimeError, match="meteor=true needs Java"):
        CaptioningTask({"tokenizer": "python", "meteor": "true"}).score(samples, preds)


def test_no_java_in_a_process_whose_path_lacks_it(tmp_path: Path) -> None:
    """``shutil.which('java')`` is None in a process whose PATH holds only Python."""
    code = (
        "import json, math, shutil\n"
        "from remotesam_plugins.cap import CaptioningTask\n"
        "from remotesam.bench.api import Sample\n"
        "assert shutil.which('java') is None\n"
        "s = [Sample('1', '1.tif', {'references': ['A road .', 'Trees .']})]\n"
        "sc = CaptioningTask().score(s, [{'caption': 'A road.'}])\n"
        "print(json.dumps({'tok': sc.tables['tokenizer'], 'meteor_nan': "
        "math.isnan(sc.metrics['METEOR']),"
        " 'bleu': sc.metrics['BLEU_1']}))\n"
    )
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["tok"] == "python" and out["meteor_nan"] is True and out["bleu"] > 0


def test_a_run_without_java_records_cider_as_not_official(monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness records a metric scored with a deviation as not official, whatever its
    MetricSpec says, and keeps the reason in the notes."""
    import remotesam_plugins.cap as cap
    from remotesam.bench.records.results import CheckpointRef
    from remotesam.bench.run.jobs import Job
    from remotesam.bench.run.scoring import score_job

    samples, preds = _samples()
    ckpt = CheckpointRef("ckpt", "ckpt", "0" * 64)

    def job(plugin: CaptioningTask) -> Job:
        return Job(
            "cap", plugin, "ucm_captions", "test", Path("."), list(samples), len(samples), {}, "h"
        )

    by_id = {s.sample_id: p for s, p in zip(samples, preds)}
    monkeypatch.setattr(cap, "java_available", lambda: False)
    result = score_job(job(CaptioningTask()), ckpt, by_id, {}, "missing")
    assert result.metrics["CIDEr"].official is False
    assert result.tables["notes"]["CIDEr"].startswith("deviation: computed on tokenizer=python")
    with_jar = score_job(
        job(CaptioningTask({"tokenizer": "python", "meteor": "false"})), ckpt, by_id, {}, "missing"
    )
    assert with_jar.metrics["CIDEr"].official is False


def test_python_tokenizer_matches_recorded_jar_output_on_unicode_classes() -> None:
    """Jar-free: the outputs recorded from the PTB jar (see :data:`UNICODE_CLASSES`)."""
    got = python_ptb_tokenize({i: [text] for i, (text, _) in enumerate(UNICODE_CLASSES)})
    bad = [
        (text, want, got[i][0])
        for i, (text, want) in enumerate(UNICODE_CLASSES)
        if got[i][0] != want
    ]
    assert not bad, bad[:5]


@pytest.mark.java
@needs_java
def test_python_tokenizer_matches_the_jar_on_unicode_classes() -> None:
    """The same strings through the jar itself (pycocoevalcap's PTBTokenizer, called directly):
    the recorded outputs are still the jar's, and the Python tokenizer agrees on every one."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    texts = {i: [{"caption": t}] for i, (t, _) in enumerate(UNICODE_CLASSES)}
    jar = PTBTokenizer().tokenize(texts)
    assert [jar[i][0] for i in range(len(UNICODE_CLASSES))] == [w for _, w in UNICODE_CLASSES]
    ours = python_ptb_tokenize({i: [t] for i, (t, _) in enumerate(UNICODE_CLASSES)})
    assert ours == {i: v for i, v in jar.items()}
