"""Write ``tasks.md``: every installed task plugin with its metrics, datasets and options.

Run by ``mkdocs build`` (the ``gen-files`` plugin of ``mkdocs.yml``); ``python docs/gen_tasks.py``
prints the page instead. The page is made from the plugins registered in the environment that
builds the docs (the entry points of ``remotesam_bench.tasks``, through
:class:`remotesam.bench.api.registry.Registry`), so a third-party plugin installed there appears
the same way as the built-in ones, and a plugin that fails to load is listed with its error.

Option names are the ones a plugin *enforces*: the task is built, and each dataset adapter
constructed on a folder that does not exist, with one option no plugin accepts; the
:func:`remotesam.bench.kit.check_options` message then names the accepted options (or says there
are none). A plugin that checks its options another way (or later) is shown as "not declared";
its docstrings, printed in full, say what it takes.
"""

from __future__ import annotations

import ast
import html
import inspect
import re
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from remotesam.bench.api import DatasetAdapter, DatasetInfo, TaskPlugin
from remotesam.bench.api.registry import ENTRY_POINT_GROUP, PluginInfo, Registry

PAGE = "tasks.md"

#: An option name no plugin accepts: the plugin's own check then lists the ones it accepts.
_PROBE = "__remotesam_docs_probe__"
_OPTIONS_MESSAGE = re.compile(
    r"unknown option\(s\) \[[^\]]*\]; (?:available: (\[[^\]]*\])|this \w+ has no options)")
_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj):`~?\.?([^`]+)`")
_CODE_SPAN = re.compile(r"(``?)(.+?)\1")


def _probe_options(build: Callable[[dict[str, Any]], object]) -> list[str] | None:
    """The option names ``build`` accepts, read from its unknown-option error; None if unknown."""
    try:
        build({_PROBE: "x"})
    except Exception as e:  # a plugin's own error type: only its message is read
        m = _OPTIONS_MESSAGE.search(str(e))
        if m and _PROBE in str(e):
            return sorted(ast.literal_eval(m.group(1))) if m.group(1) else []
    return None


def _markdown_text(doc: str) -> str:
    """A docstring as Markdown: Sphinx roles become code spans, ``<`` ``>`` ``&`` outside code
    spans are escaped (``<root>`` is a placeholder, not an HTML tag)."""
    doc = _ROLE.sub(lambda m: f"``{m.group(1)}``", doc)
    out: list[str] = []
    for line in doc.splitlines():
        parts: list[str] = []
        pos = 0
        for m in _CODE_SPAN.finditer(line):
            parts.append(html.escape(line[pos:m.start()], quote=False))
            parts.append(m.group(0))
            pos = m.end()
        parts.append(html.escape(line[pos:], quote=False))
        out.append("".join(parts))
    return "\n".join(out)


def _docstring(obj: object) -> str:
    """The object's own docstring, cleaned (never the one inherited from the contract)."""
    doc = obj.__dict__.get("__doc__") if isinstance(obj, type) else getattr(obj, "__doc__", None)
    return inspect.cleandoc(doc) if doc else ""


def _cell(value: object) -> str:
    """A table cell: pipes escaped, line breaks as spaces."""
    return html.escape(str(value), quote=False).replace("|", "\\|").replace("\n", " ")


def _fence(text: str) -> list[str]:
    return ["```text", text.rstrip("\n"), "```", ""]


def _options_line(kind: str, names: list[str] | None) -> str:
    if names is None:
        return f"* {kind} options: not declared through `check_options` (see the docstrings)"
    if not names:
        return f"* {kind} options: none"
    return f"* {kind} options: " + ", ".join(f"`{n}`" for n in names)


def _metrics_table(task: type[TaskPlugin]) -> list[str]:
    lines = ["| metric | unit | higher is better | primary | official | description |",
             "|---|---|---|---|---|---|"]
    for m in task.metrics:
        higher = "yes" if m.higher_is_better else "no"
        lines.append(f"| `{m.name}` | {_cell(m.unit or '-')} | {higher}"
                     f" | {'yes' if m.primary else ''} | {'yes' if m.official else 'no'}"
                     f" | {_cell(m.description)} |")
    return [*lines, ""]


def _info_lines(info: DatasetInfo) -> list[str]:
    size = "unknown" if info.size is None else f"{info.size:,}"
    lines = [f"* title: {_cell(info.title)}",
             f"* source: {_cell(info.source)}",
             f"* licence: {_cell(info.licence)}",
             f"* official split: `{info.split}`, {size} samples"]
    if info.layout:
        lines.append("* required paths: " + ", ".join(f"`{p}`" for p in info.layout))
    if info.checksums:
        lines.append(f"* pinned files (sha256): {len(info.checksums)}")
    if info.counts:
        lines.append("* file counts: " + ", ".join(f"`{p}`: {n:,}"
                                                   for p, n in sorted(info.counts.items())))
    lines.append("")
    if info.how_to_get:
        lines += ["How to get it:", "", *_fence(info.how_to_get)]
    return lines


def _dataset_section(task: type[TaskPlugin], key: str, adapter: type[DatasetAdapter],
                     missing_root: Path) -> list[str]:
    info = getattr(adapter, "info", None)
    title = info.title if isinstance(info, DatasetInfo) else ""
    default = " (default)" if key == task.default_dataset else ""
    lines = [f"#### `{task.name}.{key}`{': ' + _cell(title) if title else ''}{default}", ""]
    splits = ", ".join(f"`{s}`" for s in adapter.splits)
    lines += [f"* adapter: `{adapter.__module__}.{adapter.__qualname__}`",
              f"* splits: {splits} (default `{adapter.default_split}`)",
              f"* folder under `--data-root`: `{adapter.default_subdir or '.'}`",
              f"* classes: {len(adapter.classes)}"
              + (" (" + ", ".join(adapter.classes) + ")" if 0 < len(adapter.classes) <= 30 else ""),
              _options_line("dataset",
                            _probe_options(lambda o: adapter(missing_root, None, **o))),
              ""]
    if isinstance(info, DatasetInfo):
        lines += _info_lines(info)
    if adapter.layout:
        lines += ["Layout:", "", *_fence(adapter.layout)]
    doc = _docstring(adapter)
    if doc:
        lines += [_markdown_text(doc), ""]
    return lines


def _task_section(p: PluginInfo, missing_root: Path) -> list[str]:
    lines = [f"## `{p.name}`", ""]
    task = p.plugin
    if not p.ok or task is None:
        return [*lines, f"This plugin does not load ({_cell(p.source)}):", "", *_fence(p.error)]
    lines += [_cell(task.description) if task.description else "", "",
              f"* plugin: `{p.target}` ({_cell(p.source)})",
              f"* version: {task.version}",
              f"* default dataset: `{task.default_dataset}`",
              f"* prediction: {'requests / reduce' if task.uses_requests() else 'predict'}",
              _options_line("task", _probe_options(task)),
              "", "### Metrics", "", *_metrics_table(task), "### Datasets", ""]
    for key, adapter in task.datasets.items():
        lines += _dataset_section(task, key, adapter, missing_root)
    doc = _docstring(task)
    module_doc = _docstring(sys.modules.get(task.__module__))
    if doc or module_doc:
        lines += ["### Protocol and options", ""]
        if doc:
            lines += [_markdown_text(doc), ""]
        if module_doc:
            lines += [f"From `{task.__module__}`:", "", _markdown_text(module_doc), ""]
    return lines


def tasks_page(registry: Registry | None = None) -> str:
    """The Markdown of ``tasks.md`` for the plugins of ``registry`` (installed ones by default)."""
    registry = registry if registry is not None else Registry()
    plugins = registry.info()
    lines = ["# Tasks, datasets and metrics", "",
             "Generated when the documentation is built, from the task plugins installed in that "
             f"environment (entry-point group `{ENTRY_POINT_GROUP}`): a third-party plugin "
             "installed beside `remotesam-bench` is listed here too. Options are given on the "
             "command line as `--task-opt TASK.NAME=VALUE` and "
             "`--dataset-opt TASK.DATASET.NAME=VALUE`.", "",
             "| task | version | description | primary metric | datasets |",
             "|---|---|---|---|---|"]
    for p in plugins:
        if p.ok and p.plugin is not None:
            t = p.plugin
            datasets = ", ".join(f"`{k}`" for k in t.datasets)
            lines.append(f"| [`{p.name}`](#{p.name}) | {t.version} | {_cell(t.description)} "
                         f"| `{t.primary_metric().name}` | {datasets} |")
        else:
            lines.append(f"| [`{p.name}`](#{p.name}) | | does not load | | |")
    lines.append("")
    with tempfile.TemporaryDirectory() as tmp:
        missing_root = Path(tmp) / "absent"
        for p in plugins:
            lines += _task_section(p, missing_root)
    return "\n".join(lines).rstrip("\n") + "\n"


def _write(files: Mapping[str, str]) -> None:
    import mkdocs_gen_files

    for name, text in files.items():
        with mkdocs_gen_files.open(name, "w") as f:
            f.write(text)


if __name__ == "__main__":
    print(tasks_page(), end="")
elif __name__ == "<run_path>":  # runpy.run_path: how mkdocs-gen-files runs its scripts
    _write({PAGE: tasks_page()})
