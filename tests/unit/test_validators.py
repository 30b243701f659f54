"""Every validator of request input refuses hostile strings: a newline (leading, trailing,
embedded), other control characters, NUL, other scripts' digits and letters, and strings far too
long. Property-based, because the bug this guards against hid in one character at one place
(Python's `$` matches before a final newline, so `^...$` with `re.match` let "v1\\n" through), and
no list of examples was going to name every validator's every edge.

Each validator is fed (1) a valid value spoiled by hostile characters, which it must refuse with
a 4xx RegistryError, and (2) arbitrary text, of which it may accept only printable ASCII.
"""

from __future__ import annotations

import datetime as dt
import string

import falcon.testing
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from app.api import pagination
from app.api.idempotency import Idempotency
from app.auth.registry_tokens import parse_scopes
from app.auth.subject import Subject
from app.db.models import AccessToken, Member, Organization
from app.db.setup import open_database
from app.lifecycle.provisioner import RegistrySpec
from app.lifecycle.resources import check_spec
from app.oci.blobs import parse_range
from app.services import audit, custom_domains, immutable_tags, members, metering, registries, retention, tokens
from app.spec import digests
from app.spec.errors import RegistryError
from app.spec.names import RESERVED_REGISTRY_NAMES, check_registry, check_repository, check_tag

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Characters no name, tag, digest or key may hold: control characters (NUL, newline, CR, tab,
# escape, DEL, NEL, the Unicode line separators), and any non-ASCII character, which takes in
# other scripts' digits ("²", "①", "١", fullwidth "５") and letters ("é", "Ω", "Ａ").
CONTROL = st.one_of(st.characters(max_codepoint=0x1F), st.sampled_from("\x7f\x85\u2028\u2029"))
NON_ASCII = st.one_of(
    st.sampled_from("²³①١٣５éßΩＡ\u00a0"), st.characters(min_codepoint=0x80, exclude_categories=("Cs",))
)
HOSTILE = st.one_of(st.just("\n"), CONTROL, NON_ASCII)


def spoiled(valid: st.SearchStrategy[str], *, longest: int | None = None) -> st.SearchStrategy[str]:
    """A valid value with hostile characters at its start, its end or inside; or, given the
    `longest` the value may be, one far longer."""

    @st.composite
    def with_hostile(draw) -> str:
        value = draw(valid)
        bad = "".join(draw(st.lists(HOSTILE, min_size=1, max_size=3)))
        at = draw(st.sampled_from([0, len(value), draw(st.integers(0, len(value)))]))
        return value[:at] + bad + value[at:]

    if longest is None:
        return with_hostile()
    too_long = valid.map(lambda v: v + v[-1] * max(longest + 1 - len(v), 0) + v[-1] * 5000)
    return st.one_of(with_hostile(), too_long)


def examples(*values):
    """Hypothesis's @example for each value: the cases the issue names always run."""

    def apply(test):
        for value in reversed(values):
            test = example(value)(test)
        return test

    return apply


def refuses(check, value) -> None:
    with pytest.raises(RegistryError) as refused:
        check(value)
    assert 400 <= refused.value.status < 500


def printable_ascii(value: str, *, space: bool = False) -> bool:
    return value.isascii() and value.isprintable() and (space or " " not in value)


LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
COMPONENT = st.from_regex(r"[a-z0-9]+([._-][a-z0-9]+)?", fullmatch=True)
REPOSITORY = st.lists(COMPONENT, min_size=1, max_size=3).map("/".join)
TAG = st.from_regex(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,20}", fullmatch=True)
DIGEST = st.one_of(
    st.from_regex(r"sha256:[a-f0-9]{64}", fullmatch=True), st.from_regex(r"sha512:[a-f0-9]{128}", fullmatch=True)
)
SUBJECT = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9@._:+|-]{0,20}", fullmatch=True)
TOKEN_NAME = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,20}", fullmatch=True)
GLOB = st.from_regex(r"[a-z0-9*?/._-]{1,20}", fullmatch=True)
DAY = st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)).map(dt.date.isoformat)
ANY_TEXT = st.text(st.one_of(st.characters(max_codepoint=0x7F), HOSTILE), max_size=80)


# -- names, tags, digests -----------------------------------------------------------------------


@SETTINGS
@given(spoiled(REPOSITORY, longest=255))
@examples("app\n", "\napp", "a\nb", "app\x00", "app²")
def test_a_repository_name_with_a_hostile_character_is_refused(name):
    refuses(check_repository, name)


@SETTINGS
@given(spoiled(TAG, longest=128))
@examples("v1\n", "v1\r\n", "①", "v1\x00")
def test_a_tag_with_a_hostile_character_is_refused(tag):
    refuses(check_tag, tag)


@SETTINGS
@given(spoiled(DIGEST, longest=7 + 128))
@examples("sha256:" + "a" * 64 + "\n")
def test_a_digest_with_a_hostile_character_is_refused(digest):
    refuses(digests.parse, digest)


@SETTINGS
@given(spoiled(LABEL, longest=63))
@examples("evil\n", "\nevil", "ev\nil", "evil\x00", "evi١")
def test_a_registry_or_organization_name_with_a_hostile_character_is_refused(name):
    refuses(check_registry, name)
    refuses(registries.validate_name, name)


@SETTINGS
@given(ANY_TEXT)
@examples("app\n", "v1\n", "sha256:" + "0" * 64 + "\n")
def test_names_tags_and_digests_accepted_are_printable_ascii(text):
    for check in (check_repository, check_tag, check_registry, registries.validate_name, digests.parse):
        try:
            check(text)
        except RegistryError:
            continue
        assert printable_ascii(text), (check, text)


# -- what a registry is created with, and what its provisioning accepts -------------------------


@SETTINGS
@given(spoiled(LABEL, longest=63))
@examples("workloads\n")
def test_a_pull_namespace_with_a_hostile_character_is_refused(namespace):
    refuses(registries.validate_pull_namespaces, [namespace])


@SETTINGS
@given(LABEL, st.lists(LABEL, max_size=3))
def test_a_registry_the_api_accepts_is_never_refused_by_its_provisioning(name, namespaces):
    """A create accepted at the door must not fail later on the provisioner's own spec check,
    leaving a failed registry that holds its name."""
    assume(name not in RESERVED_REGISTRY_NAMES)
    name = registries.validate_name(name)
    spec = RegistrySpec(
        org=check_registry("default"),
        name=name,
        hostname=f"{name}.registry.example.com",
        pull_namespaces=tuple(registries.validate_pull_namespaces(namespaces)),
        pull_token="t",
    )
    check_spec(spec)


@SETTINGS
@given(spoiled(LABEL, longest=63))
@examples("evil\n")
def test_the_provisioner_refuses_a_spec_whose_names_hold_a_hostile_character(name):
    with pytest.raises(ValueError):
        check_spec(RegistrySpec(org="default", name=name, hostname="ok.registry.example.com", pull_token="t"))
    with pytest.raises(ValueError):
        check_spec(
            RegistrySpec(
                org="default", name="ok", hostname="ok.registry.example.com", pull_token="t", pull_namespaces=(name,)
            )
        )


@SETTINGS
@given(spoiled(st.just("images.example.com"), longest=253))
@examples("images.example.com\n")
def test_a_custom_domain_with_a_hostile_character_is_refused(domain):
    refuses(lambda d: custom_domains.normalize(d, "registry.localhost"), domain)


# -- members, tokens, keys, patterns, days, times, numbers --------------------------------------


@pytest.fixture(scope="module")
def org(tmp_path_factory):
    db = open_database(f"sqlite:///{tmp_path_factory.mktemp('validators') / 'berth.db'}")
    yield Organization.create(name="acme")
    db.close()


def owner_of(org: Organization) -> Subject:
    return Subject(name="owner", roles={org.id: "owner"})


@SETTINGS
@given(spoiled(SUBJECT, longest=255))
@examples("alice\n", "alice\x00", "alicé")
def test_a_member_subject_with_a_hostile_character_is_refused_and_not_stored(org, subject):
    refuses(members.check_subject, subject)
    refuses(lambda s: members.put_member(org, s, "reader", owner_of(org)), subject)
    assert not Member.select().where(Member.subject == subject).exists()


@SETTINGS
@given(spoiled(TOKEN_NAME, longest=100))
@examples("ci\n", "ci\x00", "c①")
def test_a_token_name_with_a_hostile_character_is_refused_and_not_stored(org, name):
    refuses(lambda n: tokens.create_token(org, owner_of(org), n), name)
    assert not AccessToken.select().where(AccessToken.name == name).exists()


@SETTINGS
@given(spoiled(st.sampled_from(["30d", "12h", "15m", "90s"])))
@examples("30d\n")
def test_a_token_lifetime_with_a_hostile_character_is_refused(value):
    refuses(tokens.parse_duration, value)


@SETTINGS
@given(st.text(st.sampled_from(string.digits + "²①١٣５"), min_size=1, max_size=8).map(lambda n: n + "s"))
@examples("١s", "²s", "9" * 5000 + "s")
def test_a_token_lifetime_is_ascii_digits_or_refused_never_a_crash(value):
    try:
        tokens.parse_duration(value)
    except RegistryError as refused:
        assert refused.status == 400
        return
    assert value[:-1].isascii() and value[:-1].isdigit()


@SETTINGS
@given(st.one_of(st.text(max_size=30), st.sampled_from(["١", "0_1", "+1", " 1", "1\n", "²", "9" * 30])))
def test_a_token_id_from_a_url_is_ascii_digits_or_not_found(raw):
    try:
        token_id = tokens.parse_id(raw)
    except RegistryError as refused:
        assert refused.code == "NOT_FOUND"
        return
    assert raw.isascii() and raw.isdigit() and token_id == int(raw)


@SETTINGS
@given(spoiled(st.from_regex(r"[!-~]{1,20}", fullmatch=True), longest=255))
@examples("key\n", "ké")
def test_an_idempotency_key_with_a_hostile_character_is_refused(key):
    class Create:
        idempotent = ("POST",)

    env = falcon.testing.create_environ(method="POST")
    env["HTTP_IDEMPOTENCY_KEY"] = key  # as waitress hands it over; create_environ would strip it
    req = falcon.Request(env)
    req.context.subject = Subject(name="owner")
    refuses(lambda _: Idempotency().process_resource(req, falcon.Response(), Create(), {}), key)


@SETTINGS
@given(spoiled(GLOB, longest=255))
@examples("release/*\n")
def test_a_repository_pattern_with_a_hostile_character_is_refused(pattern):
    refuses(immutable_tags.validate, [pattern])
    refuses(retention.parse_policy, {"overrides": [{"repositories": pattern, "keep_last": 1}]})


@SETTINGS
@given(spoiled(GLOB, longest=128))
@examples("v*\n")
def test_a_tag_pattern_with_a_hostile_character_is_refused(pattern):
    refuses(retention.parse_policy, {"keep_patterns": [pattern]})


@SETTINGS
@given(spoiled(DAY, longest=10))
@examples("2026-11-29\n", "２０２６-11-29", "٢٠٢٦-11-29")
def test_a_day_with_a_hostile_character_is_refused(day):
    refuses(lambda d: metering.parse_day(d, "since"), day)


@SETTINGS
@given(
    st.one_of(
        spoiled(st.just("2026-11-29T12:00:00Z"), longest=40),
        st.datetimes(dt.datetime(1, 1, 1), dt.datetime(1, 1, 1, 0, 59)).map(lambda t: t.isoformat() + "+01:00"),
        st.datetimes(dt.datetime(9999, 12, 31, 23)).map(lambda t: t.isoformat() + "-01:00"),
    )
)
@examples("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00")
def test_a_time_with_a_hostile_character_or_off_the_calendar_in_utc_is_refused(value):
    refuses(lambda v: audit.parse_time(v, "since"), value)


@SETTINGS
@given(st.one_of(ANY_TEXT, st.text(st.sampled_from(string.digits + "²①١٣５"), min_size=1, max_size=12)))
@examples("²", "①", "١٠", "10\n", "9" * 5000)
def test_a_page_limit_is_ascii_digits_or_refused(raw):
    req = falcon.testing.create_req(query_string="limit=" + falcon.uri.encode_value(raw))
    try:
        limit = pagination.limit_of(req)
    except RegistryError as refused:
        assert refused.status == 400
        return
    assert raw.isascii() and raw.isdigit() and limit == int(raw)


@SETTINGS
@given(
    st.one_of(
        ANY_TEXT.map(lambda t: "bytes=" + t),
        st.tuples(
            st.text(st.sampled_from(string.digits + "²١"), max_size=30),
            st.text(st.sampled_from(string.digits + "²١"), max_size=5000),
        ).map(lambda p: f"bytes={p[0]}-{p[1]}"),
    )
)
@examples("bytes=0-" + "9" * 5000, "bytes=-" + "9" * 5000, "bytes=0-1\n", "bytes=١-٢")
def test_a_range_header_is_served_or_refused_as_range_invalid_never_crashes(header):
    try:
        start, end = parse_range(header, 1000)
    except RegistryError as refused:
        assert refused.code == "RANGE_INVALID"
        return
    assert 0 <= start <= end < 1000 and header.isascii()


@SETTINGS
@given(spoiled(st.sampled_from(["pull", "push,pull", "*"])))
def test_a_scope_whose_actions_hold_a_hostile_character_grants_nothing(actions):
    if not any(c.isspace() for c in actions):  # whitespace separates scopes: the rest is a scope of its own
        assert parse_scopes([f"repository:app:{actions}"]) == []
