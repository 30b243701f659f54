"""A real DNS server on loopback for custom-domain verification: Debian's dnsmasq, answering
only the TXT records a test gives it (no upstream, no hosts file). dnsmasq reads TXT records at
start, so changing them restarts it on the same port."""

from __future__ import annotations

import socket
import subprocess
import time

import dns.message
import dns.query

from tests.support import processes
from tests.support.components import require_tool

INSTALL = "apt-get install dnsmasq-base"


def _free_port() -> int:
    """A port free on 127.0.0.1 for both TCP and UDP (dnsmasq listens on both)."""
    while True:
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port


class DnsServer:
    def __init__(self) -> None:
        self.binary = require_tool("dnsmasq", INSTALL)
        self.port = _free_port()
        self.started = False
        self.records: dict[str, list[str]] = {}
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        """What BERTH_DNS_RESOLVER takes."""
        return f"127.0.0.1:{self.port}"

    def set_txt(self, name: str, *values: str) -> None:
        """Publish (or, with no values, remove) TXT records of `name`, then serve them."""
        if values:
            self.records[name] = list(values)
        else:
            self.records.pop(name, None)
        self.restart()

    def restart(self) -> DnsServer:
        self.stop()
        args = [
            self.binary,
            "--keep-in-foreground",
            f"--port={self.port}",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--conf-file=/dev/null",
            "--pid-file=",
            "--local=/#/",  # authoritative for every name: what it does not hold is NXDOMAIN
            "--user=root" if _is_root() else "--user=",
            "--log-facility=-",
        ]
        args += [f"--txt-record={name},{value}" for name, values in self.records.items() for value in values]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            self._wait_ready()
        except RuntimeError:
            if self.started:
                raise
            self.port = _free_port()  # taken between choosing it and dnsmasq binding it: once more
            return self.restart()
        self.started = True
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dnsmasq exited: {self.process.stderr.read().decode(errors='replace')}")
            try:
                dns.query.udp(dns.message.make_query("ready.test.", "TXT"), "127.0.0.1", port=self.port, timeout=0.2)
                return
            except (dns.exception.Timeout, OSError):
                time.sleep(0.05)
        raise RuntimeError("dnsmasq did not answer within 10 s")

    def stop(self) -> None:
        processes.stop(self.process, timeout=5)
        self.process = None


def _is_root() -> bool:
    import os

    return os.geteuid() == 0
