"""Fixtures for real-client tests: each CLI with state of its own, a private Docker daemon,
and a small HTTP view of the registry to check what the clients did."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.components import IN_CI, require_tool
from tests.support.docker_daemon import DockerDaemon, DockerDaemonError
from tests.support.oci_layout import layer_files

MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
ACCEPT_MANIFESTS = ", ".join(MANIFEST_TYPES)


@dataclass
class Cli:
    """A command line tool run with a fixed prefix and environment, always with a timeout."""

    prefix: list[str]
    env: dict[str, str]
    home: Path
    extra: dict = field(default_factory=dict)

    def __call__(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 180,
        input: str | None = None,
        cwd: Path | None = None,
        text: bool = True,
    ) -> subprocess.CompletedProcess:
        """Run; with `check`, a non-zero exit fails the test showing the command and its output.
        `text=False` keeps stdout as bytes (for archives)."""
        argv = [*self.prefix, *map(str, args)]
        proc = subprocess.run(
            argv,
            env=self.env,
            input=input,
            capture_output=True,
            text=text,
            timeout=timeout,
            cwd=cwd,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            out, err = proc.stdout, proc.stderr
            if not text:
                out, err = out.decode(errors="replace"), err.decode(errors="replace")
            raise AssertionError(
                f"{' '.join(argv)} exited {proc.returncode}\n"
                f"--- stdout ---\n{out[-4000:]}\n--- stderr ---\n{err[-4000:]}"
            )
        return proc


def _isolated_env(home: Path, **extra: str) -> dict[str, str]:
    """An environment where no client finds credentials or state from the host or another test."""
    (home / "docker-config").mkdir(parents=True, exist_ok=True)
    auth_file = home / "auth.json"
    if not auth_file.exists():
        auth_file.write_text('{"auths": {}}')
    env = {
        **os.environ,
        "HOME": str(home),
        "DOCKER_CONFIG": str(home / "docker-config"),
        "REGISTRY_AUTH_FILE": str(auth_file),
        "XDG_RUNTIME_DIR": str(home / "run"),
        "XDG_CONFIG_HOME": str(home / "config"),
    }
    (home / "run").mkdir(exist_ok=True, mode=0o700)
    env.update(extra)
    return env


# -- Docker ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def docker_daemon(tmp_path_factory):
    """A private dockerd for the whole session (starting one takes seconds)."""
    dockerd = require_tool("dockerd", "apt-get install docker.io")
    require_tool("docker", "apt-get install docker.io")
    if os.geteuid() != 0:
        message = "dockerd needs root here (no rootless setup on these machines)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    daemon = DockerDaemon(tmp_path_factory.mktemp("dockerd"), dockerd=dockerd)
    try:
        daemon.start()
    except DockerDaemonError as exc:
        pytest.fail(str(exc))
    yield daemon
    daemon.stop()


@pytest.fixture
def docker(docker_daemon, tmp_path) -> Cli:
    """`docker` against the session's daemon, with a fresh DOCKER_CONFIG (no logins) per test.

    DOCKER_BUILDKIT=0: the legacy builder is what this daemon (20.10, no buildx plugin) builds with
    the same way on every machine."""
    home = tmp_path / "docker-home"
    env = _isolated_env(home, DOCKER_HOST=docker_daemon.host, DOCKER_BUILDKIT="0")
    return Cli(["docker"], env, home, {"config_dir": home / "docker-config"})


# -- containers/image tools -------------------------------------------------------------------


@pytest.fixture
def skopeo(tmp_path) -> Cli:
    require_tool("skopeo", "apt-get install skopeo")
    home = tmp_path / "skopeo-home"
    return Cli(["skopeo"], _isolated_env(home), home)


@pytest.fixture
def podman(tmp_path):
    """`podman` with its own vfs storage and libpod state. Podman refuses a runroot longer than
    50 characters, so the runroot (small, runtime state only) lives in a short dir under /tmp."""
    require_tool("podman", "apt-get install podman")
    home = tmp_path / "podman-home"
    env = _isolated_env(home)
    runroot = Path(tempfile.mkdtemp(prefix="berth-pr-", dir="/tmp"))
    prefix = [
        "podman",
        "--storage-driver=vfs",
        "--root",
        str(home / "storage"),
        "--runroot",
        str(runroot),
        "--tmpdir",
        str(home / "libpod-tmp"),
        "--events-backend=none",
    ]
    yield Cli(prefix, env, home)
    shutil.rmtree(runroot, ignore_errors=True)


@pytest.fixture
def buildah(tmp_path):
    """`buildah` with its own vfs storage (root and runroot) in the test's tmp dir."""
    require_tool("buildah", "apt-get install buildah")
    home = tmp_path / "buildah-home"
    env = _isolated_env(home)
    prefix = [
        "buildah",
        "--storage-driver",
        "vfs",
        "--root",
        str(home / "storage"),
        "--runroot",
        str(home / "runroot"),
    ]
    cli = Cli(prefix, env, home)
    yield cli
    cli("rm", "--all", check=False, timeout=60)


# -- The registry over HTTP -------------------------------------------------------------------


class RegistryHTTP:
    """What the registry itself says about a repository, read with requests and Basic auth."""

    def __init__(self, server) -> None:
        self.server = server
        self.http = server.session()

    def head_manifest(self, repo: str, reference: str, accept: str = ACCEPT_MANIFESTS):
        return self.http.head(
            f"{self.server.url}/v2/{repo}/manifests/{reference}", headers={"Accept": accept}, timeout=30
        )

    def get_manifest(self, repo: str, reference: str, accept: str = ACCEPT_MANIFESTS):
        resp = self.http.get(
            f"{self.server.url}/v2/{repo}/manifests/{reference}", headers={"Accept": accept}, timeout=30
        )
        assert resp.status_code == 200, f"GET manifest {repo}:{reference}: {resp.status_code} {resp.text}"
        return resp

    def get_blob(self, repo: str, digest: str) -> bytes:
        resp = self.http.get(f"{self.server.url}/v2/{repo}/blobs/{digest}", timeout=60)
        assert resp.status_code == 200, f"GET blob {repo}@{digest}: {resp.status_code} {resp.text}"
        return resp.content

    def files(self, repo: str, reference: str) -> dict[str, bytes]:
        """The regular files of an image's layers (later layers win), as the registry serves them."""
        manifest = self.get_manifest(repo, reference).json()
        out: dict[str, bytes] = {}
        for layer in manifest["layers"]:
            out.update(layer_files(self.get_blob(repo, layer["digest"])))
        return out


@pytest.fixture
def registry_http(server) -> RegistryHTTP:
    return RegistryHTTP(server)
