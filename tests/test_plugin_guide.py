"""docs/PLUGINS.md: its code is the code that runs.

Blocks marked ``<!-- skeleton: TEMPLATE [part N] -->`` must be, joined in order, exactly what
``remotesam-bench new-task change`` writes from that template (the skeleton itself is tested in
test_cli_newtask.py, in a fresh venv too); blocks marked ``<!-- run -->`` are executed; the guide's
task module is imported and checked with ``check_task_plugin``."""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from remotesam.bench.cli.newtask import render_template
from remotesam.testing import check_task_plugin

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "PLUGINS.md"
BLOCK = re.compile(r"<!-- (skeleton: (?P<tmpl>[\w.]+)(?: part (?P<part>\d+))?|run) -->\n"
                   r"```(?P<lang>\w+)\n(?P<code>.*?)\n```", re.S)


def _blocks() -> tuple[dict[str, list[tuple[int, str]]], list[str]]:
    text = GUIDE.read_text(encoding="utf-8")
    skeleton: dict[str, list[tuple[int, str]]] = defaultdict(list)
    run: list[str] = []
    for m in BLOCK.finditer(text):
        if m.group("tmpl"):
            skeleton[m.group("tmpl")].append((int(m.group("part") or 1), m.group("code")))
        else:
            run.append(m.group("code"))
    return skeleton, run


def test_the_guide_is_linked_from_the_readme() -> None:
    readme = (GUIDE.parents[1] / "README.md").read_text(encoding="utf-8")
    assert "](docs/PLUGINS.md)" in readme, "a Markdown link, not just the path in a table"
    assert "### Task plugins" in readme  # a plugin section a third-party author can find


def test_guide_code_is_the_new_task_skeleton() -> None:
    skeleton, _ = _blocks()
    assert set(skeleton) == {"task.py.tmpl", "test_task.py.tmpl", "pyproject.toml.tmpl"}
    for tmpl, parts in skeleton.items():
        assert [p for p, _ in parts] == list(range(1, len(parts) + 1)), tmpl
        joined = "\n\n\n".join(code for _, code in parts)
        assert joined == render_template(tmpl, "change").rstrip("\n"), (
            f"docs/PLUGINS.md blocks of {tmpl} differ from the template; regenerate the guide's "
            "code from remotesam/bench/cli/templates")


def test_guide_snippets_run() -> None:
    _, run = _blocks()
    assert run
    for code in run:
        exec(compile(code, str(GUIDE), "exec"), {"__name__": "guide_snippet"})


class _BrightRoofs:
    def referring_seg(self, image: np.ndarray, sentence: str):
        from types import SimpleNamespace

        return SimpleNamespace(mask=(np.asarray(image)[..., 0] > 150).astype(np.uint8))


def test_guide_task_module_works(tmp_path: Path, monkeypatch) -> None:
    from remotesam.bench.cli.newtask import write_skeleton

    sk = write_skeleton("change", tmp_path / "pkg", check_name=False)
    skeleton, _ = _blocks()
    module = "\n\n\n".join(code for _, code in skeleton["task.py.tmpl"])
    (tmp_path / "guide_change.py").write_text(module, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("guide_change", None)
    import guide_change

    check_task_plugin(guide_change.ChangeTask, dataset_root=sk.root / "tests" / "data" / "change",
                      model=_BrightRoofs(), n_samples=3)
