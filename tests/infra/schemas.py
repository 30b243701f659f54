"""Validate manifests the way the API server would: core kinds against Kubernetes 1.31's schemas
(kubernetes-validate, strict: unknown fields are errors; offline, the schemas ship in the
package), Gateway API and cert-manager kinds against their CRDs' openAPIV3Schema (jsonschema).

The CRDs are the release files in the workspace's shared/schemas/crds/ (beside the repository,
as CI has it; BERTH_CRD_SCHEMAS overrides the directory). Objects get `additionalProperties:
false` wherever the CRD lists properties and does not preserve unknown fields, so a misspelt
field fails here as it would under `kubectl apply --validate=strict`. CEL rules
(`x-kubernetes-validations`) are not JSON Schema and are not checked.
"""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

KUBERNETES_VERSION = "1.31"
CRD_DIR = Path(
    os.environ.get("BERTH_CRD_SCHEMAS") or Path(__file__).resolve().parents[3] / "shared" / "schemas" / "crds"
)
CRD_GROUPS = ("gateway.networking.k8s.io", "cert-manager.io")


def is_crd_kind(manifest: dict) -> bool:
    return manifest["apiVersion"].split("/")[0] in CRD_GROUPS


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict]:
    """{(apiVersion, kind): strict JSON Schema} for every served version of every CRD file."""
    out = {}
    for path in sorted(CRD_DIR.glob("*/*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served"):
                    schema = _strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
                    out[(f"{group}/{version['name']}", kind)] = schema
    return out


def _strict(schema):
    if isinstance(schema, dict):
        for key in [k for k in schema if k.startswith("x-kubernetes-") and k != "x-kubernetes-preserve-unknown-fields"]:
            del schema[key]
        for value in list(schema.values()):
            _strict(value)
        if (
            schema.get("type") == "object"
            and "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        schema.pop("x-kubernetes-preserve-unknown-fields", None)
    elif isinstance(schema, list):
        for item in schema:
            _strict(item)
    return schema


def validate(manifest: dict) -> None:
    """Raise AssertionError saying what is wrong with `manifest`."""
    where = (
        f"{manifest.get('kind')} {manifest.get('metadata', {}).get('namespace', '')}/"
        f"{manifest.get('metadata', {}).get('name')}"
    )
    if is_crd_kind(manifest):
        schema = crd_schemas().get((manifest["apiVersion"], manifest["kind"]))
        assert schema is not None, f"{where}: no CRD schema for {manifest['apiVersion']} in {CRD_DIR}"
        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(manifest), key=lambda e: list(e.path))
        assert not errors, f"{where}: " + "; ".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors)
        return
    try:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        raise AssertionError(f"{where}: {'.'.join(map(str, exc.path))}: {exc.message}") from None
