"""A waitress channel that refuses a TLS handshake at once on a plain-HTTP port.

Clients try HTTPS first even for an insecure registry, and fall back to HTTP only when that
fails. waitress would wait for HTTP headers that never come, so every client stalled for its
TLS handshake timeout (10 s) on each connection. A TLS record starts with byte 0x16, which no
HTTP request does: answer it with a 400 and close, as Go's HTTP server and Distribution do.
"""

from __future__ import annotations

from waitress.channel import HTTPChannel

from app.edge import spool

TLS_HANDSHAKE = 0x16
REFUSAL = (
    b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
    b"Client sent a TLS handshake to a plain-HTTP port: use http://, or TLS at the gateway.\n"
)


class PlainHTTPChannel(HTTPChannel):
    _first_bytes_seen = False

    def received(self, data: bytes) -> bool:
        if not self._first_bytes_seen and data:
            self._first_bytes_seen = True
            if data[0] == TLS_HANDSHAKE:
                with self.outbuf_lock:
                    self.outbufs[-1].append(REFUSAL)
                    self.current_outbuf_count += len(REFUSAL)
                    self.total_outbufs_len += len(REFUSAL)
                self.close_when_flushed = True
                return True
        with spool.receiving(self):  # a body that starts spooling now knows its request
            return super().received(data)
