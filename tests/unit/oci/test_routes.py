import pytest

from app.oci.routes import Route, match
from app.services.endpoints import platform_registry as registry_from_host

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    "path,route",
    [
        ("/v2/", Route("base")),
        ("/v2", Route("base")),
        ("/v2/_catalog", Route("catalog")),
        ("/v2/r/a/tags/list", Route("tags", "r/a")),
        ("/v2/r/a/b/manifests/latest", Route("manifest", "r/a/b", "latest")),
        ("/v2/r/a/blobs/uploads/", Route("uploads", "r/a")),
        ("/v2/r/a/blobs/uploads", Route("uploads", "r/a")),
        ("/v2/r/a/blobs/uploads/123", Route("upload", "r/a", "123")),
        (f"/v2/r/a/blobs/{D}", Route("blob", "r/a", D)),
        (f"/v2/r/a/referrers/{D}", Route("referrers", "r/a", D)),
        # A repository may contain words that are also route words.
        ("/v2/r/blobs/x/manifests/v1", Route("manifest", "r/blobs/x", "v1")),
        ("/v2/r/manifests/tags/list", Route("tags", "r/manifests")),
    ],
)
def test_match(path, route):
    assert match(path) == route


@pytest.mark.parametrize("path", ["/v2/r/a", "/v2/r/a/blobs", "/v2/r/a/manifests/", "/v2/r/a/blobs/a/b"])
def test_no_match(path):
    assert match(path) is None


def test_registry_from_host():
    assert registry_from_host("team.registry.localhost", "registry.localhost") == "team"
    assert registry_from_host("TEAM.registry.localhost.", "registry.localhost") == "team"
    assert registry_from_host("a.b.registry.localhost", "registry.localhost") is None
    assert registry_from_host("registry.localhost", "registry.localhost") is None
    assert registry_from_host("127.0.0.1", "registry.localhost") is None
    assert registry_from_host("evilregistry.localhost", "registry.localhost") is None
