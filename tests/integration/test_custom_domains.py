"""Custom domains against the real server and a real DNS server (dnsmasq on loopback): what may
be claimed, how a claim is proven, and that nothing routes a name before it is proven or after
it is given up (the data plane, the token service, and the rendered footprint)."""

from __future__ import annotations

import secrets
import time

import pytest
import requests

from tests.support.dns_server import DnsServer
from tests.support.registry_client import RegistryClient
from tests.support.server import Server


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    dns_server = DnsServer().restart()
    data = tmp_path_factory.mktemp("domains") / "data"
    server = Server(
        data, token="berth_owner_" + secrets.token_hex(16), env={"BERTH_DNS_RESOLVER": dns_server.address}
    ).start()
    server.dns = dns_server
    yield server
    server.stop()
    dns_server.stop()


def api(server, method: str, path: str, **kw) -> requests.Response:
    return requests.request(
        method,
        f"{server.url}/api/v1/orgs/default{path}",
        timeout=20,
        headers={"Authorization": f"Bearer {server.token}"},
        **kw,
    )


def new_registry(server, **body) -> str:
    name = "r" + secrets.token_hex(4)
    r = api(server, "POST", "/registries", json={"name": name, **body})
    assert r.status_code == 202, r.text
    wait(server, r.json()["operation"]["id"])
    return name


def wait(server, operation_id: str) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        op = requests.get(
            f"{server.url}/api/v1/operations/{operation_id}",
            timeout=20,
            headers={"Authorization": f"Bearer {server.token}"},
        ).json()
        if op["state"] in ("succeeded", "failed"):
            assert op["state"] == "succeeded", op
            return op
        time.sleep(0.05)
    raise AssertionError("operation did not finish")


def footprint_hosts(server, registry: str) -> str:
    """Every rendered object of the registry's footprint, as text."""
    return "\n".join(p.read_text() for p in sorted((server.data_dir / "manifests" / registry).glob("*.yaml")))


def manifest_via_host(server, host: str, token: str | None = None) -> int:
    headers = {"Host": f"{host}:{server.port}"}
    auth = ("u", token) if token else None
    return requests.get(f"{server.url}/v2/app/manifests/v1", headers=headers, auth=auth, timeout=20).status_code


@pytest.mark.parametrize(
    "value",
    [
        "registry.localhost",
        "victim.registry.localhost",
        "NOT-YET.registry.localhost.",
        "a.b.registry.localhost",
        "images.example.com\n",
        "\nimages.example.com",
        "images..example.com",
        "-images.example.com",
        "127.0.0.1",
        "localhost",
        "",
        "images.example.123",
        "images example.com",
        "imäges.example.com",
        "x" * 250 + ".com",
        7,
        ["a.com"],
    ],
)
def test_a_name_that_is_not_a_hostname_of_ones_own_is_refused_and_nothing_is_stored(env, value):
    name = new_registry(env)
    r = api(env, "PATCH", f"/registries/{name}", json={"custom_domain": value})
    assert r.status_code == 400 and r.json()["invalid_params"][0]["name"] == "custom_domain", r.text
    assert api(env, "GET", f"/registries/{name}").json()["custom_domain"] is None
    created = api(env, "POST", "/registries", json={"name": "r" + secrets.token_hex(4), "custom_domain": value})
    assert created.status_code == 400, created.text


def test_a_claim_is_stored_lowercase_without_its_trailing_dot_and_is_unique_whatever_the_case(env):
    first, second = new_registry(env), new_registry(env)
    r = api(env, "PATCH", f"/registries/{first}", json={"custom_domain": "Images.Unique-Test.Example."})
    assert r.status_code == 200 and r.json()["custom_domain"] == "images.unique-test.example"
    for spelling in ("images.unique-test.example", "IMAGES.unique-test.example."):
        taken = api(env, "PATCH", f"/registries/{second}", json={"custom_domain": spelling})
        assert taken.status_code == 409, taken.text
    create = api(
        env,
        "POST",
        "/registries",
        json={"name": "r" + secrets.token_hex(4), "custom_domain": "images.unique-test.example"},
    )
    assert create.status_code == 409
    assert api(env, "GET", f"/registries/{second}").json()["custom_domain"] is None


def test_a_pending_domain_routes_nothing_until_its_txt_record_proves_it(env):
    name = new_registry(env)
    RegistryClient(env.url, env.session()).push_image(f"{name}/app", "v1")
    domain = f"images.{name}.example"
    claimed = api(env, "PATCH", f"/registries/{name}", json={"custom_domain": domain}).json()
    record = claimed["custom_domain_verification"]
    assert claimed["custom_domain_status"] == "pending" and "operation" not in claimed
    assert record["type"] == "TXT" and record["name"] == f"_berth-challenge.{domain}" and len(record["value"]) > 30
    assert domain not in footprint_hosts(env, name)
    assert manifest_via_host(env, domain, env.token) != 200  # not resolved: the shared endpoint's path form

    not_yet = api(env, "POST", f"/registries/{name}/custom-domain/verify")
    assert not_yet.status_code == 409 and record["name"] in not_yet.json()["detail"], not_yet.text
    env.dns.set_txt(record["name"], "berth-domain-verification=someone-elses-value")
    assert api(env, "POST", f"/registries/{name}/custom-domain/verify").status_code == 409
    assert api(env, "GET", f"/registries/{name}").json()["custom_domain_status"] == "pending"

    env.dns.set_txt(record["name"], "unrelated", record["value"])
    verified = api(env, "POST", f"/registries/{name}/custom-domain/verify")
    assert verified.status_code == 202 and verified.json()["custom_domain_status"] == "verified", verified.text
    wait(env, verified.json()["operation"]["id"])
    rendered = footprint_hosts(env, name)
    assert rendered.count(domain) >= 3  # the certificate, the listener, the route
    assert manifest_via_host(env, domain, env.token) == 200
    assert manifest_via_host(env, domain) == 401  # private: the custom domain serves it as its own host
    again = api(env, "POST", f"/registries/{name}/custom-domain/verify")
    assert again.status_code == 200 and "operation" not in again.json()


def test_changing_or_removing_a_verified_domain_reprovisions_and_stops_routing_the_old_name(env):
    name = new_registry(env)
    RegistryClient(env.url, env.session()).push_image(f"{name}/app", "v1")
    old, new = f"old.{name}.example", f"new.{name}.example"
    record = api(env, "PATCH", f"/registries/{name}", json={"custom_domain": old}).json()["custom_domain_verification"]
    env.dns.set_txt(record["name"], record["value"])
    wait(env, api(env, "POST", f"/registries/{name}/custom-domain/verify").json()["operation"]["id"])
    assert manifest_via_host(env, old, env.token) == 200

    changed = api(env, "PATCH", f"/registries/{name}", json={"custom_domain": new})
    assert changed.status_code == 200 and changed.json()["custom_domain_status"] == "pending"
    wait(env, changed.json()["operation"]["id"])
    rendered = footprint_hosts(env, name)
    assert old not in rendered and new not in rendered
    assert manifest_via_host(env, old, env.token) != 200 and manifest_via_host(env, new, env.token) != 200
    # The old name is free again for anyone.
    other = new_registry(env)
    assert api(env, "PATCH", f"/registries/{other}", json={"custom_domain": old}).status_code == 200

    record = api(env, "GET", f"/registries/{name}").json()["custom_domain_verification"]
    env.dns.set_txt(record["name"], record["value"])
    wait(env, api(env, "POST", f"/registries/{name}/custom-domain/verify").json()["operation"]["id"])
    removed = api(env, "PATCH", f"/registries/{name}", json={"custom_domain": None})
    assert removed.status_code == 200 and removed.json()["custom_domain_status"] is None
    wait(env, removed.json()["operation"]["id"])
    assert new not in footprint_hosts(env, name) and manifest_via_host(env, new, env.token) != 200


def test_a_resolver_that_does_not_answer_is_a_503_with_retry_after_and_changes_nothing(env):
    name = new_registry(env)
    record = api(env, "PATCH", f"/registries/{name}", json={"custom_domain": f"down.{name}.example"}).json()
    env.dns.stop()
    try:
        started = time.monotonic()
        r = api(env, "POST", f"/registries/{name}/custom-domain/verify")
        assert r.status_code == 503 and r.headers.get("Retry-After"), r.text
        assert time.monotonic() - started < 10
    finally:
        env.dns.restart()
    assert api(env, "GET", f"/registries/{name}").json()["custom_domain_status"] == "pending"
    env.dns.set_txt(record["custom_domain_verification"]["name"], record["custom_domain_verification"]["value"])
    assert api(env, "POST", f"/registries/{name}/custom-domain/verify").status_code == 202


def test_the_cli_claims_shows_the_record_to_publish_and_verifies(env):
    import subprocess
    import sys

    from tests.support.server import ROOT

    def berth(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={
                "BERTH_URL": env.url,
                "BERTH_TOKEN": env.token,
                "BERTH_ORG": "default",
                "BERTH_CONFIG": str(env.data_dir.parent / "cli.json"),
                "PATH": "/usr/bin:/bin",
            },
        )

    name = new_registry(env)
    domain = f"cli.{name}.example"
    claimed = berth("registry", "set", name, "--custom-domain", domain)
    assert claimed.returncode == 0 and "pending: publish TXT" in claimed.stdout, claimed.stderr
    record = api(env, "GET", f"/registries/{name}").json()["custom_domain_verification"]
    shown = berth("registry", "show", name)
    assert record["name"] in shown.stdout and record["value"] in shown.stdout
    refused = berth("registry", "verify-domain", name)
    assert refused.returncode != 0 and record["name"] in refused.stderr, refused
    env.dns.set_txt(record["name"], record["value"])
    verified = berth("registry", "verify-domain", name)
    assert verified.returncode == 0 and "is verified" in verified.stdout, verified.stderr


@pytest.fixture
def hosts_entry():
    """Adds `127.0.0.1 <name>` lines to /etc/hosts for this test (real clients resolve through
    it), and takes exactly those lines out again. Needs root: CI runs as root."""
    import os

    from tests.support.components import IN_CI

    if os.geteuid() != 0:
        message = "the custom-domain client test edits /etc/hosts: run it as root"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    added: list[str] = []

    def add(name: str) -> None:
        line = f"127.0.0.1 {name}  # berth test\n"
        with open("/etc/hosts", "a") as f:
            f.write(line)
        added.append(line)

    yield add
    with open("/etc/hosts") as f:
        lines = f.readlines()
    with open("/etc/hosts", "w") as f:
        f.writelines(line for line in lines if line not in added)


@pytest.mark.clients
def test_skopeo_logs_in_on_a_verified_custom_domain_and_pushes_and_pulls_app(env, skopeo, hosts_entry, tmp_path):
    """The token flow as a real client runs it on a custom domain, for a single-component name:
    the owner pushes and pulls `app`; another organization's owner gets nothing there."""
    import subprocess
    import sys

    from tests.support.oci_layout import OCILayout, tagged
    from tests.support.server import ROOT

    name = new_registry(env)
    domain = f"skopeo-{name}.example"
    hosts_entry(domain)
    record = api(env, "PATCH", f"/registries/{name}", json={"custom_domain": domain}).json()[
        "custom_domain_verification"
    ]
    env.dns.set_txt(record["name"], record["value"])
    wait(env, api(env, "POST", f"/registries/{name}/custom-domain/verify").json()["operation"]["id"])

    source = OCILayout(tmp_path / "source")
    image = source.add_image({"hello.txt": b"on a custom domain\n"}, tag="v1")
    remote = f"docker://{domain}:{env.port}/app:v1"
    skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        f"owner:{env.token}",
        f"oci:{source.root}:v1",
        remote,
        timeout=300,
    )
    skopeo(
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        f"owner:{env.token}",
        remote,
        f"oci:{tmp_path / 'back'}:v1",
        timeout=300,
    )
    assert tagged(tmp_path / "back", "v1").digest == image.digest
    # The same image, by the path form on the shared endpoint: one registry, two addresses.
    assert RegistryClient(env.url, env.session()).request("HEAD", f"/v2/{name}/app/manifests/v1").status_code == 200

    other = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "admin",
            "org",
            "create",
            "o" + secrets.token_hex(3),
            "--data-dir",
            str(env.data_dir),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert other.returncode == 0, other.stderr
    refused = skopeo(
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        f"b:{other.stdout.strip()}",
        remote,
        check=False,
        timeout=120,
    )
    assert refused.returncode != 0 and (
        "unauthorized" in refused.stderr.lower() or "denied" in refused.stderr.lower()
    ), refused.stderr
