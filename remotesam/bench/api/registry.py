"""Task-plugin registry: entry points of the group ``remotesam_bench.tasks``.

Built-in plugins are registered in our own ``pyproject.toml`` exactly as a third party registers
theirs::

    [project.entry-points."remotesam_bench.tasks"]
    mytask = "my_package.tasks:MyTask"

The registry holds *unloaded* entry points. A plugin's module is imported only when that task
is asked for (:meth:`Registry.get`), and validated against the contract in
:mod:`remotesam.bench.api` when it loads. Problems are reported per plugin, naming the entry
point and the distribution, so one broken plugin never takes the others down.
"""

from __future__ import annotations

import difflib
import importlib.metadata as importlib_metadata
from collections.abc import Iterable
from dataclasses import dataclass

from remotesam.bench.api.contract import check_settings, validate_plugin_class
from remotesam.bench.api.task import TaskPlugin
from remotesam.bench.errors import PluginError, UnknownTaskError

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginInfo",
    "Registry",
    "check_settings",
    "validate_plugin_class",
]

ENTRY_POINT_GROUP = "remotesam_bench.tasks"


@dataclass(frozen=True)
class PluginInfo:
    """What ``remotesam-bench list`` shows for one registered name.

    Attributes:
        name: the entry-point name (the task key on the command line).
        target: ``"module:attribute"`` the entry point points at.
        source: ``"entry point 'x' (module:attr) of distribution 'dist 1.0'"``.
        ok: True when the plugin loaded and passed validation.
        error: why it is broken (empty when ``ok``).
        plugin: the loaded class when ``ok``, else None.
    """

    name: str
    target: str
    source: str
    ok: bool
    error: str = ""
    plugin: type[TaskPlugin] | None = None


def _describe(ep: importlib_metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    if dist is not None:
        try:
            dist_name = f"{dist.metadata['Name']} {dist.version}"
        except Exception:  # malformed metadata must not hide the entry point itself
            dist_name = getattr(dist, "name", None) or "<unknown>"
    else:
        dist_name = "<unknown distribution>"
    return f"entry point {ep.name!r} ({ep.value}) of distribution {dist_name!r}"


class Registry:
    """Registered task plugins, loaded lazily.

    Args:
        entry_points: the entry points to use; by default every entry point of the group
            ``remotesam_bench.tasks`` in the current environment. Tests pass their own.

    Duplicate names (two entry points with one name from different sources) are kept out of
    :meth:`get`: asking for such a name raises :class:`PluginError` naming both sources.
    """

    def __init__(self, entry_points: Iterable[importlib_metadata.EntryPoint] | None = None) -> None:
        if entry_points is None:
            entry_points = importlib_metadata.entry_points(group=ENTRY_POINT_GROUP)
        self._eps: dict[str, list[importlib_metadata.EntryPoint]] = {}
        for ep in entry_points:
            same = self._eps.setdefault(ep.name, [])
            # The same distribution found twice on sys.path registers an identical entry point.
            if not any(o.value == ep.value and _describe(o) == _describe(ep) for o in same):
                same.append(ep)
        self._loaded: dict[str, type[TaskPlugin]] = {}
        self._errors: dict[str, str] = {}

    def names(self) -> list[str]:
        """Every registered name, sorted, without importing anything."""
        return sorted(self._eps)

    def __contains__(self, name: object) -> bool:
        return name in self._eps

    def source(self, name: str) -> str:
        """Where ``name`` comes from (entry point and distribution), for messages."""
        return "; ".join(_describe(ep) for ep in self._eps[name])

    def _unknown(self, name: str) -> UnknownTaskError:
        names = self.names()
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listing = ", ".join(names) if names else "(none: is remotesam-bench installed?)"
        return UnknownTaskError(f"unknown task {name!r}.{hint} Available tasks: {listing}. "
                                "Run `remotesam-bench list` for details.")

    def get(self, name: str) -> type[TaskPlugin]:
        """Import, validate and return the plugin class registered as ``name``.

        Raises:
            UnknownTaskError: ``name`` is not registered (with "did you mean").
            PluginError: duplicate name, import failure or contract violation; the message
                names the entry point(s) and distribution(s).
        """
        if name in self._loaded:
            return self._loaded[name]
        if name in self._errors:
            raise PluginError(self._errors[name])
        eps = self._eps.get(name)
        if not eps:
            raise self._unknown(name)
        if len(eps) > 1:
            sources = " and ".join(_describe(ep) for ep in eps)
            msg = (f"task name {name!r} is registered twice: {sources}; uninstall one of the "
                   "distributions or rename its entry point")
            self._errors[name] = msg
            raise PluginError(msg)
        ep = eps[0]
        try:
            obj = ep.load()
        except Exception as e:
            msg = f"{_describe(ep)} failed to import: {type(e).__name__}: {e}"
            self._errors[name] = msg
            raise PluginError(msg) from e
        problems = validate_plugin_class(obj, name)
        if problems:
            msg = f"{_describe(ep)} is not a valid task plugin: " + "; ".join(problems)
            self._errors[name] = msg
            raise PluginError(msg)
        self._loaded[name] = obj
        return obj

    def titles(self, task: str, dataset: str) -> tuple[str, str]:
        """``(task title, dataset title)``: the display names the installed plugin ``task``
        gives itself and its dataset ``dataset``; the keys when the plugin is not installed or
        does not load (never raises)."""
        try:
            plugin = self.get(task)
        except Exception:  # not installed or broken: shown by its keys
            return task, dataset
        return plugin.display_title(), plugin.dataset_title(dataset)

    def resolve(self, spec: str | Iterable[str]) -> list[str]:
        """Expand a task list (``"det,vg"``, ``["det", "vg"]`` or ``"all"``) to known names.

        ``"all"`` means every registered name. Order is kept, duplicates dropped; only names
        are checked here (nothing is imported).

        Raises:
            UnknownTaskError: a name is not registered.
        """
        parts = [spec] if isinstance(spec, str) else list(spec)
        items = [s.strip() for part in parts for s in str(part).split(",") if s.strip()]
        out: list[str] = []
        for item in items:
            names = self.names() if item == "all" else [item]
            for n in names:
                if n not in self._eps:
                    raise self._unknown(n)
                if n not in out:
                    out.append(n)
        return out

    def info(self, names: Iterable[str] | None = None) -> list[PluginInfo]:
        """Load each plugin (all by default) and report its status, catching every failure."""
        out = []
        for name in (self.names() if names is None else names):
            target = ", ".join(ep.value for ep in self._eps.get(name, []))
            try:
                cls = self.get(name)
            except (PluginError, UnknownTaskError) as e:
                out.append(PluginInfo(name, target, self.source(name) if name in self else "",
                                      False, str(e)))
                continue
            out.append(PluginInfo(name, target, self.source(name), True, "", cls))
        return out
