"""``manifest.json``: what an exported model is, what it needs, and the sha256 of every file in it.

The manifest is the contract between ``mednext_export_model`` and ``mednext_install_model`` /
``mednext_predict -m``: a reader refuses a newer ``format_version`` than it knows, a file whose hash
differs, a file the manifest does not list, and a network or trainer whose plug-in is not installed.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from mednext_fw.errors import UserError

FORMAT = "mednext_fw.model"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_NAME = re.compile(r"[A-Za-z0-9_.+-]+")


class DeploymentError(UserError, ValueError):
    """A model archive or folder that cannot be exported, installed or opened (the message says why)."""


@dataclass
class PluginRef:
    """Where a network/trainer came from when it was exported: an entry point of an installed package."""

    group: str
    name: str
    value: str  # "module:attr"
    distribution: str | None = None


@dataclass
class Manifest:
    dataset: str
    trainer: str
    configuration: str
    checkpoint: str
    folds: list[int]
    task: str
    network_name: str
    network_kwargs: dict[str, Any]
    package_version: str
    created: str
    files: dict[str, str] = field(default_factory=dict)  # path inside the model folder -> sha256
    network_plugin: PluginRef | None = None
    trainer_plugin: PluginRef | None = None
    onnx: dict[str, Any] | None = None  # {"opset", "input_shape", "files": {fold: path}}
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    @property
    def model_dir(self) -> str:
        """The model's path below a results root: ``<dataset>/<trainer>__<configuration>``."""
        return f"{self.dataset}/{self.trainer}__{self.configuration}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str) -> "Manifest":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DeploymentError(f"{source}: {MANIFEST} is not valid JSON ({exc})") from exc
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise DeploymentError(f"{source}: not a mednext_fw model (no '{FORMAT}' {MANIFEST})")
        version = raw.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise DeploymentError(
                f"{source}: model format version {version} is newer than this mednext_fw understands "
                f"({FORMAT_VERSION}); upgrade mednext_fw (the model was made by version {raw.get('package_version')})")
        for key in ("network_plugin", "trainer_plugin"):
            if raw.get(key) is not None:
                raw[key] = PluginRef(**raw[key])
        try:
            manifest = cls(**raw)
        except TypeError as exc:
            raise DeploymentError(f"{source}: {MANIFEST} has missing or unknown fields ({exc})") from exc
        for key in ("dataset", "trainer", "configuration"):  # they become folder names on install
            value = getattr(manifest, key)
            if not isinstance(value, str) or not _NAME.fullmatch(value) or set(value) == {"."}:
                raise DeploymentError(f"{source}: {MANIFEST} '{key}' is not a plain folder name: {value!r}")
        return manifest


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def plugin_ref(group: str, name: str) -> PluginRef | None:
    """The entry point that provides ``name`` in ``group``, if a package (not mednext_fw) provides it."""
    for ep in entry_points(group=group):
        if ep.name == name:
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else None
            if dist_name and dist_name.replace("-", "_").lower() == "mednext_fw":
                return None  # shipped in the box
            return PluginRef(group, name, ep.value, dist_name)
    return None


def check_plugins(manifest: Manifest, source: str) -> None:
    """Refuse a model whose network or trainer is not available here, naming the missing entry point."""
    from mednext_fw.network_architectures.registry import NETWORKS
    from mednext_fw.trainers.registry import TRAINERS

    needs = [("network", manifest.network_name, manifest.network_plugin, NETWORKS)]
    if manifest.trainer_plugin is not None:  # built-in trainers need nothing at prediction time
        needs.append(("trainer", manifest.trainer, manifest.trainer_plugin, TRAINERS))
    for kind, name, ref, registry in needs:
        if name in registry:
            continue
        if ref is not None:
            pkg = f" (package '{ref.distribution}')" if ref.distribution else ""
            raise DeploymentError(
                f"{source}: the model's {kind} '{name}' comes from the plug-in entry point "
                f"'{ref.group}: {ref.name} = {ref.value}'{pkg}, which is not installed here; install that package")
        raise DeploymentError(f"{source}: the model's {kind} '{name}' is unknown here (no built-in and no "
                              f"'{registry.entry_point_group}' entry point named '{name}'); install the plug-in "
                              f"that provides it")
