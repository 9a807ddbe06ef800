"""Exceptions and exit codes of the benchmark harness, defined once.

Every error caused by user input (a path, a task name, a dataset, a results directory) is a
:class:`BenchError`; the CLI prints its message and exits with :data:`EXIT_INPUT`, without a
traceback. Exit codes of every ``remotesam-bench`` command (and of ``gate`` in CI):
:data:`EXIT_OK` 0 (success, gate passed), :data:`EXIT_REGRESSION` 1 (the gate found a
regression), :data:`EXIT_INPUT` 2 (bad input, an error, or nothing comparable to judge).
"""

from __future__ import annotations

import errno

__all__ = [
    "EXIT_ERROR",
    "EXIT_INPUT",
    "EXIT_OK",
    "EXIT_PASS",
    "EXIT_REGRESSION",
    "BenchError",
    "InputError",
    "PluginError",
    "StoreError",
    "UnknownTaskError",
    "error_text",
    "is_transient",
]

#: Success; for ``gate``: every checked metric passed.
EXIT_OK = 0
#: ``gate``: at least one metric (or the failure count) regressed.
EXIT_REGRESSION = 1
#: Bad input or an error (the message says what to do); for ``gate``: nothing comparable.
EXIT_INPUT = 2
#: Same as :data:`EXIT_OK`, the gate's name for it.
EXIT_PASS = EXIT_OK
#: Same as :data:`EXIT_INPUT` (an error the user must look at).
EXIT_ERROR = EXIT_INPUT


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


#: ``OSError.errno`` values of a resource that may work on the next try.
_TRANSIENT_ERRNOS = frozenset(
    getattr(errno, name) for name in (
        "ETIMEDOUT", "EAGAIN", "EBUSY", "EINTR", "ENETDOWN", "ENETUNREACH", "ENETRESET",
        "ECONNABORTED", "ECONNRESET", "ECONNREFUSED", "EHOSTDOWN", "EHOSTUNREACH", "ESTALE",
        "ENOMEM", "ENOBUFS", "ENOLCK", "ECOMM") if hasattr(errno, name))


def is_transient(e: BaseException) -> bool:
    """Whether a failed prediction may succeed when simply tried again.

    Transient: out of memory (``MemoryError``, ``torch.cuda.OutOfMemoryError``, a
    ``RuntimeError`` whose message says "out of memory", as CUDA, MPS and the CPU allocator
    word it), a timeout (``TimeoutError``), a connection problem (``ConnectionError``) and an
    ``OSError`` whose errno says a resource was busy, unavailable or timed out (``EAGAIN``,
    ``EBUSY``, ``ETIMEDOUT``, ``ESTALE``, network errors...). Everything else (a bad image, a
    :class:`~remotesam.bench.api.DatasetError`, a bug) is permanent. The runner stores transient
    failures as such and predicts them again on the next run.
    """
    if isinstance(e, MemoryError | TimeoutError | ConnectionError):
        return True
    if isinstance(e, RuntimeError):
        if type(e).__name__ == "OutOfMemoryError":
            return True
        text = str(e).lower()
        return "out of memory" in text or "cudnn_status_alloc_failed" in text
    if isinstance(e, OSError):
        return e.errno in _TRANSIENT_ERRNOS
    return False


def error_text(e: BaseException) -> str:
    """The text stored for a failed sample: ``"Type: message"``, cut at 2,000 characters."""
    text = f"{type(e).__name__}: {e}"
    return text if len(text) <= 2000 else text[:2000] + " ..."
