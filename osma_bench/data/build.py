"""Run a build plan: check every input, preprocess in parallel, write the store atomically.

A :class:`BuildPlan` (from POSE annotations or a custom manifest) lists the distinct source
images in store order, the global classes and every split's partitions as ``(path, label)``
pairs. :func:`run_build` checks all cheap problems first (paths escaping the root, missing and
empty files), then decodes every image (a spawn-safe process pool when ``workers > 1``). By
default it reports every problem at once and writes no dataset; with ``skip_bad`` it builds
without the bad files and records them. Interrupted builds resume with ``resume=True``.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from osma_bench.data.preprocess import PreprocessConfig, process_item
from osma_bench.data.store import DatasetWriter, partial_dir
from osma_bench.errors import Interrupted, OsmaError
from osma_bench.protocol import KNOWN_PARTITIONS, OUT_PARTITIONS

BATCH = 64
MAX_LISTED = 200


@dataclass
class Item:
    """One distinct source image: path relative to the root (POSIX), class and unseen-real flag."""

    path: str
    class_id: int
    unseen_real: bool = False


@dataclass
class BuildPlan:
    """Everything a build needs, independent of where it came from."""

    name: str
    root: Path
    classes: list[dict]
    items: list[Item]
    splits: dict[int, dict]  # k -> {"known": [...], "unknown": {g: [...]}, "partitions": {p: [(path, label)]}}
    build_info: dict = field(default_factory=dict)
    extra_card: dict = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (where, reason) found making the plan

    def fingerprint(self, cfg: PreprocessConfig, skip_bad: bool) -> str:
        """Hash of the inputs and settings; a resume needs the same."""
        digest = hashlib.sha256()
        digest.update(json.dumps([self.name, self.classes, cfg.card(), skip_bad], sort_keys=True).encode())
        for item in self.items:
            digest.update(f"{item.path}\0{item.class_id}\0{int(item.unseen_real)}\n".encode())
        digest.update(json.dumps({str(k): v for k, v in sorted(self.splits.items())}, sort_keys=True).encode())
        return digest.hexdigest()


def resolve_under(root: Path, rel: str) -> Path | None:
    """``root/rel`` resolved, or None when it escapes ``root`` (``..``, absolute paths, symlinks)."""
    if os.path.isabs(rel):
        return None
    target = Path(os.path.realpath(root / rel))
    real_root = Path(os.path.realpath(root))
    if target != real_root and real_root not in target.parents:
        return None
    return target


def precheck(plan: BuildPlan) -> dict[str, str]:
    """Cheap per-file problems (path escapes root, missing, empty): ``{path: reason}``."""
    bad = {}
    for item in plan.items:
        target = resolve_under(plan.root, item.path)
        if target is None:
            bad[item.path] = f"path escapes the image root {plan.root}"
        elif not target.exists():
            bad[item.path] = "file not found"
        elif not target.is_file():
            bad[item.path] = "not a regular file"
        elif target.stat().st_size == 0:
            bad[item.path] = "empty file (0 bytes)"
    return bad


def _problem_message(header: str, problems: list[str]) -> str:
    shown = problems[:MAX_LISTED]
    more = len(problems) - len(shown)
    tail = [f"... and {more} more"] if more else []
    return "\n".join([header] + [f"  {p}" for p in shown] + tail)


def _results(
    paths: list[str], cfg: PreprocessConfig, workers: int
) -> Iterator[tuple[np.ndarray | None, dict | str]]:
    """Preprocess ``paths`` in order, with a bounded number of images in flight."""
    if workers <= 1:
        for path in paths:
            yield process_item((path, cfg))
        return
    slots = threading.BoundedSemaphore(workers * 64)
    stop = threading.Event()

    def feed() -> Iterator[tuple[str, PreprocessConfig]]:
        for path in paths:
            slots.acquire()
            if stop.is_set():
                return
            yield path, cfg

    ctx = multiprocessing.get_context("spawn")
    with _sigint_deferred():  # the workers start (and import) with Ctrl-C blocked: the main process reports it
        pool = ctx.Pool(workers, initializer=_ignore_sigint)
    with pool:
        try:
            for result in pool.imap(process_item, feed(), chunksize=8):
                slots.release()
                yield result
        finally:  # abandoned early (Ctrl-C, an error): unblock the feeding thread so the pool can stop
            stop.set()
            try:
                for _ in range(workers * 64):
                    slots.release()
            except ValueError:
                pass


@contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Processes started meanwhile begin with SIGINT ignored (a disposition survives exec; the
    signal mask does not), so they cannot die of a Ctrl-C while they import; in this process a
    Ctrl-C meanwhile stays pending (Linux keeps a blocked signal pending even while ignored) and
    arrives as KeyboardInterrupt when the block ends, provided no other thread of this process
    takes it meanwhile (``build-data`` runs no other thread; a caller's thread that does not block
    SIGINT would have it discarded). Main thread only; elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()  # its start unblocks SIGINT (Python 3.11): start it before the block
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _ignore_sigint() -> None:
    """In each decoding process: leave Ctrl-C to the main process, which stops the pool and says
    once what was kept (else every worker prints its own KeyboardInterrupt traceback)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_build(
    plan: BuildPlan,
    out_dir: str | os.PathLike,
    cfg: PreprocessConfig,
    workers: int = 1,
    skip_bad: bool = False,
    resume: bool = False,
    overwrite: bool = False,
    shard_size: int = 10000,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Build ``plan`` into ``out_dir``; return the dataset folder.

    ``progress(done, total)`` is called as images are processed.
    """
    bad = precheck(plan)
    # With problems already known and no --skip-bad, nothing is written: every input is still
    # decoded and the splits checked for shared content, so one refusal names every bad input.
    scan_only = bool(bad or plan.problems) and not skip_bad
    try:
        writer = None if scan_only else DatasetWriter(
            out_dir, plan.name, cfg.size, plan.classes, shard_size=shard_size, build_info=plan.build_info,
            resume=resume, preprocessing=cfg.card(), overwrite=overwrite,
            plan_fingerprint=plan.fingerprint(cfg, skip_bad),
        )
    except KeyboardInterrupt:
        raise Interrupted(f"build of {out_dir} interrupted while it started; no image was stored: rerun the same "
                          "command") from None
    try:
        state = (writer.resumed_state if writer is not None else None) or {}
        start = int(state.get("next_item", 0))
        skipped: dict[str, str] = dict(state.get("skipped", {}))
        if writer is None or writer.num_images == 0:
            start, skipped = 0, {}
        todo = plan.items[start:]
        paths = [str(plan.root / it.path) for it in todo]
        decode_problems: dict[str, str] = {}
        content: dict[str, bytes] = {}  # path -> SHA-256 of every decoded image (for the refusal's leakage check)
        results = _results([p for p, it in zip(paths, todo, strict=True) if it.path not in bad], cfg, workers)
        batch: list[tuple[Item, np.ndarray, dict]] = []
        for pos, item in enumerate(todo):
            if item.path in bad:
                skipped[item.path] = bad[item.path]
            else:
                pixels, meta = next(results)
                if pixels is None:
                    decode_problems[item.path] = meta
                    skipped[item.path] = meta
                else:
                    content[item.path] = str(meta["sha256"]).encode()
                    batch.append((item, pixels, meta))
            room = shard_size - (writer.num_images if writer is not None else 0) % shard_size
            if batch and (len(batch) >= min(BATCH, room) or pos == len(todo) - 1):
                if writer is None or (decode_problems and not skip_bad):
                    batch = []  # keep scanning to report every problem, write nothing more
                else:
                    writer.progress_state = {"next_item": start + pos + 1, "skipped": skipped}
                    _write_batch(writer, batch)
                    batch = []
            if progress is not None:
                progress(start + pos + 1, len(plan.items))
    except KeyboardInterrupt:
        if writer is None:
            raise Interrupted(f"check of the inputs for {out_dir} interrupted; nothing was written: rerun the same "
                              "command") from None
        writer.abort()
        raise Interrupted(
            f"build of {out_dir} interrupted: {writer.kept_images} of {len(plan.items)} images "
            f"are stored in complete shards in {partial_dir(out_dir)}; rerun the same command with --resume to "
            "continue from there") from None
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if (scan_only or decode_problems) and not skip_bad:
        if writer is not None:
            writer.abort()
            shutil.rmtree(partial_dir(out_dir), ignore_errors=True)
        lines = [f"{w}: {r}" for w, r in plan.problems] + [f"{p}: {r}" for p, r in bad.items()]
        lines += [f"{p}: {r}" for p, r in decode_problems.items()]
        if start == 0:  # content of every input is known: the splits' shared content too
            index_of = {path: i for i, path in enumerate(content)}
            sha = np.asarray(list(content.values()), dtype="S64")
            for k, split in sorted(plan.splits.items()):
                lines += _split_partitions(k, split, index_of, sha, {})[1]
        raise OsmaError(_problem_message(
            f"{len(lines)} problem(s) in the inputs (pass --skip-bad to build without them); no dataset written:",
            lines))

    stored = [it.path for it in plan.items if it.path not in skipped]
    index_of = {path: i for i, path in enumerate(stored)}
    sha = writer.sha256_column()
    for where, reason in plan.problems:
        skipped.setdefault(where, reason)
    for k, split in sorted(plan.splits.items()):
        partitions, clashes = _split_partitions(k, split, index_of, sha, skipped)
        if clashes and not skip_bad:
            writer.abort()
            shutil.rmtree(partial_dir(out_dir), ignore_errors=True)
            raise OsmaError(_problem_message(
                f"{len(clashes)} image(s) share content across partitions of one split (pass --skip-bad to drop "
                "the later copies); no dataset written:", clashes))
        writer.add_split(k, split["known"], split["unknown"], partitions)
    skipped_list = [{"path": p, "reason": r} for p, r in skipped.items()]
    return writer.finalize(plan.extra_card, skipped=skipped_list)


def _write_batch(writer: DatasetWriter, batch: list[tuple[Item, np.ndarray, dict]]) -> None:
    writer.add_images(
        np.stack([b[1] for b in batch]),
        np.asarray([b[0].class_id for b in batch]),
        sha256=[b[2]["sha256"] for b in batch],
        source_path=[b[0].path for b in batch],
        orig_format=[b[2]["orig_format"] for b in batch],
        orig_width=np.asarray([b[2]["orig_width"] for b in batch]),
        orig_height=np.asarray([b[2]["orig_height"] for b in batch]),
        unseen_real=np.asarray([b[0].unseen_real for b in batch]),
    )


def _split_partitions(k: int, split: dict, index_of: dict[str, int], sha: np.ndarray,
                      skipped: dict[str, str]) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str]]:
    """Partitions of one split as store indices, and one line per image whose content (SHA-256) is
    already in another partition of the split: the later copy (in the order train, val, test,
    unknown groups) is left out and recorded in ``skipped``; the caller refuses the build unless
    ``--skip-bad``. Content may repeat inside one partition.
    """
    paths = {i: p for p, i in index_of.items()}
    owner: dict[bytes, tuple[str, int]] = {}
    clashes: list[str] = []
    partitions = {}
    for name in KNOWN_PARTITIONS + OUT_PARTITIONS:
        if name not in split["partitions"]:
            continue
        kept = []
        for path, label in split["partitions"][name]:
            if path not in index_of:
                continue
            idx = index_of[path]
            first_name, first_idx = owner.setdefault(sha[idx], (name, idx))
            if first_name != name:
                line = (f"split{k}: {path} in {name} has the same content (SHA-256) as "
                        f"{paths[first_idx]} in {first_name}")
                clashes.append(line)
                skipped.setdefault(f"{path} (split{k} {name})", line)
                continue
            kept.append((idx, label))
        partitions[name] = (np.asarray([i for i, _ in kept], np.int64), np.asarray([lab for _, lab in kept], np.int64))
    if "out" in split["partitions"]:
        in_groups = {int(i) for p in OUT_PARTITIONS if p in partitions for i in partitions[p][0]}
        pairs = [(index_of[p], lab) for p, lab in split["partitions"]["out"]
                 if p in index_of and index_of[p] in in_groups]
        partitions["out"] = (np.asarray([i for i, _ in pairs], np.int64), np.asarray([lab for _, lab in pairs], np.int64))
    return partitions, clashes
