"""Reading exported models: verify a zip, install it under a results root, or open it for prediction.

Every check runs before anything is placed: the zip must be complete (a truncated download fails its
central directory or a member's CRC), its manifest a format this version understands, every file listed
with the right sha256 and nothing unlisted, and the model's network/trainer plug-ins installed. The
files are then extracted into a hidden staging folder at the top of the results root and renamed into
place, so a refused or interrupted install leaves no model folder behind (at most a hidden
``.install-*`` folder after a kill, which nothing mistakes for a model).
"""
from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Iterator

from mednext_fw.deployment.manifest import MANIFEST, DeploymentError, Manifest, check_plugins, sha256_of
from mednext_fw.inference.model_folder import ModelFolder


def read_manifest(archive: zipfile.ZipFile, source: str) -> Manifest:
    try:
        text = archive.read(MANIFEST).decode()
    except KeyError as exc:
        raise DeploymentError(f"{source}: no {MANIFEST}; not an exported mednext_fw model") from exc
    except (zipfile.BadZipFile, OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
        raise DeploymentError(f"{source}: {MANIFEST} cannot be read (damaged archive): {exc}") from exc
    return Manifest.from_json(text, source)


def _open_zip(path: Path) -> zipfile.ZipFile:
    if not path.is_file():
        raise DeploymentError(f"{path}: no such model archive")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DeploymentError(f"{path}: not a readable zip archive (truncated or damaged download?): {exc}") from exc


def _members(archive: zipfile.ZipFile, manifest: Manifest, source: str) -> dict[str, str]:
    """Zip member -> path inside the model folder, refusing anything outside the manifest's list."""
    prefix = manifest.model_dir + "/"
    out = {}
    for info in archive.infolist():
        name = info.filename
        if name == MANIFEST or name.endswith("/"):
            continue
        rel = name[len(prefix):] if name.startswith(prefix) else None
        unsafe = rel is not None and (PurePosixPath(rel).is_absolute() or ".." in PurePosixPath(rel).parts)
        if rel is None or rel not in manifest.files or unsafe:
            raise DeploymentError(f"{source}: unexpected file '{name}' (not listed in {MANIFEST})")
        out[name] = rel
    missing = sorted(set(manifest.files) - set(out.values()))
    if missing:
        raise DeploymentError(f"{source}: files listed in {MANIFEST} are missing: {', '.join(missing)}")
    return out


def extract_verified(path: str | Path, destination: str | Path) -> Manifest:
    """Check ``path`` completely and extract its model folder contents (plus the manifest) into ``destination``."""
    path = Path(path)
    source = str(path)
    with _open_zip(path) as archive:
        manifest = read_manifest(archive, source)
        check_plugins(manifest, source)
        members = _members(archive, manifest, source)
        destination = Path(destination)
        for name, rel in members.items():
            target = destination / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(name) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:  # CRC error, truncated member
                raise DeploymentError(f"{source}: '{name}' cannot be read (truncated or damaged archive): {exc}") from exc
            if sha256_of(target) != manifest.files[rel]:
                raise DeploymentError(f"{source}: '{name}' does not match its sha256 in {MANIFEST} "
                                      f"(damaged or modified archive)")
        (destination / MANIFEST).write_text(manifest.to_json())
    return manifest


def install_model(path: str | Path, results_root: str | Path, overwrite: bool = False) -> Path:
    """Install the archive under ``results_root``; returns the model folder. Nothing is placed on refusal."""
    path, results_root = Path(path), Path(results_root)
    with _open_zip(path) as archive:  # refuse an existing target before extracting anything
        manifest = read_manifest(archive, str(path))
    target = results_root / manifest.model_dir
    if target.exists() and not overwrite:
        raise DeploymentError(f"{target}: a model is already installed there; use --overwrite to replace it")
    # Staged at the top of the root (same file system, so the final rename is atomic); the dataset
    # folder is created only once everything checked out.
    staging = results_root / f".install-{target.name}-{uuid.uuid4().hex[:8]}"
    try:
        extract_verified(path, staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        old = None
        if target.exists():
            old = target.parent / f".{target.name}.replaced-{uuid.uuid4().hex[:8]}"
            target.rename(old)
        staging.rename(target)
        if old is not None:
            shutil.rmtree(old)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target


def exported_checkpoint(folder: str | Path) -> str | None:
    """The checkpoint an installed or opened exported model was made from (None for a training folder)."""
    manifest_file = Path(folder) / MANIFEST
    if not manifest_file.is_file():
        return None
    return Manifest.from_json(manifest_file.read_text(), str(folder)).checkpoint


@contextlib.contextmanager
def open_model(path: str | Path) -> Iterator[ModelFolder]:
    """A model folder or exported zip as a :class:`ModelFolder` (a zip is verified into a temporary folder
    that is removed afterwards). A folder with a manifest is checked for its plug-ins too."""
    path = Path(path)
    if path.is_dir():
        manifest_file = path / MANIFEST
        if manifest_file.is_file():
            check_plugins(Manifest.from_json(manifest_file.read_text(), str(path)), str(path))
        yield ModelFolder.open(path)
        return
    if path.suffix.lower() != ".zip" and not zipfile.is_zipfile(path):
        raise DeploymentError(f"{path}: not a model folder or an exported model .zip")
    with tempfile.TemporaryDirectory(prefix="mednext_model_") as tmp:
        with _open_zip(path) as archive:
            manifest = read_manifest(archive, str(path))
        folder = Path(tmp) / manifest.model_dir
        extract_verified(path, folder)
        yield ModelFolder.open(folder)
