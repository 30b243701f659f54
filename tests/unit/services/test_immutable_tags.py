"""Immutable tags on a real SQLite database: which repositories the patterns cover, the patterns
a registry may set, a tag that is pinned once and never moves, and the deletes refused."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.db.models import Manifest, Organization, Registry, Repository, Tag
from app.services import immutable_tags
from app.spec.errors import RegistryError


def _manifest(repository, letter):
    return Manifest.create(repository=repository, digest="sha256:" + letter * 64, media_type="x", size=2, content=b"{}")


@pytest.fixture
def repository(database):
    registry = Registry.create(org=Organization.create(name="o"), name="r", immutable_tags=json.dumps(["release/*"]))
    return Repository.create(registry=registry, name="release/app")


def test_the_patterns_cover_repositories_by_glob():
    registry = Registry(immutable_tags=json.dumps(["release/*", "base", "prod-?"]))
    assert immutable_tags.applies(registry, "release/a/b") and immutable_tags.applies(registry, "base")
    assert immutable_tags.applies(registry, "prod-1") and not immutable_tags.applies(registry, "prod-10")
    assert not immutable_tags.applies(registry, "Release/a")  # case-sensitive
    assert not immutable_tags.applies(Registry(immutable_tags=None), "anything")


def test_immutable_tag_patterns():
    assert immutable_tags.validate(["rel/*", "prod-*", "rel/*"]) == ["prod-*", "rel/*"]
    assert immutable_tags.validate(None) == []
    for bad in ("x", [""], ["a b"], ["é"], ["x" * 256], [None], ["a"] * 101):
        with pytest.raises(RegistryError) as raised:
            immutable_tags.validate(bad)
        assert raised.value.field == "immutable_tags"


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=10), max_size=5))
def test_any_list_is_refused_or_kept_as_sorted_printable_ascii(value):
    try:
        kept = immutable_tags.validate(value)
    except RegistryError as error:
        assert error.status == 400
    else:
        assert kept == sorted(set(value)) and all(p.isascii() and p.isprintable() and " " not in p for p in kept)


def test_a_new_tag_is_pinned_and_the_same_digest_may_be_pushed_again(repository):
    first = _manifest(repository, "a")
    immutable_tags.pin(repository, "1.0", first)
    immutable_tags.pin(repository, "1.0", first)  # a retried push
    other = _manifest(repository, "b")
    with pytest.raises(RegistryError) as raised:
        immutable_tags.pin(repository, "1.0", other)
    assert raised.value.code == "DENIED" and raised.value.detail == {"tag": "1.0", "digest": first.digest}
    assert Tag.get(Tag.name == "1.0").manifest_id == first.id


def test_deleting_a_tag_or_a_tagged_manifest_is_refused_and_an_untagged_one_is_not(repository):
    tagged, untagged = _manifest(repository, "a"), _manifest(repository, "b")
    immutable_tags.pin(repository, "1.0", tagged)
    with pytest.raises(RegistryError, match="cannot be deleted"):
        immutable_tags.refuse_delete(repository, "1.0", tag=True)
    with pytest.raises(RegistryError, match=r"carries immutable tags \(1.0\)"):
        immutable_tags.refuse_delete(repository, tagged.digest, tag=False)
    immutable_tags.refuse_delete(repository, untagged.digest, tag=False)
    immutable_tags.refuse_delete(repository, "2.0", tag=True)
