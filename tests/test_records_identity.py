"""Cache identity: a stored prediction is reused only for the same model, settings and inputs.

Each test reproduces a way the cache used to return another model's or another file's answers.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))

import bench_support as bs
from rsb_toy.data import write_dataset
from rsb_toy.fakemodel import load

from remotesam.bench.api.registry import Registry
from remotesam.bench.records import identity
from remotesam.bench.records.store import ResultsStore
from remotesam.bench.run import RunConfig, load_model_factory, run

#: runs with --limit here evaluate a subset on purpose; the subset note is tested elsewhere
#: (tests/test_run_runner.py::test_limit_task_options_and_cache_key)
pytestmark = pytest.mark.filterwarnings("ignore:evaluated .* a subset:UserWarning")

N = 8


class Factory:
    def __init__(self) -> None:
        self.models = []

    def __call__(self, path, *, device, precision, batch_size):
        model = load(path)
        self.models.append(model)
        return model

    @property
    def images(self) -> int:
        return sum(m.images_seen for m in self.models)


def _counting_factory(path, *, device, precision, batch_size):
    """Another factory: a different spec, the same fake model class."""
    return load(path)


@pytest.fixture
def env(tmp_path):
    data = tmp_path / "data"
    write_dataset(data / "toy_blobs", n=N, seed=1)
    ckpt = bs.write_checkpoint(tmp_path / "ckpts" / "a.json", gain=1.0, bias=0.25)
    return {
        "tmp": tmp_path,
        "data": data,
        "ckpt": ckpt,
        "registry": Registry(bs.toy_entry_points()),
    }


def _run(env, factory, **kw):
    cfg = dict(tasks=["toy"], checkpoints=[str(env["ckpt"])], data_root=env["data"],
               results_dir=env["tmp"] / "results", batch_size=4, device="cpu", progress=False)
    cfg.update(kw)
    return run(RunConfig(**cfg), registry=env["registry"], model_factory=factory)


def _restore_times(path: Path, st: os.stat_result) -> None:
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_checkpoint_rewritten_in_place_with_same_size_and_mtime_is_rehashed(env):
    """``cp -p new.json a.json``: same inode, same size, mtime restored."""
    ckpt = env["ckpt"]
    first = _run(env, Factory())
    assert first.document.results[0].metrics["mae"].value == pytest.approx(0.25)
    st = ckpt.stat()
    new = json.dumps({"gain": 1.0, "bias": 0.75})
    assert len(new) == st.st_size
    with open(ckpt, "w") as f:  # what cp -p does: truncate, write, then restore the times
        f.write(new)
    _restore_times(ckpt, st)
    assert (ckpt.stat().st_size, ckpt.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    f2 = Factory()
    second = _run(env, f2)
    assert f2.images == N, "changed checkpoint bytes must be predicted again"
    res = second.document.results[0]
    assert res.metrics["mae"].value == pytest.approx(0.75)
    assert res.checkpoint.sha256 == identity.sha256_file(ckpt)


def test_checkpoint_replaced_by_rename_with_restored_mtime_is_rehashed(env):
    """``rsync -t``: a new file renamed onto the path, mtime restored."""
    ckpt = env["ckpt"]
    _run(env, Factory())
    st = ckpt.stat()
    tmp = ckpt.with_name(".a.json.tmp")
    tmp.write_text(json.dumps({"gain": 1.0, "bias": 0.50}))
    _restore_times(tmp, st)
    os.replace(tmp, ckpt)
    f2 = Factory()
    res = _run(env, f2).document.results[0]
    assert f2.images == N
    assert res.metrics["mae"].value == pytest.approx(0.5)


def _write_raw_png(path: Path, arr: np.ndarray) -> None:
    Image.fromarray(arr).save(path, compress_level=0)  # uncompressed: size depends on shape only


def test_dataset_image_replaced_with_same_size_and_mtime_is_predicted_again(env):
    images = env["data"] / "toy_blobs" / "images"
    target = images / "0000.png"
    blank = np.zeros((32, 32), np.uint8)
    _write_raw_png(target, blank)
    counts_file = env["data"] / "toy_blobs" / "counts.json"
    counts = json.loads(counts_file.read_text())
    counts["test"]["0000.png"] = 1
    counts_file.write_text(json.dumps(counts))
    first = _run(env, Factory()).document.results[0]
    st = target.stat()
    one = blank.copy()
    one[2:6, 2:6] = 255  # one blob: the true count
    tmp = images / "new.png"
    _write_raw_png(tmp, one)
    assert tmp.stat().st_size == st.st_size
    shutil.copyfile(tmp, target)  # in place, then the times restored (cp -p)
    tmp.unlink()
    _restore_times(target, st)
    f2 = Factory()
    second = _run(env, f2).document.results[0]
    assert f2.images == 1, "only the changed image is predicted again"
    assert second.metrics["mae"].value < first.metrics["mae"].value


def test_model_factory_is_part_of_the_key(env):
    _run(env, Factory())
    out = _run(env, _counting_factory)
    assert out.n_predicted == N and out.n_cached == 0, "another factory reuses nothing"
    again = Factory()
    out3 = _run(env, again)
    assert again.models == [] and out3.n_cached == N, "the first factory's answers are kept"
    assert out3.document.provenance["model_factory"].endswith(":Factory")


def test_factory_spec_and_model_key():
    f = load_model_factory("remotesam.testing:constant_foreground_model")
    assert identity.factory_spec(f) == "remotesam.testing:constant_foreground_model"
    assert identity.factory_spec(None) == identity.DEFAULT_FACTORY_SPEC
    k = identity.model_key("a" * 64, "m:f", "fp32")
    assert k != identity.model_key("a" * 64, "m:g", "fp32")
    assert k != identity.model_key("a" * 64, "m:f", "bf16")
    assert k != identity.model_key("b" * 64, "m:f", "fp32")


def test_model_digest_covers_names_dtypes_shapes_and_values():
    import torch

    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    b = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    b.load_state_dict(a.state_dict())
    assert identity.model_digest(a) == identity.model_digest(b)
    d = identity.model_digest(a)
    assert len(d) == 64
    with torch.no_grad():
        b[0].weight[0, 0] += 1e-3
    assert identity.model_digest(b) != d
    assert identity.model_digest(a.to(torch.bfloat16)) != d  # dtype
    holder = type("Holder", (), {"net": a})()
    assert identity.model_digest(holder) == identity.model_digest(a)
    with pytest.raises(TypeError, match=r"nn\.Module"):
        identity.model_digest(object())


def test_describe_model_uses_settings_or_class():
    class WithSettings:
        def settings(self):
            return {"precision": "fp32", "thr": 0.5}

    class Plain:
        pass

    d = identity.describe_model(WithSettings(), "m:f")
    assert d["settings"] == {"precision": "fp32", "thr": 0.5} and d["factory"] == "m:f"
    p = identity.describe_model(Plain(), "m:f")
    assert p["settings"] is None and p["class"].endswith("Plain")


def test_epoc_model_files_are_part_of_the_model_description(tmp_path):
    epoc_dir = tmp_path / "directsam"
    epoc_dir.mkdir()
    (epoc_dir / "config.json").write_text("{}")
    (epoc_dir / "model.safetensors").write_bytes(b"weights-1")

    class WithEpoc:
        epoc_model = type("BoundaryModel", (), {"source": str(epoc_dir)})()

        def settings(self):
            return {"epoc_model": "directsam"}

    first = identity.describe_model(WithEpoc(), "m:f")
    assert first["epoc_digest"] and len(first["epoc_digest"]) == 64
    (epoc_dir / "model.safetensors").write_bytes(b"weights-2")  # same name, other weights
    second = identity.describe_model(WithEpoc(), "m:f")
    assert second["epoc_digest"] != first["epoc_digest"]
    assert identity.settings_hash({}, "fp32", first)[1] != identity.settings_hash({}, "fp32",
                                                                                  second)[1]


def test_cached_hash_key_includes_inode_and_ctime(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"abcd")
    with ResultsStore(tmp_path / "r") as store:
        h = identity.sha256_file(p, store)
        assert store.cached_sha256(p) == h
        st = p.stat()
        q = tmp_path / "g.bin"
        q.write_bytes(b"wxyz")
        os.utime(q, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(q, p)  # same path, size and mtime; new inode and ctime
        assert store.cached_sha256(p) is None
        assert identity.sha256_file(p, store) != h


# -- the bundled model and the embedded benchmark ------------------------------------------------


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    from remotesam.bench.run.embedded import ensure_embedded_benchmark

    results = tmp_path_factory.mktemp("shared-results")
    return results, ensure_embedded_benchmark(results)


def _mcc(results, data, **kw):
    return run(RunConfig(tasks=["mcc"], limit=12, data_root=data, results_dir=results,
                         device="cpu", progress=False), **kw)


def _primary(out):
    (res,) = out.document.results
    return next(m.value for m in res.metrics.values() if m.primary)


def test_reference_factory_never_reuses_the_trained_models_answers(embedded, tmp_path):
    results, data = embedded
    trained = _mcc(results, data)
    floor = load_model_factory("remotesam.testing:constant_foreground_model")
    shared = _mcc(results, data, model_factory=floor)
    fresh = _mcc(tmp_path / "fresh", data, model_factory=floor)
    assert shared.n_cached == 0
    assert _primary(shared) == _primary(fresh)
    assert _primary(shared) != _primary(trained)


def test_in_memory_model_is_identified_by_its_weights(embedded):
    import torch

    from remotesam.bench.run import default_checkpoint
    from remotesam.predictor import RemoteSAM

    results, data = embedded
    model = RemoteSAM.from_checkpoint(default_checkpoint(), device="cpu")
    cfg = RunConfig(tasks=["mcc"], limit=3, data_root=data, results_dir=results, device="cpu",
                    progress=False)
    first = run(cfg, model=model, model_name="tiny-in-memory")
    (res,) = first.document.results
    assert res.checkpoint.name == "tiny-in-memory"
    assert res.checkpoint.sha256 == identity.model_digest(model)
    assert first.n_predicted == 3
    again = run(cfg, model=model, model_name="tiny-in-memory")
    assert again.n_cached == 3 and again.n_predicted == 0
    with torch.no_grad():
        next(model.net.parameters()).add_(0.01)
    changed = run(cfg, model=model, model_name="tiny-in-memory")
    assert changed.n_cached == 0 and changed.n_predicted == 3
    assert changed.document.results[0].checkpoint.sha256 != res.checkpoint.sha256


# -- names and texts that are not valid UTF-8 (issue 19 items 13, 14) -----------------------------


# issue 19 item 13
def test_image_name_not_valid_utf8_is_hashed_by_its_bytes(tmp_path):
    import hashlib

    from remotesam.bench.api import Sample

    raw = os.fsencode(tmp_path) + b"/\xff.png"
    _write_raw_png(Path(os.fsdecode(raw)), np.zeros((4, 4, 3), np.uint8))
    name = os.fsdecode(raw)
    assert "\udcff" in name
    sample = Sample(sample_id="\udcff.png", image=name, target={}, meta={"file": name})
    with ResultsStore(tmp_path / "r") as store:
        first = identity.sample_fingerprints([sample], store)
        assert store.cached_sha256(name) == hashlib.sha256(Path(name).read_bytes()).hexdigest()
        assert identity.sample_fingerprints([sample], store) == first  # from the cache
    assert identity.sample_fingerprints([sample]) == first  # without a store


# issue 19 item 14
def test_texts_with_lone_surrogates_are_fingerprinted_one_to_one():
    from remotesam.bench.api import Sample

    def fp(text):
        s = Sample(sample_id="1", image=np.zeros((2, 2, 3), np.uint8),
                   target={"references": [text]}, meta={"sent": text})
        return identity.sample_fingerprints([s])["1"]

    a = fp("\udc80 a red car")
    assert a == fp("\udc80 a red car")
    assert len({a, fp("\udc81 a red car"), fp("a red car"), fp("\ud800 a red car")}) == 4
    assert fp("a red car") == fp("a red car")  # valid text: as before


@pytest.fixture(scope="module")
def small_synth(tmp_path_factory):
    from remotesam.synth import generate

    root = tmp_path_factory.mktemp("odd-names") / "synth"
    generate(root, seed=0, n_images=2, image_size=128, n_train=1, n_val=0, landuse_per_class=1)
    return root


def _cli_metrics(data: Path, results: Path, tasks: str, capsys) -> tuple[int, dict, str]:
    from remotesam.bench.cli import main
    from remotesam.bench.records.results import RunDocument

    code = main(["run", "--tasks", tasks, "--data-root", str(data), "--results-dir",
                 str(results), "--device", "cpu", "--no-progress", "--no-report",
                 "--run-id", "r"])
    err = capsys.readouterr().err
    if code != 0:
        return code, {}, err
    doc = RunDocument.load(results / "runs" / "r.json")
    return code, {(r.task, r.dataset, r.n_evaluated, r.n_failed, k): repr(m.value)
                  for r in doc.results for k, m in r.metrics.items()}, err


# issue 19 item 13
def test_dior_file_name_not_valid_utf8_scores_as_under_a_plain_name(small_synth, tmp_path,
                                                                   capsys):
    data = tmp_path / "data"
    shutil.copytree(small_synth / "DIORcoco", data / "DIORcoco")
    code, plain, err = _cli_metrics(data, tmp_path / "plain", "det.dior", capsys)
    assert code == 0, err
    ann = data / "DIORcoco" / "Annotations" / "DIOR_test.json"
    doc = json.loads(ann.read_text())
    old = doc["images"][0]["file_name"]
    images = os.fsencode(data / "DIORcoco" / "JPEGImages")
    os.rename(os.path.join(images, os.fsencode(old)), os.path.join(images, b"\xff.jpg"))
    doc["images"][0]["file_name"] = "\udcff.jpg"
    ann.write_text(json.dumps(doc))  # ensure_ascii: written as the escape "\udcff"
    assert "\\udcff" in ann.read_text()
    code, odd, err = _cli_metrics(data, tmp_path / "odd", "det.dior", capsys)
    assert code == 0, err
    assert "Traceback" not in err
    assert odd == plain


# issue 19 item 14
def test_expression_with_lone_surrogate_is_what_the_official_tokenizer_sees(small_synth,
                                                                           tmp_path, capsys):
    import pickle

    data = tmp_path / "data"
    shutil.copytree(small_synth / "rrsisd", data / "rrsisd")
    shutil.copytree(small_synth / "images" / "rrsisd", data / "images" / "rrsisd")
    code, plain, err = _cli_metrics(data, tmp_path / "plain", "ref", capsys)
    assert code == 0, err
    p = data / "rrsisd" / "refs(unc).p"
    refs = pickle.loads(p.read_bytes())
    n = 0
    for ref in refs:
        if ref["split"] == "test":
            for sent in ref["sentences"]:
                sent["sent"] = sent["raw"] = "\udc80 " + sent["sent"]
                n += 1
    assert n
    p.write_bytes(pickle.dumps(refs))
    code, odd, err = _cli_metrics(data, tmp_path / "odd", "ref", capsys)
    assert code == 0, err
    assert "Traceback" not in err
    assert odd == plain  # the official BertTokenizer drops the surrogate (tests/test_text.py)
