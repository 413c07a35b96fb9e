"""``PreprocessedFolder``: the one owner of ``$MEDNEXT_preprocessed/DatasetNNN_Name`` (as ``ModelFolder``
owns a trained model). Nothing else spells a file name of this folder.

Layout::

    DatasetNNN_Name/
      dataset.json  fingerprint.json  plans.json  splits_final.json
      gt_segmentations/CASE<ending>           references for the final validation
      <data_identifier>/                      one folder per configuration (``CaseFolder``)
        configuration.json                    what the arrays were made with, and the expected cases
        CASE.npy  CASE_seg.npy  CASE.json     image, labels, properties

A case is *done* when its ``CASE.json`` exists: the writer writes it last, after both arrays, each
through a temporary name. A case with some of its files but not ``CASE.json`` (or without an array)
is *incomplete*: what an interrupted or damaged run leaves. A configuration is complete when every
case it expects is done. Temporaries (hidden ``.X.tmp-*`` files) are never listed as cases.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mednext_fw import paths
from mednext_fw.errors import UserError
from mednext_fw.io.atomic import is_temporary, save_npy_atomic, sweep_temporaries, write_json_atomic
from mednext_fw.preprocessing.case_properties import CaseProperties

# Bumped when the arrays or CASE.json change meaning; a folder made by an older version is redone.
FORMAT_VERSION = 2


class PreprocessedDataError(UserError, ValueError):
    """The preprocessed data is missing, incomplete or unreadable; the message says how to fix it."""


def _fix(dataset: str, config: str | None) -> str:
    c = f" -c {config}" if config else ""
    return f"re-run mednext_plan_and_preprocess -d {dataset}{c} (it resumes: finished cases are kept)"


@dataclass(frozen=True)
class CaseFolder:
    """One configuration's arrays: ``<preprocessed>/<dataset>/<data_identifier>``."""

    path: Path
    dataset_name: str = ""
    config_name: str | None = None

    SNAPSHOT = "configuration.json"

    # -- names ---------------------------------------------------------------------------------
    def data_file(self, case: str) -> Path:
        return self.path / f"{case}.npy"

    def seg_file(self, case: str) -> Path:
        return self.path / f"{case}_seg.npy"

    def properties_file(self, case: str) -> Path:
        return self.path / f"{case}.json"

    @property
    def snapshot_file(self) -> Path:
        return self.path / self.SNAPSHOT

    # -- state ---------------------------------------------------------------------------------
    def is_done(self, case: str) -> bool:
        return all(p.is_file() for p in (self.properties_file(case), self.data_file(case), self.seg_file(case)))

    def _present(self) -> set[str]:
        """Every case id some real (non-temporary) file of this folder belongs to."""
        if not self.path.is_dir():
            return set()
        out = set()
        for p in self.path.iterdir():
            name = p.name
            if name.startswith(".") or is_temporary(name) or not p.is_file() or name == self.SNAPSHOT:
                continue
            if name.endswith("_seg.npy"):
                out.add(name[: -len("_seg.npy")])
            elif name.endswith(".npy"):
                out.add(name[: -len(".npy")])
            elif name.endswith(".json"):
                out.add(name[: -len(".json")])
        return out

    def cases(self) -> list[str]:
        """Finished cases, sorted."""
        return sorted(c for c in self._present() if self.is_done(c))

    def expected_cases(self) -> list[str] | None:
        snap = self.read_snapshot()
        return None if snap is None or "cases" not in snap else sorted(snap["cases"])

    def incomplete_cases(self) -> list[str]:
        """Cases with some files but not all, and expected cases not written at all."""
        present = self._present()
        broken = {c for c in present if not self.is_done(c)}
        broken |= set(self.expected_cases() or []) - present
        return sorted(broken)

    def require_complete(self, cases: list[str] | None = None) -> list[str]:
        """The finished cases; refuses (naming them and the fix) when ``cases`` or the folder has unfinished ones."""
        if not self.path.is_dir() or not self.snapshot_file.is_file() and not self.cases():
            raise PreprocessedDataError(f"{self.path}: no preprocessed cases; "
                                        f"{_fix(self.dataset_name, self.config_name)}")
        incomplete = self.incomplete_cases()
        if cases is not None:
            done = set(self.cases())
            incomplete = sorted(set(incomplete) | {c for c in cases if c not in done})
        if incomplete:
            shown = ", ".join(incomplete[:10]) + (f" and {len(incomplete) - 10} more" if len(incomplete) > 10 else "")
            raise PreprocessedDataError(
                f"{self.path}: {len(incomplete)} case(s) are not completely preprocessed ({shown}); "
                f"{_fix(self.dataset_name, self.config_name)}")
        done = self.cases()
        if not done:
            raise PreprocessedDataError(f"{self.path}: no preprocessed cases; "
                                        f"{_fix(self.dataset_name, self.config_name)}")
        return done

    # -- snapshot (what the arrays depend on) -------------------------------------------------
    def read_snapshot(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.snapshot_file.read_text())
        except (OSError, ValueError):
            return None

    def prepare(self, made_with: dict[str, Any], cases: list[str]) -> str | None:
        """Create the folder for ``cases`` made with ``made_with``; wipe cases made otherwise.

        Returns a message when it wiped. Also removes the stale temporaries of killed runs.
        """
        made_with = json.loads(json.dumps({"format": FORMAT_VERSION, **made_with}))
        msg = None
        if self.path.is_dir():
            old = self.read_snapshot() or {}
            old.pop("cases", None)
            if old != made_with:
                shutil.rmtree(self.path)
                msg = f"{self.path.name}: the plans changed, old preprocessed cases removed"
        self.path.mkdir(parents=True, exist_ok=True)
        sweep_temporaries(self.path)
        write_json_atomic({**made_with, "cases": sorted(cases)}, self.snapshot_file)
        return msg

    # -- reading and writing cases ------------------------------------------------------------
    def write_case(self, case: str, data: np.ndarray, seg: np.ndarray, props: CaseProperties) -> None:
        save_npy_atomic(data, self.data_file(case))
        save_npy_atomic(seg, self.seg_file(case))
        props.save(self.properties_file(case))  # last: marks the case as done

    def read_properties(self, case: str) -> CaseProperties:
        path = self.properties_file(case)
        try:
            return CaseProperties.load(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PreprocessedDataError(f"{path}: cannot read the case properties ({exc}); "
                                        f"{_fix(self.dataset_name, self.config_name)}") from exc

    def read_data(self, case: str, mmap: bool = True) -> np.ndarray:
        return self._load(self.data_file(case), mmap)

    def read_seg(self, case: str, mmap: bool = True) -> np.ndarray:
        return self._load(self.seg_file(case), mmap)

    def _load(self, path: Path, mmap: bool) -> np.ndarray:
        try:
            return np.load(path, mmap_mode="r" if mmap else None)
        except (OSError, ValueError, EOFError) as exc:
            raise PreprocessedDataError(f"{path}: cannot read the preprocessed array ({exc}); "
                                        f"{_fix(self.dataset_name, self.config_name)}") from exc


@dataclass(frozen=True)
class PreprocessedFolder:
    """``$MEDNEXT_preprocessed/DatasetNNN_Name``: dataset-level files and one ``CaseFolder`` per configuration."""

    path: Path

    @classmethod
    def of(cls, dataset_name: str) -> "PreprocessedFolder":
        return cls(paths.preprocessed_root() / dataset_name)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def dataset_file(self) -> Path:
        return self.path / "dataset.json"

    @property
    def fingerprint_file(self) -> Path:
        return self.path / "fingerprint.json"

    @property
    def plans_file(self) -> Path:
        return self.path / "plans.json"

    @property
    def splits_file(self) -> Path:
        return self.path / "splits_final.json"

    @property
    def gt_dir(self) -> Path:
        return self.path / "gt_segmentations"

    def configuration(self, data_identifier: str, config_name: str | None = None) -> CaseFolder:
        return CaseFolder(self.path / data_identifier, self.name, config_name)

    def is_planned(self) -> bool:
        return self.plans_file.is_file()

    def clean(self, keep: tuple[str, ...] = ("splits_final.json",)) -> None:
        """Remove everything but ``keep`` (``--clean``): a user's own split survives a re-plan."""
        if not self.path.is_dir():
            return
        for p in self.path.iterdir():
            if p.name in keep:
                continue
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()

    def sweep(self) -> list[Path]:
        """Remove what killed runs left under temporary names (every command that writes here starts so)."""
        return sweep_temporaries(self.path)
