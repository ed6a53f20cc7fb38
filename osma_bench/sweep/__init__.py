"""``osma-bench sweep``: run every method x split x seed of a benchmark, resumably.

A run counts as complete when its ``run.json`` says ``complete`` and ``metrics.json`` exists
(docs/CONTRACTS.md section 4); complete runs are skipped, the others are started (or resumed)
as ``osma-bench run ... --resume`` processes through an executor: ``local`` (parallel
subprocesses, :mod:`osma_bench.sweep.local`) or ``slurm`` (one submitit job per run,
:mod:`osma_bench.sweep.slurm`). See docs/SWEEP.md.

Python API: :func:`~osma_bench.sweep.plan.plan` and :func:`~osma_bench.sweep.plan.execute`
(the command's two halves), :func:`~osma_bench.sweep.driver.run_sweep` (the scheduling loop),
:func:`~osma_bench.sweep.state.run_state` (completion detection).
"""
