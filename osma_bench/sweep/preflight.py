"""Checks made once before a sweep starts any job, so a mistake shared by every run (an unknown
``--set`` key, a profile that does not match the dataset's image size, a damaged dataset) is one
error message instead of a grid of failures."""

from __future__ import annotations

from pathlib import Path

from osma_bench.errors import OsmaError


def check_configs(methods: list[str], profile: str, overrides: list[str], epochs: int | None,
                  image_size: int, dataset: Path, processes: int = 1) -> None:
    """Resolve every method's configuration as ``osma-bench run`` will; OsmaError listing all problems
    (with ``processes`` > 1 also: methods without distributed support, batches that do not split)."""
    if processes < 1:
        raise OsmaError(f"--procs-per-run must be at least 1, got {processes}")
    from osma_bench.harness.config import parse_overrides, resolve
    from osma_bench.harness.precision import check_amp_request
    from osma_bench.harness.profile_file import is_profile_file, load_profile_file
    from osma_bench.methods.registry import get_method

    parsed = parse_overrides(overrides)
    profile_values = load_profile_file(profile) if is_profile_file(profile) else None  # a user's profile file
    problems = []
    for name in methods:
        try:
            method_cls = get_method(name)
            check_amp_request(method_cls, parsed)
            config = resolve(method_cls, profile, parsed, epochs, profile_values).values
        except OsmaError as exc:
            problems.append(f"{name}: {exc}")
            continue
        if processes > 1 and not method_cls.supports_distributed:
            problems.append(f"{name}: does not support distributed training; sweep it with --procs-per-run 1")
        elif processes > 1 and int(config["per_class"]) % processes:
            problems.append(f"{name}: per_class={config['per_class']} does not split over {processes} processes "
                            f"(--set per_class=<a multiple of {processes}>)")
        if config["image_size"] != image_size:
            problems.append(f"{name}: profile {profile!r} expects {config['image_size']}x{config['image_size']} "
                            f"images but {dataset} stores {image_size}x{image_size} (use --set image_size="
                            f"{image_size} or a dataset built at that size)")
    if problems:
        raise OsmaError("sweep not started; these methods would fail on every split and seed:\n  " + "\n  ".join(problems))


def check_dataset(root: Path) -> None:
    """Verify the dataset's files once (checksums, schema and content hash), as ``run`` would."""
    from osma_bench.data import verify_dataset

    problems = verify_dataset(root, content_hash=True)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; ... ({len(problems)} problems)" if len(problems) > 5 else "")
        raise OsmaError(f"dataset {root} failed verification: {shown} (rebuild it or run osma-bench verify-data)")
