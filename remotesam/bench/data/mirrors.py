"""Pinned dataset mirrors on the Hugging Face Hub (what ``data fetch`` downloads and ``data
list`` names). Only mirrors whose repository, revision and file checksums are known for certain
are listed; see :mod:`remotesam.bench.data.fetch`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["MIRRORS", "Mirror"]


@dataclass(frozen=True)
class Mirror:
    """A pinned dataset mirror on the Hugging Face Hub.

    Attributes:
        repo_id: ``owner/name`` of the dataset repository.
        revision: the commit (40 hex digits) every file is read at.
        files: path in the repository -> sha256 (hex) of its bytes.
        subdir: folder under ``--out`` the files go to (the adapter's ``default_subdir``).
        repo_type: ``"dataset"`` (default) or ``"model"``.
        unpack: files of ``files`` that are zip archives of the dataset: unpacked into
            ``out/subdir`` (not copied); the rest are copied.
        size: the total bytes of ``files`` (what the user is about to download), 0 = unknown.
    """

    repo_id: str
    revision: str
    files: Mapping[str, str] = field(default_factory=dict)
    subdir: str = "."
    repo_type: str = "dataset"
    unpack: tuple[str, ...] = ()
    size: int = 0


#: dataset key (``task.dataset`` or adapter name) -> pinned mirror. Only certain ones.
MIRRORS: dict[str, Mirror] = {
    "ref.refsegrs": Mirror(
        "JessicaYuan/RefSegRS",
        "f6750efb75ec714748f8d97495bde2655f4a1366",
        {"RefSegRS.zip": "44d5e874ff5ed1af59d1d8df73004450bf1945d4f1e40849aede5e253f2018c2"},
        subdir="RefSegRS",
        unpack=("RefSegRS.zip",),
        size=2_969_871_623,
    ),
}
