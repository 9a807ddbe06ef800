"""``remotesam-bench new-task NAME [--out DIR]``: write a task-plugin package skeleton.

The skeleton is a complete, installable distribution that passes its own tests::

    remotesam-bench-NAME/
      pyproject.toml              entry point NAME = "rsb_NAME.task:<Name>Task"
      README.md
      rsb_NAME/__init__.py
      rsb_NAME/task.py            a DatasetAdapter (image pairs, LEVIR-CD layout) and a
                                  TaskPlugin (bitemporal change detection with RemoteSAM)
      tests/test_task.py          check_task_plugin with the shipped tiny checkpoint + metrics
      tests/data/NAME/test/{A,B,label}/000{1,2,3}.png   three tiny image pairs

It is the example that ``docs/PLUGINS.md`` builds step by step (the guide's code blocks are
tested to be exactly these templates). ``pip install -e remotesam-bench-NAME`` registers the
task: ``remotesam-bench list`` shows it and ``python -m pytest remotesam-bench-NAME/tests``
passes.

Python API: :func:`write_skeleton`.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from remotesam.bench.errors import InputError

__all__ = ["Skeleton", "render_template", "skeleton_names", "write_skeleton"]

#: A task name: what users type after ``--tasks`` (lower case, starts with a letter).
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,31}")  # matched whole (fullmatch)
#: Names ``--tasks`` gives a meaning of its own: a task cannot be called so.
RESERVED_NAMES = frozenset({"all"})

#: Template file -> path in the skeleton (``{package}`` / ``{name}`` filled in).
_FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "task.py.tmpl": "{package}/task.py",
    "test_task.py.tmpl": "tests/test_task.py",
}


@dataclass(frozen=True)
class Skeleton:
    """What :func:`write_skeleton` wrote.

    Attributes:
        root: the package folder.
        name: the task name (entry-point name).
        package: the import package (``rsb_<name>``).
        files: every file written, relative to ``root``, sorted.
    """

    root: Path
    name: str
    package: str
    files: tuple[Path, ...]


def skeleton_names(name: str) -> dict[str, str]:
    """Names derived from a task name: ``name``, ``Camel`` (class prefix), ``package``
    (``rsb_<name>``) and ``dist`` (``remotesam-bench-<name>`` with ``-`` for ``_``).

    Raises:
        InputError: ``name`` is not lower case letters, digits and ``_`` starting with a
            letter, or is reserved (:data:`RESERVED_NAMES`).
    """
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InputError(f"new-task: invalid task name {name!r}: use 1-32 lower-case letters, "
                         "digits or '_', starting with a letter (e.g. 'change')")
    if name in RESERVED_NAMES:
        raise InputError(f"new-task: the task name {name!r} is reserved (`--tasks {name}` "
                         "selects every task); choose another name (e.g. 'change')")
    return {"name": name, "Camel": "".join(p.capitalize() for p in name.split("_") if p),
            "package": f"rsb_{name}", "dist": f"remotesam-bench-{name.replace('_', '-')}"}


def render_template(template: str, name: str) -> str:
    """The text of a template (a file name under ``remotesam/bench/cli/templates``) for task
    ``name``: ``{{name}}``, ``{{Camel}}``, ``{{package}}`` and ``{{dist}}`` filled in."""
    text = resources.files("remotesam.bench.cli").joinpath("templates", template).read_text("utf-8")
    for key, value in skeleton_names(name).items():
        text = text.replace("{{" + key + "}}", value)
    return text


def _check_name_is_free(name: str) -> None:
    from remotesam.bench.api.registry import Registry

    registry = Registry()
    if name in registry:
        raise InputError(f"new-task: the task name {name!r} is already registered by "
                         f"{registry.source(name)}; choose another name")


def _tiny_pairs(folder: Path, n: int = 3, size: int = 64) -> list[Path]:
    """``n`` deterministic image pairs: grey "buildings" on a textured green ground; the second
    date adds one building; the label marks it."""
    from PIL import Image

    rng = np.random.default_rng(0)
    written: list[Path] = []
    for sub in ("A", "B", "label"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i in range(1, n + 1):
        ground = np.stack([rng.integers(40, 70, (size, size)), rng.integers(90, 130, (size, size)),
                           rng.integers(30, 60, (size, size))], -1).astype(np.uint8)
        first = ground.copy()
        y, x = rng.integers(4, size // 2 - 16, 2)
        first[y:y + 14, x:x + 18] = (170, 170, 175)
        second = first.copy()
        label = np.zeros((size, size), np.uint8)
        y2, x2 = rng.integers(size // 2, size - 18, 2)
        second[y2:y2 + 12, x2:x2 + 14] = (200, 195, 190)
        label[y2:y2 + 12, x2:x2 + 14] = 255
        for sub, arr in (("A", first), ("B", second), ("label", label)):
            path = folder / sub / f"{i:04d}.png"
            Image.fromarray(arr).save(path)
            written.append(path)
    return written


def write_skeleton(name: str, out: str | Path | None = None, *, check_name: bool = True,
                   ) -> Skeleton:
    """Write the package skeleton of a new task.

    Args:
        name: the task name (entry-point name, e.g. ``"change"``).
        out: the package folder to create (default ``./remotesam-bench-<name>``); it must not
            exist or be empty.
        check_name: refuse a name that an installed plugin already registers.

    Returns:
        :class:`Skeleton` with the files written.

    Raises:
        InputError: invalid or taken name, or ``out`` exists and is not an empty folder.
    """
    names = skeleton_names(name)
    if check_name:
        _check_name_is_free(name)
    root = Path(out) if out is not None else Path.cwd() / names["dist"]
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise InputError(f"new-task: {root} already exists and is not an empty folder; pass "
                         "--out with a new folder")
    written: list[Path] = []
    for template, target in _FILES.items():
        path = root / target.format(**names)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_template(template, name), encoding="utf-8")
        written.append(path)
    init = root / names["package"] / "__init__.py"
    init.write_text(f'"""The {name} task for remotesam-bench (see task.py)."""\n', encoding="utf-8")
    written.append(init)
    written += _tiny_pairs(root / "tests" / "data" / name / "test")
    return Skeleton(root=root, name=name, package=names["package"],
                    files=tuple(sorted(p.relative_to(root) for p in written)))


def _cmd_new_task(args: argparse.Namespace) -> int:
    sk = write_skeleton(args.name, args.out)
    print(f"wrote {len(sk.files)} files under {sk.root}:")
    for f in sk.files:
        if f.suffix != ".png":
            print(f"  {f}")
    print(f"  tests/data/{sk.name}/test/{{A,B,label}}/*.png (tiny image pairs)")
    print(f"next: pip install -e {sk.root} && remotesam-bench list && "
          f"python -m pytest {sk.root / 'tests'}")
    return 0


def add_subcommand(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``new-task`` on an ``argparse`` sub-parsers object; returns the new parser."""
    p = subparsers.add_parser(
        "new-task", help="write a task-plugin package skeleton (plugin, adapter, tiny data, test)",
        description="Write an installable task-plugin package: a TaskPlugin and DatasetAdapter "
        "(bitemporal change detection with RemoteSAM, to adapt), its entry point, three tiny "
        "image pairs and a test calling remotesam.testing.check_task_plugin. docs/PLUGINS.md "
        "explains every part.")
    p.add_argument("name", metavar="NAME", help="task name (lower case, e.g. change)")
    p.add_argument("--out", metavar="DIR",
                   help="package folder to create (default ./remotesam-bench-NAME)")
    p.set_defaults(func=_cmd_new_task)
    return p
