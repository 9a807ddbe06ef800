"""File checks with clear errors, for dataset adapters.

Every function raises :class:`remotesam.bench.api.DatasetError` whose message names the file,
what was found, what was expected and what to do; the ``require_*`` checks and
:func:`check_images_exist` append the adapter's expected directory layout (see
:func:`layout_error`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from remotesam.bench.api import DatasetError

__all__ = [
    "IMAGE_EXTENSIONS",
    "check_images_exist",
    "image_files",
    "layout_error",
    "layout_hint",
    "read_json",
    "read_text",
    "require_dir",
    "require_file",
]

#: File extensions treated as images (lower case, with the dot).
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def layout_hint(layout: str) -> str:
    """``"\\nExpected layout:\\n<layout>"``, or ``""`` when ``layout`` is empty."""
    return f"\nExpected layout:\n{layout.rstrip()}" if layout else ""


def layout_error(message: str, layout: str = "") -> DatasetError:
    """A :class:`DatasetError` with ``message`` followed by the expected directory ``layout``.

    Raise it from an adapter when the files on disk do not match the official layout::

        raise layout_error(f"mydata: folder {root / 'images'} not found", self.layout)
    """
    return DatasetError(f"{message}{layout_hint(layout)}")


def _require(path: Path, exists: bool, kind: str, what: str, layout: str) -> Path:
    if not exists:
        raise layout_error(
            f"{what}: {kind} {path} not found. Point the dataset root at the folder in the "
            "official layout (or pass the matching option).",
            layout,
        )
    return path


def require_dir(path: Path, what: str, layout: str = "") -> Path:
    """Return ``path`` if it is a directory, else raise :class:`DatasetError` showing ``layout``."""
    return _require(path, path.is_dir(), "directory", what, layout)


def require_file(path: Path, what: str, layout: str = "") -> Path:
    """Return ``path`` if it is a file, else raise :class:`DatasetError` showing ``layout``."""
    return _require(path, path.is_file(), "file", what, layout)


def image_files(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` (extensions in :data:`IMAGE_EXTENSIONS`, any case;
    hidden files skipped), sorted by name."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def read_text(path: Path, what: str = "text file") -> str:
    """The UTF-8 text of a file.

    Raises:
        DatasetError: ``"<what>: file <path> not found"``, or ``"<what>: cannot read <path>:
            <reason>"`` for an unreadable or non-UTF-8 file.
    """
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"{what}: file {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{what}: cannot read {path}: {exc}") from None


def read_json(path: Path, what: str = "JSON file") -> Any:
    """Parse a JSON file; a syntax error becomes :class:`DatasetError` with line and column.

    Raises:
        DatasetError: file missing, unreadable, not UTF-8 or not valid JSON.
    """
    path = Path(path)
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"{what}: {path} is not valid JSON: {exc.msg} at line {exc.lineno}, column "
            f"{exc.colno} (truncated or corrupted file? re-download it)"
        ) from None


def check_images_exist(paths: Iterable[Path], what: str, layout: str = "") -> None:
    """Raise :class:`DatasetError` listing images named by the annotations but absent."""
    missing = [p for p in dict.fromkeys(paths) if not p.is_file()]
    if missing:
        shown = ", ".join(str(p) for p in missing[:5])
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise layout_error(
            f"{what}: {len(missing)} image(s) listed in the annotations are absent: {shown}{more}. "
            f"Complete the download or point the image folder option at them.",
            layout,
        )
