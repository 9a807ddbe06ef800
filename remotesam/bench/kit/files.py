"""File checks with clear errors, for dataset adapters.

Only regular files are listed or read (:func:`regular_files`, :func:`is_regular_file`): a FIFO,
socket or device is never opened, since reading one can block forever. File names taken from
annotation files are kept inside their folder by :func:`member_path`.

Every function raises :class:`remotesam.bench.api.DatasetError` whose message names the file,
what was found, what was expected and what to do; the ``require_*`` checks and
:func:`check_images_exist` append the adapter's expected directory layout (see
:func:`layout_error`).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from remotesam.bench.api import DatasetError

__all__ = [
    "IMAGE_EXTENSIONS",
    "check_images_exist",
    "image_files",
    "is_regular_file",
    "layout_error",
    "layout_hint",
    "member_path",
    "read_json",
    "read_text",
    "regular_files",
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


def is_regular_file(path: str | Path) -> bool:
    """True when ``path`` (after symlinks) is a regular file: never a FIFO, socket, device or
    directory, which could block or flood a reader. Decided by ``stat`` alone, nothing opened."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def _not_regular(path: Path) -> str | None:
    """``"a FIFO"`` etc. when ``path`` exists but is not a regular file or directory."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return None


def _require(path: Path, exists: bool, kind: str, what: str, layout: str) -> Path:
    if not exists and kind == "file" and (odd := _not_regular(path)) is not None:
        raise DatasetError(
            f"{what}: {path} is {odd}, not a regular file; it is never opened (reading it could "
            "block forever). Replace it with the real file."
        )
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
    """Return ``path`` if it is a regular file, else raise :class:`DatasetError` showing
    ``layout`` (a FIFO, socket or device there is named as such and never opened)."""
    return _require(path, is_regular_file(path), "file", what, layout)


def member_path(folder: Path, name: str, where: str) -> Path:
    """``folder / name`` for a file name read from an annotation file, refusing names that
    could point outside ``folder``.

    A dataset's json or XML names its images (``filename``, ``file_name``); a hostile or broken
    file could name ``../../etc/passwd`` or ``/etc/passwd``. Sub-folders are allowed
    (``train/0001.jpg``); absolute paths, drive letters, ``..`` components (with ``/`` or ``\\``
    separators), empty names and NUL bytes are not. The check is lexical: ``folder`` itself
    may be a symlink.

    Args:
        folder: the folder the names are relative to.
        name: the name as written in the annotation file.
        where: file and field, for the message (``"dataset.json: images[3].filename"``).

    Raises:
        DatasetError: naming ``where``, the name and what is allowed.
    """
    parts = str(name).replace("\\", "/").split("/")
    bad = (
        not isinstance(name, str)
        or not name.strip()
        or "\x00" in name
        or name.startswith(("/", "\\"))
        or (len(name) > 1 and name[1] == ":")
        or any(part == ".." for part in parts)
        or Path(name).is_absolute()
    )
    if bad:
        raise DatasetError(
            f"{where} = {name!r}: a file name must stay inside {folder} (a relative name without "
            "'..' components; no absolute path or drive). Fix the annotation file."
        )
    return Path(folder) / name


def regular_files(folder: Path, suffixes: Iterable[str] | None = None) -> list[Path]:
    """Regular files directly inside ``folder`` (symlinks followed), sorted by name.

    Hidden files are skipped; so are FIFOs, sockets, devices and directories, even when their
    name ends in a wanted suffix (a FIFO named ``x.xml`` would block the reader forever).
    Nothing is opened: the decision is ``stat`` alone.

    Args:
        folder: the directory to list.
        suffixes: keep names ending in one of these (lower case, with the dot; compared
            case-insensitively); ``None`` keeps every regular file.
    """
    wanted = None if suffixes is None else tuple(x.lower() for x in suffixes)
    return sorted(
        p
        for p in Path(folder).iterdir()
        if not p.name.startswith(".")
        and (wanted is None or p.suffix.lower() in wanted)
        and is_regular_file(p)
    )


def image_files(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` (extensions in :data:`IMAGE_EXTENSIONS`, any case;
    hidden files and anything but regular files skipped), sorted by name."""
    return regular_files(folder, IMAGE_EXTENSIONS)


def read_text(path: Path, what: str = "text file") -> str:
    """The UTF-8 text of a file.

    Raises:
        DatasetError: ``"<what>: file <path> not found"``, ``"<what>: <path> is a FIFO ..."``
            for anything but a regular file (never opened), or ``"<what>: cannot read <path>:
            <reason>"`` for an unreadable or non-UTF-8 file.
    """
    path = Path(path)
    odd = _not_regular(path)
    if odd is not None:
        raise DatasetError(f"{what}: {path} is {odd}, not a regular file; it is never opened")
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
    """Raise :class:`DatasetError` listing images named by the annotations but absent (or not
    regular files: a FIFO in place of an image counts as absent and is never opened)."""
    missing = [p for p in dict.fromkeys(paths) if not is_regular_file(p)]
    if missing:
        shown = ", ".join(str(p) for p in missing[:5])
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise layout_error(
            f"{what}: {len(missing)} image(s) listed in the annotations are absent: {shown}{more}. "
            f"Complete the download or point the image folder option at them.",
            layout,
        )
