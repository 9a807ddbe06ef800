"""``remotesam-bench synth``: write the procedural benchmark to a directory.

Registered into the ``remotesam-bench`` parser by :func:`add_subcommand`.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from .generator import SynthError, generate

__all__ = ["add_subcommand", "handler"]

EXIT_OK, EXIT_ERROR = 0, 2


def add_subcommand(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``synth`` on an ``argparse`` sub-parsers object; returns the new parser."""
    p = subparsers.add_parser(
        "synth",
        help="write the procedural Earth-observation benchmark (every official format)",
        description="Render deterministic aerial-like scenes and write them in the official "
        "formats of all eight tasks (REFER, iSAID masks, DIOR COCO, DOTA labels, DIOR-RSVG, UC "
        "Merced folders, UCM-captions, counting json) under --out, which then serves as "
        "--data-root of 'remotesam-bench run' and of 'remotesam-train'. Same seed, same bytes.",
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output directory (empty, new, or a previous synth output)",
    )
    # parsed by us (not type=int) so that a bad seed gets the generator's clear message
    p.add_argument("--seed", default="0", metavar="S", help="non-negative integer seed (default 0)")
    p.add_argument(
        "--n-images", default="48", metavar="N", help="test-split object scenes (default 48)"
    )
    p.add_argument(
        "--image-size", default="256", metavar="PX", help="image side in pixels (default 256)"
    )
    p.add_argument(
        "--n-train",
        default=None,
        metavar="N",
        help="train-split object scenes (default: n-images // 4; e.g. 400 to train a model)",
    )
    p.add_argument(
        "--n-val",
        default=None,
        metavar="N",
        help="val-split object scenes (default: n-images // 16, at least 2)",
    )
    p.add_argument(
        "--landuse-per-class",
        default=None,
        metavar="N",
        help="UC Merced-style test scenes per class, 21 classes (default: n-images // 24, at least "
             "1)",
    )
    p.add_argument(
        "--object-scale",
        default="1.0",
        metavar="F",
        help="multiply every object size (0.5..3, default 1.0; larger = easier for a tiny model)",
    )
    p.set_defaults(func=handler)
    return p


def _whole(name: str, text: str) -> int:
    """``--name``'s value (an option with a default) as an integer."""
    value = _as_int(name, text)
    if value is None:  # argparse gives the default when the option is left out
        raise SynthError(f"--{name} needs a whole number")
    return value


def _as_int(name: str, text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text, 10)
    except ValueError:
        raise SynthError(f"--{name} must be a whole number, got {text!r}") from None


def _as_float(name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise SynthError(f"--{name} must be a number, got {text!r}") from None


def handler(args: argparse.Namespace) -> int:
    """Run ``synth``; returns 0 on success, 2 on bad input (message on stderr)."""
    try:
        t0 = time.perf_counter()
        m = generate(
            args.out,
            seed=_whole("seed", args.seed),
            n_images=_whole("n-images", args.n_images),
            image_size=_whole("image-size", args.image_size),
            n_train=_as_int("n-train", args.n_train),
            n_val=_as_int("n-val", args.n_val),
            landuse_per_class=_as_int("landuse-per-class", args.landuse_per_class),
            object_scale=_as_float("object-scale", args.object_scale),
        )
    except SynthError as e:
        print(f"remotesam-bench synth: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    dt = time.perf_counter() - t0
    print(
        f"wrote {len(m.files)} files to {m.root} in {dt:.1f} s (seed {m.seed}, digest "
        f"{m.digest()[:16]})\n"
        f"  {m.counts['refer_refs_test']} test referring expressions, {m.counts['dior_images']} "
        "test object "
        f"images, {m.counts['ucm_test_images']} scene images; train refs: "
        f"{m.counts['refer_refs_train']}\n"
        f"  use: remotesam-bench run --tasks all --data-root {m.root}"
    )
    return EXIT_OK
