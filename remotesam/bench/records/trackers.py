"""Experiment trackers: every metric of a run, per checkpoint, to TensorBoard, Weights & Biases
and MLflow.

``remotesam-bench run --log-to tensorboard[:DIR],wandb[:PROJECT],mlflow[:URI]`` logs, after the
run, one
point per checkpoint for every metric of every (task, dataset): the tag is
``TASK.DATASET/METRIC`` (e.g. ``ref.rrsisd/oIoU``), beside ``TASK.DATASET/n_evaluated`` and
``TASK.DATASET/n_failed`` so that a number never travels without how many samples it covers.
``remotesam-train --eval-every N --log-to ...`` logs the training loss, the validation and the
periodic benchmark evaluation the same way, at the training step.

The x axis (global step) of a checkpoint is, in this order (:func:`checkpoint_steps`):

1. the ``step`` recorded in a safetensors file's metadata (``remotesam-train`` writes it);
2. a step in the file name: ``step_1200``, ``step-1200``, ``iter_5000``, ``global_step800``,
   ``checkpoint-500`` (Hugging Face Trainer), ``model_0004999`` (detectron2);
3. otherwise the checkpoint's index in the run (0, 1, 2, ...), also when two checkpoints would
   share a step.

Beside the scalars, ``run`` gives the trackers (:func:`log_run_document` with ``results_dir``):

* the run's context as parameters (W&B config, MLflow params): model (checkpoints with their
  sha256), data (real or synthetic, data root), subset, precision, device, samples evaluated
  and failed;
* one per-sample table per (checkpoint, task, dataset): sample id, image, target, prediction
  (JSON, long ones cut at 1,000 characters), error, and the run's per-sample metric values,
  capped at ``max_rows`` rows (``--tracker-rows``, default 1,000; 0: none), the first samples in
  dataset order. W&B: a ``wandb.Table`` under ``samples/TASK.DATASET`` at the checkpoint's
  step; MLflow: the artefact ``samples/<checkpoint>-<sha8>/TASK.DATASET.json`` (MLflow's table
  format ``{"columns": [...], "data": [[...], ...]}``); TensorBoard: a text summary (markdown);
* the HTML report and the leaderboard (markdown and HTML) of the run as artefacts (W&B: one
  artifact ``remotesam-bench-<run_id>`` of type ``report``; MLflow: under ``reports/``).

Trackers are optional extras: ``pip install 'remotesam-bench[tensorboard]'`` (event files written
with ``torch.utils.tensorboard``), ``pip install 'remotesam-bench[wandb]'`` and ``pip install
'remotesam-bench[mlflow]'``. W&B follows its own environment (``WANDB_MODE=offline`` writes the
run without a network, ``wandb sync`` uploads it later; its files go under ``$WANDB_DIR`` when
set, else under the results directory). MLflow logs to ``URI``, else ``$MLFLOW_TRACKING_URI``,
else the file store ``<results>/mlruns`` (read it with ``mlflow ui --backend-store-uri
<results>/mlruns`` or ``mlflow.tracking.MlflowClient``), in the experiment
``$MLFLOW_EXPERIMENT_NAME`` or ``remotesam-bench``; for a file store it sets
``MLFLOW_ALLOW_FILE_STORE=true`` (MLflow 3 refuses file stores without it).
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from remotesam.bench.errors import InputError

__all__ = [
    "DEFAULT_TABLE_ROWS",
    "TRACKERS",
    "MlflowTracker",
    "TensorBoardTracker",
    "Tracker",
    "TrackerError",
    "TrackerSpec",
    "WandbTracker",
    "checkpoint_steps",
    "document_metrics",
    "log_run_document",
    "open_trackers",
    "parse_log_to",
    "require_extras",
    "run_params",
    "sample_tables",
    "step_from_checkpoint",
]

#: Tracker kinds accepted by ``--log-to``.
TRACKERS = ("tensorboard", "wandb", "mlflow")

DEFAULT_WANDB_PROJECT = "remotesam-bench"
DEFAULT_MLFLOW_EXPERIMENT = "remotesam-bench"
#: Rows of a per-sample table, per (checkpoint, task, dataset), unless configured.
DEFAULT_TABLE_ROWS = 1000
#: Longer JSON texts (targets, predictions: masks as RLE) are cut in tables.
_CELL_CHARS = 1000


class TrackerError(InputError):
    """A tracker that cannot be used (extra not installed, bad ``--log-to`` value, a directory
    that cannot be written); the message says what to do."""


class Tracker(Protocol):
    """What the harness and the trainer call: scalars at a step, then close."""

    def log(self, metrics: Mapping[str, float], step: int) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class TrackerSpec:
    """One ``--log-to`` item: ``kind`` (``tensorboard``/``wandb``/``mlflow``) and its optional
    argument (TensorBoard: the log directory; W&B: the project; MLflow: the tracking URI)."""

    kind: str
    arg: str | None = None

    def __str__(self) -> str:
        return self.kind + (f":{self.arg}" if self.arg else "")


def parse_log_to(values: Sequence[str] | str | None) -> list[TrackerSpec]:
    """``["tensorboard:runs/tb,wandb"]`` -> specs. Items are comma-separated and repeatable.

    Raises:
        TrackerError: an unknown tracker (the message lists the known ones) or a tracker named
            twice.
    """
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out: list[TrackerSpec] = []
    for raw in values:
        for item in (s.strip() for s in str(raw).split(",")):
            if not item:
                continue
            kind, _, arg = item.partition(":")
            kind = kind.strip().lower()
            if kind not in TRACKERS:
                raise TrackerError(f"--log-to {item!r}: unknown tracker {kind!r}; expected "
                                   "tensorboard[:DIR], wandb[:PROJECT] and/or mlflow[:URI], "
                                   "comma-separated")
            if any(s.kind == kind for s in out):
                raise TrackerError(f"--log-to: {kind} is named twice")
            out.append(TrackerSpec(kind, arg.strip() or None))
    return out


def _missing_extra(kind: str, exc: ImportError) -> TrackerError:
    return TrackerError(f"--log-to {kind} needs the optional extra {kind!r} ({exc}); install "
                        f"it with: pip install 'remotesam-bench[{kind}]'")


class TensorBoardTracker:
    """Scalars to TensorBoard event files in ``log_dir`` (``torch.utils.tensorboard``).

    Raises:
        TrackerError: the ``tensorboard`` package is not installed.
    """

    def __init__(self, log_dir: str | Path, *, config: Mapping[str, Any] | None = None) -> None:
        try:
            import tensorboard  # noqa: F401  (torch.utils.tensorboard needs it)
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:
            raise _missing_extra("tensorboard", e) from e
        self.log_dir = Path(log_dir)
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise TrackerError(f"--log-to tensorboard: cannot create {self.log_dir} ({e})") from e
        self._writer = SummaryWriter(log_dir=str(self.log_dir))
        if config:
            text = json.dumps(config, indent=1, sort_keys=True, default=str)
            # markdown code block, as TensorBoard renders text summaries as markdown
            self._writer.add_text("config", "```\n" + text + "\n```", 0)

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        for tag, value in metrics.items():
            self._writer.add_scalar(tag, float(value), global_step=int(step))
        self._writer.flush()

    def log_table(self, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                  step: int) -> None:
        """A per-sample table as a markdown text summary."""
        def cell(v: Any) -> str:
            return str(v).replace("|", "\\|").replace("\n", " ")

        lines = ["| " + " | ".join(map(cell, columns)) + " |",
                 "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(map(cell, r)) + " |" for r in rows]
        self._writer.add_text(name, "\n".join(lines), int(step))
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class WandbTracker:
    """Scalars to a Weights & Biases run (its own environment decides online/offline:
    ``WANDB_MODE=offline`` writes ``<dir>/wandb/offline-run-*`` without a network).

    Raises:
        TrackerError: the ``wandb`` package is not installed, or ``wandb.init`` failed.
    """

    def __init__(self, *, project: str | None, name: str | None, directory: str | Path,
                 config: Mapping[str, Any] | None = None) -> None:
        try:
            import wandb
        except ImportError as e:
            raise _missing_extra("wandb", e) from e
        self.dir = Path(os.environ.get("WANDB_DIR") or directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            self._run = wandb.init(project=project or DEFAULT_WANDB_PROJECT, name=name,
                                   dir=str(self.dir), config=dict(config or {}))
        except Exception as e:  # wandb raises its own error types (auth, network, usage)
            raise TrackerError(f"--log-to wandb: wandb.init failed ({type(e).__name__}: {e}); "
                               "log in with `wandb login`, or set WANDB_MODE=offline to write "
                               "the run locally and `wandb sync` it later") from e

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        self._run.log({k: float(v) for k, v in metrics.items()}, step=int(step))

    def log_params(self, params: Mapping[str, Any]) -> None:
        """The run's context into the W&B config (``config.update``)."""
        self._run.config.update(dict(params), allow_val_change=True)

    def log_table(self, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                  step: int) -> None:
        """A ``wandb.Table`` under ``name`` at ``step``."""
        import wandb

        self._run.log({name: wandb.Table(columns=list(columns), data=[list(r) for r in rows])},
                      step=int(step))

    def log_files(self, paths: Sequence[Path], name: str, kind: str = "report") -> None:
        """One artifact ``name`` of type ``kind`` holding ``paths``."""
        import wandb

        art = wandb.Artifact(_artifact_name(name), type=kind)
        for p in paths:
            art.add_file(str(p), name=Path(p).name)
        self._run.log_artifact(art)

    def close(self) -> None:
        self._run.finish()


def _artifact_name(name: str) -> str:
    """W&B artifact names: letters, digits, dashes, underscores and dots."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", name)


_MLFLOW_KEY = re.compile(r"[^A-Za-z0-9_\-. :/]")


class MlflowTracker:
    """Metrics, parameters, per-sample tables and report files to an MLflow run (see the module
    docstring for the tracking URI and the experiment).

    Raises:
        TrackerError: the ``mlflow`` package is not installed, or the store cannot be opened.
    """

    def __init__(self, *, uri: str | None, name: str, base_dir: str | Path,
                 config: Mapping[str, Any] | None = None) -> None:
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as e:
            raise _missing_extra("mlflow", e) from e
        uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or str(Path(base_dir) / "mlruns")
        if "://" not in uri and not uri.startswith("file:"):  # a folder: MLflow's file store
            uri = Path(uri).resolve().as_uri()
        if uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.uri = uri
        experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_MLFLOW_EXPERIMENT
        try:
            self._client = MlflowClient(tracking_uri=uri)
            exp = self._client.get_experiment_by_name(experiment)
            exp_id = exp.experiment_id if exp is not None else \
                self._client.create_experiment(experiment)
            self.run_id = self._client.create_run(exp_id, run_name=name).info.run_id
        except Exception as e:  # MLflow raises its own types (store, permissions, network)
            raise TrackerError(f"--log-to mlflow: cannot open the MLflow store {uri} "
                               f"({type(e).__name__}: {e}); pass mlflow:URI with a writable "
                               "file store or a reachable tracking server") from e
        if config:
            self.log_params({f"option.{k}": v for k, v in config.items()})

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._client.log_batch(self.run_id, metrics=[
            Metric(_MLFLOW_KEY.sub("_", k), float(v), now, int(step))
            for k, v in metrics.items()])

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(_MLFLOW_KEY.sub("_", str(k)),
                       (v if isinstance(v, str) else json.dumps(v, default=str))[:6000])
                 for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow's limit per batch
            self._client.log_batch(self.run_id, params=items[i:i + 100])

    def log_table(self, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                  step: int) -> None:
        """The artefact ``<name>.json`` in MLflow's table format."""
        self._client.log_dict(self.run_id, {"columns": list(columns),
                                            "data": [list(r) for r in rows]}, f"{name}.json")

    def log_files(self, paths: Sequence[Path], name: str, kind: str = "report") -> None:
        """``paths`` as artefacts under ``<kind>s/``."""
        for p in paths:
            self._client.log_artifact(self.run_id, str(p), f"{kind}s")

    def close(self) -> None:
        self._client.set_terminated(self.run_id)


def require_extras(specs: Sequence[TrackerSpec]) -> None:
    """Check that the extra of every tracker in ``specs`` is installed (before a long run).

    Raises:
        TrackerError: naming the missing extra and the ``pip install`` line.
    """
    for spec in specs:
        try:
            if spec.kind == "tensorboard":
                import tensorboard  # noqa: F401
                from torch.utils.tensorboard import SummaryWriter  # noqa: F401
            elif spec.kind == "mlflow":
                import mlflow  # noqa: F401
            else:
                import wandb  # noqa: F401
        except ImportError as e:
            raise _missing_extra(spec.kind, e) from e


def open_trackers(specs: Sequence[TrackerSpec], *, base_dir: str | Path, name: str,
                  config: Mapping[str, Any] | None = None) -> list[Tracker]:
    """Open every tracker of ``specs``.

    Args:
        base_dir: TensorBoard writes to ``base_dir/tensorboard/<name>`` unless its spec names a
            directory; W&B writes its local files under ``$WANDB_DIR`` or ``base_dir``; MLflow
            to its URI, ``$MLFLOW_TRACKING_URI`` or the file store ``base_dir/mlruns``.
        name: the run's name (run id, or the training output folder's name).
        config: recorded with the run (TensorBoard text ``config``, W&B ``config``).

    Raises:
        TrackerError: a missing extra (nothing is left open).
    """
    opened: list[Tracker] = []
    try:
        for spec in specs:
            if spec.kind == "tensorboard":
                log_dir = Path(spec.arg) if spec.arg else Path(base_dir) / "tensorboard" / name
                opened.append(TensorBoardTracker(log_dir, config=config))
            elif spec.kind == "mlflow":
                opened.append(MlflowTracker(uri=spec.arg, name=name, base_dir=base_dir,
                                            config=config))
            else:
                opened.append(WandbTracker(project=spec.arg, name=name, directory=base_dir,
                                           config=config))
    except BaseException:
        for t in opened:
            t.close()
        raise
    return opened


# ---------------------------------------------------------------------------------------------
# steps of checkpoints

_NAME_STEP = (
    re.compile(r"(?<![a-z])(?:global[_-]?step|step|iter(?:ation)?)[_-]?(\d+)", re.IGNORECASE),
    re.compile(r"checkpoint-(\d+)", re.IGNORECASE),
    re.compile(r"model_(\d{5,})", re.IGNORECASE),
)


def step_from_checkpoint(name: str, path: str | Path | None = None) -> int | None:
    """The training step of a checkpoint: safetensors metadata ``step``, else a step in the
    file name (``step_1200``, ``iter-5000``, ``checkpoint-500``, ``model_0004999``), else None.
    """
    if path is not None and str(path).endswith(".safetensors"):
        from remotesam.checkpoint import safetensors_metadata

        raw = safetensors_metadata(path).get("step")
        if raw is not None and str(raw).isdigit():
            return int(raw)
    stem = Path(str(name)).name
    parents = [Path(str(name)).parent.name]
    for text in (stem, *parents):
        for rx in _NAME_STEP:
            m = rx.search(text)
            if m:
                return int(m.group(1))
    return None


def checkpoint_steps(checkpoints: Sequence[tuple[str, str | Path | None]]) -> tuple[list[int], str]:
    """Global steps of ``[(name, path), ...]`` in order, and where they came from
    (``"checkpoint"``: metadata or names; ``"index"``: the position, used when a step is
    missing for any checkpoint or two checkpoints share one)."""
    steps = [step_from_checkpoint(n, p) for n, p in checkpoints]
    if steps and all(s is not None for s in steps) and len(set(steps)) == len(steps):
        return [int(s) for s in steps if s is not None], "checkpoint"
    return list(range(len(checkpoints))), "index"


# ---------------------------------------------------------------------------------------------
# a run document to trackers


def document_metrics(doc: Any) -> list[tuple[str, str, dict[str, float]]]:
    """``[(checkpoint name, path, {tag: value})]`` of a run document, one entry per checkpoint in
    the order of first appearance. Tags are ``TASK.DATASET/METRIC`` (plus ``/n_evaluated`` and
    ``/n_failed``); NaN values (no sample evaluated) are left out."""
    out: dict[str, tuple[str, dict[str, float]]] = {}
    for r in doc.results:
        key = r.checkpoint.sha256 or r.checkpoint.name
        _, metrics = out.setdefault(key, (r.checkpoint.name, {}))
        prefix = f"{r.task}.{r.dataset}" + (f"@{r.split}" if _nonstandard_split(doc, r) else "")
        for name, m in r.metrics.items():
            if m.value is not None and math.isfinite(float(m.value)):
                metrics[f"{prefix}/{name}"] = float(m.value)
        metrics[f"{prefix}/n_evaluated"] = float(r.n_evaluated)
        metrics[f"{prefix}/n_failed"] = float(r.n_failed)
    paths = {r.checkpoint.sha256 or r.checkpoint.name: r.checkpoint.path for r in doc.results}
    return [(name, paths[k], m) for k, (name, m) in out.items()]


def _nonstandard_split(doc: Any, r: Any) -> bool:
    """Two results of one checkpoint on the same task.dataset differ by split: tag it."""
    same = [x for x in doc.results if x.checkpoint == r.checkpoint and x.task == r.task
            and x.dataset == r.dataset]
    return len({x.split for x in same}) > 1


def log_run_document(doc: Any, trackers: Sequence[Tracker], *,
                     results_dir: str | Path | None = None,
                     max_rows: int = DEFAULT_TABLE_ROWS,
                     files: Sequence[Path] = (), registry: Any = None,
                     ) -> list[tuple[str, int]]:
    """Log every metric of ``doc`` per checkpoint (see the module docstring for the step).

    With ``results_dir`` (the run's, holding its store), trackers that take them also get the
    run's parameters (:func:`run_params`) and per-sample tables (:func:`sample_tables`, at most
    ``max_rows`` rows each; 0: none); ``files`` (the HTML report, the leaderboard) are logged as
    one artefact ``remotesam-bench-<run_id>``.

    Returns:
        ``[(checkpoint name, step)]`` in logging order (ascending step).
    """
    entries = document_metrics(doc)
    steps, _ = checkpoint_steps([(name, path) for name, path, _ in entries])
    order = sorted(range(len(entries)), key=lambda i: steps[i])
    takers = [t for t in trackers if hasattr(t, "log_table")]
    tables: dict[str, list[tuple[str, list[str], list[list[Any]]]]] = {}
    if results_dir is not None and takers and max_rows > 0:
        for ckpt_name, name, columns, rows in sample_tables(doc, results_dir, max_rows,
                                                             registry=registry):
            tables.setdefault(ckpt_name, []).append((name, columns, rows))
    logged = []
    for i in order:  # ascending steps, tables with their checkpoint's scalars (W&B needs it)
        name, _, metrics = entries[i]
        for t in trackers:
            t.log(metrics, steps[i])
        for table_name, columns, rows in tables.get(name, []):
            for t in takers:
                t.log_table(table_name, columns, rows, steps[i])
        logged.append((name, steps[i]))
    if results_dir is None:
        return logged
    params = run_params(doc)
    for t in trackers:
        if hasattr(t, "log_params"):
            t.log_params(params)
    if files:
        for t in trackers:
            if hasattr(t, "log_files"):
                t.log_files(list(files), f"remotesam-bench-{doc.run_id}")
    return logged


def run_params(doc: Any) -> dict[str, Any]:
    """The context of ``doc``'s numbers as flat parameters: model, data, failures ..."""
    prov = doc.provenance or {}
    ckpts = {r.checkpoint.sha256 or r.checkpoint.name: r.checkpoint for r in doc.results}
    cfg = prov.get("config", {}) or {}
    data_root = cfg.get("data_root")
    synthetic = bool(prov.get("synthetic", any(getattr(r, "synthetic", False)
                                               for r in doc.results)))
    return {
        "run_id": doc.run_id,
        "model": ", ".join(f"{c.name} (sha256 {c.sha256[:12]})" if c.sha256 else c.name
                           for c in ckpts.values()),
        "model_factory": prov.get("model_factory"),
        "data": ("synthetic (procedural benchmark)" if synthetic else "real")
        + (f", data root {data_root}" if data_root else ""),
        "synthetic": synthetic,
        "subset": bool(prov.get("subset", any(r.subset for r in doc.results))),
        "tasks": ", ".join(sorted({f"{r.task}.{r.dataset}/{r.split}" for r in doc.results})),
        "precision": prov.get("precision"),
        "device": prov.get("device"),
        "world_size": prov.get("world_size"),
        "n_total": sum(r.n_total for r in doc.results),
        "n_evaluated": sum(r.n_evaluated for r in doc.results),
        "n_failed": sum(r.n_failed for r in doc.results),
        "package_version": prov.get("package_version"),
    }


def _cell(obj: Any) -> Any:
    if obj is None or isinstance(obj, bool | int | str):
        return obj if not isinstance(obj, str) or len(obj) <= _CELL_CHARS else \
            obj[:_CELL_CHARS] + " ..."
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    text = json.dumps(obj, sort_keys=True, default=str)
    return text if len(text) <= _CELL_CHARS else text[:_CELL_CHARS] + " ..."


def sample_tables(doc: Any, results_dir: str | Path, max_rows: int = DEFAULT_TABLE_ROWS, *,
                  registry: Any = None,
                  ) -> list[tuple[str, str, list[str], list[list[Any]]]]:
    """Per-sample tables of ``doc``: ``[(checkpoint name, table name, columns, rows)]``.

    One table per result, named ``samples/TASK.DATASET`` (``@SPLIT`` when a checkpoint has
    several splits of it; ``samples/<checkpoint>-<sha8>/...`` when the run has several
    checkpoints). Columns: ``sample_id``, ``image``, ``target``, ``prediction``, ``error``
    and one per per-sample metric (``NAME.num`` / ``NAME.den`` for ratio metrics); at most
    ``max_rows`` rows, the first samples in dataset order. Samples and predictions are read
    back from the data and the store (:func:`remotesam.bench.records.samples.load_result`);
    where that
    fails (data moved), the table holds the run document's per-sample values only.
    """
    from remotesam.bench.errors import InputError
    from remotesam.bench.records.samples import checkpoint_folder, load_result, per_sample_values

    several = len({r.checkpoint.sha256 or r.checkpoint.name for r in doc.results}) > 1
    out = []
    for r in doc.results:
        split = f"@{r.split}" if _nonstandard_split(doc, r) else ""
        name = (
            "samples/"
            + (f"{checkpoint_folder(r)}/" if several else "")
            + f"{r.task}.{r.dataset}{split}"
        )
        metrics = list(r.per_sample) + [
            f"{m}.{part}" for m in r.per_sample_ratio for part in ("num", "den")
        ]
        columns = ["sample_id", "image", "target", "prediction", "error", *metrics]
        try:
            loaded = load_result(doc, r, results_dir, registry=registry)
            records: list[tuple[Any, ...]] = [
                (
                    rec.sample.sample_id,
                    str(rec.sample.image),
                    rec.sample.target,
                    rec.prediction,
                    rec.error,
                    rec.metrics,
                )
                for rec in loaded.records[:max_rows]
            ]
        except InputError:
            values = per_sample_values(r)
            errors = {f["sample_id"]: f.get("error") for f in r.failures}
            ids = list(dict.fromkeys([*values, *errors]))[:max_rows]
            records = [(sid, None, None, None, errors.get(sid), values.get(sid, {}))
                       for sid in ids]
        rows = []
        for sid, image, target, pred, err, vals in records:
            row = [sid, image, _cell(target), _cell(pred), err]
            for m in metrics:
                base, _, part = m.rpartition(".")
                v = (
                    vals.get(base)
                    if part in ("num", "den") and base in r.per_sample_ratio
                    else vals.get(m)
                )
                if isinstance(v, dict):
                    v = v.get(part)
                row.append(_cell(v))
            rows.append(row)
        out.append((r.checkpoint.name, name, columns, rows))
    return out
