"""``remotesam-bench run --config run.yaml`` and ``remotesam-bench --version``, as a user runs
them: every run option can come from the file, flags override it, unknown keys and bad values are
clear errors, and the resolved options are saved with the run and read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from remotesam.bench.cli import build_parser, main
from remotesam.bench.cli.config_file import ConfigError, config_values, option_actions
from remotesam.bench.records.results import RunDocument

#: runs with --limit here evaluate a subset on purpose; the subset note is tested elsewhere
#: (tests/test_run_runner.py::test_limit_task_options_and_cache_key)
pytestmark = pytest.mark.filterwarnings("ignore:evaluated .* a subset:UserWarning")


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from remotesam.synth import generate

    root = tmp_path_factory.mktemp("config-bench") / "synth"
    generate(root, seed=0, n_images=3, image_size=128, n_train=1, n_val=0, landuse_per_class=1)
    return root


def _run_parser() -> object:
    parser = build_parser(addons=False)
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices["run"]  # type: ignore[attr-defined]


def _write(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_every_run_option_is_a_valid_key() -> None:
    parser = build_parser(addons=False)
    command = next(a for a in parser._actions if a.dest == "command")
    run_parser = command.choices["run"]  # type: ignore[index]
    flags = {s[2:].replace("-", "_") for a in run_parser._actions for s in a.option_strings
             if s.startswith("--") and s not in ("--help", "--config")}
    assert flags == set(option_actions(run_parser))


def test_config_file_runs_and_the_resolved_options_are_saved(
        synth_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results"
    cfg = _write(tmp_path / "run.yaml", {
        "tasks": ["cnt"], "data-root": str(synth_root), "results_dir": str(results),
        "limit": 2, "device": "cpu", "batch-size": 2, "no-progress": True, "no_report": True,
        "run-id": "fromfile", "task-opt": {"cnt": {}},
        "dataset-opt": [],
    })
    assert main(["run", "--config", str(cfg)]) == 0, capsys.readouterr().err
    doc = RunDocument.load(results / "runs" / "fromfile.json")
    (res,) = doc.results
    assert res.task == "cnt" and res.n_evaluated == 2
    opts = doc.provenance["config"]["options"]
    assert opts["config"] == str(cfg) and opts["limit"] == 2 and opts["batch-size"] == 2
    assert opts["tasks"] == ["cnt"] and opts["no-progress"] is True
    saved = results / "runs" / "fromfile.config.yaml"
    assert saved.is_file()
    back = yaml.safe_load(saved.read_text())
    assert back["limit"] == 2 and back["data-root"] == str(synth_root) and "config" not in back
    # the saved file is itself a config: the same run again, every prediction from the cache
    back["run-id"] = "again"
    _write(saved, back)
    assert main(["run", "--config", str(saved)]) == 0
    again = RunDocument.load(results / "runs" / "again.json")
    assert again.provenance["n_cached"] == 2 and again.provenance["n_predicted_now"] == 0
    assert again.results[0].metrics.keys() == res.metrics.keys()
    for name, m in res.metrics.items():
        assert json.dumps(again.results[0].metrics[name].value) == json.dumps(m.value)


def test_command_line_flags_override_the_file(synth_root: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    cfg = _write(tmp_path / "run.yml", {
        "tasks": "mcc", "data_root": str(synth_root), "results-dir": str(results), "limit": 1,
        "device": "cpu", "no-progress": True, "no-report": True, "run-id": "file"})
    # --tasks replaces the file's list; --limit and --run-id replace its values, even when the
    # flag's value equals the parser default (--batch-size 8 beats the file's 4)
    _write(cfg, {**yaml.safe_load(cfg.read_text()), "batch-size": 4})
    assert main(["run", "--config", str(cfg), "--tasks", "cnt", "--limit", "2",
                 "--run-id", "cli", "--batch-size", "8"]) == 0
    doc = RunDocument.load(results / "runs" / "cli.json")
    assert [r.task for r in doc.results] == ["cnt"] and doc.results[0].n_evaluated == 2
    assert doc.provenance["config"]["batch_size"] == 8
    assert not (results / "runs" / "file.json").exists()


@pytest.mark.parametrize(("content", "match"), [
    ({"taks": ["ref"]}, r"unknown key 'taks'\. Did you mean 'tasks'\? Valid keys: .*data-root"),
    ({"limit": 0}, r"run\.yaml: limit: expected a positive integer"),
    ({"limit": "ten"}, r"limit: expected a positive integer, got 'ten'"),
    ({"precision": "fp8"}, r"precision: 'fp8' is not one of fp32, bf16, fp16"),
    ({"no-progress": "yes please"}, r"no-progress: expected true or false"),
    ({"tasks": {"ref": 1}}, r"tasks: expected a list"),
    ({"device": ["cpu"]}, r"device: expected a single value"),
    ({"limit": 2, "limit_": 3}, r"unknown key 'limit_'"),
    ({"data-root": "/x", "data_root": "/y"}, r"given twice"),
    ("tasks: [ref\nlimit: 3\n", r"not valid YAML at line \d+"),
    ("- ref\n- det\n", r"the top level must be a mapping"),
])
def test_bad_config_files_are_clear_errors(tmp_path: Path, content: object, match: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _write(tmp_path / "run.yaml", content)
    code = main(["run", "--config", str(cfg), "--results-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    import re

    assert re.search(match, err), err
    assert str(cfg) in err or "run.yaml" in err


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: no such file" in capsys.readouterr().err


def test_mappings_for_key_value_options() -> None:
    actions = option_actions(_run_parser())  # type: ignore[arg-type]
    vals = config_values({"task-opt": {"det": {"score_thr": 0.3, "classes": ["a", "b"]}},
                          "dataset_root": {"det.dior": "/data/DIOR"},
                          "dataset-opt": {"vg.dior_rsvg": {"allow_partial": True}},
                          "ckpt": "a.pth", "tasks": "ref,det"}, actions, "f.yaml")
    assert vals["task_opt"] == ["det.score_thr=0.3", 'det.classes=["a", "b"]']
    assert vals["dataset_root"] == ["det.dior=/data/DIOR"]
    assert vals["dataset_opt"] == ["vg.dior_rsvg.allow_partial=true"]
    assert vals["ckpt"] == ["a.pth"] and vals["tasks"] == ["ref,det"]
    with pytest.raises(ConfigError, match=r"f\.yaml: unknown key"):
        config_values({"nope": 1}, actions, "f.yaml")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    import platform
    from importlib.metadata import version

    import remotesam

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"remotesam-bench {remotesam.__version__} (")
    assert f"torch {version('torch')}" in out and platform.python_version() in out
    assert "git " in out


# issue 19 item 22 (b, f): a config file with no option, or a key given twice, is refused
@pytest.mark.parametrize(("content", "match"), [
    ("", r"run\.yaml: the file holds no option"),
    ("# tasks: [ref]\n", r"the file holds no option"),
    ("{}\n", r"the file holds no option"),
    ("tasks: [cnt]\nlimit: 2\nlimit: 3\n", r"run\.yaml: key 'limit' is given twice "
                                           r"\(lines 2 and 3\); keep one"),
    ('{"limit": 2, "tasks": ["cnt"], "limit": 3}', r"key 'limit' is given twice"),
    ("tasks: [det]\ntask-opt:\n  det: {max_dets: 1}\n  det: {max_dets: 2}\n",
     r"key 'det' is given twice \(lines 3 and 4\)"),
])
def test_empty_config_or_duplicate_keys_are_refused_before_any_work(
        tmp_path: Path, content: str, match: str, capsys: pytest.CaptureFixture[str]) -> None:
    import re

    cfg = _write(tmp_path / "run.yaml", content)
    assert main(["run", "--config", str(cfg), "--results-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert re.search(match, err), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "r").exists()


# issue 19 item 22 (c): bad values fail before the embedded benchmark or the store is written
@pytest.mark.parametrize(("args", "match"), [
    (["--precision", "fp16", "--device", "cpu"], "fp16' needs a CUDA device"),
    (["--task-opt", "det.score_thr=0.3"], r"task 'det' rejected its options"),
    (["--task-opt", "cnt.max_dets=1"], r"--task-opt names task 'cnt', which is not in this run"),
    (["--task-opt", "garbage"], r"--task-opt 'garbage': expected KEY=VALUE"),
])
def test_bad_precision_and_task_options_fail_before_anything_is_written(
        tmp_path: Path, args: list[str], match: str, capsys: pytest.CaptureFixture[str]) -> None:
    import re

    results = tmp_path / "r"
    assert main(["run", "--tasks", "det", "--results-dir", str(results), "--no-progress",
                 *args]) == 2
    err = capsys.readouterr().err
    assert re.search(match, err), err
    assert "embedded procedural benchmark" not in err
    assert not results.exists()


# issue 19 item 22 (c), from Python
def test_evaluate_checks_options_before_writing_the_embedded_benchmark(tmp_path: Path) -> None:
    from remotesam.bench import evaluate
    from remotesam.bench.errors import InputError

    with pytest.raises(InputError, match="rejected its options"):
        evaluate(tasks="det", results_dir=tmp_path / "r", task_options={"det": {"nope": 1}})
    with pytest.raises(InputError, match="needs a CUDA device"):
        evaluate(tasks="det", results_dir=tmp_path / "r", precision="fp16", device="cpu")
    assert not (tmp_path / "r").exists()
