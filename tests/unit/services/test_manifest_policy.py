"""The manifest validation policy: what a registry may set, what each mode lets an index or
manifest leave out, which platforms a sparse index must still carry, and errors that name what is
missing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.db.models import Registry
from app.services import manifest_policy as mp
from app.services.manifest_policy import Policy
from app.spec.errors import RegistryError


def test_no_policy_is_strict_and_stored_as_null():
    assert mp.validate(None) == Policy() == mp.of(Registry(manifest_policy=None))
    assert mp.stored(Policy()) is None
    assert Policy().requires(None) and Policy().requires("linux/amd64")
    assert not Policy().children_may_be_absent and not Policy().blobs_may_be_absent


def test_a_policy_round_trips_through_its_column():
    policy = mp.validate(
        {"mode": "index-sparse", "required_platforms": ["linux/arm64/v8", "linux/amd64", "linux/amd64"]}
    )
    assert policy.required_platforms == ("linux/amd64", "linux/arm64/v8")
    assert mp.of(Registry(manifest_policy=mp.stored(policy))) == policy


def test_required_platforms_match_variants_only_when_unnamed():
    policy = Policy(mp.INDEX_SPARSE, ("linux/arm", "linux/amd64/v2"))
    assert policy.requires("linux/arm") and policy.requires("linux/arm/v7")
    assert policy.requires("linux/amd64/v2") and not policy.requires("linux/amd64")
    assert not policy.requires("linux/arm64") and not policy.requires(None)
    assert Policy(mp.SPARSE).blobs_may_be_absent and not Policy(mp.INDEX_SPARSE).blobs_may_be_absent


@pytest.mark.parametrize(
    "value, message",
    [
        ("strict", "must be an object"),
        ({"mode": "lax"}, "mode must be one of"),
        ({"mode": "sparse", "colour": 1}, "no field 'colour'"),
        ({"mode": "sparse", "required_platforms": "linux/amd64"}, "must be a list"),
        ({"mode": "sparse", "required_platforms": ["Linux/AMD64"]}, "is not a platform"),
        ({"mode": "sparse", "required_platforms": ["linux"]}, "is not a platform"),
        ({"mode": "sparse", "required_platforms": ["linux/amd64\n"]}, "is not a platform"),
        ({"mode": "sparse", "required_platforms": ["linux/a"] * 51}, "up to 50"),
        ({"mode": "strict", "required_platforms": ["linux/amd64"]}, "only applies"),
    ],
)
def test_a_bad_policy_is_invalid_saying_which_rule(value, message):
    with pytest.raises(RegistryError, match=message) as raised:
        mp.validate(value)
    assert raised.value.field == "manifest_policy"


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["mode", "required_platforms", "x"]),
        st.one_of(st.sampled_from(mp.MODES), st.lists(st.text(max_size=20), max_size=3), st.none()),
        max_size=3,
    )
)
def test_any_request_is_a_policy_that_round_trips_or_invalid(value):
    try:
        policy = mp.validate(value)
    except RegistryError as error:
        assert error.status == 400
    else:
        assert mp.of(Registry(manifest_policy=mp.stored(policy))) == policy


@pytest.mark.parametrize(
    "platform, name",
    [
        ({"os": "linux", "architecture": "arm", "variant": "v7"}, "linux/arm/v7"),
        ({"os": "linux", "architecture": "amd64", "variant": ""}, "linux/amd64"),
        ({"os": "", "architecture": "amd64"}, None),
        ({"architecture": "amd64"}, None),
        ("linux/amd64", None),
        (None, None),
    ],
)
def test_an_index_entry_s_platform_name(platform, name):
    assert mp.platform_name(platform) == name


def test_missing_content_is_named_and_listed_in_full():
    digests = [f"sha256:{i}" for i in range(7)]
    error = mp.missing_blobs("app", digests)
    assert (error.code, error.status) == ("MANIFEST_BLOB_UNKNOWN", 400)
    assert "7 blobs" in error.message and "and 2 more" in error.message and error.detail["missing"] == digests
    one = mp.missing_children("app", [("sha256:a", "linux/amd64")], Policy())
    assert "1 manifest not" in one.message and "sha256:a (linux/amd64)" in one.message and "index-sparse" in one.message
    sparse = mp.missing_children("app", [("sha256:a", None)], Policy(mp.INDEX_SPARSE, ("linux/amd64",)))
    assert "requires the platforms linux/amd64" in sparse.message and sparse.detail["digest"] == "sha256:a"
