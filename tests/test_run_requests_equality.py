"""The executor's request path equals the contract's derived path (:meth:`TaskPlugin.predict`'s
default: each request answered by the engine, one after the other), per task.

* A batch-invariant network (logits computed per item, elementwise) through the whole harness
  (all eight tasks in one run, requests shared across tasks, batches across images): every
  stored prediction equals the one ``TaskPlugin.predict`` derives from ``requests`` and
  ``reduce`` one sample after the other.
* The bundled tiny checkpoint at ``batch_size=1`` (the same batch composition on both paths):
  identical predictions for every task. At other batch sizes the logits of a real network on
  CPU may change in their last bits with the batch composition (measured <= 2e-5 on the tiny
  checkpoint), the documented tolerance (docs/SCALING.md).
* DIOR's det and mlc (and cnt, where its images are the same files) share forwards: the joint
  run computes each distinct (image, prompt) once, with the same predictions as runs apart.
* A run stopped in the middle keeps every prediction finished before the stop.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from remotesam.bench.api.registry import Registry
from remotesam.bench.records.store import ResultsStore
from remotesam.bench.run import RunConfig, run
from remotesam.predictor import RemoteSAM

#: runs with --limit here evaluate a subset on purpose; the subset note is tested elsewhere
#: (tests/test_run_runner.py::test_limit_task_options_and_cache_key)
pytestmark = pytest.mark.filterwarnings("ignore:evaluated .* a subset:UserWarning")

TASKS = ("det", "mlc", "mcc", "seg", "cnt", "ref", "vg", "cap")
NET = 48
TINY = (
    Path(__file__).resolve().parents[1] / "remotesam" / "checkpoints" / "remotesam_tiny.safetensors"
)


class ContentNet(torch.nn.Module):
    """Per-item, elementwise logits from the image and the tokens: exactly batch-invariant."""

    def __init__(self, stop_after: int | None = None) -> None:
        super().__init__()
        self.items = 0
        self.calls = 0
        self.stop_after = stop_after

    def forward(self, image, input_ids, attention_mask, text_features=None):
        self.calls += 1
        if self.stop_after is not None and self.calls > self.stop_after:
            raise KeyboardInterrupt  # as a Ctrl-C (or a kill) in the middle of the run
        self.items += int(image.shape[0])
        w = (input_ids.sum(1) % 11).float()[:, None, None] / 11.0 - 0.45
        l1 = image[:, 0] * (0.8 + w) - image[:, 2] * w + w
        return torch.stack([torch.full_like(l1, 0.2), l1], dim=1)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from remotesam.synth.generator import generate

    root = tmp_path_factory.mktemp("eq") / "data"
    generate(root, seed=3, n_images=3, image_size=72, n_train=0, n_val=0, landuse_per_class=1,
             object_scale=1.6)
    return root


def _samples(registry: Registry, task: str, data: Path, limit: int | None) -> tuple[Any, list]:
    plugin = registry.get(task)()
    adapter = plugin.datasets[plugin.default_dataset]
    samples = adapter(data / adapter.default_subdir).samples()
    return plugin, samples[:limit] if limit else samples


def _sequential(registry: Registry, model: RemoteSAM, data: Path, task: str,
                limit: int | None) -> dict[str, Any]:
    plugin, samples = _samples(registry, task, data, limit)
    preds = plugin.predict(model, samples)
    return {s.sample_id: json.loads(json.dumps(p)) for s, p in zip(samples, preds)}


def _stored(results: Path, task: str) -> dict[str, Any]:
    with ResultsStore(results) as store:
        rows = store._conn.execute(
            "SELECT sample_id, prediction FROM predictions WHERE task = ?", (task,)).fetchall()
    return {sid: json.loads(p) for sid, p in rows}


def _factory(net: torch.nn.Module):
    def factory(path: Any, *, device: str = "cpu", precision: str = "fp32", batch_size: int = 8,
                **_: Any) -> RemoteSAM:
        return RemoteSAM(net, device="cpu", batch_size=batch_size, image_size=NET)

    return factory


def test_whole_run_equals_the_sequential_path_for_every_task(data: Path, tmp_path: Path) -> None:
    registry = Registry()
    net = ContentNet()
    out = run(RunConfig(tasks=list(TASKS), data_root=data, results_dir=tmp_path / "r",
                        device="cpu", batch_size=8, progress=False, limit=4),
              registry=registry, model_factory=_factory(net))
    assert out.errors == [] and out.n_predicted > 0
    assert all(r.n_failed == 0 for r in out.document.results)
    model = RemoteSAM(ContentNet(), batch_size=8, image_size=NET)
    for task in TASKS:
        want = _sequential(registry, model, data, task, 4)
        got = _stored(tmp_path / "r", task)
        assert got.keys() == want.keys(), task
        for sid in want:
            assert got[sid] == want[sid], f"{task} {sid}"


def test_det_mlc_cnt_share_their_forwards(data: Path, tmp_path: Path) -> None:
    registry = Registry()
    apart = 0
    for t in ("det", "mlc", "cnt"):
        net = ContentNet()
        run(RunConfig(tasks=[t], data_root=data, results_dir=tmp_path / t, device="cpu",
                      progress=False), registry=registry, model_factory=_factory(net))
        apart += net.items
    net = ContentNet()
    out = run(
        RunConfig(
            tasks=["det", "mlc", "cnt"],
            data_root=data,
            results_dir=tmp_path / "all",
            device="cpu",
            progress=False,
        ),
        registry=registry,
        model_factory=_factory(net),
    )
    assert out.errors == []
    n_images = len(_samples(registry, "det", data, None)[1])
    # det and mlc read the same DIOR files: the 20 class prompts of each image, once; the
    # counting set's images are other files (PNG copies here), each (image, class) once
    questions = {
        (str(s.image), s.target["class"]) for s in _samples(registry, "cnt", data, None)[1]
    }
    assert net.items == n_images * 20 + len(questions)
    assert apart == 2 * n_images * 20 + len(_samples(registry, "cnt", data, None)[1])
    for t in ("det", "mlc", "cnt"):
        assert _stored(tmp_path / "all", t) == _stored(tmp_path / t, t)


@pytest.mark.parametrize("task", TASKS)
def test_tiny_checkpoint_identical_at_the_same_batch_composition(data: Path, task: str) -> None:
    from remotesam.bench.run.executor import predict_with_requests

    torch.set_num_threads(1)
    registry = Registry()
    model = RemoteSAM.from_checkpoint(TINY, batch_size=1)
    plugin, samples = _samples(registry, task, data, 1)
    got = json.loads(json.dumps(predict_with_requests(plugin, model, samples)))
    want = json.loads(json.dumps(plugin.predict(model, samples)))
    assert got == want


def test_a_stopped_run_keeps_what_was_finished(data: Path, tmp_path: Path) -> None:
    registry = Registry()
    with pytest.raises(KeyboardInterrupt):
        run(RunConfig(tasks=["mcc"], data_root=data, results_dir=tmp_path / "r", device="cpu",
                      batch_size=4, progress=False),
            registry=registry, model_factory=_factory(ContentNet(stop_after=40)))
    with ResultsStore(tmp_path / "r") as store:
        kept = store.count_predictions()
    assert 0 < kept < 21
    net = ContentNet()
    again = run(RunConfig(tasks=["mcc"], data_root=data, results_dir=tmp_path / "r",
                          device="cpu", batch_size=4, progress=False),
                registry=registry, model_factory=_factory(net))
    assert again.n_cached == kept and again.n_predicted == 21 - kept


def test_gpu_options_reach_the_engine_and_the_run_document(data: Path, tmp_path: Path) -> None:
    from remotesam.bench.cli import build_parser

    args = build_parser().parse_args(["run", "--batch-size", "auto", "--channels-last",
                                      "--compile"])
    assert (args.batch_size, args.channels_last, args.compile) == ("auto", True, True)
    net = ContentNet()
    out = run(RunConfig(tasks=["mcc"], data_root=data, results_dir=tmp_path / "r", device="cpu",
                        batch_size="auto", channels_last=True, progress=False, limit=2),
              registry=Registry(), model_factory=_factory(net))
    assert out.errors == []
    (info,) = out.document.provenance["engine"].values()
    # off CUDA there is no memory limit to search: "auto" keeps the factory's batch size
    assert info["batch_size"] == 8 and info["batch_size_option"] == "auto"
    assert info["channels_last"] is True and info["compile"] is False
    from remotesam.cpu import free_cpus

    assert 1 <= info["intra_op_threads"] <= free_cpus()  # the count the engine ran with
    assert "omp_wait_policy" in info
    with pytest.raises(Exception, match="expected an integer >= 1 or 'auto'"):
        run(RunConfig(tasks=["mcc"], data_root=data, results_dir=tmp_path / "r2", device="cpu",
                      batch_size="big", progress=False), registry=Registry(),
            model_factory=_factory(ContentNet()))


def test_first_images_are_decoded_while_the_model_loads(data: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from remotesam import engine as engine_mod
    from remotesam.bench.run import runner as runner_mod

    made: list[engine_mod.ImagePreloader] = []
    taken: list[str] = []
    init, take = engine_mod.ImagePreloader.__init__, engine_mod.ImagePreloader.take

    def spy_init(self: Any, *a: Any, **k: Any) -> None:
        init(self, *a, **k)
        made.append(self)

    def spy_take(self: Any, image: Any) -> Any:
        out = take(self, image)
        if out is not None:
            taken.append(os.fspath(image))
        return out

    monkeypatch.setattr(engine_mod.ImagePreloader, "__init__", spy_init)
    monkeypatch.setattr(engine_mod.ImagePreloader, "take", spy_take)
    inner = _factory(ContentNet())

    def loading(path: Any, **kw: Any) -> RemoteSAM:
        assert made and made[-1].wait(10)  # "loading" until the first images are decoded
        return inner(path, **kw)

    registry = Registry()
    _, samples = _samples(registry, "cnt", data, None)
    cfg = dict(tasks=["cnt"], data_root=data, device="cpu", batch_size=2, progress=False)
    out = run(RunConfig(**cfg, results_dir=tmp_path / "r", limit=3), registry=registry,
              model_factory=loading)
    assert out.errors == []
    # a model new to the store: its first images (2 x batch size) came decoded, all used
    first = list(dict.fromkeys(os.fspath(s.image) for s in samples[:3]))[:4]
    assert list(made[0].planned) == first and taken == first
    assert made[0]._closed  # closed after the checkpoint
    # the model's description is stored now: only the misses of the next run are decoded
    out = run(RunConfig(**cfg, results_dir=tmp_path / "r", limit=5), registry=registry,
              model_factory=loading)
    assert len(made) == 2
    misses = list(dict.fromkeys(os.fspath(s.image) for s in samples[3:5]))
    assert list(made[1].planned) == misses
    # without preloading (no images to decode) the same predictions
    monkeypatch.setattr(runner_mod, "first_images", lambda works, limit: [])
    run(RunConfig(**cfg, results_dir=tmp_path / "plain", limit=5), registry=registry,
        model_factory=inner)
    assert _stored(tmp_path / "r", "cnt") == _stored(tmp_path / "plain", "cnt")
