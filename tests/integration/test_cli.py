"""The `berth` CLI run as a subprocess against a live server over HTTP: login, every command in
table and --json form, the registry lifecycle, credentials used by skopeo, and error exits."""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml

from tests.support.components import require_tool
from tests.support.registry_client import RegistryClient
from tests.support.server import ROOT, Server, free_port

CLIENT_ENV = ("BERTH_URL", "BERTH_TOKEN", "BERTH_ORG", "BERTH_CONFIG", "BERTH_DEBUG")


class Berth:
    """`python -m app.cli` with a home and config dir of its own."""

    def __init__(self, home: Path, **env: str) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        base = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV}
        self.env = {**base, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"), **env}

    @property
    def config_file(self) -> Path:
        return self.home / "config" / "berth" / "credentials.json"

    def __call__(
        self, *args: str, input: str | None = None, check: bool = True, env: dict | None = None
    ) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [sys.executable, "-m", "app.cli", *map(str, args)],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        if check:
            assert proc.returncode == 0, (
                f"berth {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def json(self, *args: str):
        return json.loads(self("--json", *args).stdout)

    def fails(self, *args: str, env: dict | None = None, input: str | None = None) -> str:
        """Run a command that must fail cleanly; its one-line message."""
        proc = self(*args, check=False, env=env, input=input)
        assert proc.returncode == 1, f"expected exit 1, got {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        assert proc.stderr.splitlines()[-1].startswith("error: "), proc.stderr  # after any progress lines
        return proc.stderr


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("cli") / "data", token="berth_" + secrets.token_urlsafe(32)).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def berth(live, tmp_path_factory) -> Berth:
    """Logged in as the owner of `default`."""
    cli = Berth(tmp_path_factory.mktemp("cli-home"))
    cli("login", live.url, "--token-stdin", input=live.token + "\n")
    return cli


def unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(4)}"


def rows(stdout: str) -> list[list[str]]:
    """A printed table as rows of cells (header first)."""
    return [line.split() for line in stdout.splitlines() if line.strip()]


def push(live: Server, repo: str, tag: str = "v1", size: int = 1500):
    return RegistryClient(live.url, live.session()).push_image(repo, tag, layers=[secrets.token_bytes(size)])


# --- login ---------------------------------------------------------------------------------


def test_login_verifies_the_token_and_saves_it_0600(live, tmp_path):
    cli = Berth(tmp_path / "home")
    assert "not logged in" in cli.fails("registry", "list")

    message = cli.fails("login", live.url, "--token-stdin", input="berth_not_a_real_token\n")
    assert "rejected the token; nothing was saved" in message
    assert not cli.config_file.exists()

    r = cli("login", f"127.0.0.1:{live.port}", "--token-stdin", input=live.token + "\n")  # scheme implied
    assert live.token not in r.stdout + r.stderr
    assert "default (owner)" in r.stdout
    assert stat.S_IMODE(cli.config_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(cli.config_file.parent.stat().st_mode) == 0o700
    assert json.loads(cli.config_file.read_text()) == {"url": live.url, "token": live.token, "org": "default"}
    assert rows(cli("org", "list").stdout)[1][:2] == ["default", "owner"]

    # A second login with a bad token leaves the good one in place.
    cli.fails("login", live.url, "--token", "berth_wrong")
    assert json.loads(cli.config_file.read_text())["token"] == live.token
    # --org must be one of the token's organizations.
    assert "not a member of organization 'acme'" in cli.fails("login", live.url, "--token", live.token, "--org", "acme")
    # Without a terminal and without --token/--token-stdin there is nothing to read.
    assert "--token-stdin" in cli.fails("login", live.url)

    cli("logout")
    assert not cli.config_file.exists()
    assert "not logged in" in cli.fails("org", "list")


def test_berth_config_and_environment_overrides(live, tmp_path):
    custom = tmp_path / "elsewhere" / "creds.json"
    cli = Berth(tmp_path / "home", BERTH_CONFIG=str(custom))
    cli("login", live.url, "--token", live.token)
    assert custom.exists() and stat.S_IMODE(custom.stat().st_mode) == 0o600
    assert not cli.config_file.exists()

    ci = Berth(tmp_path / "ci-home", BERTH_URL=live.url, BERTH_TOKEN=live.token)  # no file at all
    assert ci.json("org", "list")["orgs"][0]["name"] == "default"
    assert "token rejected" in ci.fails("org", "list", env={"BERTH_TOKEN": "berth_nope"})
    # The saved token is never sent to a URL it was not saved for.
    other = f"http://127.0.0.1:{free_port()}"
    assert f"cannot reach {other}" in cli.fails("org", "list", env={"BERTH_URL": other})
    assert "not logged in or token rejected" in cli.fails(
        "org", "list", env={"BERTH_URL": live.url.replace("127.0.0.1", "localhost")}
    )


# --- organizations and registries ---------------------------------------------------------------


def test_org_list_and_members_as_tables_and_json(berth):
    table = rows(berth("org", "list").stdout)
    assert table[0] == ["NAME", "ROLE", "CREATED"] and table[1][:2] == ["default", "owner"]
    assert [o["name"] for o in berth.json("org", "list")["orgs"]] == ["default"]
    # --json after the command works as well as before it.
    assert json.loads(berth("org", "list", "--json").stdout)["orgs"][0]["role"] == "owner"
    assert berth.json("org", "members")["members"] == []
    assert "no members" in berth("org", "members").stderr


def test_registry_round_trip(live, berth):
    name = unique("cli")
    r = berth("registry", "create", name, "--pull-namespace", "apps")
    assert f"created private registry '{name}'" in r.stdout
    assert f"{live.host}/{name}/<repository>:<tag>" in r.stdout
    assert "step provision: done" in r.stderr and "succeeded" in r.stderr  # progress on stderr

    listed = {row[0]: row for row in rows(berth("registry", "list").stdout)}
    assert listed["NAME"][:3] == ["NAME", "VISIBILITY", "STATUS"]
    assert listed[name][1:3] == ["private", "ready"]
    assert name in [x["name"] for x in berth.json("registry", "list")["registries"]]
    assert len(berth.json("registry", "list", "--limit", "1")["registries"]) == 1

    shown = berth("registry", "show", name).stdout
    assert f"endpoint:        {live.host}/{name}" in shown and "pull namespaces: apps" in shown
    assert berth.json("registry", "show", name)["status"] == "ready"

    push(live, f"{name}/app")
    anonymous = RegistryClient(live.url, requests.Session())
    assert anonymous.request("GET", f"/v2/{name}/app/tags/list").status_code == 401
    assert f"registry '{name}' is now public" in berth("registry", "set", name, "--visibility", "public").stdout
    assert anonymous.request("GET", f"/v2/{name}/app/tags/list").status_code == 200
    assert berth.json("registry", "set", name, "--visibility", "private")["visibility"] == "private"

    assert "taken" in berth.fails("registry", "create", name)
    assert "--yes" in berth.fails("registry", "delete", name)  # no terminal, no --yes: nothing happens
    assert berth.json("registry", "show", name)["name"] == name
    r = berth("registry", "delete", name, "--yes")
    assert f"deleted registry '{name}'" in r.stdout and "step delete_blobs: done" in r.stderr
    assert f"registry '{name}' not found" in berth.fails("registry", "show", name)

    # --json create carries the finished operation; --no-wait returns at once.
    created = berth.json("registry", "create", name, "--public")
    assert created["status"] == "ready" and created["operation"]["state"] == "succeeded"
    assert created["visibility"] == "public"
    accepted = berth.json("registry", "delete", name, "--yes", "--no-wait")
    assert accepted["operation"]["kind"] == "delete"
    other = unique("nowait")
    assert "operation" in berth("registry", "create", other, "--no-wait").stdout
    assert berth.json("registry", "delete", other, "--yes")["operation"]["state"] == "succeeded"


def test_a_failed_create_exits_1_with_its_error_and_can_be_retried(live, berth):
    name = unique("broken")
    in_the_way = live.data_dir / "manifests" / name
    in_the_way.parent.mkdir(parents=True, exist_ok=True)
    in_the_way.write_text("a file where the provisioner wants a directory")
    message = berth.fails("registry", "create", name)
    assert f"error: creating registry '{name}' failed: " in message and "writing manifests" in message
    op_id = message.split("berth operation retry ")[1].split()[0]
    shown = berth("operation", "show", op_id).stdout
    assert next(line for line in shown.splitlines() if line.startswith("state:")).split() == ["state:", "failed"]
    assert "step provision: failed" in shown
    assert berth.json("operation", "show", op_id)["state"] == "failed"
    assert "failed" in berth.fails("operation", "retry", op_id)  # still in the way

    in_the_way.unlink()
    r = berth("operation", "retry", op_id)
    assert f"operation {op_id} succeeded" in r.stdout
    assert berth.json("registry", "show", name)["status"] == "ready"
    assert berth.json("operation", "show", op_id, "--follow")["state"] == "succeeded"
    assert "not found" in berth.fails("operation", "show", "no-such-operation")


def test_registry_create_errors_name_the_field(berth):
    assert "not a DNS label" in berth.fails("registry", "create", "Bad_Name")
    assert "reserved" in berth.fails("registry", "create", "api")
    assert "organization 'nope' not found" in berth.fails("--org", "nope", "registry", "list")
    assert "organization 'nope' not found" in berth.fails("registry", "list", "--org", "nope")


# --- browsing --------------------------------------------------------------------------------


def test_repo_list_and_tags(live, berth):
    name = unique("browse")
    berth("registry", "create", name)
    for repo in ("team/app", "team/app/api", "solo"):
        push(live, f"{name}/{repo}")
    push(live, f"{name}/team/app", "v2", size=4000)

    top = rows(berth("repo", "list", name).stdout)
    assert top[0] == ["PATH", "TYPE", "REPOS", "TAGS", "SIZE", "LAST", "PUSH"]
    assert [r[:3] for r in top[1:]] == [["solo", "repository", "-"], ["team/", "folder", "2"]]
    team = rows(berth("repo", "list", name, "--path", "team").stdout)  # the trailing / is implied
    assert [r[0] for r in team[1:]] == ["team/app", "team/app/"]
    assert team[1][3] == "2"  # two tags
    entries = berth.json("repo", "list", name, "--path", "team/")["entries"]
    assert entries[0]["path"] == "team/app" and entries[0]["tags"] == 2 and entries[0]["size"] > 5000
    assert len(berth.json("repo", "list", name, "--limit", "1")["entries"]) == 1
    assert "no repositories under 'nothing/'" in berth.fails("repo", "list", name, "--path", "nothing/")

    tags = rows(berth("tags", f"{name}/team/app").stdout)
    assert tags[0] == ["TAG", "TYPE", "DIGEST", "SIZE", "PLATFORMS", "PUSHED"]
    assert [t[0] for t in tags[1:]] == ["v1", "v2"] and tags[1][2].startswith("sha256:")
    listed = berth.json("tags", f"{name}/team/app")["tags"]
    assert [t["name"] for t in listed] == ["v1", "v2"] and listed[1]["size"] > 4000
    assert "REGISTRY/REPOSITORY" in berth.fails("tags", name)
    assert "not found" in berth.fails("tags", f"{name}/nope")
    assert "not found" in berth.fails("tags", "nosuchregistry/app")


# --- credentials ---------------------------------------------------------------------------


def test_credentials_dockerconfigjson_pulls_with_skopeo(live, berth, tmp_path):
    skopeo = require_tool("skopeo", "apt-get install skopeo (scripts/test does)")
    name = unique("creds")
    berth("registry", "create", name)
    push(live, f"{name}/app")

    r = berth("credentials", name, "--format", "dockerconfigjson", "--expires-in", "1d")
    config = json.loads(r.stdout)
    assert set(config["auths"]) == {f"{name}.registry.localhost", live.host}
    assert "shown once" in r.stderr
    authfile = tmp_path / "auth.json"
    authfile.write_text(r.stdout)
    pulled = subprocess.run(
        [
            skopeo,
            "copy",
            "--authfile",
            str(authfile),
            "--src-tls-verify=false",
            f"docker://{live.host}/{name}/app:v1",
            f"oci:{tmp_path / 'out'}:v1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert pulled.returncode == 0, pulled.stderr

    def push_back():  # the pulled image, as v2, with whatever the auth file holds now
        return subprocess.run(
            [
                skopeo,
                "copy",
                "--authfile",
                str(authfile),
                "--dest-tls-verify=false",
                f"oci:{tmp_path / 'out'}:v1",
                f"docker://{live.host}/{name}/app:v2",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )

    pushed = push_back()
    assert pushed.returncode != 0, "pull-only credentials pushed"

    # --push: the same auth file pushes.
    authfile.write_text(berth("credentials", name, "--push", "--format", "dockerconfigjson").stdout)
    pushed = push_back()
    assert pushed.returncode == 0, pushed.stderr


def test_credentials_as_login_kubernetes_secret_and_json(live, berth):
    name = unique("k8s")
    berth("registry", "create", name)
    login = dict(
        line.split(":", 1)
        for line in berth("credentials", name).stdout.splitlines()
        if ":" in line and not line.startswith("  ")
    )
    username, password = login["username"].strip(), login["password"].strip()
    assert password.startswith("berth_") and login["access"].strip().startswith("pull only")
    assert (
        RegistryClient(live.url, live.session(password)).request("GET", f"/v2/{name}/x/tags/list").status_code == 404
    )  # authenticated; the repository is empty

    secret = yaml.safe_load(berth("credentials", name, "--k8s-secret", "app-pull", "--namespace", "apps").stdout)
    assert secret["kind"] == "Secret" and secret["type"] == "kubernetes.io/dockerconfigjson"
    assert secret["metadata"]["name"] == "app-pull" and secret["metadata"]["namespace"] == "apps"
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    assert set(config["auths"]) == {f"{name}.registry.localhost", live.host}

    issued = berth.json("credentials", name, "--push", "--expires-in", "2h")
    assert issued["token"]["scope"] == "push" and issued["token"]["expires_at"]
    assert issued["username"] != username
    assert "k8s_secret_name" in berth.fails("credentials", name, "--k8s-secret", "Not_A_Name")
    assert "expires_in" in berth.fails("credentials", name, "--expires-in", "soon")
    assert "not found" in berth.fails("credentials", "nosuchregistry")


def test_without_a_domain_the_cli_prints_the_path_form_with_the_port(live, berth):
    name = unique("addr")
    created = berth("registry", "create", name).stdout
    assert f"push to: {live.host}/{name}/<repository>:<tag>" in created
    assert f"{name}.registry.localhost/" not in created and "BERTH_DOMAIN" in created
    shown = berth("registry", "show", name).stdout
    assert f"{name}.registry.localhost: off" in shown and "BERTH_DOMAIN" in shown

    login = berth("credentials", name).stdout
    server = next(line.split(":", 1)[1].strip() for line in login.splitlines() if line.startswith("server:"))
    assert server == live.host and f"docker login {live.host} " in login
    assert f"images: {live.host}/{name}/<repository>:<tag>" in login


def test_credentials_expire_by_default_and_are_listed_and_rotated(live, berth):
    name = unique("rot")
    berth("registry", "create", name)
    issued = berth.json("credentials", name, "--push")
    assert issued["token"]["expires_at"]  # 90 days unless asked
    never = berth.json("credentials", name, "--expires-in", "never", "--name", "forever")
    assert never["token"]["expires_at"] is None

    listed = rows(berth("credentials", name, "--list").stdout)
    assert listed[0][:4] == ["ID", "NAME", "ACCESS", "STATE"]
    ours = {str(issued["token"]["id"]), str(never["token"]["id"])}
    assert {(r[0], r[2], r[3]) for r in listed[1:] if r[0] in ours} == {
        (str(issued["token"]["id"]), "push", "active"),
        (str(never["token"]["id"]), "pull", "active"),
    }

    old_id = issued["token"]["id"]
    rotated = berth("credentials", name, "--rotate", old_id)
    assert f"revoked the old token {old_id}" in rotated.stderr
    password = next(
        line.split(":", 1)[1].strip() for line in rotated.stdout.splitlines() if line.startswith("password:")
    )
    assert "push and pull" in rotated.stdout
    probe = f"{live.url}/v2/{name}/x/tags/list"
    assert requests.get(probe, auth=("u", issued["password"]), timeout=10).status_code == 401
    assert requests.get(probe, auth=("u", password), timeout=10).status_code == 404  # authenticated
    after = {r[0]: r for r in rows(berth("credentials", name, "--list").stdout)[1:]}
    assert after[str(old_id)][3] == "revoked" and len(after) == len(listed)
    assert "already revoked" in berth.fails("credentials", name, "--rotate", old_id)
    assert "--list" in berth.fails("credentials", name, "--rotate", "999999")


def test_tags_show_the_type_and_the_platform_of_single_platform_images(live, berth):
    name = unique("kinds")
    berth("registry", "create", name)
    push(live, f"{name}/app")
    client = RegistryClient(live.url, live.session())
    chart = json.dumps({"name": "c", "version": "1"}).encode()
    chart_config = client.push_blob(f"{name}/app", chart)
    layer = client.push_blob(f"{name}/app", b"chart bytes")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": chart_config, "size": len(chart)},
        "layers": [
            {
                "mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                "digest": layer,
                "size": len(b"chart bytes"),
            }
        ],
    }
    r = client.request(
        "PUT",
        f"/v2/{name}/app/manifests/chart",
        data=json.dumps(manifest).encode(),
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert r.status_code == 201, r.text
    table = {r[0]: r for r in rows(berth("tags", f"{name}/app").stdout)[1:]}
    assert table["v1"][1] == "image" and "linux/amd64" in table["v1"]
    assert table["chart"][1:3] == ["helm", "chart"]


def test_retention_refuses_a_bad_override_and_speaks_cli_without_a_policy(live, berth):
    name = unique("ret")
    berth("registry", "create", name)
    for bad in ("bad", "ci/*", ":keep_last=3"):
        proc = berth("retention", "set", name, "--override", bad, check=False)
        assert proc.returncode != 0 and "GLOB:field=value" in proc.stderr, proc.stderr
    message = berth.fails("retention", "preview", name)
    assert "PUT" not in message and f"berth retention set {name}" in message


def test_operation_show_of_an_unknown_id_says_where_ids_come_from(berth):
    message = berth.fails("operation", "show", "no-such-operation")
    assert "berth registry show" in message


# --- tokens and audit ------------------------------------------------------------------------


def test_tokens_create_list_revoke(live, berth):
    name = unique("ci")
    r = berth("token", "create", name, "--scope", "pull", "--registry", "default", "--expires-in", "1d")
    secret = r.stdout.strip()
    assert secret.startswith("berth_") and "\n" not in secret and "shown once" in r.stderr
    assert requests.get(f"{live.url}/v2/default/x/tags/list", auth=("ci", secret), timeout=10).status_code == 404

    table = rows(berth("token", "list").stdout)
    assert table[0][:5] == ["ID", "NAME", "ROLE", "REGISTRY", "STATE"]
    mine = next(row for row in table if row[1] == name)
    assert mine[2:5] == ["reader", "default", "active"] and secret not in berth("token", "list").stdout
    listed = {t["name"]: t for t in berth.json("token", "list")["tokens"]}
    token_id = listed[name]["id"]
    assert str(token_id) == mine[0] and "token" not in listed[name]

    assert f"revoked token {token_id} ({name})" in berth("token", "revoke", token_id).stdout
    again = berth("token", "revoke", token_id).stdout
    assert f"token {token_id} ({name}) was already revoked" in again and "revoked token" not in again
    assert requests.get(f"{live.url}/v2/default/x/tags/list", auth=("ci", secret), timeout=10).status_code == 401
    assert next(row for row in rows(berth("token", "list").stdout) if row[1] == name)[4] == "revoked"
    assert "not found" in berth.fails("token", "revoke", "999999")
    # The audit says which token was created and revoked: its id and name, never its secret.
    events = berth.json("audit", "--action", "token", "--since", "1h")["events"]
    ours = [e for e in events if (e.get("detail") or {}).get("token_id") == token_id]
    assert sorted(e["action"] for e in ours) == ["token.create", "token.revoke"]  # the second: no call
    assert all(e["detail"]["token_name"] == name for e in ours) and secret not in json.dumps(events)
    assert f"token {token_id} ({name})" in berth("audit", "--action", "token.revoke").stdout

    created = berth.json("token", "create", unique("j"), "--scope", "push")
    assert created["token"].startswith("berth_") and created["role"] == "developer"
    assert "not found" in berth.fails("token", "create", unique("x"), "--registry", "nosuchregistry")


def test_audit(live, berth):
    name = unique("aud")
    berth("registry", "create", name)
    push(live, f"{name}/app")
    berth("registry", "delete", name, "--yes")

    table = rows(berth("audit", "--registry", name).stdout)
    assert table[0] == ["TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "STATUS", "CLIENT"]
    actions = [row[3] for row in table[1:]]  # TIME is two cells wide
    assert actions[0] == "registry.delete" and actions[-1] == "registry.create" and "manifest.push" in actions
    assert f"{name}/app:v1" in [row[4] for row in table[1:]]
    events = berth.json("audit", "--registry", name, "--action", "registry", "--since", "1h")["events"]
    assert [e["action"] for e in events] == ["registry.delete", "registry.create"]
    assert all(e["actor"] == "token:1" and e["outcome"] == "success" for e in events)
    assert berth.json("audit", "--registry", name, "--actor", "nobody")["events"] == []
    assert berth.json("audit", "--registry", name, "--until", "1h")["events"] == []
    assert len(berth.json("audit", "--registry", name, "--limit", "1")["events"]) == 1
    assert len(berth.json("audit", "--registry", name, "--limit", "0")["events"]) == len(actions)
    assert "since" in berth.fails("audit", "--since", "yesterday")
    assert "no audit events match" in berth("audit", "--registry", "nothing-here").stderr


# --- errors ------------------------------------------------------------------------------------


def test_server_down_and_rejected_tokens(tmp_path):
    srv = Server(tmp_path / "data", token="berth_" + secrets.token_urlsafe(32)).start()
    cli = Berth(tmp_path / "home")
    try:
        cli("login", srv.url, "--token-stdin", input=srv.token)
        assert cli.json("registry", "list")["registries"][0]["name"] == "default"
        # The token is revoked behind the CLI's back (after another owner is made: the last cannot go).
        tokens, owner = f"{srv.url}/api/v1/orgs/default/tokens", {"Authorization": f"Bearer {srv.token}"}
        assert requests.post(tokens, json={"name": "spare", "role": "owner"}, headers=owner, timeout=10).ok
        assert requests.delete(f"{tokens}/1", headers=owner, timeout=10).status_code == 204
        assert f"not logged in or token rejected: run berth login {srv.url}" in cli.fails("registry", "list")
    finally:
        srv.stop()
    message = cli.fails("registry", "list")
    assert message.strip() == f"error: cannot reach {srv.url}: is the server running? (berth login {srv.url})"
    assert "cannot reach" in cli.fails("login", srv.url, "--token", "x")
    assert "cannot reach" in cli.fails("registry", "create", "x", "--json")
