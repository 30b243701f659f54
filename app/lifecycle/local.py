"""The local provisioner (the embedded default): renders a registry's footprint as YAML under
`<data dir>/manifests/<registry>/`, for a GitOps tool or `kubectl apply -f` to take from there.

The files are the same objects the Pulumi program declares (app/lifecycle/resources.py), one per
file, named `NN-<key>.yaml` so that a directory-order apply creates the namespace first. The pull
Secrets in them carry a live pull token: files are written 0600.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import yaml

from app.lifecycle.provisioner import Log, Provisioner, ProvisionError, RegistrySpec
from app.lifecycle.resources import Manifest, PlatformRefs, registry_outputs, registry_resources


def manifest_file_name(index: int, manifest: Manifest) -> str:
    return f"{index:02d}-{manifest.key}.yaml"


def to_yaml(manifest: Manifest) -> str:
    return yaml.safe_dump(manifest.body, sort_keys=False, default_flow_style=False)


class LocalProvisioner(Provisioner):
    name = "local"

    def __init__(self, data_dir: Path | str, platform: PlatformRefs | None = None) -> None:
        self.root = Path(data_dir) / "manifests"
        self.platform = platform or PlatformRefs()

    def directory(self, spec: RegistrySpec) -> Path:
        return self.root / spec.name

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProvisionError(f"cannot create {self.root}: {exc}", step="check") from exc
        if not os.access(self.root, os.W_OK):
            raise ProvisionError(f"{self.root} is not writable", step="check")

    def provision(self, spec: RegistrySpec, log: Log) -> dict[str, str]:
        try:
            manifests = registry_resources(spec, self.platform)
        except ValueError as exc:
            raise ProvisionError(str(exc), step="render") from exc
        target = self.directory(spec)
        try:
            target.mkdir(parents=True, exist_ok=True)
            wanted = set()
            for index, manifest in enumerate(manifests):
                name = manifest_file_name(index, manifest)
                wanted.add(name)
                _write_atomically(target / name, to_yaml(manifest))
                meta = manifest.body["metadata"]
                where = f" in {meta['namespace']}" if "namespace" in meta else ""
                log(f"wrote {target / name}: {manifest.body['kind']} {meta['name']}{where}")
            for stale in sorted(target.glob("*.yaml")):
                if stale.name not in wanted:
                    stale.unlink()
                    log(f"removed {stale} (no longer part of the registry)")
        except OSError as exc:
            raise ProvisionError(f"writing manifests to {target} failed: {exc}", step="write") from exc
        log(f"{len(manifests)} manifests for registry {spec.name} are in {target}")
        return registry_outputs(spec, self.platform)

    def destroy(self, spec: RegistrySpec, log: Log) -> None:
        target = self.directory(spec)
        if not target.exists():
            log(f"{target} does not exist: nothing to remove")
            return
        try:
            # Rename first, so a half-removed directory is never mistaken for the registry's.
            doomed = target.with_name(f".{target.name}.deleting")
            shutil.rmtree(doomed, ignore_errors=True)
            target.rename(doomed)
            shutil.rmtree(doomed)
        except OSError as exc:
            raise ProvisionError(f"removing {target} failed: {exc}", step="destroy") from exc
        log(f"removed {target}")


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
