"""The ``dataset.json`` schema as a typed object (nnU-Net v2 conventions)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mednext_fw.errors import UserError

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
        if not isinstance(d, dict):
            raise DatasetJsonError(f"{source}: must be a JSON object {{\"channel_names\": ..., \"labels\": ...}}")
        task = d.get("task", "segmentation")
        if task not in ("segmentation", "classification"):
            raise DatasetJsonError(f"{source}: 'task' must be 'segmentation' or 'classification', got {task!r}")
        required = ["channel_names", "labels", "file_ending"] + (["numTraining"] if task != "classification" else [])
        missing = [k for k in required if k not in d]
        if "channel_names" not in d and "modality" in d:
            missing.remove("channel_names")  # Decathlon spelling, accepted
        if missing:
            raise DatasetJsonError(f"{source}: missing required key(s) {missing}")
        channels = d.get("channel_names", d.get("modality"))
        _check_channels(channels, source)
        labels = d["labels"]
        _check_labels(labels, task, source)
        known = {"channel_names", "modality", "labels", "file_ending", "numTraining", "name", "description",
                 "task", "regions_class_order"}
        fe = d["file_ending"]
        if not isinstance(fe, str) or not fe.startswith(".") or len(fe) < 2:
            raise DatasetJsonError(f"{source}: 'file_ending' must look like '.nii.gz', got {fe!r}")
        n_train = d.get("numTraining", 0)
        if isinstance(n_train, bool) or not isinstance(n_train, int) or n_train < 0:
            raise DatasetJsonError(f"{source}: 'numTraining' must be the number of training cases (an integer "
                                   f">= 0), got {json.dumps(n_train)}")
        order = d.get("regions_class_order")
        if order is not None and (not isinstance(order, list) or not all(_is_int(v) for v in order)):
            raise DatasetJsonError(f"{source}: 'regions_class_order' must be a list of label values, got {order!r}")
        out = cls(
            channel_names={str(k): str(v) for k, v in channels.items()},
            labels=dict(labels),
            file_ending=fe,
            num_training=n_train,
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


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_channels(channels: Any, source: str) -> None:
    """``{"0": "CT", "1": "T2"}``: consecutive indices from 0 to channel names."""
    example = '{"0": "CT"}'
    if not isinstance(channels, dict) or not channels:
        raise DatasetJsonError(f"{source}: 'channel_names' must be a non-empty mapping like {example}")
    keys = [str(k) for k in channels]
    if all(_is_int(v) for v in channels.values()) and not all(k.isdigit() for k in keys):
        raise DatasetJsonError(f"{source}: 'channel_names' is written name -> index ({channels}); write it index -> "
                               f"name, e.g. {example}")
    if not all(k.isdigit() for k in keys) or sorted(int(k) for k in keys) != list(range(len(keys))):
        raise DatasetJsonError(f"{source}: 'channel_names' keys must be the channel indices 0..{len(keys) - 1} "
                               f"as strings, got {keys}")
    bad = {k: v for k, v in channels.items() if not isinstance(v, str) or not v.strip()}
    if bad:
        raise DatasetJsonError(f"{source}: 'channel_names' values must be channel names such as \"CT\", got {bad}")


def _check_labels(labels: Any, task: str, source: str) -> None:
    """Names -> a label value, or (regions) a list of label values; each plain value used once."""
    if not isinstance(labels, dict) or not labels:
        raise DatasetJsonError(f"{source}: 'labels' must be a non-empty mapping name -> value")
    for name, v in labels.items():
        ok = _is_int(v) and v >= 0 or isinstance(v, list) and v and all(_is_int(x) and x >= 0 for x in v)
        if not ok:
            raise DatasetJsonError(f"{source}: 'labels' entry {name!r} must be a label value >= 0 or a list of them "
                                   f"(a region), got {json.dumps(v)}")
    if task != "classification" and labels.get("background") != 0:
        raise DatasetJsonError(f"{source}: 'labels' must map 'background' to 0")
    seen: dict[int, str] = {}
    for name, v in labels.items():
        if isinstance(v, list):
            continue
        if v in seen:
            raise DatasetJsonError(f"{source}: 'labels' gives value {v} to both {seen[v]!r} and {name!r}; each label "
                                   "needs its own value (a union of labels is written as a list)")
        seen[v] = name
