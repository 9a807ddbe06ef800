"""Writing files so that a crash never leaves half of one."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_text_atomic"]


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file beside it and a rename.

    The temporary name carries the process id, so two processes writing the same path never
    share a temporary file; the last rename wins. Parent folders are created. A failed write
    removes its temporary file.

    Raises:
        OSError: the folder or the file cannot be written (callers word it for their user).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
