"""First start: the default org, its private registry and the owner token; the `berth` CLI."""

from __future__ import annotations

import stat
import subprocess
import sys
import time

import pytest
import requests

from tests.support.server import ROOT, Server


def berth(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env
    )


def test_generated_bootstrap_token(tmp_path):
    server = Server(tmp_path / "data", token="").start()
    try:
        token_file = tmp_path / "data" / "bootstrap-token"
        token = token_file.read_text().strip()
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert token.startswith("berth_") and len(token) >= 40
        assert token in server.logs()  # printed once, at creation
        assert requests.get(f"{server.url}/v2/", auth=("anyone", token), timeout=10).status_code == 200
        assert requests.get(f"{server.url}/v2/", auth=("anyone", token + "x"), timeout=10).status_code == 401
        r = requests.get(
            f"{server.url}/api/v1/orgs/default/registries", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert [(x["name"], x["visibility"]) for x in r.json()["registries"]] == [("default", "private")]

        server.stop()
        server.start()  # a second start keeps the same credential and prints no new one
        assert server.logs().count(token) == 1
        assert token_file.read_text().strip() == token
        assert requests.get(f"{server.url}/v2/", auth=("anyone", token), timeout=10).status_code == 200
    finally:
        server.stop()


def test_bootstrap_token_from_environment(tmp_path):
    server = Server(tmp_path / "data", token="berth_from_the_environment_0123456789").start()
    try:
        assert not (tmp_path / "data" / "bootstrap-token").exists()
        assert "berth_from_the_environment" not in server.logs()
        assert requests.get(f"{server.url}/v2/", auth=("x", server.token), timeout=10).status_code == 200
    finally:
        server.stop()


def test_cli_registry_create_and_list(tmp_path):
    import os

    data = str(tmp_path / "data")
    env = {**os.environ, "BERTH_BOOTSTRAP_TOKEN": "berth_cli_token_0123456789"}
    r = berth("admin", "registry", "create", "team-a", "--public", "--data-dir", data, env=env)
    assert r.returncode == 0, r.stderr
    assert "public registry 'team-a'" in r.stdout
    r = berth("admin", "registry", "create", "team-a", "--data-dir", data, env=env)
    assert r.returncode == 1 and "taken" in r.stderr
    r = berth("admin", "registry", "create", "Bad_Name", "--data-dir", data, env=env)
    assert r.returncode == 1 and "DNS label" in r.stderr
    r = berth("admin", "registry", "list", "--data-dir", data, env=env)
    # Queued for the server's lifecycle worker, which provisions it once a server runs.
    assert r.stdout.splitlines() == ["default\tprivate\tready", "team-a\tpublic\tprovisioning"]

    # The server sees what the CLI created, provisions it, and the public registry serves
    # anonymous pulls.
    server = Server(tmp_path / "data", token="berth_cli_token_0123456789").start()
    try:
        headers = {"Authorization": f"Bearer {server.token}"}
        r = requests.get(f"{server.url}/api/v1/orgs/default/registries", headers=headers, timeout=10)
        assert [x["name"] for x in r.json()["registries"]] == ["default", "team-a"]
        for _ in range(200):
            status = requests.get(
                f"{server.url}/api/v1/orgs/default/registries/team-a", headers=headers, timeout=10
            ).json()["status"]
            if status == "ready":
                break
            time.sleep(0.05)
        assert status == "ready"
    finally:
        server.stop()


def test_settings_from_environment(tmp_path):
    """BERTH_PORT and BERTH_DATA_DIR configure `berth serve` without flags."""
    import os
    import time

    from tests.support.server import free_port

    port = free_port()
    env = {
        **os.environ,
        "BERTH_PORT": str(port),
        "BERTH_DATA_DIR": str(tmp_path / "envdata"),
        "BERTH_BOOTSTRAP_TOKEN": "berth_env_settings_token_0123",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                r = requests.get(f"http://127.0.0.1:{port}/v2/", auth=("a", "berth_env_settings_token_0123"), timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        assert r.status_code == 200
        assert (tmp_path / "envdata" / "berth.db").exists()
    finally:
        proc.terminate()
        proc.wait(10)


def test_cli_tokens(tmp_path):
    import os

    data = str(tmp_path / "data")
    env = {**os.environ, "BERTH_BOOTSTRAP_TOKEN": "berth_cli_owner_token_0123456789"}
    r = berth(
        "admin",
        "token",
        "create",
        "ci",
        "--scope",
        "pull",
        "--registry",
        "default",
        "--expires-in",
        "1d",
        "--data-dir",
        data,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    secret = r.stdout.strip()
    assert secret.startswith("berth_") and "shown once" in r.stderr
    listing = berth("admin", "token", "list", "--data-dir", data, env=env).stdout
    assert "\tci\treader\tdefault\tactive\t" in listing and secret not in listing
    token_id = next(line.split("\t")[0] for line in listing.splitlines() if "\tci\t" in line)

    server = Server(tmp_path / "data", token="berth_cli_owner_token_0123456789").start()
    try:
        assert requests.get(f"{server.url}/v2/default/x/tags/list", auth=("ci", secret), timeout=10).status_code == 404
        assert berth("admin", "token", "revoke", token_id, "--data-dir", data, env=env).returncode == 0
        r = requests.get(f"{server.url}/v2/default/x/tags/list", auth=("ci", secret), timeout=10)
        assert r.status_code == 401
    finally:
        server.stop()
    assert berth("admin", "token", "create", "bad", "--registry", "nope", "--data-dir", data, env=env).returncode == 1


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_taken_port_is_a_clear_error(tmp_path, workers):
    """`berth serve` on a port something else listens on: one line saying what to do, exit 2,
    no traceback (with one process and with --workers)."""
    import socket

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "app.cli",
                "serve",
                "--port",
                str(port),
                "--workers",
                workers,
                "--data-dir",
                str(tmp_path / "data"),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        holder.close()
    assert result.returncode == 2, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "--port" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_pulumi_provisioner_without_its_cli_stops_before_bootstrapping(tmp_path):
    """BERTH_PROVISIONER=pulumi where no pulumi CLI is: the server says so and exits before it
    creates the database or prints an owner token that would belong to nothing."""
    import os

    data = tmp_path / "data"
    env = {
        **os.environ,
        "PATH": "/usr/bin:/bin",
        "BERTH_PROVISIONER": "pulumi",
        "BERTH_PULUMI_ROOT": str(tmp_path / "no-pulumi"),
        "PULUMI_CONFIG_PASSPHRASE": "p",
    }
    proc = berth("serve", "--port", "0", "--data-dir", str(data), env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "pulumi provisioner cannot run here" in proc.stderr
    assert "Owner token" not in proc.stdout and not (data / "bootstrap-token").exists()
    assert not (data / "berth.db").exists()
