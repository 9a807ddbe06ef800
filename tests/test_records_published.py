"""The published numbers (``remotesam/data/published.json``) and their comparison rule.

A published number belongs beside one of our columns only on the same task, dataset, split,
metric and protocol; each record carries the split the paper actually evaluated.
"""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from remotesam.bench.records.published import OFFICIAL_PROTOCOL, load_published


def _builtin_tasks() -> dict[str, type]:
    return {ep.name: ep.load() for ep in entry_points(group="remotesam_bench.tasks")
            if ep.value.startswith("remotesam_plugins.")}


def test_isaid_segmentation_rows_are_on_val_and_sit_beside_a_default_run() -> None:
    table = load_published()
    seg = _builtin_tasks()["seg"]
    default = seg.datasets["isaid"].default_split
    recs = table.lookup("seg", "isaid", default, "mIoU")
    assert default == "val" and {r.model for r in recs} >= {"RemoteSAM", "RingMo", "SAMRS"}
    assert {r.value for r in recs if r.model == "RemoteSAM"} == {64.72}
    assert all("val" in r.note for r in recs)
    assert table.lookup("seg", "isaid", "test", "mIoU") == []


def test_dota_detection_rows_are_test_dev_with_an_unstated_protocol() -> None:
    table = load_published()
    det = _builtin_tasks()["det"]
    dota = [r for r in table.results if r.task == "det" and r.dataset == "dotav2"]
    assert (
        dota
        and {r.split for r in dota} == {"test-dev"}
        and {r.protocol for r in dota} == {"unstated"}
    )
    # never beside a local DOTA run (val labels; COCO-style AP on patches)
    for split in det.datasets["dotav2"].splits:
        assert table.lookup("det", "dotav2", split, "mAP50") == []
    assert table.lookup("det", "dotav2", "test-dev", "mAP50") == []  # official columns only
    got = table.lookup("det", "dotav2", "test-dev", "mAP50", ["RemoteSAM"], protocol="unstated")
    assert [r.value for r in got] == [20.17]
    # DIOR detection is the official DET.sh protocol on DIOR_test.json
    assert [r.value for r in table.lookup("det", "dior", "test", "mAP50", ["RemoteSAM"])] == [62.74]


def test_dota_multilabel_rows_sit_beside_a_default_run() -> None:
    table = load_published()
    mlc = _builtin_tasks()["mlc"]
    default = mlc.datasets["dotav2"].default_split
    recs = table.lookup("mlc", "dotav2", default, "accuracy", ["RemoteSAM"])
    assert [r.value for r in recs] == [95.0] and "inferred" in recs[0].note


def test_every_official_record_names_a_split_its_adapter_can_read() -> None:
    table = load_published()
    tasks = _builtin_tasks()
    problems = []
    for r in table.results:
        task = tasks.get(r.task)
        if task is None or r.protocol != OFFICIAL_PROTOCOL:
            continue
        adapter = task.datasets.get(table.canonical_dataset(r.dataset))
        if adapter is not None and r.split not in adapter.splits:
            problems.append(f"{r.model} {r.task}/{r.dataset}:{r.split} not in {adapter.splits}")
    assert not problems, problems


def test_qwen_vl_chat_is_one_model_whatever_the_table_prints() -> None:
    table = load_published()
    assert (
        table.canonical_model("Qwen-VL-chat")
        == table.canonical_model("qwen vl chat")
        == "Qwen-VL-Chat"
    )
    assert "Qwen-VL-chat" not in table.model_names()
    recs = table.lookup("det", "dior", "test", "mAP50", ["Qwen-VL-chat"])
    assert [r.value for r in recs] == [15.81] and "printed 'Qwen-VL-chat'" in recs[0].note
    assert [
        r.value for r in table.lookup("vg", "dior_rsvg", "test", "Acc@0.5", ["Qwen-VL-Chat"])
    ] == [44.76]
    assert table.canonical_model("GPT-5") is None


def test_protocol_field_is_validated(tmp_path: Path) -> None:
    rec = {"model": "X", "task": "ref", "dataset": "rrsisd", "split": "test", "metric": "mIoU",
           "value": 1.0, "unit": "%", "higher_is_better": True, "source": "T1"}
    p = tmp_path / "pub.json"
    p.write_text(json.dumps({"schema": "remotesam-bench/published/1", "results": [rec]}))
    assert load_published(p).results[0].protocol == OFFICIAL_PROTOCOL
    p.write_text(
        json.dumps({"schema": "remotesam-bench/published/1", "results": [{**rec, "protocol": 3}]})
    )
    with pytest.raises(ValueError, match=r"results\[0\]\.protocol is 3"):
        load_published(p)


def test_no_two_published_model_names_collapse_into_one() -> None:
    """Every published name (and alias) resolves to itself: ``CMPC+`` is not ``CMPC``."""
    table = load_published()
    names = table.model_names()
    assert "CMPC" in names and "CMPC+" in names
    for name in names:
        assert table.canonical_model(name) == name, name
        for variant in (name.lower(), name.upper(), name.replace("-", " ")):
            assert table.canonical_model(variant) == name, (variant, name)
    for model, info in table.models.items():
        for alias in (info.get("aliases") or []) if isinstance(info, dict) else []:
            assert table.canonical_model(alias) == model, alias
    # the RRSIS-D oIoU of CMPC+ is its own (Table 9: 70.13), not CMPC's 69.22
    recs = table.lookup("ref", "rrsisd", "test", "oIoU", ["CMPC+"])
    assert [r.value for r in recs] == [70.13]
    assert [r.value for r in table.lookup("ref", "rrsisd", "test", "oIoU", ["CMPC"])] == [69.22]


def test_a_published_file_whose_names_collide_is_refused(tmp_path: Path) -> None:
    doc = json.loads(
        (Path(__file__).parents[1] / "remotesam" / "data" / "published.json").read_text("utf-8")
    )
    doc["models"]["CMPC"]["aliases"] = ["cmpc+"]
    p = tmp_path / "pub.json"
    p.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ValueError, match=r"'cmpc\+'.*'CMPC'.*'CMPC\+'|'cmpc\+'.*'CMPC\+'.*'CMPC'"):
        load_published(p)
