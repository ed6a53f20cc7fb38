"""Commands of this area, registered on the main CLI app: ``sweep``."""

from __future__ import annotations

from pathlib import Path

import typer

EXECUTORS = ("local", "slurm")


def register(app: typer.Typer) -> None:
    """Add this area's commands to ``app``."""

    @app.command("sweep")
    def sweep_command(
        data: Path = typer.Option(..., "--data", help="dataset folder (with dataset.json)"),
        methods: str = typer.Option("all", "--methods", help="all (every registered method) or a,b,..."),
        splits: str = typer.Option("all", "--splits", help="all (every split of the dataset) or 1,2 / 1-3"),
        seeds: str = typer.Option("0", "--seeds", help="seeds, e.g. 0,1,2 or 0-4"),
        profile: str = typer.Option("mini", "--profile", help="budget profile of every run: smoke, mini, paper or a "
                                    "profile FILE.yaml"),
        executor: str = typer.Option("local", "--executor", help="local (subprocesses here) or slurm (submitit)"),
        jobs: int | None = typer.Option(None, "--jobs", "-j",
                                        help="runs at once (local default 1; slurm default 0 = no limit)"),
        out: Path = typer.Option(Path("results"), "--out", help="results root"),
        overrides: list[str] | None = typer.Option(None, "--set", help="hyperparameter override for every run: key=value"),
        variant: str | None = typer.Option(None, "--variant", help="name the --set change: every run goes to "
                                           "<method>+<NAME> and is its own report row ('auto': named after "
                                           "the --set values)"),
        device: str = typer.Option("auto", "--device", help="device of every run: cpu, cuda, cuda:N or auto"),
        epochs: int | None = typer.Option(None, "--epochs", help="override the profile's number of epochs"),
        threads: int | None = typer.Option(None, "--threads", help="local: CPU threads per run (default cores // jobs)"),
        gpus: str | None = typer.Option(None, "--gpus", help="local: GPU ids to spread runs over, e.g. 0,1,2,3"),
        procs_per_run: int = typer.Option(1, "--procs-per-run",
                                          help="processes (GPUs) per run; > 1 starts each run under torchrun"),
        logs: Path | None = typer.Option(None, "--logs", help="sweep logs and state (default <out>/.sweep)"),
        verify: bool = typer.Option(True, "--verify/--no-verify", help="check the dataset's checksums once first"),
        dry_run: bool = typer.Option(False, "--dry-run", help="list the grid and what each run needs; start nothing"),
        tail: int = typer.Option(15, "--tail", help="log lines shown for each failed run"),
        robustness: str | None = typer.Option(None, "--robustness", help="after each run, osma-bench robustness "
                                              "with this spec (or default); skipped where robustness.json of "
                                              "the same spec exists"),
        slurm_partition: str | None = typer.Option(None, "--slurm-partition", help="slurm: partition"),
        slurm_time: str | None = typer.Option(None, "--slurm-time", help="slurm: time limit per run (minutes or H:MM:SS)"),
        slurm_gpus: int | None = typer.Option(None, "--slurm-gpus", help="slurm: GPUs per run"),
        slurm_cpus: int | None = typer.Option(None, "--slurm-cpus", help="slurm: CPU cores per run"),
        slurm_mem_gb: float | None = typer.Option(None, "--slurm-mem-gb", help="slurm: memory per run in GB"),
        slurm_account: str | None = typer.Option(None, "--slurm-account", help="slurm: account to charge"),
        slurm_params: list[str] | None = typer.Option(None, "--slurm-param",
                                                      help="slurm: any other sbatch option, key=value (qos=high)"),
        submitit_cluster: str = typer.Option("slurm", "--submitit-cluster", hidden=True,
                                             help="submitit cluster for --executor slurm (tests: local)"),
    ) -> None:
        """Run every method x split x seed, skipping complete runs and resuming interrupted ones."""
        from rich.console import Console

        from osma_bench.errors import OsmaError
        from osma_bench.sweep.plan import SweepRequest, execute, plan

        if executor not in EXECUTORS:
            raise OsmaError(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
        request = SweepRequest(
            data=data, methods=methods, splits=splits, seeds=seeds, profile=profile, out=out,
            overrides=tuple(overrides or ()), variant=variant, device=device, epochs=epochs, logs=logs, verify=verify,
            processes=procs_per_run, robustness=robustness)
        console = Console(highlight=False)
        if not console.is_terminal:  # a log file: keep table cells and lines long rather than folded
            console.width = max(console.width, 160)
        sweep = plan(request)
        if dry_run:
            sweep.print_plan(console)
            return
        if executor == "local":
            from osma_bench.sweep.grid import parse_int_list
            from osma_bench.sweep.local import LocalExecutor

            gpu_ids = parse_int_list(gpus, "gpus") if gpus else None
            runner = LocalExecutor(jobs=1 if jobs is None else jobs, threads=threads, gpus=gpu_ids)
        else:
            from osma_bench.sweep.slurm import SubmititExecutor, parse_slurm_params, parse_slurm_time

            runner = SubmititExecutor(
                sweep.logs / "submitit", cluster=submitit_cluster, max_parallel=jobs or None,
                partition=slurm_partition, time_min=parse_slurm_time(slurm_time) if slurm_time else None,
                gpus=slurm_gpus, cpus=slurm_cpus, mem_gb=slurm_mem_gb, account=slurm_account,
                extra=parse_slurm_params(slurm_params))
        report = execute(sweep, runner, console, tail=tail)
        if report.interrupted:
            raise KeyboardInterrupt
        if report.failed:
            raise typer.Exit(code=1)
