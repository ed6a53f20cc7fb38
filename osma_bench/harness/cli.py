"""Commands of this area, registered on the main CLI app: ``methods`` and ``run``."""

from __future__ import annotations

from pathlib import Path

import typer

#: Largest --seed: seeds go to NumPy and torch generators as 64-bit values.
MAX_SEED = 2**63 - 1


def register(app: typer.Typer) -> None:
    """Add this area's commands to ``app``."""

    @app.command("methods")
    def methods_command(
        hparams: str | None = typer.Option(None, "--hparams", metavar="METHOD",
                                           help="describe METHOD's hyperparameters: kind, type, allowed values, "
                                                "default per profile, paper value, meaning"),
        profile: str = typer.Option("mini", "--profile", help="the profile whose resolved defaults to show"),
    ) -> None:
        """List registered methods: name, paper, package (or one method's declared hyperparameters)."""
        from rich.console import Console
        from rich.table import Table

        from osma_bench.methods.registry import describe_methods, get_method

        if hparams:
            from osma_bench.harness.config import HARNESS_PARAMS, resolve

            cls = get_method(hparams)
            resolved = resolve(cls, profile)
            declared = {**HARNESS_PARAMS, **cls.declared_hparams()}
            table = Table(title=f"{hparams}: hyperparameters (profile {profile})")
            for col in ("name", "kind", f"value ({profile})", "source", "allowed", "paper", "meaning"):
                table.add_column(col, overflow="fold")
            for name, row in resolved.provenance().items():
                p = declared[name]
                table.add_row(name, row["kind"], repr(row["value"]), row["source"], p.expected(), p.paper, p.help)
            Console().print(table)
            for key, reason in cls.unused_budget.items():
                Console().print(f"not used: {key} ({reason})")
            for note in cls.budget_notes:
                Console().print(f"note: {note}")
            return
        table = Table(title="osma-bench methods (entry-point group osma_bench.methods)")
        for col in ("name", "paper", "package", "status"):
            table.add_column(col)
        for info in describe_methods():
            table.add_row(info.name, info.paper, info.package, "ok" if info.error is None else info.error)
        Console().print(table)

    @app.command("run")
    def run_command(
        method: str = typer.Option(..., "--method", "-m", help="registered method name (see osma-bench methods)"),
        data: Path = typer.Option(..., "--data", help="dataset folder (with dataset.json)"),
        split: int = typer.Option(1, "--split", help="protocol split k"),
        seed: int = typer.Option(0, "--seed", help="random seed"),
        profile: str = typer.Option("mini", "--profile", metavar="NAME|FILE.yaml",
                                    help="budget profile: smoke, mini, paper, or your own YAML file (docs/DATA.md)"),
        device: str = typer.Option("auto", "--device", help="cpu, cuda, cuda:N or auto"),
        epochs: int | None = typer.Option(None, "--epochs", help="override the profile's number of epochs"),
        overrides: list[str] | None = typer.Option(None, "--set", help="override a hyperparameter: key=value "
                                                   "(typed by its declaration; osma-bench methods --hparams NAME)"),
        variant: str | None = typer.Option(None, "--variant", help="name this change of settings: the run gets "
                                           "its own folder <method>+<NAME> and report row; 'auto' names it "
                                           "after the --set values"),
        resume: bool = typer.Option(False, "--resume", help="continue an interrupted run from its last epoch"),
        overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing run directory"),
        out: Path = typer.Option(Path("results"), "--out", help="results root"),
        verify: bool = typer.Option(True, "--verify/--no-verify", help="check the dataset's checksums first"),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="show the progress bar"),
        robustness: str | None = typer.Option(None, "--robustness", help="then score the run on perturbed test "
                                              "images (osma-bench robustness; SPEC or default), unless its "
                                              "robustness.json of this spec exists"),
    ) -> None:
        """Train and evaluate one method on one split and seed; write results/<dataset>/<method>/split<k>/seed<s>/.

        Several processes or GPUs: start it with torchrun, e.g.
        torchrun --standalone --nproc-per-node 4 --no-python osma-bench run --method pose ...
        """
        from rich.console import Console

        from osma_bench.errors import Interrupted, OsmaError
        from osma_bench.harness.config import parse_overrides
        from osma_bench.harness.profile_file import is_profile_file, load_profile_file
        from osma_bench.harness.runner import RunRequest, run, summary_line

        if resume and overwrite:
            raise OsmaError("--resume and --overwrite exclude each other")
        if not 0 <= seed <= MAX_SEED:
            raise OsmaError(f"--seed must be an integer from 0 to {MAX_SEED} (2^63 - 1), got {seed}")
        if split < 1:
            raise OsmaError(f"--split must be 1 or more, got {split}")
        if epochs is not None and epochs < 1:
            raise OsmaError(f"--epochs must be 1 or more, got {epochs}")
        if robustness is not None:
            from osma_bench.robustness.perturbations import parse_spec

            parse_spec(robustness)  # a bad spec fails before training, not after
        if is_profile_file(profile):
            load_profile_file(profile)  # one error line for a bad file, before anything starts
        request = RunRequest(method=method, data=data, split=split, seed=seed, profile=profile, device=device,
                             epochs=epochs, overrides=parse_overrides(overrides), variant=variant, resume=resume,
                             overwrite=overwrite, out=out, verify=verify, progress=progress)
        try:
            result = run(request)
        except KeyboardInterrupt:
            raise Interrupted("run interrupted; its run.json says so: rerun the same command with --resume to "
                              "continue from the last complete epoch") from None
        if result.metrics:  # distributed runs: rank 0 only
            Console().print(f"{result.path}: {summary_line(result.metrics)}", markup=False, highlight=False)
        if robustness is not None and result.metrics:
            from osma_bench.robustness.cli import run_robustness

            run_robustness(result.path, [robustness], data=data, device=device, verify=False, skip_done=True)
