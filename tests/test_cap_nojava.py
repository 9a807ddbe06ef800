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


def _references(real_data: Path) -> dict[str, list[str]]:
    d = json.loads((real_data / "ucm_captions" / "dataset.json").read_text(encoding="utf-8"))
    return {str(i["imgid"]): [s["raw"] for s in i["sentences"]] for i in d["images"]}


def _leave_one_out(tokens: dict[str, list[str]]) -> dict[str, float]:
    """Each image's first reference as the candidate, scored against the other references."""
    gts = {k: v[1:] for k, v in tokens.items()}
    res = {k: v[:1] for k, v in tokens.items()}
    out = {k: v for k, v in pycocoevalcap_scores(gts, res, meteor=False).items()
           if isinstance(v, float) and k != "METEOR"}
    both = cider_variants(gts, res)
    out["CIDEr"], out["CIDEr_D"] = both["cider"][0], both["cider-d"][0]
    return out


def test_python_tokenizer_examples() -> None:
    got = python_ptb_tokenize({"a": ["Don't park (here) -- it's the U.S. harbour, ok?"],
                               "b": ["Some 4-lane roads ... and 1,000 cars."]})
    assert got == {"a": ["do n't park -lrb- here -rrb- it 's the u.s. harbour ok"],
                   "b": ["some 4-lane roads and 1,000 cars"]}


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
    s = [Sample("1", "1.tif", {"references": ["A road crosses the farmland .", "Some trees ."]}),
         Sample("2", "2.tif", {"references": ["Many buildings and a 4-lane road .", "Houses ."]})]
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
    for bad in ({"java": "false", "tokenizer": "ptb"}, {"java": "false", "meteor": "true"},
                {"java": "true"}, {"tokenizer": "nltk"}):
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
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=300, check=False)
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
        return Job("cap", plugin, "ucm_captions", "test", Path("."), list(samples),
                    len(samples), {}, "h")

    by_id = {s.sample_id: p for s, p in zip(samples, preds)}
    monkeypatch.setattr(cap, "java_available", lambda: False)
    result = score_job(job(CaptioningTask()), ckpt, by_id, {}, "missing")
    assert result.metrics["CIDEr"].official is False
    assert result.tables["notes"]["CIDEr"].startswith("deviation: computed on tokenizer=python")
    with_jar = score_job(job(CaptioningTask({"tokenizer": "python", "meteor": "false"})), ckpt,
                      by_id, {}, "missing")
    assert with_jar.metrics["CIDEr"].official is False
