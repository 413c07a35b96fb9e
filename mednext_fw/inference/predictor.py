"""``Predictor``: preprocessed or raw arrays and files -> label maps on the input's own grid.

Built from a trained model folder (CLI) or from in-memory networks (the trainer's final
validation). Folds are ensembled by averaging their logits in one accumulator (as nnU-Net v2), so
more folds cost time, not memory.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from mednext_fw.devices import select_device
from mednext_fw.inference.estimate import PredictionEstimate, estimate_prediction, preprocessed_shape
from mednext_fw.inference.export import ExportSpec, export_case, to_native
from mednext_fw.inference.export_pool import ExportPool
from mednext_fw.inference.inputs import require_finite
from mednext_fw.inference.model_folder import ModelFolder, load_networks
from mednext_fw.inference.postprocessing import POSTPROCESSING_FILE, PostprocessingRules
from mednext_fw.inference.sliding_window import SlidingWindowSettings, sliding_window_predict
from mednext_fw.io.atomic import sweep_temporaries
from mednext_fw.io.dataset_json import DatasetJson
from mednext_fw.io.image_io import ImageProperties, file_ending_of, read_images
from mednext_fw.io.labels import num_outputs
from mednext_fw.network_architectures.registry import input_channels
from mednext_fw.planners.plans import Configuration, Plans

log = logging.getLogger(__name__)

# Probabilities above this size are exported in this process: a worker would hold a second and a
# third copy while the next case is predicted (CT with many classes: gigabytes).
INLINE_EXPORT_BYTES = 512 * 2 ** 20


def probabilities_inplace(logits: torch.Tensor, regions: bool, slab: int = 8) -> torch.Tensor:
    """Softmax/sigmoid over the class axis of ``(K, *S)`` in place, ``slab`` slices at a time, so the
    temporaries (max, sum) stay slab-sized instead of full-size."""
    if regions:
        return logits.sigmoid_()
    for start in range(0, logits.shape[1], slab):
        chunk = logits[:, start:start + slab]
        chunk -= torch.amax(chunk, 0, keepdim=True)
        chunk.exp_()
        chunk /= chunk.sum(0, keepdim=True)
    return logits


@contextlib.contextmanager
def _inference_state(net: nn.Module) -> Iterator[None]:
    """Eval mode, deep supervision off; the caller's (e.g. the trainer's) state restored after."""
    was_training = net.training
    ds = getattr(net, "deep_supervision", None)
    net.eval()
    if ds is not None:
        net.deep_supervision = False
    try:
        yield
    finally:
        if ds is not None:
            net.deep_supervision = ds
        net.train(was_training)


class Predictor:
    def __init__(self, networks: Sequence[nn.Module] | nn.Module, plans: Plans, config: Configuration | str,
                 dataset: DatasetJson, device: str | torch.device = "auto", tta: bool = True, step_size: float = 0.5,
                 tile_batch_size: int = 1, postprocessing: PostprocessingRules | None = None,
                 progress: bool = False):
        self.networks = [networks] if isinstance(networks, nn.Module) else list(networks)
        if not self.networks:
            raise ValueError("Predictor needs at least one network")
        self.plans = plans
        self.config = plans.configuration(config) if isinstance(config, str) else config
        self.dataset = dataset
        self.device = select_device(device)
        for net in self.networks:
            net.to(self.device)
        self.settings = SlidingWindowSettings(
            patch_size=list(self.config.patch_size), step_size=step_size,
            mirror_axes=list(self.config.mirror_axes) if tta else [], batch_size=tile_batch_size, progress=progress)
        self.spec = ExportSpec.from_plans(plans, self.config, dataset)
        self.postprocessing = postprocessing
        self.num_outputs = num_outputs(dataset)

    @classmethod
    def from_model_folder(cls, folder: str | Path | ModelFolder, folds: Sequence[int | str] | None = None,
                          checkpoint: str = "final", device: str | torch.device = "auto", tta: bool = True,
                          step_size: float = 0.5, **kwargs) -> "Predictor":
        mf = folder if isinstance(folder, ModelFolder) else ModelFolder.open(folder)
        pp_file = mf.path / POSTPROCESSING_FILE
        pp = PostprocessingRules.load(pp_file) if pp_file.is_file() else None
        kwargs.setdefault("postprocessing", pp)
        if mf.plans.configuration(mf.config_name).previous_stage:  # a cascade stage runs its previous stage too
            from mednext_fw.inference.cascade import CascadePredictor

            return CascadePredictor.from_folders(mf, folds, checkpoint, device, tta, step_size, **kwargs)
        nets = load_networks(mf, folds, checkpoint)
        return cls(nets, mf.plans, mf.config_name, mf.dataset, device, tta, step_size, **kwargs)

    # ---------- time estimates ----------
    def measure_tile_seconds(self, repeats: int = 2, slow_s: float = 1.0) -> float:
        """Seconds of one network pass over one tile on this device: the fastest of ``repeats`` passes
        after a warm-up, or the warm-up alone when it took over ``slow_s`` (its allocation overhead is
        then small, and each further pass would cost the user as much: 10 s for MedNeXt-S on a CPU).

        On a CPU, a half-sided tile is timed first (a warm-up and one pass); when its time scaled by
        voxels exceeds ``slow_s`` that is the answer: a full-width MedNeXt-S 128^3 tile is timed in
        ~2 s instead of ~7-11 s. The passes are thrown away, and with ``--backend auto`` they time
        torch for a job that may then run on OpenVINO. Scaled, the half tile's pass came 10-20% under
        the full one's (smaller tiles run a little faster per voxel): close enough to announce."""
        patch = [int(p) for p in self.settings.patch_size]
        divisor = getattr(self.networks[0], "input_divisor", None)  # networks that do not say keep the full tile
        if self.device.type == "cpu" and divisor:
            half = [max(d, p // 2 // d * d) for p, d in zip(patch, divisor)]
            if half != patch:
                scaled = self._time_passes(half, 1) * float(np.prod(patch)) / float(np.prod(half))
                if scaled > slow_s:
                    return scaled
        return self._time_passes(patch, repeats, slow_s)

    def _time_passes(self, tile: Sequence[int], repeats: int, slow_s: float = float("inf")) -> float:
        """The fastest of ``repeats`` passes over a ``tile`` after a warm-up; the warm-up itself when
        it took over ``slow_s``."""
        import time

        from mednext_fw.inference.sliding_window import _autocast

        net = self.networks[0]
        in_ch = input_channels(net) or self.dataset.num_channels
        x = torch.randn(1, in_ch, *tile, device=self.device)
        best = float("inf")
        with torch.inference_mode(), _inference_state(net), _autocast(self.settings, self.device):
            for i in range(repeats + 1):
                start = time.perf_counter()
                net(x)
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                took = time.perf_counter() - start
                if i == 0 and took > slow_s:
                    return took
                if i:  # the first pass pays for allocations and kernel selection
                    best = min(best, took)
        return best

    def estimate(self, shapes: Sequence[Sequence[int]], native_voxels: Sequence[float],
                 tile_seconds: float | None = None, time_above_passes: int = 0) -> PredictionEstimate:
        """Predicted time for images of preprocessed ``shapes`` (tiles x TTA x folds x measured tile time).

        A job of at most ``time_above_passes`` passes is not timed (measuring would cost a pass):
        its estimate counts passes only."""
        est = estimate_prediction(shapes, native_voxels, self.settings.patch_size, self.settings.step_size,
                                  len(self.settings.mirror_axes), len(self.networks), tile_seconds, self.num_outputs)
        if tile_seconds is None and est.forward_passes > time_above_passes:
            est.tile_seconds = self.measure_tile_seconds()
        return est

    def estimate_files(self, cases: Mapping[str, Sequence[str | Path]], time_above_passes: int = 0
                       ) -> PredictionEstimate:
        """The estimate for raw input files, from their headers alone."""
        from mednext_fw.io.image_io import read_header

        shapes, voxels = [], []
        for files in cases.values():
            header = read_header(files[0])
            spacing = header.spacing or (1.0,) * header.dimension
            size, sp = list(header.size), list(spacing)
            while len(size) < 3:  # natural 2D images: one slice
                size, sp = size + [1], sp + [1.0]
            shapes.append(preprocessed_shape(size, sp, self.plans.transpose_forward, self.config.spacing))
            voxels.append(float(np.prod(size)))
        return self.estimate(shapes, voxels, time_above_passes=time_above_passes)

    # ---------- preprocessed space ----------
    def predict_probabilities(self, data: np.ndarray | torch.Tensor) -> np.ndarray:
        """``(C, *S)`` preprocessed data -> ``(K, *S)`` fp32 probabilities of the folds' mean logits."""
        if isinstance(data, np.ndarray):
            data = torch.from_numpy(data if data.flags.writeable else np.array(data))
        with torch.inference_mode(), contextlib.ExitStack() as states:
            for net in self.networks:
                states.enter_context(_inference_state(net))
            logits = sliding_window_predict(self.networks, data, self.num_outputs, self.settings, self.device)
            return probabilities_inplace(logits, self.dataset.has_regions).cpu().numpy()

    def predict_preprocessed(self, data: np.ndarray | torch.Tensor, case_props, return_probabilities: bool = False,
                             apply_postprocessing: bool = True):
        """Preprocessed case -> native label map (and native probabilities when asked)."""
        probs = self.predict_probabilities(data)
        pp = self.postprocessing if apply_postprocessing else None
        seg, native_probs = to_native(probs, self.spec, case_props, pp, return_probabilities)
        return (seg, native_probs) if return_probabilities else seg

    def predict_preprocessed_to_file(self, data, case_props, output_path: str | Path,
                                     probabilities_path: str | Path | None = None,
                                     apply_postprocessing: bool = False) -> Path:
        """For the trainer's validation: raw (not postprocessed) prediction written atomically."""
        probs = self.predict_probabilities(data)
        pp = self.postprocessing if apply_postprocessing else None
        return export_case(probs, self.spec, case_props, output_path, probabilities_path, pp)

    # ---------- raw arrays and files ----------
    def preprocess(self, data: np.ndarray, image_props: ImageProperties, case_id: str = "case"):
        from mednext_fw.preprocessing import preprocess_case

        data, _, props = preprocess_case(data, image_props, None, self.plans, self.config, self.dataset, case_id)
        return data, props

    def predict_array(self, data: np.ndarray, image_props: ImageProperties, case_id: str = "case"):
        """Raw ``(C, Z, Y, X)`` image as read by ``read_images`` -> (native label map, native probabilities)."""
        pre, props = self.preprocess(data, image_props, case_id)
        return self.predict_preprocessed(pre, props, return_probabilities=True)

    def predict_files(self, cases: Mapping[str, Sequence[str | Path]], output_dir: str | Path,
                      overwrite: bool = False, save_probabilities: bool = False,
                      num_export_workers: int = 2) -> list[Path]:
        """Predict ``{case_id: [channel files]}`` into ``output_dir/<case_id><input ending>``.

        Cases whose outputs exist are skipped unless ``overwrite``; every file is written atomically,
        so an interrupted run resumes where it stopped.
        """
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        sweep_temporaries(output_dir, recursive=False)  # what a killed earlier run left half-written
        if save_probabilities:  # mednext_ensemble reads labels/regions and the file ending from it
            self.dataset.save(output_dir / "dataset.json")
        jobs, outputs = [], []
        for case_id, files in cases.items():
            out = output_dir / f"{case_id}{file_ending_of(files[0])}"
            prob = output_dir / f"{case_id}.npz" if save_probabilities else None
            outputs.append(out)
            done = out.is_file() and (prob is None or prob.is_file())
            if overwrite or not done:
                jobs.append((case_id, list(files), out, prob))
        if len(jobs) < len(cases):
            log.info("skipping %d case(s) with existing results in %s", len(cases) - len(jobs), output_dir)
        with ExportPool(num_export_workers) as pool:
            for i, (case_id, files, out, prob) in enumerate(tqdm(jobs, desc="predicting", unit="case", disable=not jobs)):
                data, image_props = read_images(files)
                require_finite(data, files)
                pre, props = self.preprocess(data, image_props, case_id)
                del data
                probs = self.predict_probabilities(pre)
                del pre
                inline = i == len(jobs) - 1 or probs.nbytes > INLINE_EXPORT_BYTES
                pool.submit(export_case, probs, self.spec, props, out, prob, self.postprocessing, inline=inline)
                del probs
        return outputs
