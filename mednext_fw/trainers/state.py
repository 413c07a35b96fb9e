"""The trainer's saved state: what a checkpoint holds, writing and resuming it, and which saved
weights the network holds (``weights_from``) for the validation of those weights alone
(``mednext_train --val``). A mixin of ``BaseTrainer``; it uses the parts the base sets up.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from mednext_fw.errors import UserError
from mednext_fw.trainers import checkpoint as ckpt_io

CHECKPOINTS = ("checkpoint_final.pth", "checkpoint_best.pth", "checkpoint_latest.pth")


class CheckpointState:
    weights_from: str | None = None  # the checkpoint file (in output_dir) whose weights the network holds

    def state_dict(self) -> dict[str, Any]:
        return {
            "network_builder": self.network_builder(),
            "network_state": ckpt_io.strip_prefixes(ckpt_io.unwrap(self.network).state_dict()),
            "optimizer_state": self.optimizer.state_dict(),
            "scaler_state": self.precision.state_dict(),
            "schedule_state": self.schedule.state_dict(),
            "epoch": self.epoch,
            "ema_metric": self.ema,
            "best_ema_metric": self.best_ema,
            "logger": self.logger.state_dict(),
            "rng": ckpt_io.rng_state(),
            "pacing": self.pacer.state_dict(),
            "trainer_name": self.trainer_name,
            "settings": asdict(self.settings),
            **self.checkpoint_extras(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._load_network(state)
        self.optimizer.load_state_dict(state["optimizer_state"])
        self.precision.load_state_dict(state.get("scaler_state", {}))
        self.schedule.load_state_dict(state["schedule_state"])
        self.epoch = int(state["epoch"])
        self.ema = state.get("ema_metric")
        self.best_ema = state.get("best_ema_metric")
        self.logger.load_state_dict(state["logger"])
        if "rng" in state:
            ckpt_io.set_rng_state(state["rng"])
        self.pacer.load_state_dict(state.get("pacing"))

    def _load_network(self, state: dict[str, Any]) -> None:
        ckpt_io.unwrap(self.network).load_state_dict(ckpt_io.strip_prefixes(state["network_state"]))

    def save_checkpoint(self, name: str) -> None:
        state = self.state_dict()  # every rank builds it: cheap, and keeps ranks in lock-step
        if self.dist.is_main:
            ckpt_io.save_checkpoint(state, self.output_dir / name)

    def resume(self) -> Path | None:
        """Load the newest of final/latest (best as a fallback); returns the file used."""
        fold = self.output_dir
        candidates = [fold / n for n in ("checkpoint_final.pth", "checkpoint_latest.pth") if (fold / n).is_file()]
        if candidates:
            path = max(candidates, key=lambda p: p.stat().st_mtime)
        elif (fold / "checkpoint_best.pth").is_file():
            path = fold / "checkpoint_best.pth"
        else:
            return None
        self.load_state_dict(ckpt_io.load_checkpoint(path, map_location=self.device))
        self.weights_from = path.name
        return path

    def weights_source(self) -> dict[str, Any] | None:
        """Identifies the saved weights the network holds (file name, size, mtime), or None when they
        are not a saved file's. The validation folder records it: predictions of other weights are stale."""
        if self.weights_from is None:
            return None
        st = (self.output_dir / self.weights_from).stat()
        return {"checkpoint": self.weights_from, "size": st.st_size, "mtime_ns": st.st_mtime_ns}

    def validate_only(self, checkpoint: str = "checkpoint_final.pth") -> None:
        """nnU-Net's ``--val``: the final validation with ``checkpoint``'s weights, no training. Predictions
        of these same weights already in the validation folder are kept (an interrupted run resumes)."""
        path = self.output_dir / checkpoint
        if checkpoint not in CHECKPOINTS:
            raise UserError(f"unknown checkpoint '{checkpoint}'; expected one of {', '.join(CHECKPOINTS)}")
        if not path.is_file():
            raise UserError(f"{path} does not exist: train this fold first (an interrupted training resumes "
                            "with --continue)")
        self.sweep_leftovers()
        if not self._is_set_up:
            self.setup()
        state = ckpt_io.load_checkpoint(path, map_location=self.device)
        self._load_network(state)
        self.epoch = int(state["epoch"])
        self.weights_from = checkpoint
        self.logger.log(f"Validation only: the weights of {checkpoint} (epoch {self.epoch}), no training")
        try:
            self.final_validation()
        finally:
            self.logger.close()
