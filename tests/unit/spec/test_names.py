import pytest

from app.spec.errors import RegistryError
from app.spec.names import check_registry, check_repository, check_tag


@pytest.mark.parametrize("name", ["a", "a/b", "a-b/c_d", "a__b", "a.b/c--d/e", "x" * 255])
def test_valid_repositories(name):
    assert check_repository(name) == name


@pytest.mark.parametrize(
    "name", ["", "A", "a/", "/a", "a//b", "a/../b", "..", "a..b", "-a", "a-", "a___b", "x" * 256, "a b"]
)
def test_invalid_repositories(name):
    with pytest.raises(RegistryError) as e:
        check_repository(name)
    assert e.value.code == "NAME_INVALID"


@pytest.mark.parametrize("tag", ["latest", "v1.0", "_x", "A-b.C_d", "t" * 128])
def test_valid_tags(tag):
    assert check_tag(tag) == tag


@pytest.mark.parametrize("tag", [".x", "-x", "t" * 129, "a/b", "a:b"])
def test_invalid_tags(tag):
    with pytest.raises(RegistryError):
        check_tag(tag)


@pytest.mark.parametrize("name", ["default", "a", "team-1", "a" * 63])
def test_valid_registry_names(name):
    assert check_registry(name) == name


@pytest.mark.parametrize("name", ["", "A", "-a", "a-", "a_b", "a.b", "a" * 64, "v2", "api"])
def test_invalid_registry_names(name):
    with pytest.raises(RegistryError):
        check_registry(name)
