"""Turn a `ConversionPlan` into ``<raw>/DatasetNNN_Name``: checked first, built aside, swapped in.

The dataset is assembled in ``<raw>/.DatasetNNN_Name.partial/DatasetNNN_Name`` (same file system,
so the final rename is atomic and the integrity check sees the real folder name). Source files are
copied, or hard-linked with ``link=True`` (symbolic links where the file system refuses hard links);
they are never moved. 4D images are split into one 3D file per channel. An interrupted run resumes:
every file is written under a temporary name, so a file that exists is complete and is skipped.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from tqdm import tqdm

from mednext_fw.conversion.common import CaseSpec, ConversionError, ConversionPlan, check_case, read_header
from mednext_fw.conversion.target import choose_folder
from mednext_fw.io.cases import channel_file_name
from mednext_fw.io.atomic import atomic_path, sweep_temporaries, write_json_atomic

MARKER = ".conversion.json"


@dataclass(frozen=True)
class Job:
    """Produce ``outputs`` from ``source``: a copy/link (one output) or a 4D split (one per frame)."""

    source: Path
    outputs: tuple[Path, ...]
    split: bool
    link: bool


def run_job(job: Job) -> None:
    if all(p.exists() for p in job.outputs):
        return
    if job.split:
        split_4d(job.source, job.outputs)
    else:
        place(job.source, job.outputs[0], job.link)


def place(src: Path, dst: Path, link: bool) -> None:
    with atomic_path(dst) as tmp:
        if link:
            try:
                os.link(src, tmp)
            except OSError:  # another file system, or hard links not permitted
                os.symlink(src.resolve(), tmp)
        else:
            shutil.copyfile(src, tmp)


def split_4d(src: Path, outputs: tuple[Path, ...]) -> None:
    """One 3D file per frame, each with the spatial part of the 4D geometry."""
    try:
        img = sitk.ReadImage(str(src))
    except RuntimeError as exc:
        raise ConversionError(f"{src}: cannot be read ({str(exc).strip().splitlines()[-1]})") from exc
    if img.GetDimension() != 4 or img.GetSize()[3] != len(outputs):
        raise ConversionError(f"{src}: expected a 4D image with {len(outputs)} frame(s), got size {img.GetSize()}")
    frames = sitk.GetArrayFromImage(img)  # (T, Z, Y, X)
    direction = np.asarray(img.GetDirection(), dtype=float).reshape(4, 4)[:3, :3]
    for t, dst in enumerate(outputs):
        if dst.exists():
            continue
        frame = sitk.GetImageFromArray(frames[t])
        frame.SetSpacing(img.GetSpacing()[:3])
        frame.SetOrigin(img.GetOrigin()[:3])
        frame.SetDirection(tuple(direction.ravel()))
        with atomic_path(dst) as tmp:
            sitk.WriteImage(frame, str(tmp), useCompression=True)


def plan_jobs(plan: ConversionPlan, folder: Path, link: bool) -> list[Job]:
    ending = plan.dataset.file_ending
    n = plan.dataset.num_channels
    jobs = []
    for subdir, cases in (("imagesTr", plan.training), ("imagesTs", plan.test)):
        for case in cases:
            outs = tuple(folder / subdir / channel_file_name(case.case_id, c, ending) for c in range(n))
            header = read_header(case.images[0]) if len(case.images) == 1 else None
            if header is not None and header.dim == 4:
                jobs.append(Job(case.images[0], outs, split=True, link=False))
            else:
                jobs.extend(Job(src, (out,), split=False, link=link) for src, out in zip(case.images, outs))
            if case.label is not None:
                jobs.append(Job(case.label, (folder / "labelsTr" / f"{case.case_id}{ending}",), False, link))
    return jobs


def check_plan(plan: ConversionPlan) -> None:
    seen: dict[str, CaseSpec] = {}
    for case in plan.training + plan.test:
        if case.case_id in seen:
            raise ConversionError(f"case {case.case_id!r} occurs twice: {seen[case.case_id].images[0]} "
                                  f"and {case.images[0]}")
        seen[case.case_id] = case
    for case in tqdm(plan.training + plan.test, desc="checking headers", unit="case", leave=False):
        check_case(case, plan.dataset.num_channels)


def _prepare_partial(partial: Path, marker: dict) -> None:
    """Keep a partial build from an interrupted identical run (minus its half-written files); else start clean."""
    marker_file = partial / MARKER
    sweep_temporaries(partial)
    if partial.exists():
        try:
            same = json.loads(marker_file.read_text()) == marker
        except (OSError, ValueError):
            same = False
        if not same:
            shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    write_json_atomic(marker, marker_file)


def write_dataset(plan: ConversionPlan, output_root: Path, dataset_id: int | None = None, link: bool = False,
                  overwrite: bool = False, verify: bool = True, num_processes: int = 1) -> Path:
    """Check, build, verify and publish; returns the new dataset folder."""
    output_root = Path(output_root)
    check_plan(plan)
    folder = choose_folder(plan.name, output_root, dataset_id, plan.preferred_id)
    target = output_root / folder
    _recover_publish(target)
    if target.exists() and not overwrite:
        raise ConversionError(f"{target} already exists; re-run with --overwrite to replace it")
    partial = output_root / f".{folder}.partial"
    _prepare_partial(partial, {"source": str(plan.source), "link": link, "folder": folder})
    built = partial / folder
    try:
        jobs = plan_jobs(plan, built, link)
        if num_processes > 1:
            with ProcessPoolExecutor(num_processes) as pool:
                list(tqdm(pool.map(run_job, jobs), total=len(jobs), desc=f"writing {folder}", unit="file"))
        else:
            for job in tqdm(jobs, desc=f"writing {folder}", unit="file"):
                run_job(job)
        (built / "labelsTr").mkdir(parents=True, exist_ok=True)
        plan.dataset.save(built / "dataset.json")
        (partial / MARKER).unlink()
        if verify:
            _verify(built, num_processes)
    except KeyboardInterrupt:
        raise  # keep the partial build; the next identical run resumes it
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    _publish(built, target)
    shutil.rmtree(partial, ignore_errors=True)
    return target


def _verify(folder: Path, num_processes: int) -> None:
    from mednext_fw.io.integrity import IntegrityError, verify_dataset

    try:
        verify_dataset(folder, num_processes=num_processes)
    except IntegrityError as exc:
        raise ConversionError(f"the converted dataset fails the integrity check, nothing was written: {exc}") from exc


def _old_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")


def _recover_publish(target: Path) -> None:
    """Undo what a kill between the two renames of ``_publish`` left: the old dataset set aside."""
    old = sorted(target.parent.glob(f".{target.name}.old-*"))
    if old and not target.exists():
        os.rename(old.pop(), target)  # the new build never arrived: bring the old dataset back
    for leftover in old:  # the new one did arrive: the set-aside copy is garbage
        shutil.rmtree(leftover, ignore_errors=True)


def _publish(built: Path, target: Path) -> None:
    if not target.exists():
        os.rename(built, target)
        return
    old = _old_name(target)
    os.rename(target, old)
    try:
        os.rename(built, target)
    except OSError:
        os.rename(old, target)
        raise
    shutil.rmtree(old)
