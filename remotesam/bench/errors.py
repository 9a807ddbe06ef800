"""Exceptions of the benchmark harness.

Every error caused by user input (a path, a task name, a dataset, a results directory) is a
:class:`BenchError`; the CLI prints its message and exits with code 2, without a traceback.
"""

from __future__ import annotations

__all__ = ["BenchError", "InputError", "PluginError", "StoreError", "UnknownTaskError"]


class BenchError(Exception):
    """Base class: a problem the user can fix; the message says what and how."""


class InputError(BenchError):
    """A command-line or API argument is wrong (missing checkpoint, bad option, ...)."""


class UnknownTaskError(InputError):
    """A task name is not registered; the message suggests close names and lists all."""


class PluginError(BenchError):
    """A task plugin failed to load or violates the plugin contract.

    The message names the entry point and the distribution that registered it.
    """


class StoreError(BenchError):
    """The results directory or its SQLite store cannot be used (read-only, full disk, ...)."""
