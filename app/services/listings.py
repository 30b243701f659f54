"""Paginated listings of the data plane: tags of a repository, repositories of registries.

Both are in lexical (byte) order and paginate with `n` (page size) and `last` (the last item of
the previous page), as the distribution spec requires.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path

import peewee as pw

from app.db.models import Registry, Repository, Tag, TagVersion
from app.db.prepared import Prepared
from app.db.setup import release_connection
from app.services.repositories import visible

log = logging.getLogger("berth.listings")


_TAGS_AFTER = Prepared(
    lambda repo, last: Tag.select(Tag.name).where((Tag.repository == repo) & (Tag.name > last)).order_by(Tag.name),
    "is",
)


# The version of a repository's tags (raised by triggers on every tag insert, update and delete:
# migration 8), one primary-key read. With the repository's creation time it names one state of
# one repository's tags, in every process and replica: a cached list is never served after the
# tags changed, nor for another repository that reused a deleted one's id.
_TAG_VERSION = Prepared(lambda repo: TagVersion.select(TagVersion.version).where(TagVersion.repository == repo), "i")
CACHED_TAG_NAMES = 100_000  # tag names this process keeps in all (about 6 MiB)
MIN_CACHED_TAGS = 256  # below this, listing costs less than keeping it
# Whether a repository has at least MIN_CACHED_TAGS tags: its MIN_CACHED_TAGS-th name, read from
# the (repository, name) index, where a COUNT of all of them and a read of the repository, built
# by peewee, cost ~1.4 ms of CPU after every tag push into a new repository.
_NTH_TAG = Prepared(
    lambda repo: (
        Tag.select(Tag.name)
        .where(Tag.repository == repo)
        .order_by(Tag.name)
        .limit(pw.SQL("1"))
        .offset(pw.SQL(str(MIN_CACHED_TAGS - 1)))
    ),
    "i",
)
_REPOSITORY = Prepared(lambda repo: Repository.select().where(Repository.id == repo), "i", Repository)


class _Listing:
    """One repository's whole tag list at one version: its JSON array (encoded once) and the
    names (decoded from it only when a page is asked for)."""

    __slots__ = ("key", "_names", "_json")

    def __init__(self, key: str, names: list[str] | None = None, array: bytes | None = None) -> None:
        self.key, self._names, self._json = key, names, array

    @property
    def names(self) -> list[str]:
        if self._names is None:
            self._names = json.loads(self.json())  # the array it was made from
        return self._names

    def json(self) -> bytes:
        if self._json is None:
            self._json = json.dumps(self._names, separators=(",", ":")).encode()
        return self._json

    def __len__(self) -> int:
        # From the array without decoding it: tag names never contain commas (or quotes).
        if self._names is not None:
            return len(self._names)
        array = self.json()  # the array it was made from
        return array.count(b",") + (array != b"[]")


class _TagCache:
    """Tag lists of large repositories, in this process (LRU, bounded by names) and, when a
    directory is configured, in files shared by the processes of this machine, so a worker that
    never listed a repository reads the list another one built rather than querying it again."""

    def __init__(self, directory: Path | None = None) -> None:
        self._lists: OrderedDict[int, _Listing] = OrderedDict()
        self._lock = threading.Lock()
        self.big: set[int] = set()  # repositories seen with MIN_CACHED_TAGS tags or more
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory

    def get(self, repository_id: int, key: str) -> _Listing | None:
        with self._lock:
            hit = self._lists.get(repository_id)
            if hit is not None and hit.key == key:
                self._lists.move_to_end(repository_id)
                return hit
        listing = self._read(repository_id, key)
        return self._remember(repository_id, listing) if listing is not None else None

    def put(self, repository_id: int, key: str, names: list[str]) -> _Listing:
        listing = _Listing(key, names)
        self._write(repository_id, listing)
        return self._remember(repository_id, listing)

    def _remember(self, repository_id: int, listing: _Listing) -> _Listing:
        if len(listing) > CACHED_TAG_NAMES:
            return listing
        with self._lock:
            self._lists[repository_id] = listing
            self._lists.move_to_end(repository_id)
            while sum(len(v) for v in self._lists.values()) > CACHED_TAG_NAMES:
                self._lists.popitem(last=False)
        return listing

    # Files: the key on the first line, then the JSON array of the names.
    def _read(self, repository_id: int, key: str) -> _Listing | None:
        if self.directory is None:
            return None
        try:
            with open(self.directory / str(repository_id), "rb") as f:
                if f.readline().rstrip(b"\n") != key.encode():
                    return None
                return _Listing(key, array=f.read())
        except FileNotFoundError:
            return None

    def _write(self, repository_id: int, listing: _Listing) -> None:
        if self.directory is None:
            return
        path = self.directory / str(repository_id)
        staging = path.with_name(f".{repository_id}.{os.getpid()}.{threading.get_ident()}")
        try:
            with open(staging, "wb") as f:
                f.write(listing.key.encode() + b"\n" + listing.json())
            os.replace(staging, path)  # readers see a whole file, old or new
        except OSError as e:  # a cache: failing to keep it only costs the next lister a query
            log.warning("could not write the tag list cache %s: %s", path, e)
            staging.unlink(missing_ok=True)


def _key(repository: Repository) -> str:
    rows = _TAG_VERSION.rows(repository.id)
    return f"{repository.created_at.isoformat()} {rows[0][0] if rows else 0}"


def _listing(cache: _TagCache, repository: Repository) -> _Listing:
    """A repository's whole tag list: from the cache (this process's, or the file another
    process wrote) when current; else queried, and cached when the repository is large."""
    key = _key(repository)  # read before the list: a stale (key, list) pair never forms
    listing = cache.get(repository.id, key)
    if listing is not None:
        return listing
    names = [row[0] for row in _TAGS_AFTER.rows(repository.id, "")]
    if len(names) < MIN_CACHED_TAGS:
        return _Listing(key, names)
    cache.big.add(repository.id)
    return cache.put(repository.id, key, names)


WARM_AFTER = 2.0  # seconds without tag changes in a repository before its list is rebuilt


class _Warmer:
    """Rebuilds the cached list of a large repository shortly after its tags change (once the
    pushes have paused), on a background thread, so the next listing (on any worker of this
    machine) reads it instead of querying every tag. A repository with fewer than
    MIN_CACHED_TAGS tags costs one compiled read of the tag index and is left alone. Never
    needed for correctness: a list is always checked against the tag version."""

    def __init__(self, cache: _TagCache) -> None:
        self._cache = cache
        self._due: dict[int, float] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def changed(self, repository_id: int) -> None:
        if self._cache.directory is None:
            return  # nowhere to share a list: the next listing builds its own
        with self._lock:
            pending = repository_id in self._due
            self._due[repository_id] = time.monotonic() + WARM_AFTER
        if not pending:
            # Already pending: the thread wakes at its earlier time and sees the new one. A push
            # that woke it every time cost a thread switch per push.
            self._wake.set()

    def start(self) -> None:
        if self._cache.directory is not None:
            self._thread = threading.Thread(target=self._run, name="tag-lists", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                now = time.monotonic()
                ready = [r for r, due in self._due.items() if due <= now]
                for r in ready:
                    del self._due[r]
                wait = min(self._due.values(), default=now + 3600) - now
            for repository_id in ready:
                try:
                    self._warm(repository_id)
                except Exception:  # noqa: BLE001 - a cache: the next listing queries instead
                    log.warning("rebuilding the tag list of repository %s failed", repository_id, exc_info=True)
                finally:
                    release_connection()
            if not ready:
                self._wake.wait(max(wait, 0.01))
                self._wake.clear()

    def _warm(self, repository_id: int) -> None:
        if not _NTH_TAG.rows(repository_id):
            return  # small (or gone)
        repository = _REPOSITORY.first(repository_id)
        if repository is not None:
            _listing(self._cache, repository)


class TagLists:
    """Repositories' tag lists, with this process's cache of the large ones. With a `directory`,
    the lists are shared with the other processes of this machine through files there (created
    if missing), and rebuilt in the background after tags change, between `start` and `stop`;
    without one they are kept per process only."""

    def __init__(self, directory: Path | None = None) -> None:
        self.cache = _TagCache(directory)
        self._warmer = _Warmer(self.cache)

    def start(self) -> TagLists:
        self._warmer.start()
        return self

    def stop(self) -> None:
        self._warmer.stop()

    def changed(self, repository: Repository) -> None:
        """Tell the cache that a repository's tags changed (after the change is committed)."""
        self._warmer.changed(repository.id)

    def tags(self, repository: Repository, n: int | None, last: str | None) -> tuple[list[str], bool]:
        """(page, more): up to `n` tag names after `last`, and whether more follow. Whole lists,
        and pages of repositories known to be large, come from the cache, checked against the
        tag version every time; other pages cost one query."""
        if (n is None and not last) or repository.id in self.cache.big:
            names = _listing(self.cache, repository).names
            start = bisect.bisect_right(names, last) if last else 0
            return _page(names[start:] if n is None else names[start : start + n + 1], n)
        cursor = _TAGS_AFTER.cursor(repository.id, last or "")
        return _page([row[0] for row in (cursor.fetchall() if n is None else cursor.fetchmany(n + 1))], n)

    def all_tags_json(self, repository: Repository) -> bytes:
        """The JSON array of all of a repository's tags (encoded once per version when large)."""
        return _listing(self.cache, repository).json()


def repositories(registries: list[Registry], prefixed: bool, n: int | None, last: str | None) -> tuple[list[str], bool]:
    """Repositories of the given registries; named `<registry>/<repo>` when `prefixed`."""
    if not registries:
        return [], False
    if prefixed:
        full = Registry.name.concat("/").concat(Repository.name)
        query = Repository.select(full.alias("full")).join(Registry)
    else:
        full = Repository.name
        query = Repository.select(full.alias("full"))
    # Only repositories holding something committed: a row an upload session made is not one yet.
    query = query.where(Repository.registry.in_([r.id for r in registries]) & visible())
    if last:
        query = query.where(full > last)
    rows = _limit(query.order_by(full), n).tuples()
    return _page([row[0] for row in rows], n)


def _limit(query, n: int | None):
    return query if n is None else query.limit(n + 1)


def _page(items: list[str], n: int | None) -> tuple[list[str], bool]:
    if n is not None and len(items) > n:
        return items[:n], True
    return items, False
