"""Per-epoch history, the appended ``training_log.txt`` and the ``progress.png`` plot.

Log lines go through the ``logging`` module like every other message of the package: a training
run's logger (``mednext_fw.training.<n>``) has the log file as a handler (appended, so a resumed run
continues the same file) and, when ``echo``, the console; every line carries a time stamp.
"""
from __future__ import annotations

import datetime
import itertools
import logging
from pathlib import Path
from typing import Any

from mednext_fw.io.atomic import atomic_path
from mednext_fw.logs import ConsoleHandler

# wall_time: seconds of training so far (resumed sessions included); predicted_end: the predicted total
# at that epoch (time budget or fixed schedule), so the plot shows how the prediction converged.
SERIES = ("train_loss", "val_loss", "metric", "ema_metric", "lr", "epoch_time", "wall_time", "predicted_end")
_COUNTER = itertools.count()


class _StampEveryLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.datetime.fromtimestamp(record.created).strftime("%Y-%m-%d %H:%M:%S")
        return "\n".join(f"{stamp}: {line}" for line in (record.getMessage().splitlines() or [""]))


class TrainingLogger:
    """Keeps every epoch's numbers (restored on resume) and writes log lines when ``enabled``.

    Only rank 0 is ``enabled`` under DDP; the others keep the history in memory so all ranks agree on
    the EMA and the best-checkpoint decision.
    """

    def __init__(self, log_file: Path | None, enabled: bool = True, echo: bool = True, metric_name: str = "pseudo Dice"):
        self.log_file = Path(log_file) if log_file is not None else None
        self.enabled = enabled
        self.echo = echo
        self.metric_name = metric_name
        self.history: dict[str, list[float]] = {k: [] for k in SERIES}
        self._logger: logging.Logger | None = None
        self.budget_s: float | None = None  # drawn in the wall-time panel

    def _get_logger(self) -> logging.Logger:
        if self._logger is None:
            logger = logging.getLogger(f"mednext_fw.training.run{next(_COUNTER)}")
            logger.setLevel(logging.INFO)
            logger.propagate = False  # its own console handler; a root handler would print it twice
            handlers: list[logging.Handler] = []
            if self.log_file is not None:
                self.log_file.parent.mkdir(parents=True, exist_ok=True)
                handlers.append(logging.FileHandler(self.log_file, mode="a", delay=True))
            if self.echo:
                handlers.append(ConsoleHandler())
            for h in handlers:
                h.setFormatter(_StampEveryLine())
                logger.addHandler(h)
            self._logger = logger
        return self._logger

    def log(self, message: str) -> None:
        if self.enabled:
            logger = self._get_logger()
            logger.info(str(message))
            for h in logger.handlers:
                h.flush()

    def close(self) -> None:
        """Close the log file (the next ``log`` reopens it, appending)."""
        if self._logger is not None:
            for h in list(self._logger.handlers):
                h.close()
                self._logger.removeHandler(h)
            self._logger = None

    def record(self, **values: float) -> None:
        unknown = set(values) - set(SERIES)
        if unknown:
            raise KeyError(f"unknown log series {sorted(unknown)}")
        for key in SERIES:
            self.history[key].append(float(values.get(key, float("nan"))))

    @property
    def num_epochs_logged(self) -> int:
        return len(self.history["train_loss"])

    def state_dict(self) -> dict[str, Any]:
        return {"history": {k: list(v) for k, v in self.history.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        old = state["history"]
        n = len(old.get("train_loss", []))
        # checkpoints from before a series existed: pad it so every series has one value per epoch
        self.history = {k: list(old.get(k, [float("nan")] * n)) for k in SERIES}

    def plot(self, path: Path) -> None:
        if not self.enabled or self.num_epochs_logged == 0:
            return
        import matplotlib

        matplotlib.use("Agg")  # headless: training servers have no display
        import matplotlib.pyplot as plt

        h = self.history
        epochs = list(range(1, self.num_epochs_logged + 1))
        fig, axes = plt.subplots(4, 1, figsize=(10, 16))
        ax = axes[0]
        ax.plot(epochs, h["train_loss"], "b-", marker=".", label="train loss")
        ax.plot(epochs, h["val_loss"], "r-", marker=".", label="val loss")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax2 = ax.twinx()
        ax2.plot(epochs, h["metric"], "g:", marker=".", label=self.metric_name)
        ax2.plot(epochs, h["ema_metric"], "g-", marker=".", label=f"{self.metric_name} (EMA)")
        ax2.set_ylabel(self.metric_name)
        lines = ax.get_legend_handles_labels()
        lines2 = ax2.get_legend_handles_labels()
        ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="best")
        axes[1].plot(epochs, h["epoch_time"], "b-", marker=".")
        axes[1].set_xlabel("epoch")
        axes[1].set_ylabel("epoch time [s]")
        axes[2].plot(epochs, h["lr"], "b-", marker=".")
        axes[2].set_xlabel("epoch")
        axes[2].set_ylabel("learning rate")
        minutes = lambda v: [x / 60 for x in v]  # noqa: E731
        axes[3].plot(epochs, minutes(h["wall_time"]), "b-", marker=".", label="actual (end of epoch)")
        axes[3].plot(epochs, minutes(h["predicted_end"]), "r--", marker=".", label="predicted end of run")
        if self.budget_s:
            axes[3].axhline(self.budget_s / 60, color="k", linestyle=":", label="time budget")
        axes[3].set_xlabel("epoch")
        axes[3].set_ylabel("wall time [min]")
        axes[3].legend(loc="best")
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)
