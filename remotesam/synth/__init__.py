"""Procedural Earth-observation benchmark in the official file formats.

``generate(out_dir, seed=0, n_images=48, image_size=256)`` renders aerial-like scenes and writes
them as REFER (RRSIS-D), iSAID colour masks, DIOR COCO json, DOTA label files, DIOR-RSVG XML,
UC Merced class folders, UCM-captions and Falcon-style counting json under one directory that
serves as ``--data-root`` for every task. Same seed, same bytes.
"""

from .generator import GENERATOR_VERSION, SynthError, SynthManifest, generate

__all__ = ["GENERATOR_VERSION", "SynthError", "SynthManifest", "generate"]
