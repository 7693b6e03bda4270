"""Named experiment grids, the results store, and the report (RESULTS.md + figures)."""

from hetmem.experiments.grids import EXPERIMENTS, Experiment, get_experiment
from hetmem.experiments.report import build_report
from hetmem.experiments.run import DEFAULT_STORE, DEFAULT_WORK_DIR, ExperimentRun, PendingRun, pending_runs, run_experiment
from hetmem.experiments.store import ResultsStore

__all__ = [
    "DEFAULT_STORE",
    "DEFAULT_WORK_DIR",
    "EXPERIMENTS",
    "Experiment",
    "ExperimentRun",
    "PendingRun",
    "ResultsStore",
    "build_report",
    "get_experiment",
    "pending_runs",
    "run_experiment",
]
