import pytest

from app.oci.blobs import parse_range
from app.spec.errors import RegistryError


@pytest.mark.parametrize(
    "header,size,expected",
    [
        ("bytes=0-0", 10, (0, 0)),
        ("bytes=0-", 10, (0, 9)),
        ("bytes=2-100", 10, (2, 9)),
        ("bytes=-3", 10, (7, 9)),
        ("bytes=-30", 10, (0, 9)),
    ],
)
def test_parse_range(header, size, expected):
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    "header,size",
    [
        ("bytes=10-", 10),
        ("bytes=3-2", 10),
        ("bytes=-0", 10),
        ("bytes=-", 10),
        ("bytes=0-1,3-4", 10),
        ("bits=0-1", 10),
        ("bytes=0-0", 0),
        ("bytes=-1", 0),
    ],
)
def test_unsatisfiable(header, size):
    with pytest.raises(RegistryError) as e:
        parse_range(header, size)
    assert e.value.status == 416 and e.value.headers["Content-Range"] == f"bytes */{size}"
