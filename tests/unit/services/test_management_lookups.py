"""What the management API asks the services for, on a real SQLite database: the organization and
registry a URL names, and the pages of members, registries, tokens, audit events, tags and the
repository tree, each limited to what its owner holds."""

from __future__ import annotations

import datetime as dt

import pytest

from app.auth.subject import Subject
from app.db.models import AccessToken, AuditEvent, Manifest, Member, Organization, Registry, Repository, Tag
from app.db.setup import open_database
from app.services import audit, browse, members, paging, registries, tokens
from app.spec.errors import RegistryError

ALL = paging.Page(100)


@pytest.fixture
def orgs(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'berth.db'}")
    yield Organization.create(name="mine"), Organization.create(name="theirs")
    db.close()


def test_the_gate_finds_an_org_and_only_its_own_registries(orgs):
    mine, theirs = orgs
    Registry.create(org=mine, name="r1")
    Registry.create(org=theirs, name="r2")
    assert registries.find_org("mine") == mine and registries.find_org("nobody") is None
    assert registries.find(mine, "r1").name == "r1"
    assert registries.find(mine, "r2") is None  # another organization's registry is not there
    with pytest.raises(RegistryError):
        registries.get_registry(mine, "r2")


def test_organizations_by_id_come_sorted_by_name(orgs):
    mine, theirs = orgs
    other = Organization.create(name="a-first")
    assert [o.name for o in registries.orgs_with_ids([theirs.id, other.id, mine.id])] == ["a-first", "mine", "theirs"]
    assert registries.orgs_with_ids([theirs.id]) == [theirs] and registries.orgs_with_ids([]) == []


def test_members_and_registries_are_listed_per_organization_by_name(orgs):
    mine, theirs = orgs
    for subject in ("carol", "alice", "bob"):
        Member.create(org=mine, subject=subject, role="reader")
    Member.create(org=theirs, subject="mallory", role="owner")
    rows = members.page_of_members(mine, paging.Page(2))
    assert [m.subject for m in rows.items] == ["alice", "bob"] and rows.next_key == "bob"
    assert [m.subject for m in members.page_of_members(mine, paging.Page(2, "bob")).items] == ["carol"]
    for name in ("zeta", "alpha"):
        Registry.create(org=mine, name=name)
    Registry.create(org=theirs, name="beta")
    assert [r.name for r in registries.page_of_registries(mine, ALL).items] == ["alpha", "zeta"]


def test_a_member_sees_only_its_own_tokens_and_a_manager_all(orgs):
    mine, theirs = orgs
    made = [
        AccessToken.create(org=mine, name=f"t{i}", token_hash=f"h{i}", role="reader", created_by=by).id
        for i, by in enumerate(("dev", "admin", "dev"))
    ]
    AccessToken.create(org=theirs, name="x", token_hash="hx", role="reader", created_by="dev")
    dev = Subject(name="dev", roles={mine.id: "developer"})
    admin = Subject(name="admin", roles={mine.id: "admin"})
    assert [t.id for t in tokens.page_of_tokens(mine, dev, ALL).items] == [made[0], made[2]]
    assert [t.id for t in tokens.page_of_tokens(mine, admin, ALL).items] == made
    assert [t.id for t in tokens.page_of_tokens(mine, admin, paging.Page(1, made[0])).items] == [made[1]]


def test_audit_events_come_newest_first_filtered(orgs):
    mine, theirs = orgs
    t0 = dt.datetime(2026, 11, 1)

    def event(action: str, actor: str = "alice", registry: str | None = "r", hours: int = 0, org=mine) -> int:
        return AuditEvent.create(
            org=org,
            actor=actor,
            action=action,
            registry=registry,
            outcome="success",
            time=t0 + dt.timedelta(hours=hours),
        ).id

    create, delete, member, by_bob, elsewhere = (
        event("registry.create"),
        event("registry.delete", hours=1),
        event("member.set", registry=None, hours=2),
        event("registry.update", actor="bob", hours=3),
        event("registry.create", org=theirs),
    )

    def ids(page=ALL, **filters) -> list[int]:
        return [e.id for e in audit.page_of_events(mine.id, page, **filters).items]

    assert ids() == [by_bob, member, delete, create]
    assert ids(action="registry") == [by_bob, delete, create]  # a prefix matches the actions under it
    assert ids(action="registry.create") == [create] and ids(action="registr") == []
    assert ids(actor="bob") == [by_bob] and ids(registry="r", actor="alice") == [delete, create]
    assert ids(since=t0 + dt.timedelta(hours=1), until=t0 + dt.timedelta(hours=3)) == [member, delete]
    assert ids(paging.Page(2, member)) == [delete, create] and elsewhere not in ids()


def test_tags_and_the_tree_are_paged_by_name(orgs):
    registry = Registry.create(org=orgs[0], name="r")
    for name in ("team/b", "team/a", "app", "lonely/deep/x"):
        repository = Repository.create(registry=registry, name=name)
        manifest = Manifest.create(
            repository=repository, digest="sha256:" + "a" * 64, media_type="m", size=1, content=b"{}"
        )
        for tag in ("v2", "latest", "v1"):
            Tag.create(repository=repository, name=tag, manifest=manifest)
    app = Repository.get(Repository.name == "app")
    rows = browse.page_of_tags(app, paging.Page(2))
    assert [t.name for t in rows.items] == ["latest", "v1"] and rows.next_key == "v1"
    assert rows.items[0].manifest.digest == "sha256:" + "a" * 64  # the manifest comes with the tag
    assert [t.name for t in browse.page_of_tags(app, paging.Page(2, "v1")).items] == ["v2"]
    tree = browse.page_of_tree(registry, "", paging.Page(2))
    assert [n.path for n in tree.items] == ["app", "lonely/"] and tree.next_key == "lonely/"
    assert [n.path for n in browse.page_of_tree(registry, "", paging.Page(2, "lonely/")).items] == ["team/"]
    assert [n.path for n in browse.page_of_tree(registry, "team/", ALL).items] == ["team/a", "team/b"]
