"""The progress display of every training command: one bar over all planned epochs of an experiment, a line per
finished run, and a note when an earlier invocation's runs are resumed. Imported when a command trains, so that
`harlab --help` does not load PyTorch."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.progress import Progress

from harlab.console import say
from harlab.experiments.runner import ExperimentCallback, FinishedRun
from harlab.experiments.runner import Progress as Plan
from harlab.training.callbacks import FitState


class ExperimentProgress(ExperimentCallback):
    """Advances `task` of `progress` after every epoch and, when a run ends, to the epochs of all finished runs
    (a run stopped early, copied or trained elsewhere counts its planned epochs); prints `line(run)` per run."""

    def __init__(self, progress: Progress, task: Any, out: Path, line: Callable[[FinishedRun], str]):
        self.progress, self.task, self.out, self.line = progress, task, out, line
        self.completed = 0

    def on_experiment_start(self, progress: Plan) -> None:
        if progress.finished_runs:
            say(f"resuming: {progress.finished_runs} of {progress.runs} runs already finished in {self.out}")
        self.completed = progress.finished_epochs
        self.progress.update(self.task, total=progress.epochs, completed=self.completed)

    def on_epoch_end(self, state: FitState) -> None:
        self.progress.advance(self.task)

    def on_remote_epochs(self, count: int) -> None:
        task = next(t for t in self.progress.tasks if t.id == self.task)
        self.progress.update(self.task, completed=min(task.total or 0, task.completed + count))

    def on_run_end(self, run: FinishedRun) -> None:
        self.completed += run.epochs
        self.progress.update(self.task, completed=self.completed)
        print(self.line(run), flush=True)


def label_line(run: FinishedRun) -> str:
    """`>filters=64 #3: 91.234`: the tutorial's line per run, with the configuration's label."""
    return f">{run.configuration.label} #{run.result.repeat}: {run.result.accuracy * 100:.3f}"
