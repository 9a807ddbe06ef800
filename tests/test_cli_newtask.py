"""``remotesam-bench new-task``: the package skeleton it writes, used as a user would.

Fast tests import the skeleton from its folder; the slow acceptance test installs it into a
fresh virtual environment (``--system-site-packages``, so torch is not reinstalled) and runs its
own test suite and ``remotesam-bench list`` / ``run`` there."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pytest

from remotesam.bench.api.registry import Registry
from remotesam.bench.cli import main
from remotesam.bench.cli.newtask import skeleton_names, write_skeleton
from remotesam.bench.run import RunConfig, run
from remotesam.testing import check_task_plugin


class BrightRoofModel:
    """A stand-in for RemoteSAM: the referred object is every pixel brighter than 150 in red
    (the skeleton's tiny data draws buildings in light grey on dark green ground)."""

    def referring_seg(self, image: np.ndarray, sentence: str):
        from types import SimpleNamespace

        return SimpleNamespace(mask=(np.asarray(image)[..., 0] > 150).astype(np.uint8))


def _factory(path, *, device, precision, batch_size):
    return BrightRoofModel()


def _import_skeleton(root: Path, package: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(root))
    for mod in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[mod]
    return importlib.import_module(f"{package}.task")


def test_names() -> None:
    assert skeleton_names("land_use") == {
        "name": "land_use",
        "Camel": "LandUse",
        "package": "rsb_land_use",
        "dist": "remotesam-bench-land-use",
    }


def test_cli_writes_the_skeleton_and_refuses_bad_input(tmp_path: Path, capsys) -> None:
    out = tmp_path / "pkg"
    assert main(["new-task", "change", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "rsb_change/task.py" in printed and f"pip install -e {out}" in printed
    for f in ("pyproject.toml", "README.md", "rsb_change/__init__.py", "rsb_change/task.py",
              "tests/test_task.py", "tests/data/change/test/A/0001.png",
              "tests/data/change/test/label/0003.png"):
        assert (out / f).is_file(), f
    pyproject = (out / "pyproject.toml").read_text()
    assert (
        '[project.entry-points."remotesam_bench.tasks"]\nchange = "rsb_change.task:ChangeTask"'
        in pyproject
    )
    assert main(["new-task", "change", "--out", str(out)]) == 2
    assert "already exists and is not an empty folder" in capsys.readouterr().err
    assert main(["new-task", "Change!", "--out", str(tmp_path / "x")]) == 2
    assert "invalid task name 'Change!'" in capsys.readouterr().err
    assert main(["new-task", "det", "--out", str(tmp_path / "y")]) == 2
    assert "'det' is already registered by" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


# issue 19 item 18
@pytest.mark.parametrize(("name", "why"), [("change\n", "invalid task name"),
                                           ("change\r\n", "invalid task name"),
                                           ("\nchange", "invalid task name"),
                                           ("all", "is reserved")])
def test_names_with_a_final_newline_or_reserved_are_refused(tmp_path: Path, capsys,
                                                            name: str, why: str) -> None:
    from remotesam.bench.errors import InputError

    with pytest.raises(InputError, match=why):
        skeleton_names(name)
    assert main(["new-task", name, "--out", str(tmp_path / "pkg")]) == 2
    err = capsys.readouterr().err
    assert why in err and err.count("\n") == 1
    assert not (tmp_path / "pkg").exists()
    assert main(["new-task", name]) == 2  # the default folder either
    assert not list(Path.cwd().glob("remotesam-bench-*\n*"))


def test_skeleton_plugin_conforms_and_runs_in_the_harness(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    sk = write_skeleton("change", tmp_path / "pkg")
    task = _import_skeleton(sk.root, sk.package, monkeypatch)
    data = sk.root / "tests" / "data" / "change"
    check_task_plugin(task.ChangeTask, dataset_root=data, model=BrightRoofModel(), n_samples=3)
    samples = task.PairsDataset(data).samples()
    assert [s.sample_id for s in samples] == ["0001", "0002", "0003"]
    assert set(samples[0].images) == {"t1", "t2"} and samples[0].image == samples[0].images["t2"]
    # the bright-roof model finds exactly the new building: 100 % change IoU
    scores = task.ChangeTask().score(samples, task.ChangeTask().predict(BrightRoofModel(), samples))
    assert scores.metrics == {"IoU": 100.0, "F1": 100.0}
    with pytest.raises(ValueError, match=r"change task: unknown option\(s\) \['k'\]"):
        task.ChangeTask({"k": 1})
    assert task.ChangeTask.metrics[0].official is False  # no official change-detection code

    ckpt = tmp_path / "weights.bin"
    ckpt.write_bytes(b"stand-in weights")
    registry = Registry(
        [EntryPoint("change", "rsb_change.task:ChangeTask", "remotesam_bench.tasks")]
    )
    cfg = RunConfig(tasks=["change"], checkpoints=[str(ckpt)], data_root=sk.root / "tests" / "data",
                    results_dir=tmp_path / "results", device="cpu", progress=False)
    out = run(cfg, registry=registry, model_factory=_factory)
    assert out.errors == []
    (res,) = out.document.results
    assert res.metrics["IoU"].value == pytest.approx(100.0)


@pytest.mark.slow
# issue 19 item 21: the venv gets its own build tools; nothing is taken from the machine's
def test_skeleton_installs_in_a_fresh_venv_and_passes_its_own_tests(tmp_path: Path) -> None:
    sk = write_skeleton("change", tmp_path / "remotesam-bench-change")
    venv = tmp_path / "venv"
    # --system-site-packages: torch & co. come from this environment. The venv's own pip and
    # setuptools (ensurepip's: setuptools 65.5 on Python 3.11, which has no bdist_wheel without
    # the `wheel` package) shadow the machine's; the build tools the skeleton declares
    # (setuptools>=68) and `wheel` are installed into the venv from the package index, so the
    # editable build below never depends on what the machine happens to have.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, timeout=300)
    py = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["HF_HUB_OFFLINE"] = "1"

    def call(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
        proc = subprocess.run([py, *args], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=timeout, check=False)
        assert proc.returncode == 0, f"{args}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc

    call("-m", "pip", "install", "-q", "--disable-pip-version-check", "--upgrade",
         "setuptools>=68", "wheel")
    tools = call("-c", "import setuptools, wheel, sys; print(setuptools.__version__, "
                       "setuptools.__file__.startswith(sys.prefix))").stdout.split()
    assert int(tools[0].split(".")[0]) >= 68 and tools[1] == "True", tools
    call("-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e", str(sk.root))
    listed = call("-m", "remotesam.bench", "list", "--json").stdout
    assert '"name": "change"' in listed.replace('":"', '": "')
    call("-m", "pytest", "-q", "-p", "no:cacheprovider", str(sk.root / "tests"), timeout=900)
    done = call("-m", "remotesam.bench", "run", "--tasks", "change", "--data-root",
                str(sk.root / "tests" / "data"), "--results-dir", str(tmp_path / "results"),
                "--device", "cpu")
    assert "change" in done.stdout
    # the skeleton is not visible outside its venv
    assert subprocess.run([sys.executable, "-c", "import rsb_change"], capture_output=True,
                          env=env, cwd=tmp_path, check=False).returncode != 0
