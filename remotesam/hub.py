"""Checkpoints on the Hugging Face Hub: ``hf://OWNER/REPO/FILE[@REVISION]``.

The official RemoteSAM weights live in the Hub model repository ``1e12Leon/RemoteSAM``
(``checkpoint.pth``, ``{'model': state_dict}``). Everywhere a checkpoint path is accepted
(``remotesam-bench run --ckpt``, :meth:`remotesam.RemoteSAM.from_checkpoint`,
:func:`remotesam.checkpoint.load_checkpoint`) a Hub URI may be given instead::

    hf://1e12Leon/RemoteSAM/checkpoint.pth              # the file at the branch 'main'
    hf://1e12Leon/RemoteSAM/checkpoint.pth@v1.0         # a tag or branch
    hf://1e12Leon/RemoteSAM/checkpoint.pth@5b72655e...  # a commit (pinned, reproducible)
    hf://1e12Leon/RemoteSAM@v1.0/checkpoint.pth         # huggingface_hub's own order, also read

The file is fetched with :func:`huggingface_hub.hf_hub_download`, so its cache
(``HF_HUB_CACHE``, default ``~/.cache/huggingface/hub``), revision pinning and offline mode
(``HF_HUB_OFFLINE=1``: only the cache is read, nothing goes to the network) apply as in every
other Hugging Face library. Both variables are read when a URI is resolved, not at import.

What is recorded: :class:`ResolvedCheckpoint` holds the requested revision, the commit it
resolved to (the snapshot folder of the cache) and the sha256 of the file's bytes; the
benchmark runner puts them into the run document's provenance.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "HF_SCHEME",
    "HubError",
    "HubUri",
    "ResolvedCheckpoint",
    "is_hf_uri",
    "parse_hf_uri",
    "resolve_hf_uri",
]

HF_SCHEME = "hf://"
DEFAULT_REVISION = "main"

_REPO_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
#: What git (and so the Hub) refuses in a ref name: control characters, space, ~ ^ : ? * [ \\
_BAD_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def _check_revision(uri: str, revision: str) -> None:
    """A branch, tag, ``refs/pr/N`` or commit as git names them: no ``..``, no empty or
    dot-leading ``/`` segment, no control character, space or ``~^:?*[\\`` (the name is also
    a path below the cache's ``refs/`` folder, which it must not leave)."""
    segments = revision.split("/")
    if (".." in revision or _BAD_REF_CHARS.search(revision) or revision.endswith(".lock")
            or any(not seg or seg.startswith(".") for seg in segments)):
        raise HubError(f"{uri}: revision {revision!r} is not a valid Hub revision (a branch, "
                       "tag or 40-hex commit: no '..', no empty or '.'-leading segment between "
                       "'/', no space or control character); e.g. @main, @v1.0 or @<commit>")
_TRUE = {"1", "on", "yes", "true"}
# Hub repository types other than models: recognised only to say that they are not supported.
_OTHER_TYPES = ("datasets", "spaces", "buckets", "kernels")


class HubError(ValueError):
    """A Hub URI that is malformed or cannot be resolved; the message names the repository,
    file and revision, what went wrong and what to do."""


@dataclass(frozen=True)
class HubUri:
    """A parsed ``hf://`` checkpoint URI.

    Attributes:
        repo_id: ``"owner/name"`` of a Hub *model* repository.
        filename: the path of the file inside the repository (``/``-separated).
        revision: branch, tag or 40-hex commit; ``None`` means ``"main"``.
    """

    repo_id: str
    filename: str
    revision: str | None = None

    def __str__(self) -> str:
        rev = f"@{self.revision}" if self.revision else ""
        return f"{HF_SCHEME}{self.repo_id}/{self.filename}{rev}"


@dataclass(frozen=True)
class ResolvedCheckpoint:
    """A Hub checkpoint after download (or cache look-up).

    Attributes:
        path: the local file (inside the Hugging Face cache; a snapshot entry).
        repo_id: ``"owner/name"``.
        filename: the file inside the repository.
        revision: the revision asked for (``"main"`` when the URI named none).
        commit: the 40-hex commit the revision resolved to.
        sha256: hex sha256 of the file's bytes.
        uri: the URI as given.
    """

    path: Path
    repo_id: str
    filename: str
    revision: str
    commit: str
    sha256: str
    uri: str = ""

    def provenance(self) -> dict[str, Any]:
        """JSON-able record for a run document: uri, repo_id, filename, revision, commit,
        sha256 and the local path."""
        return {"uri": self.uri or str(HubUri(self.repo_id, self.filename, self.revision)),
                "repo_id": self.repo_id, "filename": self.filename, "revision": self.revision,
                "commit": self.commit, "sha256": self.sha256, "path": str(self.path)}


def is_hf_uri(value: object) -> bool:
    """True for a string starting with ``hf://`` (a path object never is one)."""
    return isinstance(value, str) and value.startswith(HF_SCHEME)


def _check_repo_part(uri: str, what: str, text: str) -> None:
    if not _REPO_PART.match(text) or ".." in text or text.endswith((".git", ".")):
        raise HubError(f"{uri}: {what} {text!r} is not a valid Hub name (letters, digits, "
                       "'-', '_', '.'); expected hf://OWNER/REPO/FILE[@REVISION], e.g. "
                       "hf://1e12Leon/RemoteSAM/checkpoint.pth")


def parse_hf_uri(uri: str) -> HubUri:
    """Parse ``hf://OWNER/REPO/FILE[@REVISION]`` (or ``hf://OWNER/REPO@REVISION/FILE``;
    a leading ``models/`` is allowed).

    Raises:
        HubError: not an ``hf://`` string, no file, a dataset/space URI, bad names, an empty
            revision.
    """
    if not is_hf_uri(uri):
        raise HubError(f"{uri!r} is not a Hub URI; expected hf://OWNER/REPO/FILE[@REVISION]")
    rest = uri[len(HF_SCHEME):]
    parts = rest.split("/")
    if parts and parts[0] == "models":
        parts = parts[1:]
    elif parts and parts[0] in _OTHER_TYPES:
        raise HubError(f"{uri}: only model repositories hold checkpoints; expected "
                       f"hf://OWNER/REPO/FILE[@REVISION] (no '{parts[0]}/' prefix)")
    if len(parts) < 3:
        raise HubError(f"{uri}: no file named; expected hf://OWNER/REPO/FILE[@REVISION], e.g. "
                       "hf://1e12Leon/RemoteSAM/checkpoint.pth")
    owner, name = parts[0], parts[1]
    revision: str | None = None
    if "@" in name:  # huggingface_hub's order: OWNER/REPO@REVISION/PATH
        name, revision = name.split("@", 1)
        tail = "/".join(parts[2:])
        # a revision with slashes (refs/pr/1) swallows path segments: keep the special refs whole
        m = re.match(r"^(refs/(?:pr/\d+|convert/[\w.-]+))/(.+)$", f"{revision}/{tail}")
        if m:
            revision, filename = m.group(1), m.group(2)
        else:
            filename = tail
    else:
        filename = "/".join(parts[2:])
        if "@" in filename:
            filename, revision = filename.rsplit("@", 1)
    _check_repo_part(uri, "owner", owner)
    _check_repo_part(uri, "repository", name)
    if revision is not None and not revision.strip():
        raise HubError(f"{uri}: empty revision after '@'; give a branch, tag or commit, or "
                       "leave out '@' for 'main'")
    if revision is not None:
        _check_revision(uri, revision)
    segments = filename.split("/")
    if not filename or any(s in ("", ".", "..") for s in segments):
        raise HubError(f"{uri}: bad file path {filename!r} inside the repository; expected "
                       "hf://OWNER/REPO/FILE[@REVISION]")
    return HubUri(f"{owner}/{name}", filename, revision)


def hub_offline() -> bool:
    env = os.environ.get("HF_HUB_OFFLINE")
    if env is not None:
        return env.strip().lower() in _TRUE
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except (ImportError, AttributeError):
        return False


def hub_cache_dir() -> Path:
    """The Hugging Face cache in effect now: ``HF_HUB_CACHE``, else ``HF_HOME/hub``, else
    huggingface_hub's default (``~/.cache/huggingface/hub``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    try:
        from huggingface_hub import constants

        return Path(constants.HF_HUB_CACHE)
    except (ImportError, AttributeError):
        return Path.home() / ".cache" / "huggingface" / "hub"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _download_hint(u: HubUri, revision: str) -> str:
    rev = f" --revision {revision}" if revision != DEFAULT_REVISION else ""
    return (f"On a machine with internet access run `hf download {u.repo_id} {u.filename}{rev}` "
            f"(`huggingface-cli download ...` with older huggingface_hub) and copy its cache "
            "folder here, or set HF_HUB_CACHE to a cache that holds the file")


def resolve_hf_uri(uri: str, *, cache_dir: str | os.PathLike[str] | None = None,
                   offline: bool | None = None,
                   sha256: Callable[[Path], str] | None = None) -> ResolvedCheckpoint:
    """Fetch (or find in the cache) the checkpoint that ``uri`` names.

    Args:
        uri: ``hf://OWNER/REPO/FILE[@REVISION]``.
        cache_dir: the Hugging Face cache (default: :func:`hub_cache_dir`).
        offline: read only the cache (default: ``HF_HUB_OFFLINE``).
        sha256: ``fn(path) -> hex digest`` to reuse a cached digest (default: read the file).

    Returns:
        A :class:`ResolvedCheckpoint` whose ``path`` is the file in the cache.

    Raises:
        HubError: malformed URI; huggingface_hub not installed; offline (or the Hub
            unreachable) and the file not in the cache; repository, revision or file not found
            on the Hub. One message naming the repository, file, revision, cache and what to do.
    """
    u = parse_hf_uri(uri)
    revision = u.revision or DEFAULT_REVISION
    cache = Path(cache_dir).expanduser() if cache_dir is not None else hub_cache_dir()
    local_only = hub_offline() if offline is None else bool(offline)
    try:
        from huggingface_hub import errors as hf_errors
        from huggingface_hub import hf_hub_download
    except ImportError as e:
        raise HubError(f"{uri}: reading Hub checkpoints needs huggingface_hub ({e}); "
                       "pip install 'huggingface_hub>=0.23'") from e
    where = f"{u.filename!r} of the Hub repository {u.repo_id} at revision {revision!r}"
    _check_ref_file(uri, cache, u.repo_id, revision)
    try:
        local = hf_hub_download(repo_id=u.repo_id, filename=u.filename, revision=revision,
                                cache_dir=str(cache), local_files_only=local_only)
    except (hf_errors.LocalEntryNotFoundError, hf_errors.OfflineModeIsEnabled) as e:
        why = ("this machine is offline (HF_HUB_OFFLINE=1)" if local_only
               else "the Hub could not be reached")
        raise HubError(f"{uri}: cannot get {where}: {why} and the file is not in the Hugging "
                       f"Face cache {cache}. {_download_hint(u, revision)}.") from e
    except hf_errors.RevisionNotFoundError as e:
        raise HubError(f"{uri}: the repository {u.repo_id} has no revision {revision!r}; give "
                       "an existing branch, tag or commit after '@'") from e
    except hf_errors.RepositoryNotFoundError as e:
        raise HubError(f"{uri}: the Hub has no (public) model repository {u.repo_id}; check "
                       "the name, or log in (`hf auth login`) for a private or gated one") from e
    except hf_errors.EntryNotFoundError as e:
        raise HubError(f"{uri}: the repository {u.repo_id} has no file {u.filename!r} at "
                       f"revision {revision!r}; check the file name on "
                       f"https://huggingface.co/{u.repo_id}/tree/{revision}") from e
    except (hf_errors.HfHubHTTPError, OSError, ValueError) as e:
        raise HubError(f"{uri}: downloading {where} into {cache} failed: "
                       f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}. "
                       f"{_download_hint(u, revision)}.") from e
    path = Path(local)
    commit = _commit_of(path, u.filename) or (revision if _COMMIT.match(revision) else "")
    if not commit:
        raise HubError(f"{uri}: huggingface_hub returned {path}, which is not a snapshot of "
                       f"the cache {cache}; cannot tell which commit it is")
    digest = (sha256 or _sha256)(path)
    return ResolvedCheckpoint(path=path, repo_id=u.repo_id, filename=u.filename,
                              revision=revision, commit=commit, sha256=digest, uri=uri)


def _check_ref_file(uri: str, cache: Path, repo_id: str, revision: str) -> None:
    """The cache's ``refs/<revision>`` file, where there is one, must hold a 40-hex commit
    (huggingface_hub reads it as a path segment below ``snapshots/``)."""
    if _COMMIT.match(revision):
        return
    ref = cache / ("models--" + repo_id.replace("/", "--")) / "refs" / revision
    try:
        text = ref.read_text(encoding="utf-8", errors="replace")
    except OSError:  # no such ref (the Hub is asked, or the cache misses it: reported after)
        return
    if not _COMMIT.match(text.strip()):
        shown = text if len(text) <= 60 else text[:60] + "..."
        raise HubError(f"{uri}: the Hugging Face cache file {ref} holds {shown!r}, not a "
                       "40-hex commit; delete it (huggingface_hub writes it again when online) "
                       "or pin the commit: @<40-hex commit>")


def _commit_of(path: Path, filename: str) -> str | None:
    """The commit folder of a cache snapshot path ``.../snapshots/<commit>/<filename>``."""
    depth = len(filename.split("/"))
    parts = path.parts
    if len(parts) < depth + 2 or parts[-depth - 2] != "snapshots":
        return None
    commit = parts[-depth - 1]
    return commit if _COMMIT.match(commit) else None
