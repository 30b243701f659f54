#!/usr/bin/env python3
"""Push and pull one large layer through a real Berth server and report wall time and the
server's peak RSS (VmHWM from /proc), to check that blobs stream instead of being buffered.

    .venv/bin/python scripts/large_layer.py --size-gib 2 [--chunk-mib 64]

It starts `berth serve` on a free port with a temporary data dir (or `--data-dir`), pushes the
layer monolithically (POST + PUT) and in chunks (PATCH), pulls it back, and checks the digest.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.server import Server  # noqa: E402

BLOCK = 1024 * 1024


def blocks(total: int, seed: bytes):
    """Deterministic pseudo-random data, generated on the fly (nothing held in memory)."""
    block = hashlib.sha512(seed).digest() * (BLOCK // 64)
    sent = 0
    while sent < total:
        n = min(BLOCK, total - sent)
        yield block[:n]
        sent += n


def digest_of(total: int, seed: bytes) -> str:
    h = hashlib.sha256()
    for b in blocks(total, seed):
        h.update(b)
    return "sha256:" + h.hexdigest()


class Sized:
    """`n` bytes from a block generator, as a file with a length (so requests sends
    Content-Length rather than chunked transfer encoding)."""

    def __init__(self, gen, n: int) -> None:
        self.gen, self.left, self.buf = gen, n, b""

    def __len__(self) -> int:
        return self.left + len(self.buf)

    def read(self, size: int = -1) -> bytes:
        while self.left > 0 and (size < 0 or len(self.buf) < size):
            b = next(self.gen)
            self.buf += b
            self.left -= len(b)
        size = len(self.buf) if size < 0 else size
        out, self.buf = self.buf[:size], self.buf[size:]
        return out


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_kib, self.stop = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak_kib = max(self.peak_kib, int(line.split()[1]))
            except FileNotFoundError:
                return
            time.sleep(0.1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-gib", type=float, default=2.0)
    ap.add_argument("--chunk-mib", type=int, default=64)
    ap.add_argument("--data-dir")
    args = ap.parse_args()
    size = int(args.size_gib * 1024**3)
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="berth-large-")) / "data"
    server = Server(data_dir, token="berth_large_layer_" + os.urandom(8).hex()).start()
    sampler = RssSampler(server.process.pid)
    sampler.start()
    s = server.session()
    base = f"{server.url}/v2/default/large"
    try:
        print(f"server pid {server.process.pid}, data dir {data_dir}; layer {size / 1024**3:.2f} GiB", flush=True)
        results = []

        digest = digest_of(size, b"mono")
        t = time.monotonic()
        loc = s.post(f"{base}/blobs/uploads/").headers["Location"]
        r = s.put(server.url + loc, params={"digest": digest}, data=blocks(size, b"mono"))
        assert r.status_code == 201, r.text
        results.append(("push monolithic (POST+PUT)", time.monotonic() - t))
        print(f"  {results[-1][0]}: {results[-1][1]:.1f}s", flush=True)

        digest2 = digest_of(size, b"chunked")
        chunk = args.chunk_mib * BLOCK
        t = time.monotonic()
        loc = s.post(f"{base}/blobs/uploads/").headers["Location"]
        gen, offset = blocks(size, b"chunked"), 0
        while offset < size:
            n = min(chunk, size - offset)

            r = s.patch(server.url + loc, data=Sized(gen, n), headers={"Content-Range": f"{offset}-{offset + n - 1}"})
            assert r.status_code == 202, r.text
            loc, offset = r.headers["Location"], offset + n
        r = s.put(server.url + loc, params={"digest": digest2})
        assert r.status_code == 201, r.text
        results.append((f"push chunked ({args.chunk_mib} MiB PATCHes)", time.monotonic() - t))
        print(f"  {results[-1][0]}: {results[-1][1]:.1f}s", flush=True)

        t = time.monotonic()
        h = hashlib.sha256()
        with s.get(f"{base}/blobs/{digest}", stream=True) as r:
            assert r.status_code == 200
            for b in r.iter_content(BLOCK):
                h.update(b)
        assert "sha256:" + h.hexdigest() == digest, "pulled bytes differ"
        results.append(("pull", time.monotonic() - t))
        print(f"  {results[-1][0]}: {results[-1][1]:.1f}s", flush=True)
    finally:
        sampler.stop.set()
        sampler.join()
        server.stop()

    mib = size / BLOCK
    print(f"\n{'step':40} {'seconds':>8} {'MB/s':>8}")
    for name, secs in results:
        print(f"{name:40} {secs:8.1f} {mib * 1.048576 / secs:8.0f}")
    print(f"server peak RSS (VmHWM): {sampler.peak_kib / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
