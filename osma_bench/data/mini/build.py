"""Build the embedded ``mini`` benchmark: real patches, trained generators, protocol, dataset store.

:func:`make_benchmark` produces the whole benchmark in memory (deterministic for a seed);
:func:`write_benchmark` stores it with :class:`osma_bench.data.DatasetWriter`;
:func:`build_mini` does both (the ``osma-bench build-data mini`` command).

Work is spread over ``workers`` processes, each running torch with one thread, so the content does
not depend on the number of workers (every random draw comes from a seed derived from the build
seed and the thing drawn for).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import cache
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from osma_bench.data.mini import generators as gen
from osma_bench.data.mini import protocol as proto
from osma_bench.data.mini import sources as src
from osma_bench.data.store import partial_dir
from osma_bench.errors import OsmaError

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: called as the build advances (stage names are for display)."""

SIZES = (32, 64)


@dataclass(frozen=True)
class ScaleSpec:
    """Image counts per class and the generator budget of one ``--scale``."""

    train: int
    val: int
    test: int
    unknown: int
    unseen_real: int
    budget: gen.GeneratorBudget = field(default_factory=gen.GeneratorBudget)


SCALES: dict[str, ScaleSpec] = {
    "full": ScaleSpec(train=300, val=60, test=100, unknown=100, unseen_real=50),
    "tiny": ScaleSpec(
        train=12, val=4, test=8, unknown=8, unseen_real=4,
        budget=gen.GeneratorBudget(width=8, batch=4, pretrain_steps=3, finetune_steps=2),
    ),
}


@dataclass
class MiniBenchmark:
    """The benchmark in memory: every image with its columns, the class list and the splits.

    ``blocks`` lists ``(start, stop)`` runs of one class (and one ``unseen_real`` value), in order;
    ``splits`` holds, per split, ``known_classes``, ``unknown`` (group -> class names) and
    ``partitions`` (name -> (global index, label)) exactly as :meth:`DatasetWriter.add_split` takes them.
    """

    size: int
    seed: int
    scale: str
    classes: list[dict]
    images: np.ndarray
    class_id: np.ndarray
    unseen_real: np.ndarray
    source_path: list[str]
    orig_format: list[str]
    orig_width: np.ndarray
    orig_height: np.ndarray
    blocks: list[tuple[int, int]]
    splits: list[dict]
    generators: list[dict]
    pretraining: list[dict]
    settings: dict
    timings: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------------- worker tasks
@cache
def _domain_images(domain: str) -> tuple[src.LoadedImage, ...]:
    return tuple(src.load_domain(domain))


def _pretrain_images() -> list[src.LoadedImage]:
    return [im for d in src.KNOWN_DOMAINS for im in _domain_images(d)]


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _pretrain_task(arch: str, patch: int, budget: gen.GeneratorBudget, seed: int) -> gen.TrainResult:
    return gen.pretrain_architecture(arch, _pretrain_images(), patch, budget, gen.derive_seed(seed, arch))


def _model_task(
    key: proto.ModelKey, pretrained: dict, n: int, size: int, patch: int, budget: gen.GeneratorBudget, seed: int
) -> tuple[gen.TrainResult, np.ndarray]:
    images = list(_domain_images(key.domain))
    trained = gen.finetune_generator(
        key.arch, pretrained, images, patch, budget, gen.derive_seed(seed, key.arch, key.domain, key.seed)
    )
    pixels = gen.generate(key.arch, trained.state, images, n, size, budget, gen.derive_seed(seed, key.name, "gen"))
    return trained, pixels


class _Runner:
    """Map tasks over a process pool (``workers`` > 1) or in this process, preserving order."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> _Runner:
        if self.workers > 1:
            self.pool = ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"), initializer=_init_worker)
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def map(self, fn: Callable, jobs: list[tuple], on_done: Callable[[int], None]) -> list:
        if self.pool is None:
            results = []
            with gen.deterministic_torch(1):
                for job in jobs:
                    results.append(fn(*job))
                    on_done(len(results))
            return results
        futures = [self.pool.submit(fn, *job) for job in jobs]
        results = []
        for fut in futures:
            results.append(fut.result())
            on_done(len(results))
        return results


# ------------------------------------------------------------------------------------ benchmark
def _real_images(spec: ScaleSpec, size: int, seed: int) -> tuple[np.ndarray, list[str], list[str], list, list]:
    """The seen-domain real patches (balanced over the known domains, shuffled)."""
    n = spec.train + spec.val + spec.test
    per = [n // len(src.KNOWN_DOMAINS) + (i < n % len(src.KNOWN_DOMAINS)) for i in range(len(src.KNOWN_DOMAINS))]
    pixels, paths, fmts, widths, heights = [], [], [], [], []
    for domain, count in zip(src.KNOWN_DOMAINS, per, strict=True):
        images = list(_domain_images(domain))
        crops = src.random_crops(images, count, size, np.random.default_rng(gen.derive_seed(seed, "real", domain)),
                                 unique=True)
        pixels.append(crops.pixels)
        for k, y, x in zip(crops.image, crops.top, crops.left, strict=True):
            im = images[int(k)]
            paths.append(f"{im.source.package}/{im.source.relpath}@y{int(y)}x{int(x)}")
            fmts.append(im.file_format)
            widths.append(im.width)
            heights.append(im.height)
    order = np.random.default_rng(gen.derive_seed(seed, "real", "order")).permutation(n)
    return (np.concatenate(pixels)[order], [paths[i] for i in order], [fmts[i] for i in order],
            [widths[i] for i in order], [heights[i] for i in order])


def _unseen_real_images(spec: ScaleSpec, size: int, seed: int) -> tuple[np.ndarray, list[str], list[str], list, list]:
    images = list(_domain_images(src.UNSEEN_REAL))
    crops = src.random_crops(images, spec.unseen_real, size,
                             np.random.default_rng(gen.derive_seed(seed, "unseen_real")), unique=True)
    paths, fmts, widths, heights = [], [], [], []
    for k, y, x in zip(crops.image, crops.top, crops.left, strict=True):
        im = images[int(k)]
        paths.append(f"{im.source.package}/{im.source.relpath}@y{int(y)}x{int(x)}")
        fmts.append(im.file_format)
        widths.append(im.width)
        heights.append(im.height)
    return crops.pixels, paths, fmts, widths, heights


def _class_entry(key: proto.ModelKey) -> dict:
    return {
        "name": key.name,
        "real": False,
        "architecture": key.arch,
        "seed": key.seed,
        "training_data": key.domain,
        "source": "osma-bench mini: autoencoding generator trained at build time",
    }


def default_workers() -> int:
    """Processes used for generator training: the CPUs available to this process, at most 4."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


def make_benchmark(
    seed: int = 0,
    size: int = 32,
    scale: str = "full",
    workers: int | None = None,
    progress: Progress | None = None,
) -> MiniBenchmark:
    """Train every generator and assemble the benchmark in memory (same arguments -> same content)."""
    if size not in SIZES:
        raise OsmaError(f"mini: --size must be one of {', '.join(map(str, SIZES))}, got {size}")
    if scale not in SCALES:
        raise OsmaError(f"mini: --scale must be one of {', '.join(SCALES)}, got {scale!r}")
    spec = SCALES[scale]
    budget = spec.budget
    patch = size // 2
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise OsmaError(f"mini: --workers must be at least 1, got {workers}")
    report = progress or (lambda stage, done, total: None)
    timings: dict[str, float] = {}

    splits = proto.make_protocol()
    models = proto.all_models(splits)
    known_any = proto.known_anywhere(splits)
    per_known = spec.train + spec.val + spec.test
    if spec.unknown > spec.test:
        raise OsmaError("mini: a scale needs unknown <= test (known models reuse their test images as unknowns)")

    t0 = time.perf_counter()
    report("real photographs", 0, 2)
    real = _real_images(spec, size, seed)
    report("real photographs", 1, 2)
    unseen = _unseen_real_images(spec, size, seed)
    report("real photographs", 2, 2)
    timings["real_s"] = time.perf_counter() - t0

    archs = proto.ARCH_ORDER
    with _Runner(workers) as runner:
        t0 = time.perf_counter()
        report("pre-training architectures", 0, len(archs))
        pre = runner.map(_pretrain_task, [(a, patch, budget, seed) for a in archs],
                         lambda d: report("pre-training architectures", d, len(archs)))
        timings["pretrain_s"] = time.perf_counter() - t0
        pretrained = dict(zip(archs, pre, strict=True))
        t0 = time.perf_counter()
        jobs = [(m, pretrained[m.arch].state, per_known if m in known_any else spec.unknown, size, patch, budget, seed)
                for m in models]
        report("training generators", 0, len(jobs))
        done = runner.map(_model_task, jobs, lambda d: report("training generators", d, len(jobs)))
        timings["generators_s"] = time.perf_counter() - t0

    # --- assemble the image table: real (seen), real (unseen), then every generator in order
    classes = [{"name": "real", "real": True, "architecture": None, "seed": None, "training_data": None,
                "source": "photographs shipped by scikit-image, scikit-learn and matplotlib (see real_sources)"}]
    classes += [_class_entry(m) for m in models]
    class_index = {c["name"]: i for i, c in enumerate(classes)}
    pixels = [real[0], unseen[0]]
    class_id = [np.zeros(len(real[0]), np.int32), np.zeros(len(unseen[0]), np.int32)]
    unseen_flag = [np.zeros(len(real[0]), bool), np.ones(len(unseen[0]), bool)]
    paths, fmts = real[1] + unseen[1], real[2] + unseen[2]
    widths, heights = list(real[3]) + list(unseen[3]), list(real[4]) + list(unseen[4])
    starts: dict[str, int] = {"real": 0, "unseen_real": len(real[0])}
    offset = len(real[0]) + len(unseen[0])
    blocks = [(0, len(real[0])), (len(real[0]), offset)]
    records = []
    for m, (trained, imgs) in zip(models, done, strict=True):
        starts[m.name] = offset
        blocks.append((offset, offset + len(imgs)))
        offset += len(imgs)
        pixels.append(imgs)
        class_id.append(np.full(len(imgs), class_index[m.name], np.int32))
        unseen_flag.append(np.zeros(len(imgs), bool))
        paths += [f"mini/{m.name}/{i:05d}.gen" for i in range(len(imgs))]
        fmts += ["GEN"] * len(imgs)
        widths += [size] * len(imgs)
        heights += [size] * len(imgs)
        records.append({
            "name": m.name, "architecture": m.arch, "architecture_description": gen.ARCHITECTURES[m.arch],
            "domain": m.domain, "seed": m.seed,
            "pretrain_steps": pretrained[m.arch].steps, "pretrain_final_loss": round(pretrained[m.arch].final_loss, 6),
            "finetune_steps": trained.steps, "training_steps": pretrained[m.arch].steps + trained.steps,
            "final_loss": round(trained.final_loss, 6), "loss": "L1" + (" + hinge GAN" if m.arch == "gan" else ""),
            "training_patch": patch, "images": len(imgs),
        })

    lengths = {m.name: len(imgs) for m, (_, imgs) in zip(models, done, strict=True)}
    split_entries = [_split_partitions(s, spec, starts, lengths) for s in splits]
    pre_records = [{"architecture": a, "steps": pretrained[a].steps, "final_loss": round(pretrained[a].final_loss, 6),
                    "data": list(src.KNOWN_DOMAINS)} for a in archs]
    counts = {k: getattr(spec, k) for k in ("train", "val", "test", "unknown", "unseen_real")}
    settings = {"scale": scale, "seed": seed, "image_size": size, "counts_per_class": counts,
                "budget": asdict(budget), "training_patch": patch}
    return MiniBenchmark(
        size=size, seed=seed, scale=scale, classes=classes, images=np.concatenate(pixels),
        class_id=np.concatenate(class_id), unseen_real=np.concatenate(unseen_flag), source_path=paths,
        orig_format=fmts, orig_width=np.asarray(widths, np.int32), orig_height=np.asarray(heights, np.int32),
        blocks=blocks, splits=split_entries, generators=records, pretraining=pre_records, settings=settings,
        timings=timings,
    )


def _split_partitions(split: proto.SplitDef, spec: ScaleSpec, starts: dict[str, int], lengths: dict[str, int]) -> dict:
    """Global indices and labels of every partition of one split."""
    parts: dict[str, tuple[list, list]] = {p: ([], []) for p in ("train", "val", "test")}
    known = ["real"] + [m.name for m in split.known]
    bounds = {"train": (0, spec.train), "val": (spec.train, spec.train + spec.val),
              "test": (spec.train + spec.val, spec.train + spec.val + spec.test)}
    for label, name in enumerate(known):
        for part, (lo, hi) in bounds.items():
            idx = np.arange(starts[name] + lo, starts[name] + hi)
            parts[part][0].append(idx)
            parts[part][1].append(np.full(len(idx), label))
    unseen_n = spec.unseen_real
    parts["test"][0].append(np.arange(starts["unseen_real"], starts["unseen_real"] + unseen_n))
    parts["test"][1].append(np.zeros(unseen_n, np.int64))
    unknown = {}
    for group, keys in split.unknown_groups().items():
        unknown[group] = [m.name for m in keys]
        idx_list, lab_list = [], []
        for label, m in enumerate(keys):
            # A model that is known in some split has train/val/test images: use its test block.
            lo = starts[m.name] + lengths[m.name] - spec.test if lengths[m.name] > spec.unknown else starts[m.name]
            idx = np.arange(lo, lo + spec.unknown)
            idx_list.append(idx)
            lab_list.append(np.full(len(idx), label))
        parts[f"out_{group}"] = (idx_list, lab_list)
    partitions = {p: (np.concatenate(i).astype(np.int64), np.concatenate(lab).astype(np.int64))
                  for p, (i, lab) in parts.items()}
    return {"known_classes": known, "unknown": unknown, "partitions": partitions}



# ---------------------------------------------------------------------------------------- writing
def write_benchmark(
    bench: MiniBenchmark,
    out: str | os.PathLike,
    overwrite: bool = False,
    command: str | None = None,
    progress: Progress | None = None,
) -> Path:
    """Store ``bench`` with :class:`DatasetWriter` (atomic: ``<out>.partial`` renamed on success)."""
    from osma_bench.data import DatasetWriter

    report = progress or (lambda stage, done, total: None)
    build_info = {
        "command": command or f"osma-bench build-data mini --seed {bench.seed} --size {bench.size} --scale {bench.scale}",
        "seed": bench.seed,
        "sources": ["skimage", "sklearn", "matplotlib"],
        "builder": "mini",
        "timings_s": {k: round(v, 1) for k, v in bench.timings.items()},
    }
    preprocessing = {
        "convert": "RGB",
        "crop": f"random {bench.size}x{bench.size} window at native resolution (real); generated at {bench.size}x{bench.size}",
        "resize_filter": None,
        "normalize": None,
    }
    writer = DatasetWriter(out, Path(out).name, bench.size, bench.classes,
                           build_info=build_info, preprocessing=preprocessing, overwrite=overwrite,
                           plan_fingerprint=f"mini/{bench.seed}/{bench.size}/{bench.scale}")
    try:
        report("writing", 0, len(bench.blocks))
        for n, (lo, hi) in enumerate(bench.blocks, start=1):
            got = writer.add_images(
                bench.images[lo:hi], int(bench.class_id[lo]), None, bench.source_path[lo:hi],
                bench.orig_format[lo:hi], bench.orig_width[lo:hi], bench.orig_height[lo:hi],
                bool(bench.unseen_real[lo]),
            )
            if got[0] != lo or got[-1] != hi - 1:
                raise OsmaError(f"mini: the dataset writer stored images at {got[0]}.. instead of {lo}..")
            report("writing", n, len(bench.blocks))
        for k, entry in enumerate(bench.splits, start=1):
            writer.add_split(k, entry["known_classes"], entry["unknown"], entry["partitions"])
        return writer.finalize({
            "mini": bench.settings,
            "generators": bench.generators,
            "generator_pretraining": bench.pretraining,
            "real_sources": src.describe_sources(bench.size),
        })
    except BaseException:
        writer.abort()
        if partial_dir(out).is_dir() and (partial_dir(out) / "progress.json").is_file():
            shutil.rmtree(partial_dir(out), ignore_errors=True)  # no resume here: its own partial folder goes
        raise


def build_mini(
    out: str | os.PathLike = "datasets/mini",
    seed: int = 0,
    size: int = 32,
    scale: str = "full",
    overwrite: bool = False,
    workers: int | None = None,
    command: str | None = None,
    progress: Progress | None = None,
) -> Path:
    """Build the mini benchmark into ``out`` (see :func:`make_benchmark` and :func:`write_benchmark`)."""
    out = Path(out)
    if (out / "dataset.json").is_file() and not overwrite:
        raise OsmaError(f"{out}: a complete dataset is already there; choose another --out or pass --overwrite")
    bench = make_benchmark(seed=seed, size=size, scale=scale, workers=workers, progress=progress)
    return write_benchmark(bench, out, overwrite=overwrite, command=command, progress=progress)
