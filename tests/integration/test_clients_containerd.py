"""containerd against a real Berth server: the puller that Kubernetes nodes use.

A node pulls with the `kubernetes.io/dockerconfigjson` Secret that "get credentials" issues, so
these tests pull with exactly those pull-only credentials (POST
/api/v1/orgs/{org}/registries/{r}/credentials), from a private registry, through the token flow
containerd runs: an unauthenticated request, a 401 challenge, then `POST /auth/token` with the
OAuth2 password grant, then the request again with a Bearer token. A public registry serves it
anonymously, with no credentials at all.

A private containerd daemon runs for the module (its own root, state and socket); each test uses a
containerd namespace of its own, and content is not shared between namespaces, so every pull
really fetches its bytes from Berth.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

from tests.integration.conftest import Cli
from tests.support import processes
from tests.support.components import IN_CI, require_tool
from tests.support.management import Api
from tests.support.oci_layout import OCI_INDEX, OCI_MANIFEST, OCILayout, layer_files

pytestmark = pytest.mark.clients

CONFIG = """\
version = 2
root = "{root}"
state = "{state}"
# The CRI plugin serves the kubelet; ctr does not need it, and it wants a CNI setup this host lacks.
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{state}/containerd.sock"

[ttrpc]
  address = "{state}/containerd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{root}/opt"

# Blobs one namespace holds are not handed to another, so a pull into a fresh namespace downloads
# every byte instead of reusing what an earlier push left behind.
[plugins."io.containerd.metadata.v1.bolt"]
  content_sharing_policy = "isolated"
"""


class Containerd:
    """A containerd daemon of our own, and `ctr` clients bound to it."""

    def __init__(self, root: Path, binary: str) -> None:
        self.root = root
        # A unix socket path must stay under 108 bytes: the state dir is short, under /tmp.
        self.state = Path(tempfile.mkdtemp(prefix="berth-ctd-", dir="/tmp"))
        self.config = root / "config.toml"
        self.config.write_text(CONFIG.format(root=root / "root", state=self.state))
        self.log_path = root / "containerd.log"
        self.binary = binary
        self.process: subprocess.Popen | None = None
        self.snapshotter = "native"

    @property
    def address(self) -> str:
        return str(self.state / "containerd.sock")

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"containerd exited {self.process.returncode}: {self.log_path.read_text()[-3000:]}")
            probe = subprocess.run(["ctr", "--address", self.address, "version"], capture_output=True, timeout=30)
            if probe.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"containerd did not answer within 30s: {self.log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        self.snapshotter = self._working_snapshotter()

    def _working_snapshotter(self) -> str:
        """overlayfs when this kernel and filesystem can mount it (the plugin loads only after a
        trial mount succeeds), else native, which copies and works everywhere."""
        plugins = subprocess.run(
            ["ctr", "--address", self.address, "plugins", "ls"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        for line in plugins.splitlines():
            fields = line.split()
            if fields[:2] == ["io.containerd.snapshotter.v1", "overlayfs"] and fields[-1] == "ok":
                return "overlayfs"
        return "native"

    def ctr(self, namespace: str, home: Path) -> Cli:
        home.mkdir(parents=True, exist_ok=True)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(home)}
        return Cli(
            ["ctr", "--address", self.address, "--namespace", namespace], env, home, {"snapshotter": self.snapshotter}
        )

    def stop(self) -> None:
        processes.stop(self.process, timeout=15)
        shutil.rmtree(self.state, ignore_errors=True)


@pytest.fixture(scope="module")
def containerd(tmp_path_factory):
    binary = require_tool("containerd", "apt-get install containerd")
    require_tool("ctr", "apt-get install containerd")
    if os.geteuid() != 0:
        message = "containerd needs root here (no rootless setup on these machines)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    daemon = Containerd(tmp_path_factory.mktemp("containerd"), binary)
    try:
        daemon.start()
    except RuntimeError as exc:
        daemon.stop()
        pytest.fail(str(exc))
    yield daemon
    daemon.stop()


@pytest.fixture
def ctr(containerd, tmp_path):
    """A ctr client factory: `ctr()` is this test's own namespace, `ctr("x")` another fresh one."""

    def make(suffix: str = "main") -> Cli:
        return containerd.ctr(f"t{secrets.token_hex(4)}-{suffix}", tmp_path / f"ctr-{suffix}")

    return make


# -- helpers ----------------------------------------------------------------------------------


def create_registry(api: Api, visibility: str = "private") -> str:
    """A new registry, ready (registries are private unless made public)."""
    name = f"ctd-{secrets.token_hex(4)}"
    return api.create(name, **({"visibility": visibility} if visibility != "private" else {}))["name"]


def issue_credentials(api: Api, registry: str, push: bool) -> dict:
    """What "get credentials" hands out; `user` is the `U:P` a pull Secret's auth decodes to."""
    r = api("POST", f"/registries/{registry}/credentials", json={"push": push})
    assert r.status_code == 201, r.text
    issued = r.json()
    auth = issued["dockerconfigjson"]["auths"][api.server.host]
    return {**issued, "user": f"{auth['username']}:{auth['password']}", "subject": f"token:{issued['token']['id']}"}


def oci_archive(layout: OCILayout, path: Path) -> Path:
    """The layout as the tar stream `ctr images import` reads."""
    with tarfile.open(path, "w") as tar:
        tar.add(layout.root, arcname=".")
    return path


def push_with_ctr(ctr: Cli, tmp_path: Path, ref: str, user: str):
    """An image built here, imported into containerd and pushed by it to `ref` (path form)."""
    name, tag = ref.rsplit(":", 1)
    layout = OCILayout(tmp_path / f"layout-{secrets.token_hex(3)}")
    image = layout.add_image({"hello.txt": f"containerd {ref}\n".encode()}, tag=tag)
    archive = oci_archive(layout, tmp_path / "image.tar")
    ctr("images", "import", "--snapshotter", ctr.extra["snapshotter"], "--base-name", name, archive, timeout=120)
    ctr("images", "push", "--plain-http", "--user", user, ref, timeout=120)
    return layout, image


def log_mark(server) -> int:
    return len(server.logs())


def requests_since(server, mark: int) -> list[dict]:
    """The access log lines Berth wrote after `mark` (each is written before its response is sent)."""
    out = []
    written = server.logs()[mark:]
    for line in written[: written.rfind("\n") + 1].splitlines():  # whole lines only
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("logger") == "berth.access":
                out.append(record)
    return out


def token_requests_from_containerd(records: list[dict]) -> list[dict]:
    return [r for r in records if r["route"] == "/auth/token" and (r.get("user_agent") or "").startswith("containerd/")]


def pulled_digest(ctr: Cli, ref: str) -> str:
    """The manifest digest containerd recorded for `ref` (what a node would run)."""
    listed = ctr("images", "ls").stdout.splitlines()
    rows = [line.split() for line in listed[1:] if line.split() and line.split()[0] == ref]
    assert len(rows) == 1, "\n".join(listed)
    return rows[0][2]


# -- tests --------------------------------------------------------------------------------------


def test_ctr_pushes_a_local_image_with_push_credentials_through_the_token_flow(ctr, server, registry_http, tmp_path):
    """Spec, Push: "Pushing an object typically works in the opposite order as a pull: the blobs
    making up the object are uploaded first, and the manifest last." """
    api = Api(server)
    registry = create_registry(api)
    creds = issue_credentials(api, registry, push=True)
    repo = f"{registry}/app"
    mark = log_mark(server)

    layout, image = push_with_ctr(ctr(), tmp_path, f"{server.host}/{repo}:v1", creds["user"])

    head = registry_http.head_manifest(repo, "v1")
    assert head.status_code == 200, head.text
    assert head.headers["Docker-Content-Digest"] == image.digest
    assert head.headers["Content-Type"] == OCI_MANIFEST
    assert registry_http.get_manifest(repo, "v1").content == layout.read_blob(image.digest)
    assert registry_http.files(repo, "v1") == {"hello.txt": f"containerd {server.host}/{repo}:v1\n".encode()}
    # The token flow, as containerd runs it with credentials: the OAuth2 password grant by POST,
    # issued to the push credentials; the uploads then act as that token, not as anonymous.
    records = requests_since(server, mark)
    tokens = token_requests_from_containerd(records)
    assert tokens and all(r["method"] == "POST" and r["status"] == 200 for r in tokens), tokens
    assert {r["subject"] for r in tokens} == {creds["subject"]}
    uploads = [r for r in records if r["route"] in ("oci.uploads", "oci.upload") and r["repository"] == "app"]
    assert uploads and {r["subject"] for r in uploads} == {creds["subject"]}


def test_ctr_pulls_from_a_private_registry_with_the_pull_credentials_a_kubernetes_secret_holds(ctr, server, tmp_path):
    """Spec, Pull: "The process of pulling an object centers around retrieving two components: the
    manifest and one or more blobs." The node gets both, with the credentials of its pull Secret."""
    api = Api(server)
    registry = create_registry(api)
    ref = f"{server.host}/{registry}/app:v1"
    layout, image = push_with_ctr(ctr("pusher"), tmp_path, ref, issue_credentials(api, registry, True)["user"])
    pull = issue_credentials(api, registry, push=False)
    node = ctr("node")
    mark = log_mark(server)

    node(
        "images",
        "pull",
        "--plain-http",
        "--snapshotter",
        node.extra["snapshotter"],
        "--user",
        pull["user"],
        ref,
        timeout=120,
    )

    assert pulled_digest(node, ref) == image.digest
    layer = node("content", "get", image.layers[0].digest, text=False).stdout
    assert layer == layout.read_blob(image.layers[0].digest)
    assert layer_files(layer) == {"hello.txt": f"containerd {ref}\n".encode()}
    records = requests_since(server, mark)
    tokens = token_requests_from_containerd(records)
    assert tokens and {(r["method"], r["status"], r["subject"]) for r in tokens} == {("POST", 200, pull["subject"])}
    # Every byte came from Berth, fetched with the registry token issued to the pull credentials.
    fetched = [r for r in records if r["route"] == "oci.blob" and r["method"] == "GET" and r["status"] == 200]
    assert {r["subject"] for r in fetched} == {pull["subject"]} and len(fetched) == 2, fetched  # config and layer


def test_ctr_cannot_push_with_pull_only_credentials(ctr, server, registry_http, tmp_path):
    api = Api(server)
    registry = create_registry(api)
    pull = issue_credentials(api, registry, push=False)
    ref = f"{server.host}/{registry}/app:v1"

    client = ctr()
    layout = OCILayout(tmp_path / "layout")
    layout.add_image({"hello.txt": b"not pushed\n"}, tag="v1")
    client(
        "images",
        "import",
        "--snapshotter",
        client.extra["snapshotter"],
        "--base-name",
        ref.rsplit(":", 1)[0],
        oci_archive(layout, tmp_path / "image.tar"),
        timeout=120,
    )
    pushed = client("images", "push", "--plain-http", "--user", pull["user"], ref, check=False, timeout=120)

    assert pushed.returncode != 0, pushed.stdout
    # The challenge says why (RFC 6750 `error="insufficient_scope"`), and containerd repeats it.
    assert "insufficient_scope" in pushed.stderr, pushed.stderr
    assert registry_http.head_manifest(f"{registry}/app", "v1").status_code == 404


@pytest.mark.parametrize("user", [None, "wrong"], ids=["no credentials", "a wrong password"])
def test_ctr_pull_from_a_private_registry_fails_without_valid_credentials(ctr, server, tmp_path, user):
    """Spec, error codes: `UNAUTHORIZED`, "authentication required"."""
    api = Api(server)
    registry = create_registry(api)
    ref = f"{server.host}/{registry}/app:v1"
    push_with_ctr(ctr("pusher"), tmp_path, ref, issue_credentials(api, registry, True)["user"])
    node = ctr("node")
    args = ["--user", f"{issue_credentials(api, registry, False)['username']}:berth_wrong"] if user else []

    pulled = node("images", "pull", "--plain-http", *args, ref, check=False, timeout=120)

    assert pulled.returncode != 0, pulled.stdout
    assert "401 Unauthorized" in pulled.stderr, pulled.stderr
    assert ref not in node("images", "ls", "-q").stdout.split()


def test_ctr_pulls_from_a_public_registry_anonymously_with_no_credentials(ctr, server, tmp_path):
    api = Api(server)
    registry = create_registry(api, "public")
    ref = f"{server.host}/{registry}/app:v1"
    layout, image = push_with_ctr(ctr("pusher"), tmp_path, ref, issue_credentials(api, registry, True)["user"])
    node = ctr("node")
    mark = log_mark(server)

    node("images", "pull", "--plain-http", "--snapshotter", node.extra["snapshotter"], ref, timeout=120)

    assert pulled_digest(node, ref) == image.digest
    assert node("content", "get", image.layers[0].digest, text=False).stdout == layout.read_blob(image.layers[0].digest)
    # A public registry serves anonymous reads without a challenge, so no token is needed: every
    # request the node made was anonymous and answered.
    reads = [r for r in requests_since(server, mark) if r["registry"] == registry]
    assert {r["route"] for r in reads} >= {"oci.manifest", "oci.blob"}, reads
    assert {(r["subject"], r["status"]) for r in reads} == {("anonymous", 200)}, reads


def test_ctr_pulls_its_own_platform_from_a_multi_platform_index(ctr, server, tmp_path):
    api = Api(server)
    registry = create_registry(api)
    ref = f"{server.host}/{registry}/multi:v1"
    layout = OCILayout(tmp_path / "layout")
    index = layout.add_index([("linux", "amd64"), ("linux", "arm64")], files={"app.txt": b"multi\n"}, tag="v1")
    pusher = ctr("pusher")
    pusher(
        "images",
        "import",
        "--all-platforms",
        "--snapshotter",
        pusher.extra["snapshotter"],
        "--base-name",
        ref.rsplit(":", 1)[0],
        oci_archive(layout, tmp_path / "index.tar"),
        timeout=120,
    )
    pusher("images", "push", "--plain-http", "--user", issue_credentials(api, registry, True)["user"], ref, timeout=120)
    node = ctr("node")
    arm64 = index.images["linux/arm64"]

    node(
        "images",
        "pull",
        "--plain-http",
        "--platform",
        "linux/arm64",
        "--snapshotter",
        node.extra["snapshotter"],
        "--user",
        issue_credentials(api, registry, False)["user"],
        ref,
        timeout=120,
    )

    # The tag names the index; the node fetched the arm64 image under it, and not the amd64 one.
    assert pulled_digest(node, ref) == index.digest
    listed = node("images", "ls").stdout
    assert OCI_INDEX in listed and "linux/arm64" in listed, listed
    layer = node("content", "get", arm64.layers[0].digest, text=False).stdout
    assert layer_files(layer) == {"app.txt": b"multi\n", "platform": b"linux/arm64\n"}
    amd64_layer = node("content", "get", index.images["linux/amd64"].layers[0].digest, check=False, text=False)
    assert amd64_layer.returncode != 0
