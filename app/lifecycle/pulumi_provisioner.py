"""The Pulumi provisioner (production): one Automation API stack per registry, running the inline
program of app/lifecycle/pulumi_program.py against the cluster the service runs in.

- Stack `<org>.<registry>` of project `berth-registries` (a `.` never occurs in a DNS label, so
  two registries never share a stack), state in `BERTH_PULUMI_BACKEND_URL` (`file://` or `gs://`).
- `provision`: stack config (org, registry, hostname; the pull token as a secret), then `up`.
- `destroy`: `refresh` (so objects removed by hand do not fail the destroy), `destroy`,
  `remove_stack`. No stack is success.
- With `BERTH_PULUMI_POLICY_PACK` (the policies/ directory), `up` enforces the policy pack.
- Every resource's create/update/delete is bounded by `BERTH_PULUMI_TIMEOUT` (Pulumi custom
  timeouts), so a stuck namespace deletion fails the operation instead of hanging it.
- The engine's output and events go line by line into the operation's log.
- The Python SDK keeps per-process global state for a running program, so one process runs one
  stack operation at a time (a lock); run more replicas for more parallelism.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from pathlib import Path

from app.lifecycle.provisioner import Log, Provisioner, ProvisionError, RegistrySpec
from app.lifecycle.resources import PlatformRefs

PROJECT = "berth-registries"
INSTALL_HINT = (
    "install the pulumi CLI: `curl -fsSL https://get.pulumi.com | sh` (or your package manager), "
    "then put it on PATH or set BERTH_PULUMI_ROOT to the directory that holds bin/pulumi"
)
# Failures worth retrying: the state backend or the API server was briefly unreachable.
_TRANSIENT = re.compile(
    r"connection refused|connection reset|i/o timeout|TLS handshake timeout|context deadline exceeded"
    r"|no such host|temporary failure in name resolution|unexpected EOF|server is currently unable"
    r"|too many requests|\b(429|502|503|504)\b|etcdserver: request timed out|the object has been modified",
    re.IGNORECASE,
)
_ENGINE_LOCK = threading.Lock()


def stack_name(spec: RegistrySpec) -> str:
    return f"{spec.org}.{spec.name}"


class PulumiProvisioner(Provisioner):
    name = "pulumi"

    def __init__(
        self,
        backend_url: str,
        platform: PlatformRefs | None = None,
        *,
        work_dir: Path | str,
        pulumi_root: str = "",
        secrets_provider: str = "",
        timeout_seconds: int = 900,
        policy_pack: str = "",
        env: dict[str, str] | None = None,
    ) -> None:
        self.backend_url = backend_url
        self.platform = platform or PlatformRefs()
        self.work_dir = Path(work_dir)
        self.pulumi_root = pulumi_root
        self.secrets_provider = secrets_provider
        self.timeout_seconds = timeout_seconds
        self.policy_pack = policy_pack
        self.env = dict(env or {})
        self._command = None

    # -- start-up check ---------------------------------------------------------------------

    def check(self) -> None:
        """Fail at start, with what to do, when the CLI or the state backend cannot be used."""
        self._pulumi_command()
        if not re.match(r"^(file|gs|s3|azblob)://", self.backend_url):
            raise ProvisionError(
                f"BERTH_PULUMI_BACKEND_URL={self.backend_url!r}: use file://<dir> or gs://<bucket>[/prefix]",
                step="check",
            )
        if self.policy_pack and not (Path(self.policy_pack) / "PulumiPolicy.yaml").is_file():
            raise ProvisionError(
                f"BERTH_PULUMI_POLICY_PACK={self.policy_pack!r} holds no PulumiPolicy.yaml "
                "(point it at the repository's policies/ directory)",
                step="check",
            )
        if self.backend_url.startswith("file://"):
            state = Path(self.backend_url[len("file://") :])
            try:
                state.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ProvisionError(f"cannot create the Pulumi state directory {state}: {exc}", step="check") from exc
        passphrase = {"PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"}
        if not self.secrets_provider or self.secrets_provider == "passphrase":
            if not passphrase & (set(os.environ) | set(self.env)):
                raise ProvisionError(
                    "the Pulumi passphrase secrets provider needs PULUMI_CONFIG_PASSPHRASE (or "
                    "PULUMI_CONFIG_PASSPHRASE_FILE), or set BERTH_PULUMI_SECRETS_PROVIDER (e.g. gcpkms://...)",
                    step="check",
                )

    def _pulumi_command(self):
        if self._command is None:
            from pulumi import automation as auto

            try:
                self._command = auto.PulumiCommand(root=self.pulumi_root or None)
            except FileNotFoundError as exc:
                where = os.path.join(self.pulumi_root, "bin", "pulumi") if self.pulumi_root else "pulumi on PATH"
                raise ProvisionError(f"no Pulumi CLI ({where}): {INSTALL_HINT}", step="check") from exc
            except Exception as exc:  # e.g. a CLI older than the SDK supports
                raise ProvisionError(f"the Pulumi CLI cannot be used: {exc}; {INSTALL_HINT}", step="check") from exc
        return self._command

    # -- the stack ----------------------------------------------------------------------------

    def _workspace_options(self, spec: RegistrySpec):
        from pulumi import automation as auto

        work_dir = self.work_dir / stack_name(spec)
        work_dir.mkdir(parents=True, exist_ok=True)
        return auto.LocalWorkspaceOptions(
            work_dir=str(work_dir),
            project_settings=auto.ProjectSettings(
                name=PROJECT,
                runtime="python",
                backend=auto.ProjectBackend(self.backend_url),
                description="Berth registries: one stack per registry",
            ),
            secrets_provider=self.secrets_provider or None,
            env_vars={"PULUMI_SKIP_UPDATE_CHECK": "true", **self.env},
            pulumi_command=self._pulumi_command(),
        )

    def _program(self, spec: RegistrySpec) -> Callable[[], None]:
        from app.lifecycle.pulumi_program import registry_program

        return registry_program(spec, self.platform, timeout_seconds=self.timeout_seconds)

    def provision(self, spec: RegistrySpec, log: Log) -> dict[str, str]:
        from pulumi import automation as auto

        name = stack_name(spec)
        with _ENGINE_LOCK, _translated("up", name):
            log(f"pulumi: selecting stack {name} in {self.backend_url}")
            stack = auto.create_or_select_stack(
                stack_name=name,
                project_name=PROJECT,
                program=self._program(spec),
                opts=self._workspace_options(spec),
            )
            stack.set_all_config(
                {
                    "berth:org": auto.ConfigValue(spec.org),
                    "berth:registry": auto.ConfigValue(spec.name),
                    "berth:hostname": auto.ConfigValue(spec.hostname),
                    "berth:pullToken": auto.ConfigValue(spec.pull_token, secret=True),
                }
            )
            log(f"pulumi: up {name}")
            result = stack.up(
                color="never",
                show_secrets=False,
                on_output=_lines(log),
                on_event=_events(log),
                policy_packs=[self.policy_pack] if self.policy_pack else None,
            )
            log(f"pulumi: up {name}: {result.summary.result}, changes {dict(result.summary.resource_changes or {})}")
            return {key: str(out.value) for key, out in result.outputs.items() if not out.secret}

    def destroy(self, spec: RegistrySpec, log: Log) -> None:
        from pulumi import automation as auto

        name = stack_name(spec)
        with _ENGINE_LOCK, _translated("destroy", name):
            try:
                stack = auto.select_stack(
                    stack_name=name,
                    project_name=PROJECT,
                    program=self._program(spec),
                    opts=self._workspace_options(spec),
                )
            except auto.StackNotFoundError:
                log(f"pulumi: no stack {name}: nothing to destroy")
                return
            log(f"pulumi: refresh {name}")
            stack.refresh(color="never", show_secrets=False, on_output=_lines(log), on_event=_events(log))
            log(f"pulumi: destroy {name}")
            result = stack.destroy(color="never", show_secrets=False, on_output=_lines(log), on_event=_events(log))
            log(f"pulumi: destroy {name}: {result.summary.result}")
            stack.workspace.remove_stack(name)
            log(f"pulumi: removed stack {name}")


def _lines(log: Log) -> Callable[[str], None]:
    def on_output(text: str) -> None:
        for line in text.splitlines():
            if line.strip():
                log(line.rstrip())

    return on_output


def _events(log: Log) -> Callable[[object], None]:
    """Engine events worth a line of their own: failed resource steps and error diagnostics."""

    def on_event(event) -> None:
        failed = getattr(event, "res_op_failed_event", None)
        if failed is not None:
            meta = failed.metadata
            log(f"event: {meta.op} failed for {meta.urn}")
        diagnostic = getattr(event, "diagnostic_event", None)
        if diagnostic is not None and diagnostic.severity == "error":
            log(f"event: error: {diagnostic.message.strip()}")

    return on_event


class _translated:
    """Automation API and CLI failures as ProvisionError, transient where a retry may succeed."""

    def __init__(self, step: str, stack: str) -> None:
        self.step, self.stack = step, stack

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None or isinstance(exc, ProvisionError):
            return False
        from pulumi import automation as auto

        if isinstance(exc, FileNotFoundError):
            raise ProvisionError(f"no Pulumi CLI: {INSTALL_HINT}", step=self.step) from exc
        if isinstance(exc, auto.ConcurrentUpdateError):
            raise ProvisionError(
                f"stack {self.stack} is locked by another update; retrying later", step=self.step, transient=True
            ) from exc
        if isinstance(exc, auto.CommandError):
            text = str(exc)  # the command, its exit code, stdout and stderr
            raise ProvisionError(
                f"pulumi {self.step} of {self.stack} failed: {_last_lines(text)}",
                step=self.step,
                transient=bool(_TRANSIENT.search(text)),
            ) from exc
        if isinstance(exc, (ConnectionError, TimeoutError)):
            raise ProvisionError(f"pulumi {self.step} of {self.stack}: {exc}", step=self.step, transient=True) from exc
        if isinstance(exc, Exception):
            raise ProvisionError(f"pulumi {self.step} of {self.stack}: {exc}", step=self.step) from exc
        return False


def _last_lines(text: str, n: int = 12) -> str:
    lines = [line for line in str(text).splitlines() if line.strip()]
    return "\n".join(lines[-n:])
