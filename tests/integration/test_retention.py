"""Retention policies on a real server: each rule, tags sharing one digest, index children and
referrers, per-repository overrides, preview equal to apply, audit records, the collection that
follows, and the `berth retention` CLI.

Ageing: retention judges push and pull times, and garbage collection keeps what was pushed
within its grace period (an hour), so these tests write old timestamps (`tag.updated_at`,
`manifest.created_at`/`pulled_at`, `blob.created_at`/`touched_at`) straight into the server's
database (SQLite file or PostgreSQL, whichever it runs on) while it runs. The clock is not
injected: the server always evaluates at its own `now`. Pull times are recorded by the server
itself (a real GET or HEAD of the manifest).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import subprocess
import sys
import time

import pytest

from app.db import models as m
from app.db.setup import database_for
from tests.support.management import Api, walk_blobs
from tests.support.registry_client import OCI_INDEX, OCI_MANIFEST, RegistryClient
from tests.support.server import ROOT, Server

MODELS = [m.Organization, m.Registry, m.Repository, m.Manifest, m.Tag, m.Blob]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("retention") / "data", token="berth_" + secrets.token_urlsafe(32)).start()
    yield srv
    srv.stop()


@pytest.fixture
def api(env) -> Api:
    return Api(env)


class Registry:
    """A fresh registry of the test's own, a client pushing to it, and its database rows."""

    def __init__(self, env: Server, api: Api) -> None:
        self.env, self.api = env, api
        self.name = f"ret{secrets.token_hex(4)}"
        api.create(self.name)
        self.client = RegistryClient(env.url, env.session())
        url = env.database_url or f"sqlite:///{env.data_dir / 'berth.db'}"
        self.db = database_for(url)

    def close(self) -> None:
        self.db.close()

    def push(self, repo: str, tag: str | None, *, layer: bytes | None = None, **extra) -> str:
        digest, _, _ = self.client.push_image(
            f"{self.name}/{repo}", tag, layers=[layer or secrets.token_bytes(64)], **extra
        )
        return digest

    def tags(self, repo: str) -> list[str]:
        r = self.client.request("GET", f"/v2/{self.name}/{repo}/tags/list")
        return sorted(r.json().get("tags") or []) if r.status_code == 200 else []

    def has_manifest(self, repo: str, digest: str) -> bool:
        r = self.client.request(
            "HEAD", f"/v2/{self.name}/{repo}/manifests/{digest}", headers={"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"}
        )
        assert r.status_code in (200, 404), r.text
        return r.status_code == 200

    def _repository(self, repo: str) -> m.Repository:
        return (
            m.Repository.select()
            .join(m.Registry)
            .where((m.Registry.name == self.name) & (m.Repository.name == repo))
            .get()
        )

    def age(self, repo: str, days: float, *, tags: dict[str, float] | None = None) -> None:
        """Make everything in `repo` `days` old (tags, manifests, their blobs; never pulled), then
        the named tags `tags[name]` days old."""
        when = m.utcnow() - dt.timedelta(days=days)
        with self.db.bind_ctx(MODELS), self.db.connection_context():
            repository = self._repository(repo)
            m.Tag.update(updated_at=when).where(m.Tag.repository == repository).execute()
            m.Manifest.update(created_at=when, pulled_at=None).where(m.Manifest.repository == repository).execute()
            m.Blob.update(created_at=when, touched_at=when).where(m.Blob.registry == repository.registry).execute()
            for name, age in (tags or {}).items():
                m.Tag.update(updated_at=m.utcnow() - dt.timedelta(days=age)).where(
                    (m.Tag.repository == repository) & (m.Tag.name == name)
                ).execute()

    def pulled_at(self, repo: str, digest: str) -> dt.datetime | None:
        with self.db.bind_ctx(MODELS), self.db.connection_context():
            return m.Manifest.get(
                (m.Manifest.repository == self._repository(repo)) & (m.Manifest.digest == digest)
            ).pulled_at

    def set_policy(self, **policy) -> dict:
        r = self.api("PUT", f"/registries/{self.name}/retention", json=policy)
        assert r.status_code == 200, r.text
        return r.json()

    def preview(self, **body) -> dict:
        r = self.api("POST", f"/registries/{self.name}/retention/preview", **({"json": body} if body else {}))
        assert r.status_code == 200, r.text
        assert r.json()["dry_run"] is True
        return r.json()

    def apply(self) -> dict:
        r = self.api("POST", f"/registries/{self.name}/retention/apply")
        assert r.status_code == 200, r.text
        return r.json()

    def preview_then_apply(self) -> dict:
        """Preview, apply, and check that apply deleted exactly what the preview listed."""
        before = self.preview()
        after = self.apply()
        assert _items(after) == _items(before)
        assert after["dry_run"] is False
        return after


def _items(result: dict) -> tuple[list, list]:
    return (
        [(t["repository"], t["tag"], t["digest"], t["reason"]) for t in result["tags"]],
        [(x["repository"], x["digest"], x["reason"], x["by"]) for x in result["manifests"]],
    )


def _gone_tags(result: dict) -> list[str]:
    return [t["tag"] for t in result["tags"]]


def _gone_digests(result: dict) -> set[str]:
    return {x["digest"] for x in result["manifests"]}


@pytest.fixture
def reg(env, api):
    r = Registry(env, api)
    yield r
    r.close()


# --- the policy document -----------------------------------------------------------------------


def test_policy_round_trip_validation_and_removal(reg, api):
    base = f"/registries/{reg.name}/retention"
    shown = api("GET", base).json()
    assert shown["configured"] is False and shown["keep_last"] is None and shown["overrides"] == []
    assert api("POST", base + "/preview").status_code == 409
    r = api("POST", base + "/apply")
    assert r.status_code == 409 and "PUT one first" in r.json()["detail"]

    stored = reg.set_policy(
        keep_last=5,
        keep_patterns=["latest", "v*", "latest"],
        expire_days=30,
        overrides=[{"repositories": "ci/*", "expire_days": 7}],
    )
    assert stored["configured"] is True and stored["updated_by"] == "token:1"
    assert stored["keep_patterns"] == ["latest", "v*"] and stored["delete_untagged"] is False
    assert stored["overrides"] == [{"repositories": "ci/*", "expire_days": 7}]
    assert api("GET", base).json() == stored

    for body, field in [
        ({"keep_last": -1}, "keep_last"),
        ({"keep_last": True}, "keep_last"),
        ({"expire_days": 0}, "expire_days"),
        ({"keep_patterns": "v*"}, "keep_patterns"),
        ({"delete_untagged": "yes"}, "delete_untagged"),
        ({"keep_lats": 3}, "keep_lats"),
        ({"overrides": [{"expire_days": 3}]}, "overrides[0].repositories"),
        ({"overrides": [{"repositories": "a/*", "expire_days": "7"}]}, "overrides[0].expire_days"),
        ({"overrides": [{"repositories": "a/*", "overrides": []}]}, "overrides[0].overrides"),
    ]:
        r = api("PUT", base, json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["invalid_params"][0]["name"] == field, (body, r.json())
    r = api("POST", base + "/preview", json={"policy": {"expire_days": -3}})
    assert r.status_code == 400 and r.json()["invalid_params"][0]["name"] == "policy.expire_days"
    assert api("GET", base).json() == stored  # refused changes change nothing

    assert api("DELETE", base).status_code == 204
    assert api("GET", base).json()["configured"] is False
    assert api("DELETE", base).status_code == 204  # idempotent


def test_a_reader_may_preview_but_not_change_or_apply(env, reg, api):
    reg.set_policy(keep_last=1)
    r = api("POST", "/tokens", json={"name": "reader", "scope": "pull"})
    assert r.status_code == 201, r.text
    reader = Api(env, r.json()["token"])
    base = f"/registries/{reg.name}/retention"
    assert reader("GET", base).status_code == 200
    assert reader("POST", base + "/preview").status_code == 200
    assert reader("PUT", base, json={"keep_last": 0}).status_code == 403
    assert reader("POST", base + "/apply").status_code == 403
    assert reader("DELETE", base).status_code == 403


# --- the rules ---------------------------------------------------------------------------------


def test_keep_last_keeps_the_most_recently_pushed_tags(reg):
    digests = {f"t{i}": reg.push("app", f"t{i}") for i in range(1, 6)}
    reg.age("app", 10, tags={f"t{i}": 10 - i for i in range(1, 6)})  # t5 is the newest
    reg.set_policy(keep_last=2)

    result = reg.preview_then_apply()
    assert _gone_tags(result) == ["t1", "t2", "t3"]
    assert all(t["reason"] == "not among the 2 most recently pushed tags" for t in result["tags"])
    # Their manifests are now untagged and nothing references them: they go in the same run.
    assert _gone_digests(result) == {digests["t1"], digests["t2"], digests["t3"]}
    assert {x["by"] for x in result["manifests"]} == {"retention"}
    assert result["kept_tags"] == 2 and result["summary"] == {
        "tags": 3,
        "manifests": 3,
        "manifest_bytes": sum(x["size"] for x in result["manifests"]),
    }
    assert reg.tags("app") == ["t4", "t5"]
    assert not reg.has_manifest("app", digests["t1"]) and reg.has_manifest("app", digests["t4"])
    assert reg.preview()["tags"] == []  # nothing more to do


def test_keep_patterns_keep_matching_tags_and_alone_delete_nothing(reg):
    for tag in ("v1", "v2", "latest", "dev", "pr-17"):
        reg.push("app", tag)
    reg.age("app", 3)
    reg.set_policy(keep_patterns=["v*", "latest"])
    assert reg.preview()["tags"] == []  # patterns only protect; no rule limits tags

    reg.set_policy(keep_last=0, keep_patterns=["v*", "latest"])
    result = reg.preview_then_apply()
    assert _gone_tags(result) == ["dev", "pr-17"]
    assert result["tags"][0]["reason"] == "not among the 0 most recently pushed tags; matches none of v*, latest"
    assert reg.tags("app") == ["latest", "v1", "v2"]


def test_expiry_counts_pushes_and_pulls_by_tag_digest_or_head(reg):
    for tag in ("old", "pulled", "by-digest", "headed", "fresh"):
        reg.push("app", tag)
    reg.age("app", 40, tags={"fresh": 2})
    digest = {
        t["name"]: t["digest"] for t in reg.api("GET", f"/registries/{reg.name}/repositories/app/tags").json()["tags"]
    }
    c, base = reg.client, f"/v2/{reg.name}/app/manifests"
    assert c.request("GET", f"{base}/pulled", headers={"Accept": OCI_MANIFEST}).status_code == 200
    assert c.request("GET", f"{base}/{digest['by-digest']}", headers={"Accept": OCI_MANIFEST}).status_code == 200
    assert c.request("HEAD", f"{base}/headed", headers={"Accept": OCI_MANIFEST}).status_code == 200
    for _ in range(100):  # written by a background thread a moment after the pull
        if all(reg.pulled_at("app", digest[t]) is not None for t in ("pulled", "by-digest", "headed")):
            break
        time.sleep(0.05)
    assert reg.pulled_at("app", digest["pulled"]) is not None and reg.pulled_at("app", digest["old"]) is None

    reg.set_policy(expire_days=30)
    result = reg.preview_then_apply()
    assert _gone_tags(result) == ["old"]
    assert "not pushed or pulled for 30 days (last " in result["tags"][0]["reason"]
    assert reg.tags("app") == ["by-digest", "fresh", "headed", "pulled"]


def test_pull_times_are_written_at_most_once_an_hour(reg):
    digest = reg.push("app", "v1")
    c = reg.client
    c.request("GET", f"/v2/{reg.name}/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
    first = reg.pulled_at("app", digest)
    assert first is not None
    c.request("GET", f"/v2/{reg.name}/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert reg.pulled_at("app", digest) == first  # within the hour: no write


def test_tags_sharing_one_digest(reg):
    layer = secrets.token_bytes(2000)
    shared = reg.push("app", "v1.0", layer=layer)
    assert reg.push("app", "nightly", layer=layer) == shared  # the same image, a second tag
    other = reg.push("app", "scratch")
    reg.age("app", 40)

    # One kept by pattern, the other expired: the tag goes, the manifest (and its blobs) stay.
    reg.set_policy(expire_days=30, keep_patterns=["v*"])
    result = reg.preview_then_apply()
    assert _gone_tags(result) == ["nightly", "scratch"]
    assert {t["digest"] for t in result["tags"]} == {shared, other}
    assert _gone_digests(result) == {other}  # not the shared one: v1.0 still points at it
    assert reg.tags("app") == ["v1.0"] and reg.has_manifest("app", shared)
    r = reg.client.request("GET", f"/v2/{reg.name}/app/manifests/v1.0", headers={"Accept": OCI_MANIFEST})
    config = json.loads(r.content)["config"]["digest"]
    assert reg.client.request("GET", f"/v2/{reg.name}/app/blobs/{config}").status_code == 200

    # keep_last counts tags, not digests: two tags on one digest are two of the N.
    reg.push("app", "a", layer=layer)
    reg.push("app", "b", layer=layer)
    reg.age("app", 40, tags={"a": 1, "b": 1})
    reg.set_policy(keep_last=2)
    result = reg.preview_then_apply()
    assert _gone_tags(result) == ["v1.0"] and result["manifests"] == []
    assert reg.tags("app") == ["a", "b"] and reg.has_manifest("app", shared)


def test_index_children_referrers_and_untagged_manifests(reg):
    repo = f"{reg.name}/app"
    children = [reg.push("app", None) for _ in range(2)]
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": d, "size": 300, "platform": {"os": "linux", "architecture": a}}
            for d, a in zip(children, ("amd64", "arm64"), strict=True)
        ],
    }
    r = reg.client.push_manifest(repo, "multi", index, OCI_INDEX)
    assert r.status_code == 201, r.text
    index_digest = r.headers["Docker-Content-Digest"]
    image = reg.push("app", "release")
    image_size = len(
        reg.client.request("GET", f"/v2/{repo}/manifests/release", headers={"Accept": OCI_MANIFEST}).content
    )
    signature = reg.push(
        "app",
        None,
        subject={"mediaType": OCI_MANIFEST, "digest": image, "size": image_size},
        artifactType="application/vnd.example.signature",
    )
    lone = reg.push("app", None)
    reg.age("app", 5)
    recent = reg.push("app", None)  # pushed just now: within the grace period, never deleted yet

    # Untagged, but a kept index's children and a kept image's referrer: they stay.
    reg.set_policy(delete_untagged=True)
    result = reg.preview_then_apply()
    assert result["tags"] == [] and _gone_digests(result) == {lone}
    assert result["manifests"][0]["reason"] == "untagged; nothing kept references it"
    for digest in (*children, index_digest, image, signature, recent):
        assert reg.has_manifest("app", digest)

    # The index's tag and the signed image's tag expire: the index, its children and the
    # signature go with them, each with its reason.
    reg.age("app", 40)
    reg.set_policy(expire_days=30, delete_untagged=True)
    result = reg.preview_then_apply()
    assert _gone_tags(result) == ["multi", "release"]
    reasons = {x["digest"]: x["reason"] for x in result["manifests"]}
    assert reasons[index_digest].startswith("untagged once multi go")
    assert reasons[children[0]].startswith(f"a child of {index_digest}, which goes")
    assert reasons[signature].startswith(f"a referrer of {image}, which goes")
    assert set(reasons) == {index_digest, *children, image, signature, recent}
    for digest in reasons:
        assert not reg.has_manifest("app", digest)


def test_without_delete_untagged_the_collection_removes_untagged_manifests(reg, api):
    lone = reg.push("app", None)
    tagged = reg.push("app", "v1")
    reg.age("app", 5)
    reg.set_policy(keep_last=5)
    result = reg.preview_then_apply()
    # Listed, because the collection that follows the run removes it; not deleted by retention.
    assert result["manifests"] == [{**result["manifests"][0], "digest": lone, "by": "gc"}]
    assert result["gc"]["manifests_deleted"] == 1
    assert not reg.has_manifest("app", lone) and reg.has_manifest("app", tagged)
    events = api("GET", "/audit", params={"registry": reg.name, "action": "retention.delete"}).json()["events"]
    assert events == []


def test_overrides_apply_to_matching_repositories(reg):
    for repo in ("app", "ci/app", "ci/tools/lint"):
        for i in range(3):
            reg.push(repo, f"t{i}")
        reg.age(repo, 10, tags={f"t{i}": 10 - i for i in range(3)})
    reg.set_policy(
        keep_last=2,
        overrides=[{"repositories": "ci/tools/*", "keep_last": None}, {"repositories": "ci/*", "keep_last": 1}],
    )
    result = reg.preview_then_apply()
    assert [(t["repository"], t["tag"]) for t in result["tags"]] == [("app", "t0"), ("ci/app", "t0"), ("ci/app", "t1")]
    assert reg.tags("ci/tools/lint") == ["t0", "t1", "t2"]  # keep_last turned off: no rule limits tags


# --- apply: audit and collection ---------------------------------------------------------------


def test_apply_audits_every_deletion_and_collects_the_bytes(env, reg, api):
    keep = reg.push("app", "keep", layer=secrets.token_bytes(4000))
    drop = reg.push("app", "drop", layer=secrets.token_bytes(50_000))
    reg.age("app", 40, tags={"keep": 1})
    blobs_before = {p.name for p in walk_blobs(env.data_dir, _registry_id(reg))}
    reg.set_policy(expire_days=30)

    result = reg.preview_then_apply()
    assert _gone_tags(result) == ["drop"] and _gone_digests(result) == {drop}
    # Its layer is freed; the config blob is the same for every test image and stays.
    assert result["gc"]["blobs_deleted"] == 1 and result["gc"]["bytes_freed"] == 50_000
    blobs_after = {p.name for p in walk_blobs(env.data_dir, _registry_id(reg))}
    assert len(blobs_before - blobs_after) == 1
    assert reg.has_manifest("app", keep)

    events = api("GET", "/audit", params={"registry": reg.name, "action": "retention"}).json()["events"]
    by_action: dict[str, list] = {}
    for e in events:
        by_action.setdefault(e["action"], []).append(e)
    assert len(by_action["retention.set"]) == 1 and by_action["retention.set"][0]["detail"]["expire_days"] == 30
    applied = by_action["retention.apply"]
    assert len(applied) == 1 and applied[0]["outcome"] == "success"
    assert applied[0]["detail"]["tags"] == 1 and applied[0]["detail"]["manifests"] == 1
    deletes = {(e["tag"], e["digest"]): e for e in by_action["retention.delete"]}
    assert set(deletes) == {("drop", drop), (None, drop)}
    assert all(
        e["repository"] == "app"
        and e["actor"] == "token:1"
        and e["outcome"] == "success"
        and e["request_id"] == applied[0]["request_id"]
        for e in deletes.values()
    )
    assert "not pushed or pulled for 30 days" in deletes[("drop", drop)]["detail"]["reason"]
    assert deletes[(None, drop)]["detail"]["reason"].startswith("untagged once drop go")


def _registry_id(reg: Registry) -> int:
    with reg.db.bind_ctx(MODELS), reg.db.connection_context():
        return m.Registry.get(m.Registry.name == reg.name).id


def test_preview_of_an_unsaved_policy(reg):
    reg.push("app", "a")
    reg.push("app", "b")
    reg.age("app", 2, tags={"b": 1})
    result = reg.preview(policy={"keep_last": 1})
    assert _gone_tags(result) == ["a"] and result["policy"]["keep_last"] == 1
    assert reg.api("GET", f"/registries/{reg.name}/retention").json()["configured"] is False
    assert reg.tags("app") == ["a", "b"]  # a preview deletes nothing


# --- the CLI -----------------------------------------------------------------------------------


def test_cli_retention_show_set_preview_apply(env, reg, tmp_path):
    cli_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BERTH_")},
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "BERTH_URL": env.url,
        "BERTH_TOKEN": env.token,
    }

    def berth(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            cwd=ROOT,
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        if check:
            assert proc.returncode == 0, f"{args}: {proc.stdout}\n{proc.stderr}"
        return proc

    for tag in ("v1", "dev1", "dev2"):
        reg.push("app", tag)
    reg.age("app", 40, tags={"dev2": 39})
    assert "no retention policy" in berth("retention", "show", reg.name).stdout
    out = berth(
        "retention",
        "set",
        reg.name,
        "--keep-last",
        "1",
        "--keep",
        "v*",
        "--expire-days",
        "30",
        "--override",
        "ci/*:expire_days=7",
    ).stdout
    assert "keep last:       1 most recently pushed" in out and "override ci/*:   expire_days=7" in out
    shown = json.loads(berth("--json", "retention", "show", reg.name).stdout)
    assert shown["keep_last"] == 1 and shown["keep_patterns"] == ["v*"] and shown["expire_days"] == 30
    assert shown["overrides"] == [{"repositories": "ci/*", "expire_days": 7}]

    preview = berth("retention", "preview", reg.name).stdout
    assert preview.startswith(f"registry {reg.name!r}: would delete 1 tag(s) and 1 manifest(s)")
    assert [line.split()[1] for line in preview.splitlines() if line.startswith("app ")][:1] == ["dev1"]
    planned = json.loads(berth("--json", "retention", "preview", reg.name).stdout)
    assert _gone_tags(planned) == ["dev1"]  # dev2 is the most recent, v1 matches v*

    proc = berth("retention", "apply", reg.name, check=False)
    assert proc.returncode == 1 and "--yes" in proc.stderr  # not on a terminal: must confirm
    applied = json.loads(berth("--json", "retention", "apply", reg.name, "--yes").stdout)
    assert _items(applied) == _items(planned)
    assert reg.tags("app") == ["dev2", "v1"]
    berth("retention", "set", reg.name, "--clear")
    assert "no retention policy" in berth("retention", "show", reg.name).stdout
    assert "expire-days" in berth("retention", "set", reg.name, "--expire-days", "0", check=False).stderr


def test_retention_never_deletes_tags_the_registry_holds_immutable(reg):
    """Immutable tags refuse deletion by users; retention does not delete them either (their
    repository's untagged manifests still go)."""
    for i in range(3):
        reg.push("release/app", f"v{i}")
        reg.push("scratch", f"v{i}")
    reg.age("release/app", 10, tags={f"v{i}": 10 - i for i in range(3)})
    reg.age("scratch", 10, tags={f"v{i}": 10 - i for i in range(3)})
    r = reg.api("PATCH", f"/registries/{reg.name}", json={"immutable_tags": ["release/*"]})
    assert r.status_code == 200, r.text
    reg.set_policy(keep_last=1)
    result = reg.preview_then_apply()
    assert sorted((t["repository"], t["tag"]) for t in result["tags"]) == [("scratch", "v0"), ("scratch", "v1")]
    assert reg.tags("release/app") == ["v0", "v1", "v2"] and reg.tags("scratch") == ["v2"]


def test_stored_policies_are_applied_on_a_schedule(tmp_path):
    """`BERTH_RETENTION_INTERVAL`: the server applies every stored policy by itself, audited as
    the schedule, and collects the garbage after."""
    server = Server(
        tmp_path / "data",
        token="berth_" + secrets.token_urlsafe(32),
        env={"BERTH_RETENTION_INTERVAL": "1", "BERTH_GC_GRACE": "0"},
    ).start()
    try:
        api = Api(server)
        reg = Registry(server, api)
        try:
            for i in range(1, 4):
                reg.push("app", f"t{i}")
            reg.age("app", 10, tags={f"t{i}": 10 - i for i in range(1, 4)})  # t3 is the newest
            reg.set_policy(keep_last=1)
            deadline = time.monotonic() + 20
            while reg.tags("app") != ["t3"] and time.monotonic() < deadline:
                time.sleep(0.2)
            assert reg.tags("app") == ["t3"]

            def actions() -> list[str]:
                events = api("GET", "/audit", params={"registry": reg.name, "actor": "retention-schedule"}).json()
                return sorted(e["action"] for e in events["events"])

            # The run's own record is written once its deletes are done: a moment after the tags go.
            while "retention.apply" not in actions() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert actions().count("retention.delete") >= 2 and "retention.apply" in actions()
        finally:
            reg.close()
    finally:
        server.stop()
