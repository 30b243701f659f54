"""The HTTP server: the only package that imports waitress.

- process.py and workers.py: `berth serve`, one process or `--workers N` (one per CPU by default)
  supervised, with the counter table they share in memory (app/counters/windows.py);
- composition.py: the composition root, every service and background thread of a process,
  started and stopped in one place;
- plain_http.py, inline.py, spool.py, spool_dirs.py, blob_body.py: waitress's channels, parser,
  dispatcher and buffers as Berth runs them (each says which internals it leans on;
  tests/unit/server/test_waitress_seam.py checks them against the pinned version);
- metrics_listener.py: `/metrics` on an address of its own.

The application sees the server only through app/edge/spooled_body.py (a request body spooled
whole to a file) and app/edge/file_body.py (a response body read from a file).
"""
