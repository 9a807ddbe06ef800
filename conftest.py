"""Repository-wide pytest configuration.

Tests read the real dataset samples and the golden reference outputs from the project's shared
folder (``../shared`` beside the checkout by default). Set ``REMOTESAM_SHARED`` to point
elsewhere. Tests that need it skip with a clear reason when it is absent; nothing from it is
ever copied into the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# No test may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parent


def shared_root() -> Path:
    """The shared folder: ``$REMOTESAM_SHARED`` or ``../shared`` next to the repository."""
    env = os.environ.get("REMOTESAM_SHARED")
    return Path(env) if env else REPO_ROOT.parent / "shared"


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.skip(
            f"{what} not found at {path}; set REMOTESAM_SHARED to the folder holding "
            "reference/ and data/real/"
        )
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return _require(shared_root(), "shared folder")


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return _require(shared_root() / "reference", "golden reference outputs")


@pytest.fixture(scope="session")
def real_data() -> Path:
    return _require(shared_root() / "data" / "real", "real dataset samples")
