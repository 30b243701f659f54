"""A transaction left open by a defect is rolled back where the request (or background turn)
ends, on the real SQLite and the real PostgreSQL: the request that left it is answered 503
instead of as done, nothing it wrote is committed, and the next request on the same thread
commits on its own (on SQLite, no longer holding the write lock from other connections).

The leak is made on purpose here (a transaction entered and never exited): no code of Berth's
is known to leave one, but a request that did would otherwise take in every later request of its
thread, each answered as done with nothing committed (see app/db/setup.py
`end_transaction_left_open`). The app is the production middleware and error handlers over two
small resources, run with falcon's test client (the check is in middleware: no server needed)."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading

import falcon
import falcon.testing
import pytest

from app.db.models import Organization
from app.db.setup import ReleaseConnection, end_transaction_left_open, patience, transaction
from app.edge import error_responses
from app.services.periodic import Periodic
from app.spec.errors import RegistryError


def _leak() -> None:
    """Take a write turn and enter a transaction, and never give either back: the defect this
    guards against (class-based, so no generator's finalizer closes it later)."""
    db = Organization._meta.database.obj
    turnstile = getattr(db, "berth_writer", None)
    if turnstile is not None:
        turnstile.enter()
    db.atomic("IMMEDIATE" if turnstile is not None else None).__enter__()


class Leaky:
    def on_post(self, req, resp):
        _leak()
        Organization.create(name=req.get_param("name"))
        resp.media = {"created": True}


class Careful:
    def on_post(self, req, resp):
        with transaction():
            Organization.create(name=req.get_param("name"))
        resp.media = {"created": True}


def _client() -> falcon.testing.TestClient:
    app = falcon.App(middleware=[ReleaseConnection()])
    app.add_error_handler(Exception, error_responses.handle_unexpected)
    app.add_error_handler(falcon.HTTPError, error_responses.handle_http_error)
    app.add_error_handler(RegistryError, error_responses.handle_registry_error)
    app.add_route("/v2/leaky", Leaky())
    app.add_route("/v2/careful", Careful())
    return falcon.testing.TestClient(app)


def test_sqlite_a_request_that_leaves_a_transaction_open_is_a_503_and_writes_nothing(database, tmp_path, caplog):
    client = _client()
    leaked = client.simulate_post("/v2/leaky", params={"name": "leaked"})
    assert leaked.status_code == 503
    assert json.loads(leaked.text)["errors"][0]["code"] == "UNAVAILABLE"
    assert "left open by POST /v2/leaky" in caplog.text
    assert not database.in_transaction() and not database.connection().in_transaction

    # Another thread of this process takes a write turn at once: the leaked one was given back.
    done: list[str] = []

    def write_elsewhere():
        with patience(1.0), transaction():
            Organization.create(name="elsewhere")
        done.append("yes")

    writer = threading.Thread(target=write_elsewhere)
    writer.start()
    writer.join(5)
    assert done == ["yes"]

    # The next request on this thread commits by itself: another connection (as another
    # process would) sees its row and not the leaked one, and can take the write lock.
    assert client.simulate_post("/v2/careful", params={"name": "kept"}).status_code == 200
    other = sqlite3.connect(tmp_path / "berth.db", timeout=1)
    try:
        assert [r[0] for r in other.execute("SELECT name FROM organization ORDER BY name")] == ["elsewhere", "kept"]
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()


def test_postgres_a_request_that_leaves_a_transaction_open_is_a_503_and_writes_nothing(pg):
    client = _client()
    assert client.simulate_post("/v2/leaky", params={"name": "leaked"}).status_code == 503
    assert client.simulate_post("/v2/careful", params={"name": "kept"}).status_code == 200
    db, _ = pg
    assert not db.in_transaction()
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(o.name for o in Organization.select()))
    reader.start()  # another thread: another pooled connection, which sees only what committed
    reader.join()
    assert seen == ["kept"]


def test_a_request_that_closes_its_transactions_is_left_alone(database):
    assert _client().simulate_post("/v2/careful", params={"name": "a"}).status_code == 200
    assert end_transaction_left_open("nothing") is False
    assert [o.name for o in Organization.select()] == ["a"]


def test_a_background_turn_that_leaves_a_transaction_open_is_rolled_back_after_it(database, tmp_path):
    turns = threading.Event()

    class LeakyTurn(Periodic):
        thread_name = "leaky-turn"

        def run_once(self):
            if not turns.is_set():
                _leak()
                Organization.create(name="leaked")
                turns.set()

    job = LeakyTurn(dt.timedelta(seconds=0.01)).start()
    try:
        assert turns.wait(5)
        # Once the turn is over, another connection can write: the leaked one let go.
        other = sqlite3.connect(tmp_path / "berth.db", timeout=5)
        try:
            other.execute("INSERT INTO organization (name, created_at) VALUES ('other', '2026-01-01')")
            other.commit()
            assert [r[0] for r in other.execute("SELECT name FROM organization")] == ["other"]
        finally:
            other.close()
    finally:
        job.stop()


@pytest.fixture(autouse=True)
def _no_leak_after():
    yield
    end_transaction_left_open("the test's end")  # a failed assertion must not leak into the next test
