"""One run under the suite's protocol: train with per-epoch checkpoints, select on validation data,
evaluate once on the known test set and every unknown group, write the run directory.

The test partitions are read only after training has finished; model selection uses the known
classes' validation accuracy (``select_on: val_accuracy``; ties go to the later epoch) or the last
epoch (``last``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from osma_bench.errors import OsmaError
from osma_bench.harness import checkpoint
from osma_bench.harness.config import Resolved, identity_differences, identity_fingerprint, resolve
from osma_bench.harness.data import (
    TEST_PARTITIONS,
    Batches,
    DatasetInfo,
    Partition,
    open_dataset,
    ordered_batches,
    training_batches,
)
from osma_bench.harness.device import describe_device
from osma_bench.harness.precision import check_amp_device, check_amp_request, describe_precision
from osma_bench.harness.profile_file import is_profile_file, load_profile_file
from osma_bench.harness.progress import TrainingProgress, format_losses
from osma_bench.harness.provenance import collect as collect_provenance
from osma_bench.harness.rundir import RunDir, library_versions, method_version, run_path
from osma_bench.harness.seeding import rng_state, seed_everything, set_rng_state
from osma_bench.harness.threads import apply_threads
from osma_bench.methods.api import Method, MethodSpec
from osma_bench.methods.registry import get_method
from osma_bench.parallel import World, world_from_env
from osma_bench.phases import phase


@dataclass
class RunRequest:
    """Everything ``osma-bench run`` is asked to do."""

    method: str
    data: Path
    split: int
    seed: int = 0
    profile: str = "mini"
    device: str = "auto"
    epochs: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    #: A named change of settings (``--variant``): its own run folder and report row; ``"auto"``
    #: names it after the non-runtime ``--set`` values.
    variant: str | None = None
    resume: bool = False
    overwrite: bool = False
    out: Path = Path("results")
    verify: bool = True
    progress: bool = True


@dataclass
class RunResult:
    """Where the run went and what it measured."""

    path: Path
    metrics: dict[str, Any]
    skipped: bool = False


def run(request: RunRequest, console: Console | None = None) -> RunResult:
    """Execute one run; OsmaError for anything the user can fix (run.json then says ``failed``).

    Under ``torchrun`` (``WORLD_SIZE`` > 1) every process trains on its share of each batch; rank 0
    alone writes the run directory, evaluates and returns the metrics (the others return ``{}``).
    """
    method_cls = get_method(request.method)
    world, device = world_from_env(request.device)
    try:
        return _run(request, method_cls, world, device, console)
    finally:
        world.close()


def _run(request: RunRequest, method_cls: type[Method], world: World, device: torch.device,
         console: Console | None) -> RunResult:
    if world.distributed and not method_cls.supports_distributed:
        raise OsmaError(f"method {request.method!r} does not support distributed training (torchrun); run it "
                        "in a single process")
    console = console or Console(stderr=True, quiet=not world.is_main)
    check_amp_request(method_cls, request.overrides)
    profile_values = load_profile_file(request.profile) if is_profile_file(request.profile) else None
    resolved = resolve(method_cls, request.profile, request.overrides, request.epochs, profile_values)
    config = resolved.values
    check_amp_device(config, device)
    variant = run_variant(request, resolved)
    threads = apply_threads(int(config["num_threads"]))
    with phase(console, "verifying dataset checksums", enabled=request.verify, bar=request.progress):
        dataset = open_dataset(request.data, request.split, verify=request.verify)
    if config["image_size"] != dataset.image_size:
        raise OsmaError(
            f"dataset {dataset.root} stores {dataset.image_size}x{dataset.image_size} images but profile "
            f"{request.profile!r} expects {config['image_size']}; use a dataset built at that size or "
            f"--set image_size={dataset.image_size}"
        )
    rundir = RunDir(run_path(request.out, dataset.name, request.method, request.split, request.seed, variant),
                    writer=world.is_main)
    if world.is_main:
        rundir.prepare(request.resume, request.overwrite)
    try:
        world.barrier()
        result = _run_locked(request, method_cls, resolved, variant, threads, dataset, device, rundir, console, world)
        if world.is_main and not result.skipped:
            rundir.commit()  # a staged --overwrite replaces the old run only now
        return RunResult(rundir.path, result.metrics, result.skipped)
    finally:
        rundir.discard()  # an overwrite that did not complete: the old run stays
        rundir.release()


def _run_locked(request: RunRequest, method_cls: type[Method], resolved: Resolved, variant: str | None, threads,
                dataset: DatasetInfo, device: torch.device, rundir: RunDir, console: Console,
                world: World) -> RunResult:
    config = resolved.values
    previous = rundir.previous_record() if request.resume else None
    if previous and previous.get("status") == "complete" and rundir.metrics.is_file():
        console.print(f"{rundir.path}: already complete; nothing to do", markup=False, highlight=False)
        from osma_bench.io import read_json

        return RunResult(rundir.path, read_json(rundir.metrics), skipped=True)

    rundir.record = {
        "status": "running",
        "method": request.method,
        "method_version": method_version(method_cls),
        "dataset": dataset.name,
        "dataset_sha256": dataset.content_sha256,
        "card_sha256": dataset.card_sha256,
        "split": request.split,
        "seed": request.seed,
        "profile": request.profile,
        "variant": variant,
        "config": config,
        "hyperparameters": resolved.provenance(),
        "budget_departures": resolved.departures,
        "budget_notes": list(method_cls.budget_notes),
        "identity_sha256": identity_fingerprint(resolved.identity()),
        "device": describe_device(device),
        "precision": describe_precision(config, device),
        "code_version": None,
        "provenance": None,
        "library_versions": library_versions(),
        "timings": {},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    provenance = collect_provenance(device)
    rundir.record["provenance"] = provenance
    rundir.record["code_version"] = provenance["code_version"]
    if world.distributed:
        rundir.record["distributed"] = world.describe()
    if device.type == "cpu":
        rundir.log(f"{threads.threads} CPU thread(s) ({threads.reason})")
    try:
        return _execute(request, method_cls, resolved, dataset, device, rundir, console, world)
    except KeyboardInterrupt:
        rundir.mark_failed("interrupted")
        raise
    except Exception as exc:
        rundir.mark_failed(f"{type(exc).__name__}: {exc}")
        raise


def _execute(request: RunRequest, method_cls: type[Method], resolved: Resolved, dataset: DatasetInfo,
             device: torch.device, rundir: RunDir, console: Console, world: World) -> RunResult:
    config = resolved.values
    seed_everything(request.seed, device)  # the same seed in every process: same weights, same batches
    limit, workers = float(config["preload_limit_mb"]), int(config["num_workers"])
    train = Partition(dataset.root, request.split, "train", device, limit, workers)
    val = Partition(dataset.root, request.split, "val", device, limit, workers)
    train_batches = training_batches(train, config, request.seed, method_cls.balanced_loader, dataset.num_classes)
    if world.distributed:
        batch = int(config["per_class"]) * dataset.num_classes  # balanced and shuffled loaders alike
        if int(config["per_class"]) % world.size:
            raise OsmaError(f"per_class={config['per_class']} images per known class per step cannot be split "
                            f"evenly over {world.size} processes; choose a multiple of {world.size} (--set "
                            "per_class=...)")
        rundir.log(f"{world.size} processes: {batch // world.size} of the {batch} images of each step per process")
    train_batches.sampler = world.shard(train_batches.sampler)  # this process's share of every batch
    epochs = int(config["epochs"])
    spec = MethodSpec(num_classes=dataset.num_classes, image_size=dataset.image_size, device=device,
                      hparams=config, seed=request.seed, epochs=epochs, steps_per_epoch=len(train_batches),
                      profile=request.profile, split=request.split, dataset_sha256=dataset.content_sha256,
                      world=world)
    method = method_cls(spec)
    fingerprint = checkpoint.config_fingerprint(resolved.identity())

    start_epoch, history, best = 0, [], None
    if request.resume and rundir.last.is_file():
        state = checkpoint.load(rundir.last, device)
        if state["method"] != request.method:
            raise OsmaError(f"{rundir.last}: made by method {state['method']!r}, not {request.method!r}; use "
                            "--overwrite")
        if state["fingerprint"] != fingerprint:
            differs = identity_differences(checkpoint.fingerprint_values(state["fingerprint"]), resolved.identity())
            raise OsmaError(f"{rundir.last}: made with other settings ({'; '.join(differs) or 'unreadable'}); pass "
                            "the same --profile/--set/--epochs as the original run, or --overwrite")
        if state["dataset_sha256"] != dataset.content_sha256:
            raise OsmaError(f"{rundir.last}: made on another version of the dataset; use --overwrite")
        checkpoint.restore(rundir.last, "state", method.load_state_dict, state["state"])
        checkpoint.restore(rundir.last, "rng", set_rng_state, state["rng"])
        start_epoch, history, best = int(state["epoch"]), list(state["history"]), state["best"]
        rundir.log(f"resumed after epoch {start_epoch}")
        console.print(f"{rundir.path}: resumed after epoch {start_epoch}")
    else:
        rundir.log(f"start: method {request.method}, dataset {dataset.name}, split {request.split}, seed "
                   f"{request.seed}, profile {request.profile}, device {device}, {len(train)} train images, "
                   f"{len(train_batches)} steps per epoch"
                   + (f", {world.size} processes ({world.backend})" if world.distributed else ""))
        rundir.log(f"precision: {describe_precision(config, device)}")
    few = few_steps_warning(len(train_batches), epochs) if request.profile != "smoke" else None  # smoke: tests
    if few:
        rundir.log(few)
        console.print(few, soft_wrap=True, highlight=False)
    rundir.write_record(epochs_completed=start_epoch, history=history)

    select = config["select_on"]
    with TrainingProgress(console, enabled=request.progress and console.is_terminal and world.is_main) as progress:
        for epoch in range(start_epoch, epochs):
            train_batches.sampler.set_epoch(epoch)
            started = time.perf_counter()
            losses = method.train_epoch(
                progress.track(train_batches, len(train_batches), f"epoch {epoch + 1}/{epochs}", method), epoch
            )
            train_s = time.perf_counter() - started
            started = time.perf_counter()
            val_batches = ordered_batches(val, int(config["eval_batch_size"]))
            val_batches.sampler = world.take_turns(val_batches.sampler)  # several processes share it
            val_acc = validation_accuracy(method, val_batches, world)
            method.validated(epoch, val_acc)
            entry = {"epoch": epoch, "losses": {k: float(v) for k, v in (losses or {}).items()},
                     "val_accuracy": val_acc, "train_s": train_s, "val_s": time.perf_counter() - started,
                     "images_per_s": progress.images_per_second * world.size}
            history.append(entry)
            # Ties go to the later epoch (longer training; POSE's open space keeps expanding).
            if select == "val_accuracy" and (best is None or val_acc >= best["val_accuracy"]):
                best = {"epoch": epoch, "val_accuracy": val_acc}
                if world.is_main:
                    checkpoint.save(rundir.best, {"epoch": epoch, "state": method.state_dict()})
            if world.is_main:
                checkpoint.save(rundir.last, {
                "epoch": epoch + 1, "state": method.state_dict(), "rng": rng_state(), "history": history,
                "best": best, "fingerprint": fingerprint, "method": request.method,
                "dataset_sha256": dataset.content_sha256,
                })
            line = (f"epoch {epoch + 1}/{epochs}  {format_losses(entry['losses'])}  val_acc {val_acc:.4f}  "
                    f"{entry['images_per_s']:.0f} img/s  {train_s:.1f}s")
            rundir.log(line)
            console.print(line, soft_wrap=True, markup=False, highlight=False)
            rundir.write_record(epochs_completed=epoch + 1, history=history)

    if not world.is_main:
        return RunResult(rundir.path, {})  # rank 0 evaluates and writes the results
    if select == "val_accuracy" and best is not None:
        saved = checkpoint.load(rundir.best, device)
        if int(saved["epoch"]) != int(best["epoch"]):
            raise OsmaError(f"{rundir.best}: holds epoch {saved['epoch']} but the run's best is epoch "
                            f"{best['epoch']}; rerun with --overwrite")
        checkpoint.restore(rundir.best, "state", method.load_state_dict, saved["state"])
    chosen = best["epoch"] if best is not None else epochs - 1
    rundir.log(f"selected epoch {chosen + 1} ({select})")

    started = time.perf_counter()
    batch_size = int(config["eval_batch_size"])
    with phase(console, "final evaluation", bar=request.progress):
        method.finalize(ordered_batches(train, batch_size), ordered_batches(val, batch_size))
        rundir.write_record(method_record=method.run_record())
        metrics = evaluate(method, request, config, dataset, device, rundir)
    eval_s = time.perf_counter() - started
    train_total = sum(h["train_s"] for h in history)
    rundir.write_record(
        status="complete", selected_epoch=chosen,
        timings={"train_s": train_total, "val_s": sum(h["val_s"] for h in history), "final_eval_s": eval_s,
                 "images_per_s": float(np.mean([h["images_per_s"] for h in history])) if history else 0.0},
        finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    rundir.log(f"complete: {summary_line(metrics)}")
    return RunResult(rundir.path, metrics)


#: Fewer optimiser steps per epoch than this get a warning (a budget made for other data).
FEW_STEPS = 10


def few_steps_warning(steps: int, epochs: int) -> str | None:
    """The warning for an epoch of fewer than ``FEW_STEPS`` steps, or None."""
    if steps >= FEW_STEPS:
        return None
    return (f"warning: only {steps} optimiser step(s) per epoch ({steps * epochs} in all): the profile's "
            "per_class / steps_per_epoch do not suit this training set; set steps_per_epoch (and epochs, lr_step) "
            "with --set or --profile FILE.yaml (docs/DATA.md, \"A budget for your data\")")


@torch.no_grad()
def validation_accuracy(method: Method, batches: Batches, world: World | None = None) -> float:
    """Known-class accuracy of ``argmax logits`` on ``batches`` of the validation partition (several
    processes: each passes its share of the batches, and the counts are summed over processes)."""
    counts = torch.zeros(2, dtype=torch.float64)
    for images, labels in batches:
        logits = method.predict(images).logits
        counts[0] += int((logits.argmax(dim=1) == labels).sum())
        counts[1] += int(labels.numel())
    if world is not None and world.distributed:
        counts = world.all_sum(counts.to(method.device)).cpu()
    correct, total = int(counts[0]), int(counts[1])
    if total == 0:
        raise OsmaError("the validation partition is empty; use --set select_on=last")
    return correct / total


@torch.no_grad()
def predict_partitions(method: Method, dataset: DatasetInfo, split: int, device: torch.device,
                       config: dict[str, Any]) -> dict[str, np.ndarray]:
    """Predictions for the known test set and every unknown group, as score-file columns.

    With features, also the features of the method's augmented samples of the first
    ``augmented_plot_images`` known test images (``augmented_features`` / ``augmented_source``,
    None when the method makes none), computed after every prediction.
    """
    from osma_bench.harness.augmented import augmented_features

    columns: dict[str, list[np.ndarray]] = {k: [] for k in ("index", "sha256", "group", "label", "logits",
                                                            "score", "features")}
    keep_features = bool(config["save_features"])
    known_test = None
    for group, name in enumerate(TEST_PARTITIONS):
        part = Partition(dataset.root, split, name, device, float(config["preload_limit_mb"]),
                         int(config["num_workers"]))
        if group == 0:
            known_test = part  # augmented samples are made from its first images
        columns["index"].append(part.indices)
        columns["sha256"].append(part.sha256().astype("S64") if len(part) else np.zeros(0, "S64"))
        columns["group"].append(np.full(len(part), group, np.int8))
        columns["label"].append(part.labels)
        for images, _ in ordered_batches(part, int(config["eval_batch_size"])):
            pred = method.predict(images)
            columns["logits"].append(pred.logits.float().cpu().numpy())
            columns["score"].append(pred.score.double().cpu().numpy())
            if keep_features and pred.features is not None:
                columns["features"].append(pred.features.float().cpu().numpy())
    out = {k: np.concatenate(v) for k, v in columns.items() if k != "features"}
    out["features"] = np.concatenate(columns["features"]) if columns["features"] else None
    if out["features"] is not None and len(out["features"]) != len(out["score"]):
        out["features"] = None  # a method that gave features for some batches only
    augmented = augmented_features(method, known_test, config) if out["features"] is not None else None
    out.update(augmented or {"augmented_features": None, "augmented_source": None})
    return out


def evaluate(method: Method, request: RunRequest, config: dict[str, Any], dataset: DatasetInfo,
             device: torch.device, rundir: RunDir) -> dict[str, Any]:
    """Write scores.h5 and metrics.json for the selected model; return the metrics.

    Augmented samples' features are an extra for plots: if they cannot be stored (say, a
    non-finite value), the log says why and scores.h5 is written without them.
    """
    from osma_bench.evaluation.evaluate import evaluate_file
    from osma_bench.evaluation.scores import write_scores
    from osma_bench.io import write_json

    columns = predict_partitions(method, dataset, request.split, device, config)
    meta = dict(split=request.split, dataset_sha256=dataset.content_sha256, method=request.method,
                num_classes=dataset.num_classes)
    augmented = columns["augmented_features"]
    try:
        write_scores(rundir.scores, **columns, **meta)
    except OsmaError as exc:
        if augmented is None:
            raise
        rundir.log(f"augmented samples' features not saved: {exc}")
        write_scores(rundir.scores, **dict(columns, augmented_features=None, augmented_source=None), **meta)
    else:
        if augmented is not None:
            rundir.log(f"scores.h5: features of {len(augmented)} augmented samples (for the t-SNE plot)")
    # legacy=true: the official POSE evaluation's numbers too, in a labelled block beside the tie-aware ones
    metrics = evaluate_file(rundir.scores, dataset.root, request.split, with_legacy=bool(config.get("legacy")))
    write_json(rundir.metrics, metrics)
    return metrics


def summary_line(metrics: dict[str, Any]) -> str:
    """Closed-set accuracy and AUROC / OSCR on all unknowns, in percent (and the official
    evaluation's, labelled, when metrics.json has a ``legacy_metrics`` block)."""

    def figures(block: dict[str, Any]) -> str:
        closed = block.get("closed_set", {})
        every = block.get("open_set", {}).get("all", {})
        return (f"accuracy {100 * closed.get('accuracy', float('nan')):.2f}  AUROC "
                f"{100 * every.get('auroc', float('nan')):.2f}  OSCR {100 * every.get('oscr', float('nan')):.2f}")

    line = figures(metrics)
    if "legacy_metrics" in metrics:
        line = f"tie-aware: {line};  official evaluation (legacy): {figures(metrics['legacy_metrics'])}"
    return line


def run_variant(request: RunRequest, resolved: Resolved) -> str | None:
    """The run's variant name: ``--variant NAME``, or with ``auto`` the non-runtime ``--set`` values."""
    from osma_bench.results import check_variant, variant_from_settings

    if request.variant == "auto":
        changed = {k: resolved.values[k] for k in request.overrides if k in resolved.identity()}
        return variant_from_settings(changed)
    return check_variant(request.variant)
