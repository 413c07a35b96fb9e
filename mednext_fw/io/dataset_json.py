"""The ``dataset.json`` schema as a typed object (nnU-Net v2 conventions)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mednext_fw.errors import UserError

CHANNEL_FILE_SUFFIX_LEN = 5  # "_0000"


class DatasetJsonError(UserError, ValueError):
    pass


@dataclass
class DatasetJson:
    channel_names: dict[str, str]
    labels: dict[str, int | list[int]]
    file_ending: str
    num_training: int
    name: str = ""
    description: str = ""
    task: str = "segmentation"  # or "classification"
    regions_class_order: list[int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # unknown keys, kept for the round trip

    # ---------- derived views ----------
    @property
    def num_channels(self) -> int:
        return len(self.channel_names)

    @property
    def channel_name_list(self) -> list[str]:
        return [self.channel_names[k] for k in sorted(self.channel_names, key=int)]

    @property
    def ignore_label(self) -> int | None:
        value = self.labels.get("ignore")
        return int(value) if value is not None else None

    @property
    def has_regions(self) -> bool:
        return any(isinstance(v, (list, tuple)) and len(v) > 1 for v in self.labels.values())

    @property
    def foreground_labels(self) -> list[int]:
        """Plain label values except background and ignore (label mode)."""
        out = []
        for k, v in self.labels.items():
            if k in ("background", "ignore"):
                continue
            vals = v if isinstance(v, (list, tuple)) else [v]
            out.extend(int(x) for x in vals)
        return sorted(set(x for x in out if x != 0))

    @property
    def foreground_regions(self) -> list[tuple[int, ...]]:
        """Each non-background, non-ignore entry as a tuple of label values (labels: 1-tuples)."""
        out = []
        for k, v in self.labels.items():
            if k in ("background", "ignore"):
                continue
            out.append(tuple(int(x) for x in (v if isinstance(v, (list, tuple)) else [v])))
        return out

    @property
    def class_names(self) -> list[str]:
        """Label names ordered by value (classification: index -> class name)."""
        items = [(int(v), k) for k, v in self.labels.items() if not isinstance(v, (list, tuple)) and k != "ignore"]
        return [k for _, k in sorted(items)]

    # ---------- (de)serialisation ----------
    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "dataset.json") -> "DatasetJson":
        task = d.get("task", "segmentation")
        required = ["channel_names", "labels", "file_ending"] + (["numTraining"] if task != "classification" else [])
        missing = [k for k in required if k not in d]
        if "channel_names" not in d and "modality" in d:
            missing.remove("channel_names")  # Decathlon spelling, accepted
        if missing:
            raise DatasetJsonError(f"{source}: missing required key(s) {missing}")
        channels = d.get("channel_names", d.get("modality"))
        if not isinstance(channels, dict) or not channels:
            raise DatasetJsonError(f"{source}: 'channel_names' must be a non-empty mapping like {{\"0\": \"CT\"}}")
        labels = d["labels"]
        if not isinstance(labels, dict) or not labels:
            raise DatasetJsonError(f"{source}: 'labels' must be a non-empty mapping name -> value")
        if task != "classification" and labels.get("background") != 0:
            raise DatasetJsonError(f"{source}: 'labels' must map 'background' to 0")
        known = {"channel_names", "modality", "labels", "file_ending", "numTraining", "name", "description",
                 "task", "regions_class_order"}
        fe = d["file_ending"]
        if not isinstance(fe, str) or not fe.startswith("."):
            raise DatasetJsonError(f"{source}: 'file_ending' must look like '.nii.gz', got {fe!r}")
        out = cls(
            channel_names={str(k): str(v) for k, v in channels.items()},
            labels=dict(labels),
            file_ending=fe,
            num_training=int(d.get("numTraining", 0)),
            name=str(d.get("name", "")),
            description=str(d.get("description", "")),
            task=str(task),
            regions_class_order=d.get("regions_class_order"),
            extra={k: v for k, v in d.items() if k not in known},
        )
        if out.has_regions and not out.regions_class_order:
            raise DatasetJsonError(f"{source}: region-based labels need 'regions_class_order'")
        ignore = out.ignore_label
        if ignore is not None and task != "classification":
            plain = [int(v) for k, v in labels.items() if k != "ignore" and not isinstance(v, (list, tuple))]
            region_vals = [int(x) for k, v in labels.items() if isinstance(v, (list, tuple)) for x in v]
            if ignore != max(plain + region_vals) + 1:
                raise DatasetJsonError(f"{source}: the 'ignore' label must be max(label values) + 1, got {ignore}")
        return out

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "channel_names": self.channel_names,
            "labels": self.labels,
            "numTraining": self.num_training,
            "file_ending": self.file_ending,
        }
        if self.name:
            d["name"] = self.name
        if self.description:
            d["description"] = self.description
        if self.task != "segmentation":
            d["task"] = self.task
        if self.regions_class_order:
            d["regions_class_order"] = self.regions_class_order
        d.update(self.extra)
        return d

    @classmethod
    def load(cls, path: str | Path) -> "DatasetJson":
        path = Path(path)
        if not path.is_file():
            raise DatasetJsonError(f"{path}: dataset.json not found")
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise DatasetJsonError(f"{path}: not valid JSON ({exc})") from exc
        return cls.from_dict(d, source=str(path))

    def save(self, path: str | Path) -> None:
        from mednext_fw.io.atomic import write_json_atomic

        write_json_atomic(self.to_dict(), path)
