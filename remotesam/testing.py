"""Conformance checks for third-party task plugins (like scikit-learn's ``check_estimator``).

Use it in your own test suite::

    from remotesam.testing import check_task_plugin
    from my_package.tasks import MyTask

    def test_my_task_conforms(tmp_path):
        check_task_plugin(MyTask)                                   # static checks only
        check_task_plugin(MyTask, dataset_root=DATA, model=model)   # + predict and score

It raises :class:`PluginConformanceError` (an ``AssertionError``, so pytest shows it as a test
failure) listing every problem found.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "PluginConformanceError",
    "check_task_plugin",
    "constant_background_model",
    "constant_foreground_model",
]


class PluginConformanceError(AssertionError):
    """A task plugin breaks the contract of :mod:`remotesam.bench.api`; lists every problem."""


def check_task_plugin(cls: type, *, dataset_root: str | Path | None = None, model: Any = None,
                      dataset: str | None = None, n_samples: int = 4) -> None:
    """Check a task-plugin class against the contract.

    Always checked: class attributes (``name``, ``version``, ``metrics`` with exactly one
    primary, ``datasets`` of :class:`~remotesam.bench.api.DatasetAdapter` subclasses,
    ``default_dataset``), that the plugin constructs without options and that ``settings()``
    is a JSON-serialisable dict (and the same on two calls).

    With ``dataset_root`` (the folder of one dataset, i.e. ``<data-root>/<default_subdir>``):
    the adapter of ``dataset`` (default: ``default_dataset``) constructs, ``samples()`` is
    non-empty, deterministic (same ids twice) with unique string ids, every image of every
    sample (``Sample.image`` and the named ``Sample.images`` of a multi-image sample) is an
    existing file, and the first ``n_samples`` samples' input fingerprints can be computed.

    With ``dataset_root`` and ``model`` as well: ``predict`` on the first ``n_samples`` and
    ``score`` on its predictions as the store gives them back. Predictions, settings and scores
    are judged by :mod:`remotesam.bench.api.contract`, the same functions the registry and the
    runner use, so a plugin that passes here is accepted by ``remotesam-bench run``.

    Raises:
        PluginConformanceError: listing every problem found.
    """
    from remotesam.bench.api.contract import settings_problems, validate_plugin_class

    problems = [f"class: {p}" for p in validate_plugin_class(cls)]
    if problems:
        raise PluginConformanceError(_report(cls, problems))
    try:
        plugin = cls()
    except Exception as e:
        raise PluginConformanceError(_report(cls, [
            f"{cls.__name__}() (no options) raised {type(e).__name__}: {e}"])) from e
    problems += settings_problems(plugin)

    if dataset_root is not None and not problems:
        problems += _check_data_and_model(plugin, Path(dataset_root), model,
                                          dataset or plugin.default_dataset, n_samples)
    if problems:
        raise PluginConformanceError(_report(cls, problems))


def _check_data_and_model(plugin: Any, root: Path, model: Any, dataset: str, n: int,
                          ) -> list[str]:
    from remotesam.bench.api.contract import encode_predictions, scores_problems
    from remotesam.bench.errors import PluginError

    problems: list[str] = []
    if dataset not in plugin.datasets:
        return [f"dataset {dataset!r} is not in datasets {sorted(plugin.datasets)}"]
    adapter_cls = plugin.datasets[dataset]
    try:
        adapter = adapter_cls(root)
        samples = list(adapter.samples())
        again = [s.sample_id for s in adapter_cls(root).samples()]
    except Exception as e:
        return [f"{adapter_cls.__name__}({str(root)!r}) failed: {type(e).__name__}: {e}"]
    if not samples:
        return [f"{adapter_cls.__name__}.samples() is empty for {root}"]
    ids = [s.sample_id for s in samples]
    if not all(isinstance(i, str) and i for i in ids):
        problems.append("every sample_id must be a non-empty str")
    if len(set(ids)) != len(ids):
        problems.append("sample ids are not unique")
    if ids != again:
        problems.append("samples() order or ids differ between two adapters on the same data "
                        "(they must be deterministic)")
    problems += _check_sample_images(samples, n)
    if model is None or problems:
        return problems
    batch = samples[:n]
    try:
        preds = plugin.predict(model, batch)
    except Exception as e:
        return [f"predict raised {type(e).__name__}: {e}"]
    try:  # the runner's rule, in its words: the runner stores and scores these encodings
        encoded = encode_predictions(plugin.name, [s.sample_id for s in batch], preds)
    except PluginError as e:
        return [str(e)]
    try:
        scores = plugin.score(batch, encoded)
    except Exception as e:
        return [f"score raised {type(e).__name__}: {e}"]
    return scores_problems(plugin, [s.sample_id for s in batch], scores)


def _check_sample_images(samples: list[Any], n: int) -> list[str]:
    """Every sample is a :class:`~remotesam.bench.api.Sample` whose images (``image`` and each
    named one in ``images``) are existing files (or in-memory arrays); the first ``n`` samples'
    input fingerprints (every image's bytes, target, meta) can be computed."""
    from remotesam.bench.api import Sample
    from remotesam.bench.records.identity import sample_fingerprints

    problems: list[str] = []
    for s in samples:
        if not isinstance(s, Sample):
            return [f"samples() returned a {type(s).__name__}, expected remotesam.bench.api.Sample"]
        for name, image in s.all_images().items():
            where = "image" if name == "image" else f"images[{name!r}]"
            if isinstance(image, str | Path) and not Path(image).is_file():
                problems.append(f"sample {s.sample_id!r}: {where} = {str(image)!r} is not a file")
            elif not isinstance(image, str | Path | np.ndarray):
                problems.append(f"sample {s.sample_id!r}: {where} is a {type(image).__name__}, "
                                "expected a path")
        if len(problems) >= 5:
            problems.append("(further samples not checked)")
            break
    if not problems:
        try:
            sample_fingerprints(samples[:n])
        except Exception as e:
            problems.append(f"the input fingerprint of the samples failed ({type(e).__name__}: "
                            f"{e}); target and meta must hold JSON-like values")
    return problems


def _report(cls: type, problems: list[str]) -> str:
    name = f"{cls.__module__}.{cls.__qualname__}" if isinstance(cls, type) else repr(cls)
    return f"task plugin {name} does not conform:\n" + "\n".join(f"  - {p}" for p in problems)


# -- reference predictors ------------------------------------------------------------------------


def _constant_net(foreground: bool, image_size: int) -> Any:
    """A network with the same logits for every image and sentence (torch imported lazily)."""
    import torch

    class ConstantNet(torch.nn.Module):
        def forward(self, image: torch.Tensor, input_ids: torch.Tensor,
                    attention_mask: torch.Tensor, text_features: Any = None) -> torch.Tensor:
            logits = torch.zeros(image.shape[0], 2, image_size, image_size, device=image.device)
            logits[:, 1 if foreground else 0] = 1.0
            return logits

    return ConstantNet()


def _constant_model(foreground: bool, path: Any, *, device: str = "cpu",
                    precision: str = "fp32", batch_size: int = 8, **_: Any) -> Any:
    from remotesam.checkpoint import load_checkpoint
    from remotesam.predictor import RemoteSAM

    size = int(load_checkpoint(path).config.img_size)  # same input size as the checkpoint
    dev = "cpu" if device == "auto" else device
    return RemoteSAM(_constant_net(foreground, size), device=dev, precision="fp32",
                     batch_size=batch_size, image_size=size)


def constant_foreground_model(path: Any, **kwargs: Any) -> Any:
    """A reference predictor whose mask is the whole image for every prompt.

    For ``remotesam-bench run --model-factory remotesam.testing:constant_foreground_model``:
    it ignores the checkpoint's weights (the checkpoint still identifies the run), so its scores
    are the floor a trained checkpoint must clear on each task.
    """
    return _constant_model(True, path, **kwargs)


def constant_background_model(path: Any, **kwargs: Any) -> Any:
    """A reference predictor whose mask is empty for every prompt (see the foreground one)."""
    return _constant_model(False, path, **kwargs)
