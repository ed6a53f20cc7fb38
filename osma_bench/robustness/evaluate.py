"""Score a finished run's method on perturbed copies of its test images; write ``robustness.json``.

The method is rebuilt exactly as the harness left it for its final evaluation: the class from the
registry, a :class:`~osma_bench.methods.api.MethodSpec` from ``run.json``'s resolved config, the
selected checkpoint's state, then ``finalize`` on the training and validation data in order (post-hoc
fitting such as OpenMax's Weibull tails is not in the checkpoint). Only the Method API is used, so
every registered method works, plugins included.

Each batch of the known test partition and of every unknown group (``TEST_PARTITIONS``) is read
once as uint8, perturbed by every perturbation in turn (:mod:`osma_bench.robustness.perturbations`)
and scored with ``predict``; no perturbed partition is ever held whole. Metrics are the run's own
(:func:`osma_bench.evaluation.evaluate.evaluate_scores`): closed-set accuracy and macro-F1, and
AUROC, OSCR and TNR at 95% TPR per unknown group and for all unknowns. The ``clean`` row goes
through the same path without a perturbation and is checked against ``metrics.json``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from osma_bench.errors import OsmaError
from osma_bench.harness import checkpoint
from osma_bench.harness.data import TEST_PARTITIONS, DatasetInfo, Partition, to_device_float
from osma_bench.io import read_json, write_json
from osma_bench.methods.api import Method
from osma_bench.robustness import ROBUSTNESS_FILE, SCHEMA_VERSION
from osma_bench.robustness.perturbations import (
    CLEAN,
    JPEG_SUBSAMPLING,
    Perturbation,
    Settings,
    format_spec,
)


@dataclass
class RestoredRun:
    """A finished run with its method rebuilt and finalized, ready to predict."""

    run_dir: Path
    record: dict[str, Any]
    config: dict[str, Any]
    method: Method
    dataset: DatasetInfo
    split: int
    device: torch.device
    checkpoint: str
    restore_s: float


def read_finished_run(run_dir: Path) -> dict[str, Any]:
    """``run.json`` of a complete run that has ``metrics.json``; OsmaError otherwise."""
    from osma_bench.results import require_complete

    run_dir = Path(run_dir)
    record = require_complete(run_dir)
    for key in ("method", "dataset", "dataset_sha256", "split", "seed", "profile", "config"):
        if key not in record:
            raise OsmaError(f"{run_dir / 'run.json'}: lacks {key!r} (not written by osma-bench run)")
    if not isinstance(record["config"], dict):
        raise OsmaError(f"{run_dir / 'run.json'}: 'config' is not an object")
    return record


def selected_state(run_dir: Path, record: dict[str, Any], device: torch.device) -> tuple[str, dict[str, Any]]:
    """The method state the run was evaluated with, and the checkpoint file it came from.

    ``select_on: val_accuracy``: ``checkpoint_best.pt`` (its epoch must be the run's selected
    epoch), else ``checkpoint.pt`` when the last epoch was the selected one; ``select_on: last``:
    ``checkpoint.pt``. Anything else is refused: the model that made ``metrics.json`` is gone.
    """
    run_dir = Path(run_dir)
    config = record["config"]
    epochs = int(config.get("epochs", 0))
    chosen = record.get("selected_epoch")
    best, last = run_dir / checkpoint.BEST, run_dir / checkpoint.LAST
    hint = ("checkpoints are not committed with results; rerun it with osma-bench run --overwrite "
            "(same --profile/--set) to make them")
    if config.get("select_on", "val_accuracy") == "val_accuracy" and best.is_file():
        saved = checkpoint.load(best, device)
        if chosen is not None and int(saved.get("epoch", -1)) != int(chosen):
            raise OsmaError(f"{best}: holds epoch {saved.get('epoch')} but run.json selected epoch {chosen}; "
                            f"the run was changed after its evaluation ({hint})")
        return checkpoint.BEST, saved["state"]
    if last.is_file() and (config.get("select_on") == "last" or chosen is None or int(chosen) == epochs - 1):
        saved = checkpoint.load(last, device)
        if saved.get("method") not in (None, record["method"]):
            raise OsmaError(f"{last}: made by method {saved.get('method')!r}, run.json says {record['method']!r}")
        if saved.get("dataset_sha256") not in (None, record["dataset_sha256"]):
            raise OsmaError(f"{last}: made on another dataset version than run.json names")
        if int(saved.get("epoch", -1)) != epochs:
            raise OsmaError(f"{last}: holds {saved.get('epoch')} of the run's {epochs} epochs ({hint})")
        return checkpoint.LAST, saved["state"]
    missing = checkpoint.BEST if config.get("select_on", "val_accuracy") == "val_accuracy" else checkpoint.LAST
    raise OsmaError(f"{run_dir}: no usable checkpoint ({missing} is missing); {hint}")


def restore_run(run_dir: Path, data: Path | None = None, device: str = "auto", verify: bool = True) -> RestoredRun:
    """Rebuild a finished run's method as it was for its final evaluation (see the module docstring)."""
    from osma_bench.harness.data import open_dataset, ordered_batches, training_batches
    from osma_bench.harness.device import select_device
    from osma_bench.harness.seeding import seed_everything
    from osma_bench.methods.api import MethodSpec
    from osma_bench.methods.registry import get_method

    started = time.perf_counter()
    run_dir = Path(run_dir)
    record = read_finished_run(run_dir)
    method_cls = get_method(str(record["method"]))
    config = dict(record["config"])
    torch_device = select_device(device)
    name, state = selected_state(run_dir, record, torch_device)
    root = Path(data) if data is not None else Path("datasets") / str(record["dataset"])
    if not (root / "dataset.json").is_file():
        raise OsmaError(f"{root}: dataset of run {run_dir} not found; pass --data DIR (the dataset it was run on)")
    split, seed = int(record["split"]), int(record["seed"])
    dataset = open_dataset(root, split, verify=verify)
    if dataset.content_sha256 != record["dataset_sha256"]:
        raise OsmaError(f"{root}: dataset version {dataset.content_sha256[:12]}... is not the run's "
                        f"({str(record['dataset_sha256'])[:12]}...); pass --data with the dataset it was run on")
    if int(config.get("num_threads", 0)) > 0:
        torch.set_num_threads(int(config["num_threads"]))
    seed_everything(seed, torch_device)
    limit, workers, batch = float(config["preload_limit_mb"]), int(config["num_workers"]), int(config["eval_batch_size"])
    train = Partition(dataset.root, split, "train", torch_device, limit, workers)
    val = Partition(dataset.root, split, "val", torch_device, limit, workers)
    steps = len(training_batches(train, config, seed, method_cls.balanced_loader, dataset.num_classes))
    spec = MethodSpec(num_classes=dataset.num_classes, image_size=dataset.image_size, device=torch_device,
                      hparams=config, seed=seed, epochs=int(config["epochs"]), steps_per_epoch=steps,
                      profile=str(record["profile"]), split=split, dataset_sha256=dataset.content_sha256)
    method = method_cls(spec)
    try:
        method.load_state_dict(state)
    except OsmaError:
        raise
    except Exception as exc:  # a checkpoint that does not fit this version of the method
        raise OsmaError(f"{run_dir / name}: does not fit method {record['method']!r} as installed now "
                        f"({type(exc).__name__}: {exc})") from None
    method.finalize(ordered_batches(train, batch), ordered_batches(val, batch))
    return RestoredRun(run_dir, record, config, method, dataset, split, torch_device, name,
                       time.perf_counter() - started)


def uint8_batches(part: Partition, batch_size: int) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
    """``(uint8 images (B, 3, H, W) on the CPU, global image indices)`` of ``part``, in order."""
    if part.images is not None:
        for start in range(0, len(part), batch_size):
            yield part.images[start:start + batch_size], part.indices[start:start + batch_size]
        return
    from torch.utils.data import DataLoader

    loader = DataLoader(part.dataset, batch_size=batch_size, shuffle=False, num_workers=part.num_workers)
    for images, _, indices in loader:
        yield images, indices.numpy().astype(np.int64)


@dataclass
class _Columns:
    logits: list[np.ndarray] = field(default_factory=list)
    score: list[np.ndarray] = field(default_factory=list)
    seconds: float = 0.0


def score_perturbed(restored: RestoredRun, perturbations: list[Perturbation], settings: Settings,
                    batch_size: int, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Predictions of every perturbation (and ``clean``) on every test partition, as score columns."""
    keys = [CLEAN] + [p.label for p in perturbations]
    columns = {k: _Columns() for k in keys}
    ids: dict[str, list[np.ndarray]] = {"index": [], "sha256": [], "group": [], "label": []}
    config, method = restored.config, restored.method
    read_s = 0.0
    for group, name in enumerate(TEST_PARTITIONS):
        t0 = time.perf_counter()
        part = Partition(restored.dataset.root, restored.split, name, restored.device,
                         float(config["preload_limit_mb"]), int(config["num_workers"]))
        ids["index"].append(part.indices)
        ids["sha256"].append(part.sha256().astype("S64") if len(part) else np.zeros(0, "S64"))
        ids["group"].append(np.full(len(part), group, np.int8))
        ids["label"].append(part.labels)
        read_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        for images, indices in uint8_batches(part, batch_size):
            read_s += time.perf_counter() - t0
            for key, perturbation in zip(keys, [None, *perturbations], strict=True):
                t1 = time.perf_counter()
                batch = images if perturbation is None else perturbation.apply(images, indices, settings)
                with torch.no_grad():
                    pred = method.predict(to_device_float(batch, restored.device))
                columns[key].logits.append(pred.logits.float().cpu().numpy())
                columns[key].score.append(pred.score.double().cpu().numpy())
                columns[key].seconds += time.perf_counter() - t1
            t0 = time.perf_counter()
        if progress is not None:
            progress(f"{name}: {len(part)} images x {len(keys)} passes")
        del part
    out = {k: np.concatenate(v) for k, v in ids.items()}
    out["passes"] = {k: (np.concatenate(c.logits), np.concatenate(c.score), c.seconds) for k, c in columns.items()}
    out["read_s"] = read_s
    return out


def metrics_of(restored: RestoredRun, scored: dict[str, Any], key: str, split_info) -> dict[str, Any]:
    """Closed-set and open-set metrics of one pass, computed as for ``metrics.json``."""
    from osma_bench.evaluation.evaluate import evaluate_scores
    from osma_bench.evaluation.scores import make_table

    logits, score, _ = scored["passes"][key]
    table = make_table(index=scored["index"], sha256=scored["sha256"], group=scored["group"],
                       label=scored["label"], logits=logits, score=score, split=restored.split,
                       dataset_sha256=restored.dataset.content_sha256, method=str(restored.record["method"]),
                       num_classes=restored.dataset.num_classes, source=f"{restored.run_dir} ({key})")
    full = evaluate_scores(table, split_info)
    return {"closed_set": full["closed_set"], "open_set": full["open_set"]}


@dataclass
class RobustnessRequest:
    """What ``osma-bench robustness`` is asked to do."""

    run: Path
    perturbations: list[Perturbation]
    settings: Settings = field(default_factory=Settings)
    data: Path | None = None
    batch_size: int | None = None
    device: str = "auto"
    verify: bool = True


def robustness_pass(request: RobustnessRequest, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the pass, write ``robustness.json`` beside ``metrics.json`` (atomically) and return its content."""
    from osma_bench.data import read_split
    from osma_bench.harness.device import describe_device
    from osma_bench.harness.rundir import code_version

    if not request.perturbations:
        raise OsmaError("--perturb: no perturbation given")
    if request.batch_size is not None and request.batch_size < 1:
        raise OsmaError(f"--batch-size must be at least 1, got {request.batch_size}")
    started = time.perf_counter()
    restored = restore_run(request.run, request.data, request.device, request.verify)
    batch_size = int(request.batch_size or restored.config["eval_batch_size"])
    scored = score_perturbed(restored, request.perturbations, request.settings, batch_size, progress)
    split_info = read_split(restored.dataset.root, restored.split)
    reference = read_json(restored.run_dir / "metrics.json")
    rows = []
    for key, perturbation in zip([CLEAN] + [p.label for p in request.perturbations],
                                 [None, *request.perturbations], strict=True):
        row = {"perturbation": key, "kind": perturbation.kind if perturbation else CLEAN,
               "strength": perturbation.strength if perturbation else None}
        row.update(metrics_of(restored, scored, key, split_info))
        row["seconds"] = round(scored["passes"][key][2], 4)
        rows.append(row)
    clean = rows[0]
    matches = (isinstance(reference, dict) and clean["closed_set"] == reference.get("closed_set")
               and clean["open_set"] == reference.get("open_set"))
    total_s = time.perf_counter() - started
    final_eval_s = (restored.record.get("timings") or {}).get("final_eval_s")
    record = restored.record
    content = {
        "schema_version": SCHEMA_VERSION,
        "method": record["method"], "dataset": record["dataset"], "dataset_sha256": record["dataset_sha256"],
        "split": record["split"], "seed": record["seed"], "profile": record["profile"],
        "run_finished": record.get("finished"),
        "spec": format_spec(request.perturbations),
        "interpolation": request.settings.interpolation, "antialias": True,
        "jpeg_subsampling": JPEG_SUBSAMPLING,
        "noise_seed": request.settings.seed,
        "checkpoint": restored.checkpoint,
        "batch_size": batch_size,
        "clean_matches_metrics": bool(matches),
        "images": int(len(scored["index"])),
        "rows": rows,
        "timing": {
            "total_s": round(total_s, 3),
            "restore_s": round(restored.restore_s, 3),
            "read_s": round(scored["read_s"], 3),
            "clean_s": round(scored["passes"][CLEAN][2], 3),
            "perturbed_s": round(sum(p[2] for k, p in scored["passes"].items() if k != CLEAN), 3),
            "passes": len(rows),
            "final_eval_s": final_eval_s,
            "ratio_to_final_eval": (round(total_s / final_eval_s, 3)
                                    if isinstance(final_eval_s, int | float) and final_eval_s > 0 else None),
        },
        "device": describe_device(restored.device),
        "code_version": code_version(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_json(restored.run_dir / ROBUSTNESS_FILE, content)
    return content


def robustness_done(run_dir: Path, perturbations: list[Perturbation], settings: Settings) -> bool:
    """Whether ``run_dir`` has a ``robustness.json`` of this spec and settings for its current run."""
    import json

    run_dir = Path(run_dir)
    try:
        content = json.loads((run_dir / ROBUSTNESS_FILE).read_text())
        record = json.loads((run_dir / "run.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    if not isinstance(content, dict) or not isinstance(record, dict):
        return False
    return (content.get("schema_version") == SCHEMA_VERSION
            and content.get("spec") == format_spec(perturbations)
            and content.get("interpolation") == settings.interpolation
            and content.get("noise_seed") == settings.seed
            and content.get("jpeg_subsampling") == JPEG_SUBSAMPLING
            and content.get("run_finished") == record.get("finished")
            and isinstance(content.get("rows"), list))
