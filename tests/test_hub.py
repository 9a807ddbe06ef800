"""Hub checkpoints (``hf://OWNER/REPO/FILE[@REVISION]``) resolved through huggingface_hub from a
local Hugging Face cache built in the test. Nothing may reach the network: every test runs with
``HF_HUB_OFFLINE=1`` and with socket connections refused."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
from pathlib import Path

import pytest
import torch

import remotesam
from remotesam.checkpoint import load_checkpoint, read_state_dict
from remotesam.hub import HubError, HubUri, parse_hf_uri, resolve_hf_uri

#: runs with --limit here evaluate a subset on purpose; the subset note is tested elsewhere
#: (tests/test_run_runner.py::test_limit_task_options_and_cache_key)
pytestmark = pytest.mark.filterwarnings("ignore:evaluated .* a subset:UserWarning")

REPO = "1e12Leon/RemoteSAM"
FILE = "remotesam_tiny.safetensors"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
TAGGED = "89abcdef0123456789abcdef0123456789abcdef"
BUNDLED = Path(remotesam.__file__).resolve().parent / "checkpoints" / FILE


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_hub_cache(cache: Path) -> Path:
    """The layout huggingface_hub writes: ``models--OWNER--NAME/{blobs/<sha256>,
    snapshots/<commit>/<file> -> blob, refs/<branch or tag>}``. ``main`` points at COMMIT
    (the bundled tiny checkpoint); the tag ``v0`` at TAGGED, a snapshot with other bytes."""
    repo = cache / ("models--" + REPO.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True)
    (repo / "refs").mkdir()
    blob = repo / "blobs" / _sha256(BUNDLED)
    shutil.copyfile(BUNDLED, blob)
    snap = repo / "snapshots" / COMMIT
    snap.mkdir(parents=True)
    os.symlink(os.path.relpath(blob, snap), snap / FILE)
    (repo / "refs" / "main").write_text(COMMIT)
    # an older snapshot under a tag: the same weights saved again with other metadata bytes
    older = repo / "snapshots" / TAGGED
    older.mkdir(parents=True)
    data = BUNDLED.read_bytes()
    (older / FILE).write_bytes(data)
    (older / "sub").mkdir()
    (older / "sub" / "weights.safetensors").write_bytes(data)
    (repo / "refs" / "v0").write_text(TAGGED)
    return cache


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = build_hub_cache(tmp_path / "hf-cache")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def refuse(self: socket.socket, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"a test tried to reach the network: connect{args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return cache


def test_parse_both_orders_and_defaults() -> None:
    assert parse_hf_uri(f"hf://{REPO}/{FILE}") == HubUri(REPO, FILE, None)
    assert parse_hf_uri(f"hf://{REPO}/{FILE}@v0") == HubUri(REPO, FILE, "v0")
    assert parse_hf_uri(f"hf://{REPO}@v0/{FILE}") == HubUri(REPO, FILE, "v0")
    assert parse_hf_uri(f"hf://models/{REPO}/a/b.pth@{COMMIT}") == HubUri(REPO, "a/b.pth", COMMIT)
    assert parse_hf_uri(f"hf://{REPO}@refs/pr/3/x.pth") == HubUri(REPO, "x.pth", "refs/pr/3")
    assert str(HubUri(REPO, FILE, "v0")) == f"hf://{REPO}/{FILE}@v0"


@pytest.mark.parametrize(("uri", "match"), [
    (f"hf://{REPO}", "no file named"),
    ("hf://1e12Leon", "no file named"),
    (f"hf://{REPO}/{FILE}@", "empty revision"),
    (f"hf://datasets/{REPO}/x.pth", "only model repositories"),
    ("hf://bad owner/RemoteSAM/x.pth", "not a valid Hub name"),
    (f"hf://{REPO}/../x.pth", "bad file path"),
])
def test_malformed_uris_are_clear_errors(uri: str, match: str) -> None:
    with pytest.raises(HubError, match=match):
        parse_hf_uri(uri)


def test_resolves_main_from_the_cache_with_commit_and_sha256(hub: Path) -> None:
    r = resolve_hf_uri(f"hf://{REPO}/{FILE}")
    assert r.repo_id == REPO and r.filename == FILE
    assert r.revision == "main" and r.commit == COMMIT
    assert r.sha256 == _sha256(BUNDLED)
    assert r.path.is_relative_to(hub) and r.path.read_bytes() == BUNDLED.read_bytes()
    prov = r.provenance()
    assert prov["commit"] == COMMIT and prov["uri"] == f"hf://{REPO}/{FILE}"
    json.dumps(prov)


def test_revision_pinning_by_tag_commit_and_subfolder(hub: Path) -> None:
    by_tag = resolve_hf_uri(f"hf://{REPO}/{FILE}@v0")
    assert by_tag.revision == "v0" and by_tag.commit == TAGGED
    assert by_tag.path.parent.name == TAGGED
    by_commit = resolve_hf_uri(f"hf://{REPO}/{FILE}@{COMMIT}")
    assert by_commit.commit == COMMIT and by_commit.revision == COMMIT
    sub = resolve_hf_uri(f"hf://{REPO}@v0/sub/weights.safetensors")
    assert sub.commit == TAGGED and sub.filename == "sub/weights.safetensors"


def test_offline_and_not_cached_is_one_clear_message(hub: Path) -> None:
    with pytest.raises(HubError) as info:
        resolve_hf_uri(f"hf://{REPO}/checkpoint.pth@v1")
    msg = str(info.value)
    for part in (REPO, "'checkpoint.pth'", "'v1'", "offline", "HF_HUB_OFFLINE", str(hub),
                 f"hf download {REPO} checkpoint.pth --revision v1", "huggingface-cli download",
                 "HF_HUB_CACHE"):
        assert part in msg, (part, msg)
    assert "\n" not in msg
    # an unknown repository, offline, is the same single message (the cache cannot tell more)
    with pytest.raises(HubError, match="not in the Hugging Face cache"):
        resolve_hf_uri("hf://someone/Other/model.pth")


def test_cache_dir_argument_wins_over_the_environment(hub: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    with pytest.raises(HubError, match="empty"):
        resolve_hf_uri(f"hf://{REPO}/{FILE}")
    assert resolve_hf_uri(f"hf://{REPO}/{FILE}", cache_dir=hub).commit == COMMIT


def test_load_checkpoint_and_from_checkpoint_take_a_hub_uri(hub: Path) -> None:
    uri = f"hf://{REPO}/{FILE}@v0"
    net = load_checkpoint(uri)
    ref = load_checkpoint(BUNDLED)
    for (ka, va), (kb, vb) in zip(net.state_dict().items(), ref.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    assert read_state_dict(uri).keys() == read_state_dict(BUNDLED).keys()
    model = remotesam.RemoteSAM.from_checkpoint(uri, device="cpu")
    assert model.net.config == ref.config
    with pytest.raises(HubError, match="not in the Hugging Face cache"):
        remotesam.RemoteSAM.from_checkpoint(f"hf://{REPO}/missing.pth")


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from remotesam.synth import generate

    root = tmp_path_factory.mktemp("hub-bench") / "synth"
    generate(root, seed=0, n_images=2, image_size=128, n_train=1, n_val=0, landuse_per_class=1)
    return root


def test_bench_run_with_a_hub_checkpoint_records_commit_and_sha256(
        hub: Path, synth_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from remotesam.bench.cli import main
    from remotesam.bench.records.results import RunDocument

    uri = f"hf://{REPO}/{FILE}@v0"
    results = tmp_path / "results"
    code = main(["run", "--ckpt", uri, "--tasks", "cnt", "--limit", "2", "--data-root",
                 str(synth_root), "--results-dir", str(results), "--device", "cpu",
                 "--no-progress", "--no-report", "--run-id", "hub"])
    assert code == 0, capsys.readouterr().err
    doc = RunDocument.load(results / "runs" / "hub.json")
    (res,) = doc.results
    assert res.checkpoint.name == uri and res.checkpoint.sha256 == _sha256(BUNDLED)
    assert res.n_evaluated == 2
    (rec,) = doc.provenance["hub_checkpoints"]
    assert rec["repo_id"] == REPO and rec["revision"] == "v0" and rec["commit"] == TAGGED
    assert rec["sha256"] == _sha256(BUNDLED) and rec["filename"] == FILE
    assert doc.provenance["config"]["checkpoints"] == [uri]
    # not in the cache: exit 2 with the single message, before any work
    code = main(["run", "--ckpt", f"hf://{REPO}/checkpoint.pth", "--tasks", "cnt",
                 "--data-root", str(synth_root), "--results-dir", str(results)])
    err = capsys.readouterr().err
    assert code == 2 and "not in the Hugging Face cache" in err and "Traceback" not in err


def test_python_api_evaluates_a_hub_checkpoint(hub: Path, synth_root: Path,
                                               tmp_path: Path) -> None:
    from remotesam.bench import evaluate

    doc = evaluate(f"hf://{REPO}/{FILE}", tasks="cnt", limit=1, data_root=synth_root,
                   results_dir=tmp_path / "r", device="cpu", progress=False)
    assert doc is not None
    assert doc.results[0].checkpoint.name == f"hf://{REPO}/{FILE}"
    assert doc.provenance["hub_checkpoints"][0]["commit"] == COMMIT


# issue 19 item 16
@pytest.mark.parametrize("content", ["../../../../out", "../snapshots", "main", "", "\x00",
                                     "0123456789abcdef0123456789abcdef0123456/"])
def test_ref_file_that_is_not_a_commit_is_one_clear_error(hub: Path, content: str) -> None:
    repo = hub / ("models--" + REPO.replace("/", "--"))
    (repo / "refs" / "v1").write_text(content)
    with pytest.raises(HubError, match=r"refs/v1.*not a 40-hex commit") as e:
        resolve_hf_uri(f"hf://{REPO}/{FILE}@v1")
    assert "\n" not in str(e.value)


# issue 19 item 16
def test_cli_names_a_bad_ref_file_in_one_line(hub: Path, tmp_path: Path, capsys) -> None:
    from remotesam.bench.cli import main

    repo = hub / ("models--" + REPO.replace("/", "--"))
    (repo / "refs" / "v1").write_text("../../../../out")
    code = main(["run", "--ckpt", f"hf://{REPO}/{FILE}@v1", "--tasks", "cnt", "--data-root",
                 str(tmp_path / "nodata"), "--results-dir", str(tmp_path / "r"),
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err and err.count("\n") == 1 and "refs/v1" in err


# issue 19 item 19
@pytest.mark.parametrize("revision", ["..", "../main", "v0/../../x", "a/..", "refs/pr/../main",
                                      "../../../../../../etc"])
def test_revision_holding_dot_dot_is_refused(hub: Path, revision: str) -> None:
    outside = hub / ("models--" + REPO.replace("/", "--"))
    (outside / "main").write_text(COMMIT)  # what `refs/../main` would read
    with pytest.raises(HubError, match=r"revision .* not a valid"):
        parse_hf_uri(f"hf://{REPO}/{FILE}@{revision}")
    with pytest.raises(HubError, match=r"revision .* not a valid"):
        resolve_hf_uri(f"hf://{REPO}/{FILE}@{revision}")
