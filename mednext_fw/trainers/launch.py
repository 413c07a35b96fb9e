"""Train one fold from a typed request: what ``mednext_train`` and the demo both run.

The command only turns flags into a :class:`TrainRequest`; everything a run needs besides the plans
(the dataset lookup, the CPU share, the time budget of the plans, a trainer's own recipe) is decided
here, so a script that trains gets the same run as the command line.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mednext_fw import paths
from mednext_fw.devices import resolve_device_type, use_threads
from mednext_fw.durations import parse_duration
from mednext_fw.io.lookup import DatasetNotFoundError, find_dataset
from mednext_fw.planners.plans import Plans
from mednext_fw.trainers.registry import TRAINERS
from mednext_fw.trainers.settings import TrainingSettings

SCHEDULE_KEYS = ("num_epochs", "iters_per_epoch", "val_iters", "lr")


@dataclass
class TrainRequest:
    configuration: str
    fold: str  # "0".."4" or "all"
    dataset: str | None = None  # id or name; None: the only preprocessed dataset
    trainer: str = "MedNeXtTrainer"
    # plan overrides, recorded in the model folder's plans.json: variant, kernel_size, patch_size,
    # batch_size, network_kwargs, upkern_from, pretrained (what the trainer's spec accepts)
    options: dict[str, Any] = field(default_factory=dict)
    # SCHEDULE_KEYS given explicitly; the rest come from the trainer's recipe, then TrainingSettings
    schedule: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    precision: str = "auto"
    seed: int | None = None
    num_workers: int | None = None  # None: $MEDNEXT_n_proc_DA, else the CPU share's
    threads: int | None = None  # None: the CPU share's
    time_budget: str | None = None  # e.g. "10m"; None: the plans' time_budget, else none
    final_validation: bool = True
    final_validation_tta: bool = True
    save_probabilities: bool | None = None  # None: on when more than one configuration is planned
    continue_training: bool = False
    progress_bar: bool = True


def resolve_preprocessed_dataset(query: str | None) -> str:
    """The dataset's folder name; with no query, the only preprocessed dataset."""
    root = paths.preprocessed_root()
    if query is not None:
        return find_dataset(query, [root])
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "plans.json").is_file()) if root.is_dir() else []
    if len(found) != 1:
        raise DatasetNotFoundError(f"-d is needed: {len(found)} preprocessed datasets in {root} "
                                   f"({', '.join(found) or 'none'})")
    return found[0]


def plans_time_budget(dataset: str, configuration: str) -> float | None:
    """A ``time_budget`` set in plans.json (``configurations.<CONFIG>.extra.time_budget``), in seconds."""
    plans_file = paths.preprocessed_root() / dataset / "plans.json"
    if not plans_file.is_file():
        return None
    plans = Plans.load(plans_file)
    value = plans.configurations[configuration].extra.get("time_budget") \
        if configuration in plans.configurations else None
    return parse_duration(value) if value else None


def build_trainer(request: TrainRequest, started: float | None = None):
    """The trainer for ``request``, with this process's threads set; ``started`` (a ``time.monotonic()``
    reading) makes the start-up before this call count against the time budget."""
    from mednext_fw.trainers.data.loader import workers_from_env

    trainer_cls = TRAINERS.get(request.trainer)
    unknown = set(request.schedule) - set(SCHEDULE_KEYS)
    if unknown:
        raise ValueError(f"unknown schedule keys {sorted(unknown)}; expected some of {SCHEDULE_KEYS}")
    # a trainer's recipe (class attribute ``settings_defaults``) fills what the request leaves out
    given = {k: v for k, v in request.schedule.items() if v is not None}
    recipe = {**getattr(trainer_cls, "settings_defaults", {}), **given}
    workers = request.num_workers if request.num_workers is not None else workers_from_env()
    share = use_threads(resolve_device_type(request.device), request.threads, workers)
    settings = TrainingSettings(
        **recipe, device=request.device, precision=request.precision, seed=request.seed,
        num_workers=share.workers, threads=share.threads,
        time_budget_s=parse_duration(request.time_budget) if request.time_budget else None,
        final_validation=request.final_validation, final_validation_tta=request.final_validation_tta,
        final_validation_probabilities=request.save_probabilities,
        continue_training=request.continue_training, progress_bar=request.progress_bar)
    settings.validate()
    dataset = resolve_preprocessed_dataset(request.dataset)
    if settings.time_budget_s is None:
        settings.time_budget_s = plans_time_budget(dataset, request.configuration)
    trainer = trainer_cls.from_cli(dataset, request.configuration, request.fold, request.trainer,
                                   dict(request.options), settings)
    if started is not None:
        trainer.pacer.count_from(started)
    trainer.logger.log(f"CPU share: {share.describe()}")
    return trainer


def train_fold(request: TrainRequest, started: float | None = None):
    """Build the trainer and run it to its end (or to the time budget); returns the trainer."""
    trainer = build_trainer(request, started)
    try:
        trainer.run()
    finally:
        trainer.dist.shutdown()
    return trainer
