"""Build and run one trainer by its registered name: the stage function behind ``mednext_train`` and the demo."""
from __future__ import annotations

from typing import Any

from mednext_fw.trainers.registry import TRAINERS
from mednext_fw.trainers.settings import TrainingSettings


def make_trainer(dataset: str, configuration: str, fold: int | str, trainer: str = "MedNeXtTrainer",
                 options: dict[str, Any] | None = None, **settings: Any):
    """The trainer ``trainer`` for one fold; ``settings`` left out (or None) come from the trainer's recipe
    (class attribute ``settings_defaults``), then from ``TrainingSettings``' defaults."""
    trainer_cls = TRAINERS.get(trainer)
    recipe = {**getattr(trainer_cls, "settings_defaults", {}), **{k: v for k, v in settings.items() if v is not None}}
    s = TrainingSettings(**recipe)
    s.validate()
    return trainer_cls.from_cli(dataset, configuration, str(fold), trainer, dict(options or {}), s)


def train_fold(dataset: str, configuration: str, fold: int | str, trainer: str = "MedNeXtTrainer",
               options: dict[str, Any] | None = None, **settings: Any):
    """Train (or, with ``continue_training=True``, resume) one fold; returns the finished trainer."""
    t = make_trainer(dataset, configuration, fold, trainer, options, **settings)
    try:
        t.run()
    finally:
        t.dist.shutdown()
    return t
