"""``remotesam-bench``, the command line: parsing and printing only.

:mod:`~remotesam.bench.cli.commands` (``list``, ``run``, ``score`` and the program),
:mod:`~remotesam.bench.cli.reports` (``leaderboard``, ``radar``, ``report``, ``export``,
``gate``, ``baseline``), :mod:`~remotesam.bench.cli.newtask` (``new-task``) and
:mod:`~remotesam.bench.cli.config_file` (``run --config run.yaml``). The work is done by the
Python API (:mod:`remotesam.bench.run`), the records, the reports and the gate.
"""

from remotesam.bench.cli.commands import EXIT_ERROR, EXIT_OK, EXIT_REGRESSION, build_parser, main

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_REGRESSION", "build_parser", "main"]
