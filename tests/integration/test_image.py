"""The container image (Dockerfile, scripts/image), run the way the platform's Deployment runs it:
a read-only root filesystem, uid 10001, a data volume and a tmpfs /tmp; pushed to and pulled from
with docker and skopeo, stopped with SIGTERM in the middle of an upload, probed on /healthz and
/readyz.

scripts/image builds it against the session's private dockerd. No base image can be pulled on
these machines, so the script makes the base from Debian packages (mmdebstrap, cached as a tarball
under ~/.cache/berth-image, so only the first run pays for it) and the wheels on this machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from infra.platform_resources import DATA_DIR, PORT, UID, PlatformConfig, platform_resources
from tests.support.components import IN_CI, require_tool
from tests.support.oci_layout import OCILayout, layer_files, tagged

pytestmark = pytest.mark.clients

ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 1500  # the first build makes the Debian base (~3 min) and the wheels


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def image(docker_daemon, tmp_path_factory) -> str:
    if not Path("/usr/bin/mmdebstrap").exists() and os.geteuid() != 0:
        message = "scripts/image needs mmdebstrap to make a base here: apt-get install mmdebstrap"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    env = {
        **os.environ,
        "DOCKER_HOST": docker_daemon.host,
        "DOCKER_BUILDKIT": "0",
        "DOCKER_CONFIG": str(tmp_path_factory.mktemp("image-docker-config")),
    }
    tag = f"berth-test:{secrets.token_hex(4)}"
    proc = subprocess.run(
        [str(ROOT / "scripts/image"), "--tag", tag],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
    )
    assert proc.returncode == 0, f"scripts/image failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    assert proc.stdout.split()[-1] == tag, proc.stdout  # the reference is its last word
    return tag


class Container:
    """One `docker run` of the image as the Deployment runs it, on free host ports."""

    def __init__(self, docker, image: str, volume: str) -> None:
        self.docker, self.image, self.volume = docker, image, volume
        self.port, self.metrics_port = _free_port(), _free_port()
        self.token = "berth_" + secrets.token_urlsafe(32)
        self.name = f"berth-{secrets.token_hex(4)}"
        self.url = f"http://127.0.0.1:{self.port}"

    def run(self) -> Container:
        self.docker(
            "run",
            "-d",
            "--name",
            self.name,
            "--network",
            "host",
            "--read-only",
            "--tmpfs",
            "/tmp:rw,size=256m",
            "--user",
            f"{UID}:{UID}",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "-v",
            f"{self.volume}:{DATA_DIR}",
            "-e",
            f"BERTH_PORT={self.port}",
            "-e",
            f"BERTH_METRICS_ADDR=127.0.0.1:{self.metrics_port}",
            "-e",
            f"BERTH_BOOTSTRAP_TOKEN={self.token}",
            "-e",
            "BERTH_LOG_LEVEL=warning",
            self.image,
        )
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            state = self.inspect()["State"]
            if not state["Running"]:
                raise AssertionError(f"the container exited {state['ExitCode']}:\n{self.logs()}")
            time.sleep(0.5)
        raise AssertionError(f"/readyz did not answer 200 within {timeout}s:\n{self.logs()}")

    def inspect(self) -> dict:
        return json.loads(self.docker("inspect", self.name).stdout)[0]

    def logs(self) -> str:
        proc = self.docker("logs", self.name, check=False)
        return (proc.stdout + proc.stderr)[-4000:]

    def remove(self) -> None:
        self.docker("rm", "-f", "-v", self.name, check=False)


@pytest.fixture
def container(docker, image):
    volume = f"berth-data-{secrets.token_hex(4)}"
    c = Container(docker, image, volume).run()
    yield c
    c.remove()
    docker("volume", "rm", "-f", volume, check=False)


def test_the_image_is_configured_as_the_platform_deployment_runs_it(docker, image):
    config = json.loads(docker("image", "inspect", image).stdout)[0]["Config"]
    deployment = next(
        m.body
        for m in platform_resources(
            PlatformConfig(
                image="registry.example/berth@sha256:" + "0" * 64,
                domain="cr.example.test",
                gateway_class="eg",
                storage_url="gs://b",
                trusted_proxies="10.0.0.0/8",
                database_url="postgresql://x",
                token_signing_key="k",
            )
        )
        if m.body["kind"] == "Deployment"
    )
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = dict(e.split("=", 1) for e in config["Env"])

    assert config["User"] == f"{UID}:{UID}" and pod["securityContext"]["runAsUser"] == UID
    assert config["Entrypoint"] == container["command"] == ["berth", "serve"]
    assert env["BERTH_DATA_DIR"] == DATA_DIR and DATA_DIR in config["Volumes"]
    assert {m["mountPath"] for m in container["volumeMounts"]} >= {DATA_DIR, "/tmp"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert {f"{ports['http']}/tcp", f"{ports['metrics']}/tcp"} <= set(config["ExposedPorts"])
    assert env["BERTH_PORT"] == str(PORT) and env["BERTH_METRICS_ADDR"].endswith(f":{ports['metrics']}")
    assert (
        "/healthz" in " ".join(config["Healthcheck"]["Test"])
        and container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    )
    labels = config["Labels"]
    for key in ("source", "revision", "version", "licenses"):
        assert labels.get(f"org.opencontainers.image.{key}"), key
    revision = labels["org.opencontainers.image.revision"].removesuffix("-dirty")
    assert subprocess.run(["git", "cat-file", "-e", f"{revision}^{{commit}}"], cwd=ROOT).returncode == 0, revision


def test_the_image_serves_read_only_as_non_root_with_probes_and_a_healthcheck(docker, container):
    assert requests.get(container.url + "/healthz", timeout=5).status_code == 200
    assert requests.get(container.url + "/readyz", timeout=5).status_code == 200
    metrics = requests.get(f"http://127.0.0.1:{container.metrics_port}/metrics", timeout=5)
    assert metrics.status_code == 200 and "berth_" in metrics.text
    assert requests.get(container.url + "/metrics", timeout=5).status_code == 404
    # The root filesystem is read-only and the process is not root: it can write nowhere else.
    probe = docker(
        "exec",
        container.name,
        "python3",
        "-c",
        "import os\ntry:\n open('/opt/berth/x', 'w')\nexcept OSError as e:\n print(e.errno)\nprint(os.getuid())",
        check=False,
    )
    assert probe.stdout.split() == ["30", str(UID)], probe.stdout + probe.stderr  # EROFS
    deadline = time.monotonic() + 60
    while container.inspect()["State"]["Health"]["Status"] != "healthy":
        assert time.monotonic() < deadline, container.inspect()["State"]["Health"]
        time.sleep(1)


def test_docker_and_skopeo_push_and_pull_through_the_image(docker, skopeo, container, tmp_path):
    host = f"127.0.0.1:{container.port}"
    docker("login", host, "-u", "admin", "--password-stdin", input=container.token)
    context = tmp_path / "hello"
    context.mkdir()
    (context / "hello.txt").write_text("hello from the image test\n")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /\n")
    ref = f"{host}/default/t/hello:1"
    docker("build", "-q", "-t", ref, str(context))
    docker("push", ref, timeout=300)
    docker("rmi", ref)
    docker("pull", ref, timeout=300)

    source = OCILayout(tmp_path / "source")
    image = source.add_image({"skopeo.txt": b"copied by skopeo\n"}, tag="v1")
    remote = f"docker://{host}/default/t/skopeo:v1"
    creds = f"admin:{container.token}"
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{source.root}:v1", remote, timeout=300)
    skopeo("copy", "--src-tls-verify=false", "--src-creds", creds, remote, f"oci:{tmp_path / 'back'}:v1", timeout=300)
    back = OCILayout(tmp_path / "back")
    assert tagged(tmp_path / "back", "v1").digest == image.digest
    assert layer_files(back.read_blob(image.layers[0].digest)) == {"skopeo.txt": b"copied by skopeo\n"}


def test_sigterm_during_an_upload_stops_cleanly_and_keeps_what_was_acknowledged(docker, container):
    auth = ("admin", container.token)
    blob = os.urandom(3 * 1024 * 1024)
    first, rest = blob[: 1024 * 1024], blob[1024 * 1024 :]
    start = requests.post(f"{container.url}/v2/default/t/sigterm/blobs/uploads/", auth=auth, timeout=10)
    assert start.status_code == 202, start.text
    location = (
        container.url + start.headers["Location"]
        if start.headers["Location"].startswith("/")
        else start.headers["Location"]
    )
    acked = requests.patch(
        location,
        data=first,
        auth=auth,
        timeout=30,
        headers={"Content-Type": "application/octet-stream", "Content-Range": f"0-{len(first) - 1}"},
    )
    assert acked.status_code == 202 and acked.headers["Range"] == f"0-{len(first) - 1}", acked.text

    # The next chunk is in flight, half sent, when the container is told to stop.
    sent_half = threading.Event()
    outcome: dict = {}

    def slow_body():
        yield rest[: len(rest) // 2]
        sent_half.set()
        time.sleep(3)
        yield rest[len(rest) // 2 :]

    def in_flight():
        try:
            outcome["response"] = requests.patch(
                acked.headers["Location"]
                if acked.headers["Location"].startswith("http")
                else container.url + acked.headers["Location"],
                data=slow_body(),
                auth=auth,
                timeout=60,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{len(first)}-{len(blob) - 1}",
                    "Content-Length": str(len(rest)),
                },
            )
        except requests.RequestException as e:
            outcome["error"] = e

    thread = threading.Thread(target=in_flight)
    thread.start()
    assert sent_half.wait(10)
    began = time.monotonic()
    docker("stop", "-t", "30", container.name, timeout=60)  # SIGTERM, SIGKILL only after 30 s
    thread.join(30)
    state = container.inspect()["State"]
    assert state["ExitCode"] == 0 and time.monotonic() - began < 25, (state, container.logs())

    docker("start", container.name)
    container.wait_ready()
    status = requests.get(location, auth=auth, timeout=10)
    assert status.status_code == 204, status.text
    offset = int(status.headers["Range"].split("-")[1]) + 1
    # Either the in-flight chunk was completed and acknowledged, or none of it counts.
    if "response" in outcome and outcome["response"].status_code == 202:
        assert offset == len(blob)
    else:
        assert offset == len(first)
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    done = requests.put(
        status.headers["Location"]
        if status.headers["Location"].startswith("http")
        else container.url + status.headers["Location"],
        params={"digest": digest},
        data=blob[offset:],
        auth=auth,
        timeout=30,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert done.status_code == 201, done.text
    pulled = requests.get(f"{container.url}/v2/default/t/sigterm/blobs/{digest}", auth=auth, timeout=30)
    assert pulled.status_code == 200 and pulled.content == blob


def test_scripts_image_pushes_into_berth_itself_and_prints_the_reference_by_digest(
    docker, container, image, docker_daemon
):
    host = f"127.0.0.1:{container.port}"
    docker("login", host, "-u", "admin", "--password-stdin", input=container.token)
    require_tool("skopeo", "apt-get install skopeo")
    proc = subprocess.run(
        [str(ROOT / "scripts/image"), "--tag", image, "--push", f"{host}/default/platform/berth"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        env={**docker.env, "DOCKER_HOST": docker_daemon.host},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    reference = proc.stdout.split()[-1]
    name, _, digest = reference.partition("@")
    assert name == f"{host}/default/platform/berth" and digest.startswith("sha256:"), reference
    head = requests.head(
        f"{container.url}/v2/default/platform/berth/manifests/{digest}",
        auth=("admin", container.token),
        timeout=10,
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    assert head.status_code == 200 and head.headers["Docker-Content-Digest"] == digest
