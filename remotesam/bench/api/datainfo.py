"""What a dataset is, where it comes from and how it lies on disk: the data layer's contract.

Every dataset adapter may describe itself with a :class:`DatasetInfo` (class attribute
``info``). ``remotesam-bench data list`` prints it, ``data check`` verifies a data root
against its ``layout``, ``size`` and ``checksums``, and reports show ``title``. Third-party
adapters describe their datasets the same way. This module imports nothing from the harness.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["DatasetInfo"]


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset's provenance and on-disk layout, as an adapter reads it.

    Attributes:
        title: display name in tables, radar and report (``"DIOR-RSVG"``).
        source: where the release comes from (dataset paper and download page URLs).
        licence: the release's licence, as its owners state it (``"unknown"`` when unstated).
        split: the official evaluation split the adapter reads by default (``"test"``).
        size: number of samples of that split in the official release (``None`` if unknown).
        layout: required paths relative to the dataset root, glob patterns allowed
            (``"JPEGImages/*.jpg"``); a pattern must match at least one file (or non-empty folder).
        how_to_get: the steps from the owners' release to this layout, e.g. the
            ``remotesam-bench data prepare ...`` command that converts it.
        checksums: relative path -> sha256 (hex) of annotation files pinned to a release.
        counts: relative glob pattern -> number of files the official release has there
            (``a | b``: alternative layouts of the same files; the one with most files counts).
    """

    title: str
    source: str
    licence: str
    split: str
    size: int | None
    layout: tuple[str, ...]
    how_to_get: str
    checksums: Mapping[str, str] = field(default_factory=dict)
    counts: Mapping[str, int] = field(default_factory=dict)
