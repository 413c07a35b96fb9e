"""The demo: plan -> preprocess -> train -> predict held-back cases -> evaluate -> overlays.

Each stage is the function its command runs (``plan_and_preprocess``, ``train_fold``,
``predict_folder``, ``evaluate_folders``), with the commands' defaults, so the demo exercises what a
user runs. Each stage is resumable, so re-running the demo after an interruption continues.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mednext_fw.demo import DEMO_DATA
from mednext_fw.demo.overlay import write_overlay

SEG_DATASET = "Dataset001_BrainMask"
CLS_DATASET = "Dataset101_MRIPlanes"
# The five demo volumes show two heads; train on one anatomy, test on the other so the Dice is honest.
HOLDOUT_PREFIX = "colin27"


@dataclass
class DemoBudget:
    # The planner sizes the network for this machine (a CPU plan without a GPU) and the trainer fits
    # epochs x iterations into this wall time: no hand-edited plans.
    time_budget: str = "3m"
    epochs: int | None = None  # optional upper limits (tests use them to keep the run tiny)
    iters_per_epoch: int | None = None
    seed: int = 0  # with the same schedule, repeat runs agree to ~0.001 in Dice


def setup_roots(workdir: Path) -> dict[str, Path]:
    roots = {k: workdir / k for k in ("raw", "preprocessed", "results")}
    for key, path in roots.items():
        path.mkdir(parents=True, exist_ok=True)
        os.environ[f"MEDNEXT_{key}"] = str(path)
    return roots


def stage_segmentation_data(raw: Path, holdout: Path) -> list[str]:
    """Copy the demo volumes: training anatomy into the raw root, the other into ``holdout``."""
    src = DEMO_DATA / SEG_DATASET
    dst = raw / SEG_DATASET
    held = []
    if not dst.exists():
        tmp = raw / f".{SEG_DATASET}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "imagesTr").mkdir(parents=True)
        (tmp / "labelsTr").mkdir()
        n = 0
        for label in sorted((src / "labelsTr").glob("*.nii.gz")):
            case = label.name[: -len(".nii.gz")]
            if case.startswith(HOLDOUT_PREFIX):
                continue
            shutil.copy(src / "imagesTr" / f"{case}_0000.nii.gz", tmp / "imagesTr")
            shutil.copy(label, tmp / "labelsTr")
            n += 1
        ds = json.loads((src / "dataset.json").read_text())
        ds["numTraining"] = n
        (tmp / "dataset.json").write_text(json.dumps(ds, indent=2))
        tmp.rename(dst)
    for sub in ("images", "labels"):
        (holdout / sub).mkdir(parents=True, exist_ok=True)
    for label in sorted((src / "labelsTr").glob(f"{HOLDOUT_PREFIX}*.nii.gz")):
        case = label.name[: -len(".nii.gz")]
        held.append(case)
        shutil.copy(src / "imagesTr" / f"{case}_0000.nii.gz", holdout / "images")
        shutil.copy(label, holdout / "labels")
    return held


def write_overlays(holdout: Path, cases: list[str], out_dir: Path) -> list[Path]:
    from mednext_fw.io.image_io import read_image, read_seg

    written = []
    for case in cases:
        image, props = read_image(holdout / "images" / f"{case}_0000.nii.gz")
        ref, _ = read_seg(holdout / "labels" / f"{case}.nii.gz")
        pred, _ = read_seg(holdout / "predictions" / f"{case}.nii.gz")
        path = out_dir / f"{case}.png"
        write_overlay(image[0], ref[0], pred[0], path, title=case, spacing=tuple(props.spacing))
        written.append(path)
    return written


def _model_folder(dataset: str, configuration: str, trainer: str | None = None):
    from mednext_fw.inference.model_folder import ModelFolder, resolve_model_folder

    return ModelFolder.open(resolve_model_folder(dataset, configuration, trainer))


def run_segmentation(workdir: Path, budget: DemoBudget) -> dict:
    from mednext_fw.devices import usable_cores, use_threads
    from mednext_fw.evaluation import evaluate_folders, format_table
    from mednext_fw.inference.run import PredictOptions, predict_folder
    from mednext_fw.io.dataset_json import DatasetJson
    from mednext_fw.preprocessing.run import PreprocessOptions, plan_and_preprocess
    from mednext_fw.trainers.launch import TrainRequest, train_fold

    t0 = time.time()
    roots = setup_roots(workdir)
    holdout = workdir / "holdout"
    cases = stage_segmentation_data(roots["raw"], holdout)
    print(f"[demo] 1/5 plan and preprocess {SEG_DATASET} (held back for testing: {', '.join(cases)})", flush=True)
    use_threads("cpu", None, workers=0)
    plan_and_preprocess(SEG_DATASET, PreprocessOptions(configurations=["3d_fullres"],
                                                       num_processes=min(4, usable_cores())))
    print(f"[demo] 2/5 train MedNeXt (time budget {budget.time_budget})", flush=True)
    train_fold(TrainRequest("3d_fullres", "all", dataset=SEG_DATASET, seed=budget.seed,
                            time_budget=budget.time_budget, final_validation=False, continue_training=True,
                            schedule={"num_epochs": budget.epochs, "iters_per_epoch": budget.iters_per_epoch}))
    print("[demo] 3/5 predict the held-back cases", flush=True)
    use_threads("cpu", None, workers=0)
    predict_folder(_model_folder(SEG_DATASET, "3d_fullres"), holdout / "images", holdout / "predictions",
                   PredictOptions(folds=["all"], num_export_workers=min(2, usable_cores())),
                   announce=lambda line: print(f"[demo] {line}", flush=True))
    print("[demo] 4/5 evaluate", flush=True)
    dataset = DatasetJson.load(roots["raw"] / SEG_DATASET / "dataset.json")
    summary_path = holdout / "predictions" / "summary.json"
    summary = evaluate_folders(holdout / "labels", holdout / "predictions", dataset.foreground_regions,
                               dataset.file_ending, ignore_label=dataset.ignore_label, output_json=summary_path,
                               output_csv=summary_path.with_suffix(".csv"))
    print(format_table(summary))
    print("[demo] 5/5 overlays", flush=True)
    overlays = write_overlays(holdout, cases, workdir / "overlays")
    fg = summary["foreground_mean"]
    print(f"[demo] done in {time.time() - t0:.0f} s: foreground Dice {fg['Dice']:.4f}, NSD {fg['NSD']:.4f}; "
          f"overlays: {', '.join(str(p) for p in overlays)}")
    return summary


@dataclass
class ClassificationBudget:
    epochs: int | None = None  # None: each plug-in's demo default below
    input_size: int = 64  # the demo PNGs are 64-pixel thumbnails
    batch_size: int = 16
    # (trainer, epochs, lr or None for the recipe's): augmentation is on by default, so the plug-ins need a
    # few more passes than the recipes' no-augmentation setting did (HoViT-S validated at 100% from epoch 11
    # of 15 on an unseen head). The X-ray MoE recipe's lr 2e-4 is for its full widths: the planned tiny
    # widths reached only 0.73 on the held-out volume in 12 epochs with it (quiet machine, 2026-12-02).
    trainers: tuple[tuple[str, int, float | None], ...] = (("HoViT", 12, None), ("XrayMoE", 12, 1e-3))


def stage_classification_data(raw: Path) -> None:
    dst = raw / CLS_DATASET
    if not dst.exists():
        tmp = raw / f".{CLS_DATASET}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(DEMO_DATA / CLS_DATASET, tmp)
        tmp.rename(dst)


def held_out_images(preprocessed: Path, raw: Path, fold: int, out: Path) -> list[str]:
    """Copy the fold's validation images (whole cases, never trained on) into ``out``; return the cases."""
    splits = json.loads((preprocessed / CLS_DATASET / "splits_final.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    for image_id in splits[fold]["val"]:  # ids are paths below imagesTr without the ending
        src = raw / CLS_DATASET / "imagesTr" / f"{image_id}.png"
        shutil.copy(src, out / src.name)
    return sorted({Path(i).name.rsplit("_", 2)[0] for i in splits[fold]["val"]})


def run_classification(workdir: Path, budget: ClassificationBudget) -> dict:
    from mednext_fw.inference.classification import predict_to_csv
    from mednext_fw.preprocessing.classification_run import plan_and_preprocess_classification
    from mednext_fw.trainers.launch import TrainRequest, train_fold

    t0 = time.time()
    roots = setup_roots(workdir)
    stage_classification_data(roots["raw"])
    print(f"[demo] 1/3 plan and preprocess {CLS_DATASET}", flush=True)
    plan_and_preprocess_classification(CLS_DATASET, input_size=budget.input_size, num_workers=1)
    images = workdir / "holdout_planes"
    cases = held_out_images(roots["preprocessed"], roots["raw"], 0, images)
    results = {}
    for trainer, epochs, lr in budget.trainers:
        print(f"[demo] 2/3 train {trainer} on fold 0 (held out: {', '.join(cases)})", flush=True)
        train_fold(TrainRequest("2d_cls", "0", dataset=CLS_DATASET, trainer=trainer, seed=0,
                                continue_training=True, options={"batch_size": budget.batch_size},
                                schedule={"num_epochs": budget.epochs or epochs, "lr": lr}))
        print(f"[demo] 3/3 predict the held-out images with {trainer}", flush=True)
        out = workdir / "predictions" / trainer
        csv_file = predict_to_csv(_model_folder(CLS_DATASET, "2d_cls", trainer), [images], out, ["0"],
                                  backend="auto", progress=False)
        summary_path = roots["results"] / CLS_DATASET / f"{trainer}__2d_cls" / "fold_0" / "validation" / "summary.json"
        summary = json.loads(summary_path.read_text())
        results[trainer] = summary
        names = summary.get("class_names") or [str(i) for i in range(len(summary["confusion_matrix"]))]
        print(f"[demo] {trainer}: accuracy {summary['accuracy']:.4f}, balanced accuracy "
              f"{summary['balanced_accuracy']:.4f}, macro F1 {summary['macro_f1']:.4f}; predictions: "
              f"{csv_file}\nconfusion matrix (rows: true class)\n"
              f"{confusion_table(np.asarray(summary['confusion_matrix']), names)}", flush=True)
    print(f"[demo] done in {time.time() - t0:.0f} s")
    return results


def confusion_table(matrix: np.ndarray, names: list[str]) -> str:
    width = max(len(n) for n in names) + 2
    head = " " * width + "".join(f"{n[:8]:>9}" for n in names)
    rows = [f"{n:<{width}}" + "".join(f"{int(v):>9d}" for v in row) for n, row in zip(names, matrix)]
    return "\n".join([head, *rows])
