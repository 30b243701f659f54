"""Several `berth serve` replicas sharing one PostgreSQL database, one blob store and Redis behave
as one registry: uploads move between replicas, tag races have one winner everyone agrees on,
skopeo pushes through a round-robin of replicas, a replica killed mid-upload loses nothing
acknowledged, and dropped database connections cost no request."""

from __future__ import annotations

import json
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support import postgres
from tests.support.oci_layout import OCILayout, layer_files, tagged
from tests.support.registry_client import RegistryClient, sha256
from tests.support.roundrobin import RoundRobinProxy
from tests.support.server import Server

MiB = 1024 * 1024


def _redis_url() -> str | None:
    try:
        import redis

        client = redis.Redis.from_url("redis://127.0.0.1:6379/14", socket_connect_timeout=1)
        client.ping()
        return "redis://127.0.0.1:6379/14"
    except Exception:
        return None


class Cluster:
    """Replicas on one database, one storage directory, one signing keyring and (when it runs)
    Redis; each with a data dir (and log) of its own."""

    def __init__(self, root, count: int = 2) -> None:
        self.database_url = postgres.create_database()
        token = "berth_" + secrets.token_urlsafe(32)
        env = {
            "BERTH_STORAGE_URL": f"file://{root / 'shared-storage'}",
            "BERTH_TOKEN_KEYS_DIR": str(root / "shared-keys"),
        }
        if redis_url := _redis_url():
            env["BERTH_REDIS_URL"] = redis_url
        self.replicas = [
            Server(root / f"replica{i}", token=token, env=dict(env), database_url=self.database_url)
            for i in range(count)
        ]
        for replica in self.replicas:  # one at a time: the first bootstraps and makes the signing key
            replica.start()

    def client(self, i: int) -> RegistryClient:
        replica = self.replicas[i % len(self.replicas)]
        return RegistryClient(replica.url, replica.session())

    def stop(self) -> None:
        for replica in self.replicas:
            replica.stop()


@pytest.fixture
def cluster(tmp_path):
    postgres.require_postgres()
    c = Cluster(tmp_path)
    yield c
    c.stop()


def _no_server_errors(cluster: Cluster) -> None:
    for replica in cluster.replicas:
        assert '"status": 500' not in replica.logs(), replica.logs()[-3000:]


def test_a_chunked_upload_started_on_one_replica_completes_on_another(cluster):
    a, b = cluster.client(0), cluster.client(1)
    data = secrets.token_bytes(5 * MiB + 123)
    parts = [data[: 2 * MiB], data[2 * MiB : 4 * MiB], data[4 * MiB :]]
    location = a.request("POST", "/v2/default/moves/blobs/uploads/").headers["Location"]
    offset = 0
    for i, part in enumerate(parts[:2]):
        client = (b, a)[i]
        r = client.request(
            "PATCH", location, data=part, headers={"Content-Range": f"{offset}-{offset + len(part) - 1}"}
        )
        assert r.status_code == 202, r.text
        offset += len(part)
        location = r.headers["Location"]
    # Every replica knows the progress; a stale chunk is refused wherever it lands.
    for client in (a, b):
        r = client.request("GET", location)
        assert r.status_code == 204 and r.headers["Range"] == f"0-{offset - 1}"
    stale = b.request("PATCH", location, data=parts[1], headers={"Content-Range": f"{2 * MiB}-{4 * MiB - 1}"})
    assert stale.status_code == 416
    # B never saw the hash of the bytes A appended: it rebuilds it from storage.
    r = b.request("PUT", location, params={"digest": sha256(data)}, data=parts[2])
    assert r.status_code == 201, r.text
    for client in (a, b):
        assert client.request("GET", f"/v2/default/moves/blobs/{sha256(data)}").content == data
    _no_server_errors(cluster)


def test_a_wrong_digest_is_refused_on_another_replica_too(cluster):
    a, b = cluster.client(0), cluster.client(1)
    data = secrets.token_bytes(MiB)
    location = a.request("POST", "/v2/default/wrong/blobs/uploads/").headers["Location"]
    r = a.request("PATCH", location, data=data, headers={"Content-Range": f"0-{len(data) - 1}"})
    assert r.status_code == 202
    r = b.request("PUT", r.headers["Location"], params={"digest": sha256(b"something else")})
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "DIGEST_INVALID"
    assert a.request("HEAD", f"/v2/default/wrong/blobs/{sha256(b'something else')}").status_code == 404
    assert a.request("GET", location).status_code == 404  # the upload is gone everywhere


def test_one_chunk_sent_to_two_replicas_at_once_is_taken_once(cluster):
    """Two different first chunks race for one upload on two replicas: exactly one is taken,
    and the blob is exactly its bytes (the row lock keeps the other from writing meanwhile)."""
    a, b = cluster.client(0), cluster.client(1)
    for round_ in range(4):
        location = a.request("POST", "/v2/default/race-chunk/blobs/uploads/").headers["Location"]
        bodies = [secrets.token_bytes(24 * MiB), secrets.token_bytes(24 * MiB)]
        barrier = threading.Barrier(2)

        def send(i: int):
            barrier.wait()
            return (a, b)[i].request("PATCH", location, data=bodies[i], headers={"Content-Range": f"0-{24 * MiB - 1}"})

        with ThreadPoolExecutor(2) as pool:
            responses = list(pool.map(send, range(2)))
        statuses = sorted(r.status_code for r in responses)
        assert statuses[0] == 202 and statuses[1] in (400, 416), [(r.status_code, r.text) for r in responses]
        winner = bodies[[r.status_code for r in responses].index(202)]
        r = (a, b)[round_ % 2].request("PUT", location, params={"digest": sha256(winner)})
        assert r.status_code == 201, r.text
        assert a.request("GET", f"/v2/default/race-chunk/blobs/{sha256(winner)}").content == winner
    _no_server_errors(cluster)


def test_concurrent_pushes_of_one_blob_through_both_replicas(cluster):
    data = secrets.token_bytes(4 * MiB)
    digest = sha256(data)

    def push(i: int) -> int:
        repo = f"default/same-blob-{i % 3}"
        location = cluster.client(i).request("POST", f"/v2/{repo}/blobs/uploads/").headers["Location"]
        for n, start in enumerate(range(0, len(data), MiB)):
            part = data[start : start + MiB]
            r = cluster.client(i + n).request(
                "PATCH", location, data=part, headers={"Content-Range": f"{start}-{start + len(part) - 1}"}
            )
            assert r.status_code == 202, r.text
            location = r.headers["Location"]
        return cluster.client(i + 1).request("PUT", location, params={"digest": digest}).status_code

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(push, range(8))) == [201] * 8
    for i in range(3):
        for r in (0, 1):
            assert cluster.client(r).request("GET", f"/v2/default/same-blob-{i}/blobs/{digest}").content == data
    _no_server_errors(cluster)


def test_concurrent_pushes_of_one_tag_through_both_replicas_keep_one_winner(cluster):
    repo = "default/tag-race"
    _, _, manifest = cluster.client(0).push_image(repo, "seed")
    bodies = [json.dumps({**manifest, "annotations": {"n": str(i)}}).encode() for i in range(24)]

    def push(i: int) -> int:
        return cluster.client(i).push_manifest(repo, "race", bodies[i]).status_code

    with ThreadPoolExecutor(12) as pool:
        assert list(pool.map(push, range(len(bodies)))) == [201] * len(bodies)
    answers = [cluster.client(i).request("GET", f"/v2/{repo}/manifests/race") for i in range(2)]
    assert all(r.status_code == 200 for r in answers)
    assert answers[0].content == answers[1].content and answers[0].content in bodies
    assert (
        answers[0].headers["Docker-Content-Digest"]
        == answers[1].headers["Docker-Content-Digest"]
        == sha256(answers[0].content)
    )
    for i in range(2):
        assert cluster.client(i).request("GET", f"/v2/{repo}/tags/list").json()["tags"] == ["race", "seed"]
    for body in bodies:
        assert cluster.client(1).request("GET", f"/v2/{repo}/manifests/{sha256(body)}").content == body
    # The audit trail tells the same story in the order the pushes took the tag: each push
    # names the digest the one before it left (pushes of one tag take turns; other pushes into
    # the repository do not wait for them), and the last one is what the tag points at.
    rows = postgres.sql(
        cluster.database_url,
        "SELECT digest, detail FROM audit_event WHERE repository = 'tag-race' AND tag = 'race' ORDER BY id",
    )
    assert len(rows) == len(bodies)
    for (before, _), (digest, detail) in zip(rows, rows[1:], strict=False):
        assert detail is not None and json.loads(detail)["previous_digest"] == before, (before, digest, detail)
    assert rows[-1][0] == answers[0].headers["Docker-Content-Digest"]
    _no_server_errors(cluster)


@pytest.mark.clients
def test_skopeo_pushes_and_pulls_through_a_round_robin_of_replicas(cluster, skopeo, tmp_path):
    proxy = RoundRobinProxy([("127.0.0.1", r.port) for r in cluster.replicas])
    try:
        source = OCILayout(tmp_path / "source")
        index = source.add_index([("linux", "amd64"), ("linux", "arm64")], files={"app.txt": b"replicas\n"}, tag="v1")
        remote = f"docker://{proxy.host}/default/rr/app:v1"
        creds = f"admin:{cluster.replicas[0].token}"
        skopeo(
            "copy",
            "--all",
            "--dest-tls-verify=false",
            "--dest-creds",
            creds,
            f"oci:{source.root}:v1",
            remote,
            timeout=300,
        )
        assert min(proxy.connections) >= 1, proxy.connections  # both replicas took part
        for i in range(2):
            r = cluster.client(i).request(
                "GET", "/v2/default/rr/app/manifests/v1", headers={"Accept": "application/vnd.oci.image.index.v1+json"}
            )
            assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == index.digest
        out = tmp_path / "out"
        skopeo(
            "copy",
            "--override-arch",
            "arm64",
            "--override-os",
            "linux",
            "--src-tls-verify=false",
            "--src-creds",
            creds,
            remote,
            f"oci:{out}:x",
            timeout=300,
        )
        image = index.images["linux/arm64"]
        assert tagged(out, "x").digest == image.digest
        assert layer_files(OCILayout(out).read_blob(image.layers[0].digest))["app.txt"] == b"replicas\n"
    finally:
        proxy.close()
    _no_server_errors(cluster)


def test_a_replica_killed_mid_upload_loses_nothing_acknowledged(cluster):
    a, b = cluster.client(0), cluster.client(1)
    data = secrets.token_bytes(6 * MiB + 7)
    head = data[: 4 * MiB]
    location = a.request("POST", "/v2/default/killed-replica/blobs/uploads/").headers["Location"]
    r = a.request("PATCH", location, data=head, headers={"Content-Range": f"0-{len(head) - 1}"})
    assert r.status_code == 202
    location = r.headers["Location"]

    cluster.replicas[0].kill()

    r = b.request("GET", location)
    assert r.status_code == 204 and r.headers["Range"] == f"0-{len(head) - 1}"
    r = b.request("PATCH", location, data=data[len(head) :], headers={"Content-Range": f"{len(head)}-{len(data) - 1}"})
    assert r.status_code == 202, r.text
    r = b.request("PUT", r.headers["Location"], params={"digest": sha256(data)})
    assert r.status_code == 201, r.text
    assert b.request("GET", f"/v2/default/killed-replica/blobs/{sha256(data)}").content == data

    cluster.replicas[0].start()  # and it serves what the other replica finished
    assert a.request("GET", f"/v2/default/killed-replica/blobs/{sha256(data)}").content == data


def test_dropped_database_connections_cost_no_request(cluster):
    """Every server connection to the database is cut between (and during) rounds of pushes and
    pulls on both replicas: pooled connections are replaced and statements retried; nothing
    answers 5xx."""
    repo = "default/dropped"
    statuses: list[int] = []
    for round_ in range(6):
        killed = postgres.terminate_connections(cluster.database_url)
        assert round_ == 0 or killed > 0  # the replicas held pooled connections to cut
        for i in range(2):
            c = cluster.client(round_ + i)
            statuses.append(c.request("GET", "/v2/").status_code)
            _, _, manifest = c.push_image(repo, f"r{round_}-{i}")
            statuses.append(
                c.request(
                    "GET", f"/v2/{repo}/manifests/r{round_}-{i}", headers={"Accept": manifest["mediaType"]}
                ).status_code
            )
            statuses.append(c.request("GET", f"/v2/{repo}/tags/list").status_code)

    # Cuts while requests are in flight: a request may lose its transaction, but not with a 500.
    stop = threading.Event()

    def cutter():
        while not stop.is_set():
            postgres.terminate_connections(cluster.database_url)
            stop.wait(0.05)

    def pull(i: int) -> int:
        return cluster.client(i).request("GET", f"/v2/{repo}/tags/list").status_code

    thread = threading.Thread(target=cutter)
    thread.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            under_fire = list(pool.map(pull, range(200)))
    finally:
        stop.set()
        thread.join()
    assert all(s < 500 for s in under_fire), sorted(set(under_fire))
    assert set(statuses) <= {200, 201, 202}, statuses
    tags = cluster.client(0).request("GET", f"/v2/{repo}/tags/list").json()["tags"]
    assert len(tags) == 12
    _no_server_errors(cluster)


def test_replicas_starting_together_on_an_empty_database_agree(tmp_path):
    """A first deploy: three replicas start at once on an empty database. Migrations and the
    bootstrap happen once; every replica comes up and accepts the same owner token."""
    database_url = postgres.create_database()
    token = "berth_" + secrets.token_urlsafe(32)
    env = {
        "BERTH_STORAGE_URL": f"file://{tmp_path / 'shared-storage'}",
        "BERTH_TOKEN_KEYS_DIR": str(tmp_path / "shared-keys"),
    }
    replicas = [
        Server(tmp_path / f"replica{i}", token=token, env=dict(env), database_url=database_url) for i in range(3)
    ]
    try:
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda r: r.start(), replicas))
        for replica in replicas:
            assert replica.session().get(f"{replica.url}/v2/", timeout=10).status_code == 200
        assert postgres.sql(database_url, "SELECT name FROM organization") == [("default",)]
        assert postgres.sql(database_url, "SELECT count(*) FROM access_token") == [(1,)]
    finally:
        for replica in replicas:
            replica.stop()


def test_a_replica_killed_while_writing_a_chunk_leaves_the_upload_to_the_others(cluster):
    """kill -9 while a replica writes a chunk (holding the upload's row lock): the database ends
    its transaction with the connection, so another replica continues from the acknowledged
    offset at once, and the half-written chunk never counts."""
    import base64
    import http.client
    import time

    a, b = cluster.client(0), cluster.client(1)
    head = secrets.token_bytes(MiB)
    location = a.request("POST", "/v2/default/killed-writer/blobs/uploads/").headers["Location"]
    r = a.request("PATCH", location, data=head, headers={"Content-Range": f"0-{len(head) - 1}"})
    assert r.status_code == 202
    location = r.headers["Location"]
    upload_file = (
        cluster.replicas[0].data_dir.parent / "shared-storage" / "uploads" / location.rstrip("/").split("/")[-1]
    )

    size = 384 * MiB  # big enough that the write is still going when the replica dies

    def send() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", cluster.replicas[0].port, timeout=60)
        auth = base64.b64encode(f"a:{cluster.replicas[0].token}".encode()).decode()
        conn.putrequest("PATCH", location)
        for name, value in (
            ("Authorization", f"Basic {auth}"),
            ("Content-Length", str(size)),
            ("Content-Range", f"{len(head)}-{len(head) + size - 1}"),
        ):
            conn.putheader(name, value)
        conn.endheaders()
        try:
            for _ in range(size // MiB):
                conn.send(b"\1" * MiB)
            conn.getresponse()
        except OSError:
            pass

    sender = threading.Thread(target=send)
    sender.start()
    deadline = time.monotonic() + 120
    while upload_file.stat().st_size <= len(head):  # the replica is writing the chunk
        assert time.monotonic() < deadline, "the chunk never reached storage"
        time.sleep(0.002)
    cluster.replicas[0].kill()
    sender.join(60)

    started = time.monotonic()
    r = b.request("GET", location)
    assert r.status_code == 204 and r.headers["Range"] == f"0-{len(head) - 1}"
    tail = secrets.token_bytes(MiB)
    r = b.request("PATCH", location, data=tail, headers={"Content-Range": f"{len(head)}-{len(head) + len(tail) - 1}"})
    assert r.status_code == 202, r.text
    assert time.monotonic() - started < 10  # not held up by the dead replica's lock
    r = b.request("PUT", r.headers["Location"], params={"digest": sha256(head + tail)})
    assert r.status_code == 201, r.text
    assert b.request("GET", f"/v2/default/killed-writer/blobs/{sha256(head + tail)}").content == head + tail
