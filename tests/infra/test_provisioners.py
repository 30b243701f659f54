"""The provisioners: the local one writes exactly what the Pulumi program declares; the Pulumi
one fails at start with what to do, and sorts failures into transient and permanent; and the
pull Secret it renders really pulls from a Berth server. (The local provisioner on its own:
tests/unit/lifecycle/test_local.py; the selection by BERTH_PROVISIONER:
tests/unit/lifecycle/test_from_settings.py.)"""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
import subprocess

import pytest
import requests

from app.lifecycle.local import LocalProvisioner
from app.lifecycle.provisioner import ProvisionError, RegistrySpec
from app.lifecycle.pulumi_provisioner import PulumiProvisioner, _translated, stack_name
from app.lifecycle.resources import PlatformRefs, registry_outputs, registry_resources
from tests.infra.programs import ROOT, run_registry_program
from tests.support.components import require_tool
from tests.support.oci_layout import OCILayout, layer_files, tagged
from tests.support.registry_spec import SPEC, read_dir

# -- local ----------------------------------------------------------------------------------------


def test_local_manifests_equal_the_pulumi_programs_resources(tmp_path):
    lines = []
    outputs = LocalProvisioner(tmp_path).provision(SPEC, lines.append)
    files = read_dir(tmp_path / "manifests" / "team-a")
    registered, exported = run_registry_program(SPEC)

    # Same objects, same keys: file NN-<key>.yaml is Pulumi resource <key>.
    assert {name.split("-", 1)[1].removesuffix(".yaml"): body for name, body in files.items()} == {
        r.name: r.manifest for r in registered
    }
    assert outputs == exported == registry_outputs(SPEC, PlatformRefs())
    # Apply order: the namespace first, then what lives in it.
    assert next(iter(files.values()))["kind"] == "Namespace"
    assert len(lines) == len(files) + 1 and all("wrote" in line for line in lines[:-1])
    for path in (tmp_path / "manifests" / "team-a").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, "pull Secrets hold a live token"


# -- pulumi ---------------------------------------------------------------------------------------


def fake_cli(tmp_path, version="3.200.0"):
    """A stand-in `pulumi` that only answers `pulumi version` (enough for the start-up check)."""
    root = tmp_path / "pulumi-cli"
    (root / "bin").mkdir(parents=True)
    script = root / "bin" / "pulumi"
    script.write_text(f'#!/bin/sh\n[ "$1" = version ] && echo v{version} && exit 0\nexit 1\n')
    script.chmod(0o755)
    return str(root)


def test_pulumi_check_without_the_cli_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no pulumi anywhere
    provisioner = PulumiProvisioner(f"file://{tmp_path}/state", work_dir=tmp_path / "work")
    with pytest.raises(ProvisionError, match="install the pulumi CLI") as caught:
        provisioner.check()
    assert caught.value.step == "check" and not caught.value.transient
    with pytest.raises(ProvisionError, match="install the pulumi CLI"):
        PulumiProvisioner("file:///x", work_dir=tmp_path, pulumi_root=str(tmp_path / "nowhere")).check()
    # provision/destroy raise the same ProvisionError, not a bare FileNotFoundError.
    with pytest.raises(ProvisionError, match="install the pulumi CLI"):
        provisioner.provision(SPEC, lambda line: None)


def test_pulumi_check_wants_a_backend_and_a_secrets_provider(tmp_path, monkeypatch):
    root = fake_cli(tmp_path)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    with pytest.raises(ProvisionError, match="PULUMI_CONFIG_PASSPHRASE"):
        PulumiProvisioner(f"file://{tmp_path}/state", work_dir=tmp_path, pulumi_root=root).check()
    with pytest.raises(ProvisionError, match="file://<dir> or gs://"):
        PulumiProvisioner("/just/a/path", work_dir=tmp_path, pulumi_root=root).check()
    PulumiProvisioner(
        f"file://{tmp_path}/state",
        work_dir=tmp_path,
        pulumi_root=root,
        secrets_provider="gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k",
    ).check()
    assert (tmp_path / "state").is_dir()
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "x")
    PulumiProvisioner("gs://bucket/state", work_dir=tmp_path, pulumi_root=root).check()
    PulumiProvisioner(
        "gs://bucket/state", work_dir=tmp_path, pulumi_root=root, policy_pack=str(ROOT / "policies")
    ).check()
    with pytest.raises(ProvisionError, match="PulumiPolicy.yaml"):
        PulumiProvisioner("gs://b", work_dir=tmp_path, pulumi_root=root, policy_pack=str(tmp_path)).check()


def test_pulumi_check_refuses_a_cli_too_old_for_the_sdk(tmp_path):
    root = fake_cli(tmp_path, version="2.0.0")
    with pytest.raises(ProvisionError, match="cannot be used"):
        PulumiProvisioner("gs://b", work_dir=tmp_path, pulumi_root=root, secrets_provider="gcpkms://k").check()


def _command_error(kind, stderr):
    from pulumi.automation._cmd import CommandResult

    return kind(CommandResult(stdout="", stderr=stderr, code=255))


@pytest.mark.parametrize(
    "error, transient",
    [
        ("concurrent", True),
        ("error: dial tcp 10.0.0.1:443: connect: connection refused", True),
        ('error: Get "https://storage.googleapis.com/...": net/http: TLS handshake timeout', True),
        ("error: the server is currently unable to handle the request", True),
        ('error: namespaces "registry-x" is forbidden: User cannot create resource', False),
        ("error: program failed: invalid hostname", False),
    ],
)
def test_pulumi_failures_are_transient_only_when_a_retry_can_help(error, transient):
    from pulumi import automation as auto

    exc = (
        _command_error(auto.ConcurrentUpdateError, "the stack is currently locked by 1 lock(s)")
        if error == "concurrent"
        else _command_error(auto.CommandError, error)
    )
    with pytest.raises(ProvisionError) as caught:
        with _translated("up", "acme.team-a"):
            raise exc
    assert caught.value.transient is transient and caught.value.step == "up"
    assert "acme.team-a" in str(caught.value)


def test_stack_names_never_collide():
    a = RegistrySpec(org="a-b", name="c", hostname="c.x.test")
    b = RegistrySpec(org="a", name="b-c", hostname="b-c.x.test")
    assert stack_name(a) != stack_name(b) and stack_name(a) == "a-b.c"


# -- the pull Secret pulls ------------------------------------------------------------------------


@pytest.mark.clients
def test_the_pull_secret_pulls_from_a_running_server_with_skopeo(server, tmp_path):
    """A pull-only token made through the API, rendered into the registry's dockerconfigjson pull
    Secret, is exactly what skopeo needs to pull (and not to push)."""
    skopeo = require_tool("skopeo", "apt-get install skopeo")
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_RUNTIME_DIR": str(tmp_path / "run"),
        "REGISTRY_AUTH_FILE": str(tmp_path / "no-auth.json"),
    }
    (tmp_path / "run").mkdir(mode=0o700)

    def run(*args, check=True):
        proc = subprocess.run(
            [skopeo, *args], env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
        )
        assert not check or proc.returncode == 0, f"skopeo {' '.join(args)}: {proc.stderr[-2000:]}"
        return proc

    repo = f"default/pull-secret/app-{secrets.token_hex(3)}"
    source = OCILayout(tmp_path / "source")
    image = source.add_image({"hello.txt": b"pulled with the pull Secret\n"}, tag="v1")
    run(
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        f"admin:{server.token}",
        f"oci:{source.root}:v1",
        f"docker://{server.host}/{repo}:v1",
    )

    created = requests.post(
        f"{server.url}/api/v1/orgs/default/tokens",
        timeout=30,
        headers={"Authorization": f"Bearer {server.token}"},
        json={"name": f"pull-secret-{secrets.token_hex(3)}", "scope": "pull", "registry": "default"},
    )
    assert created.status_code == 201, created.text
    spec = RegistrySpec(
        org="default",
        name="default",
        hostname="default.registry.localhost",
        pull_namespaces=("apps",),
        pull_username="k8s",
        pull_token=created.json()["token"],
        server=server.host,
    )
    (pull_secret,) = [
        m.body
        for m in registry_resources(spec, PlatformRefs())
        if m.body["kind"] == "Secret" and m.body["metadata"]["namespace"] == "apps"
    ]
    authfile = tmp_path / "dockerconfig.json"
    authfile.write_bytes(base64.b64decode(pull_secret["data"][".dockerconfigjson"]))
    assert list(json.loads(authfile.read_text())["auths"]) == [server.host]

    out = tmp_path / "pulled"
    run(
        "copy",
        "--authfile",
        str(authfile),
        "--src-tls-verify=false",
        f"docker://{server.host}/{repo}:v1",
        f"oci:{out}:v1",
    )
    assert tagged(out, "v1").digest == image.digest
    assert layer_files(OCILayout(out).read_blob(image.layers[0].digest)) == {
        "hello.txt": b"pulled with the pull Secret\n"
    }

    # Pull-only: the same credentials cannot push.
    pushed = run(
        "copy",
        "--authfile",
        str(authfile),
        "--dest-tls-verify=false",
        f"oci:{source.root}:v1",
        f"docker://{server.host}/{repo}:pushed",
        check=False,
    )
    assert pushed.returncode != 0


class FakeStack:
    """What the Automation API's Stack is asked to do, recorded; its engine output is replayed."""

    def __init__(self, calls, outputs=None):
        self.calls, self.outputs = calls, outputs or {}
        self.workspace = self

    def set_all_config(self, config):
        self.calls.append(("config", {k: (v.value, v.secret) for k, v in config.items()}))

    def _run(self, name, kwargs):
        from types import SimpleNamespace

        from pulumi.automation import OutputValue

        assert kwargs["show_secrets"] is False and kwargs["color"] == "never"
        kwargs["on_output"](f"Updating ({name})\n\n    + kubernetes:core/v1:Namespace namespace created\n")
        kwargs["on_event"](
            SimpleNamespace(
                res_op_failed_event=None, diagnostic_event=SimpleNamespace(severity="error", message="a diagnostic\n")
            )
        )
        self.calls.append((name,))
        return SimpleNamespace(
            summary=SimpleNamespace(result="succeeded", resource_changes={"create": 9}),
            outputs={k: OutputValue(v, False) for k, v in self.outputs.items()},
        )

    def up(self, policy_packs=None, **kwargs):
        self.calls.append(("policy_packs", policy_packs))
        return self._run("up", kwargs)

    def refresh(self, **kwargs):
        return self._run("refresh", kwargs)

    def destroy(self, **kwargs):
        return self._run("destroy", kwargs)

    def remove_stack(self, name):
        self.calls.append(("remove_stack", name))


def test_pulumi_provision_and_destroy_drive_the_stack_in_order(tmp_path, monkeypatch):
    """The Automation API calls, in order, with a stand-in Stack (no engine can run here)."""
    from pulumi import automation as auto

    calls, seen = [], {}
    outputs = registry_outputs(SPEC, PlatformRefs())

    def create_or_select_stack(stack_name, project_name, program, opts):
        seen.update(stack=stack_name, project=project_name, program=program, opts=opts)
        return FakeStack(calls, outputs)

    monkeypatch.setattr(auto, "create_or_select_stack", create_or_select_stack)
    monkeypatch.setattr(auto, "select_stack", create_or_select_stack)
    provisioner = PulumiProvisioner(
        "gs://state-bucket/stacks", work_dir=tmp_path, timeout_seconds=120, policy_pack=str(ROOT / "policies")
    )
    provisioner._command = object()  # the CLI check passed
    lines = []
    assert provisioner.provision(SPEC, lines.append) == outputs
    assert seen["stack"] == "acme.team-a" and seen["project"] == "berth-registries"
    assert seen["opts"].project_settings.backend.url == "gs://state-bucket/stacks"
    assert seen["opts"].work_dir == str(tmp_path / "acme.team-a")
    assert calls == [
        (
            "config",
            {
                "berth:org": ("acme", False),
                "berth:registry": ("team-a", False),
                "berth:hostname": ("team-a.cr.example.test", False),
                "berth:pullToken": ("berth_tok", True),
            },
        ),
        ("policy_packs", [str(ROOT / "policies")]),
        ("up",),
    ]
    assert "    + kubernetes:core/v1:Namespace namespace created" in lines
    assert "event: error: a diagnostic" in lines
    assert not any("berth_tok" in line for line in lines)
    # The program handed to the engine is the registry's footprint, bounded by the timeout.
    registered, _ = run_registry_program(SPEC, timeout_seconds=120)
    assert {r.name for r in registered} == {m.key for m in registry_resources(SPEC, PlatformRefs())}

    calls.clear()
    provisioner.destroy(SPEC, lines.append)
    assert calls == [("refresh",), ("destroy",), ("remove_stack", "acme.team-a")]

    def no_stack(**kwargs):
        raise _command_error(auto.StackNotFoundError, "no stack named 'acme.team-a' found")

    monkeypatch.setattr(auto, "select_stack", no_stack)
    lines.clear()
    provisioner.destroy(SPEC, lines.append)
    assert lines == ["pulumi: no stack acme.team-a: nothing to destroy"]
