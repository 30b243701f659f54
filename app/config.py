"""Settings: one object, read from BERTH_* environment variables and CLI flags.

Every field below is documented in README.md ("Configuration"). CLI flags override the
environment, which overrides the defaults.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

GiB = 1024**3


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def available_cpus(cgroup_root: Path = Path("/sys/fs/cgroup"), proc_cgroup: Path = Path("/proc/self/cgroup")) -> int:
    """The CPUs this process may use: those it may run on (its affinity: `taskset`, cpusets),
    or its cgroup v2 CPU quota (`cpu.max`, e.g. a Kubernetes CPU limit) when that is lower,
    rounded up; at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpu_quota(cgroup_root, proc_cgroup)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def _cgroup_cpu_quota(cgroup_root: Path, proc_cgroup: Path) -> float | None:
    """The lowest `cpu.max` quota (in CPUs) of this process's cgroup v2 and its ancestors, or
    None where there is none ("max") or no cgroup v2."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    own = next((line[3:] for line in lines if line.startswith("0::")), None)
    if own is None:
        return None
    quotas = []
    directory = cgroup_root / own.strip().lstrip("/")
    for level in (directory, *directory.parents):
        try:
            level.relative_to(cgroup_root)
        except ValueError:  # above the cgroup root
            break
        try:
            limit, period = (level / "cpu.max").read_text().split()[:2]
            if limit != "max":
                quotas.append(int(limit) / int(period))
        except (OSError, ValueError, ZeroDivisionError):
            continue
    return min(quotas) if quotas else None


def parse_workers(value: str | int) -> int:
    """BERTH_WORKERS / `--workers`: "auto" (one per CPU this process may use) or a number, 1 or more."""
    text = str(value).strip().lower()
    if text == "auto":
        return available_cpus()
    try:
        workers = int(text)
    except ValueError:
        workers = 0
    if workers < 1:
        raise SystemExit(
            f"BERTH_WORKERS (--workers) is {value!r}: use auto, or a number of server processes (1 or more)"
        )
    return workers


# BERTH_DOMAIN's default: nothing resolves `<registry>.registry.localhost`, so clients are shown
# the path form while it is in use (app/client/endpoints.py, app/api/credentials.py).
DEFAULT_DOMAIN = "registry.localhost"


WORKER_THREADS = 4  # request threads of each `--workers` process unless BERTH_THREADS says otherwise


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 5000
    data_dir: Path = Path("./var")
    # Metadata database; default: SQLite file under the data dir.
    database_url: str = ""
    # Blob store; default: file:// under the data dir. Or gs://bucket[/prefix].
    storage_url: str = ""
    # Answer blob GETs with a 307 to a short-lived signed URL when the store can sign one (GCS).
    storage_redirect: bool = False
    # Registries are also addressed as <registry>.<domain>.
    domain: str = DEFAULT_DOMAIN
    # Registry-token signing keys (ES256 PEM files; newest signs). Default: <data dir>/token-keys.
    token_keys_dir: Path | None = None
    # The platform identity provider (all three set, or none: then only access tokens work).
    oidc_jwks_url: str = ""
    oidc_issuer: str = ""
    oidc_audience: str = ""
    # The claim that carries org roles: {"<org>": "owner"|"admin"|"developer"|"reader"}.
    oidc_roles_claim: str = "orgs"
    # Console sign-in (app/console/sign_in.py): the provider's authorization and token endpoints
    # (both, or neither: then the console asks for an access token), the console's client id
    # (default: the audience) and the scopes it asks for.
    oidc_authorization_url: str = ""
    oidc_token_url: str = ""
    oidc_client_id: str = ""
    oidc_scope: str = "openid"
    # Seconds between the starts of two fetches of the JWKS (a token naming an unknown key sets
    # one off): a rotated key is picked up after at most this long, and made-up keys cannot
    # flood the provider.
    oidc_jwks_cooldown: int = 10
    # Failed logins allowed per client address before it gets 429 (limits notation).
    login_failure_limit: str = "10/minute"
    # Owner credential created on first start; generated when empty.
    bootstrap_token: str = field(default="", repr=False)
    # waitress tuning: worker threads, largest request body, socket read size,
    # and the size past which waitress spools a request body to a temp file.
    threads: int = 16
    # Server processes accepting on the one port (`berth serve --workers`): "auto" (the default,
    # resolved here: one per CPU this process may use) or a number; 1: just this one process.
    # With several, `threads` defaults to WORKER_THREADS each.
    workers: int = field(default_factory=available_cpus)
    max_request_body: int = 64 * GiB
    recv_bytes: int = 256 * 1024
    inbuf_overflow: int = 1024 * 1024
    # Connections (per server process; app/server/plain_http.py): seconds a request's line and
    # headers may take to arrive, seconds an idle keep-alive connection is kept, and the most
    # connections held open (past it, the longest-idle connection waiting for a request is
    # closed to admit the new one).
    header_timeout: int = 20
    keepalive_timeout: int = 60
    max_connections: int = 2048
    # Manifest GET/HEAD and blob HEAD answered on waitress's event-loop thread instead of being
    # handed to a request thread (app/server/inline.py): "auto" (when every call they make is
    # local: SQLite, no Redis, no identity provider), "on" or "off".
    inline_reads: str = "auto"
    # Edge: requests per client address (limits notation), per-route overrides
    # ("/auth/token=60/minute;/v2=2000/10 minutes"), never-limited CIDRs, and shared counters.
    rate_limit: str = "500/10 minutes"
    rate_limit_routes: str = ""
    rate_limit_allow: str = ""
    redis_url: str = ""
    # Where custom-domain TXT records are looked up: "ip[:port]" (comma list); empty: the
    # machine's resolvers (/etc/resolv.conf).
    dns_resolver: str = ""
    # CIDRs of the proxies (the gateway) whose forwarding headers are believed.
    trusted_proxies: str = ""
    # Refuse plain HTTP (as reported by a trusted proxy).
    require_https: bool = False
    # CORS: allowed origins ("*" or a comma list; empty: CORS off) and origins allowed credentials.
    cors_origins: str = ""
    cors_credentials: str = ""
    # Prometheus `/metrics` on a listener of its own, `host:port` (app/server/metrics_listener.py);
    # empty: no metrics are served. Never the public port: the series name every tenant.
    metrics_addr: str = ""
    # Log format: json (default) or text.
    log_format: str = "json"
    # Largest manifest accepted (the distribution spec suggests 4 MiB).
    max_manifest_bytes: int = 4 * 1024 * 1024
    # Client-written JSON (manifests, /api/v1 bodies) nested deeper than this is refused (400),
    # and the largest /api/v1 JSON body or /auth/token form accepted (413 above it).
    max_json_depth: int = 64
    max_api_body_bytes: int = 1024 * 1024
    log_level: str = "info"
    # Lifecycle operations: a worker's lease on a running operation (seconds; a crashed worker's
    # operation is resumed by another after it), attempts for transient failures, poll interval.
    operation_lease: int = 30
    operation_max_attempts: int = 5
    operation_poll: int = 2
    # Garbage collection: how long a blob or manifest nothing references is kept after it was
    # last pushed or touched (protects pushes in flight), how often the background run happens
    # (0: never; `berth gc` still works), and when an idle upload session is cancelled (seconds).
    gc_grace: int = 3600
    gc_interval: int = 3600
    upload_expiry: int = 86400
    # Open upload sessions a registry may have at once (0: no cap); past it a new one gets 429.
    # Idle sessions past upload_expiry are reaped every tenth of it (app/services/upload_expiry.py).
    max_upload_sessions: int = 1000
    # Seconds between sweeps of the spool for dead processes' request bodies (app/server/spool_dirs.py).
    spool_sweep_interval: int = 60
    # Seconds between scheduled applications of every registry's stored retention policy
    # (0: only when applied through the API or CLI).
    retention_interval: int = 86400
    # Provisioning of each registry's Kubernetes footprint (app/lifecycle/from_settings.py):
    # local (YAML under <data dir>/manifests), pulumi (Automation API stacks) or none.
    provisioner: str = "local"
    # Pulumi: state backend (file://... or gs://...; default file://<data dir>/pulumi-state), the
    # directory holding bin/pulumi (default: pulumi on PATH), the secrets provider (default:
    # passphrase, from PULUMI_CONFIG_PASSPHRASE), and the limit on each resource step in seconds.
    pulumi_backend_url: str = ""
    pulumi_root: str = ""
    pulumi_secrets_provider: str = ""
    pulumi_timeout: int = 900
    # A CrossGuard policy pack directory (the repository's policies/) every registry `up` enforces.
    pulumi_policy_pack: str = ""
    # The platform objects a registry's footprint refers to (the platform stack's names).
    platform_namespace: str = "berth"
    platform_service: str = "berth"
    platform_service_port: int = 80
    platform_gateway: str = "berth"
    platform_gateway_listener: str = "https"
    cert_issuer: str = "berth-issuer"
    cert_issuer_kind: str = "ClusterIssuer"
    # Storage SKUs (app/services/quotas.py): a JSON list of SKUs, or the path of a file holding
    # one; empty: the built-in catalog. The SKU of organizations without one (empty: the
    # catalog's SKU marked "default", else its first).
    skus: str = ""
    default_sku: str = ""
    # /readyz fails while the data directory's or the filesystem blob store's disk has fewer free
    # bytes than this (0: never), so pushes go to other replicas before the disk fills.
    min_free_bytes: int = 256 * 1024 * 1024

    ENV_PREFIX = "BERTH_"

    @property
    def signing_keys_dir(self) -> Path:
        """Where the registry-token signing keys live (BERTH_TOKEN_KEYS_DIR; set by `load`)."""
        return Path(self.token_keys_dir) if self.token_keys_dir else self.data_dir / "token-keys"

    @classmethod
    def load(cls, **overrides) -> Settings:
        """Defaults, then BERTH_* environment variables, then explicit overrides (CLI flags)."""
        settings = cls()
        for f in fields(cls):
            raw = os.environ.get(cls.ENV_PREFIX + f.name.upper())
            if raw is not None and raw != "":
                setattr(settings, f.name, parse_workers(raw) if f.name == "workers" else _convert(f.type, raw, f.name))
        for name, value in overrides.items():
            if value is not None:
                setattr(settings, name, parse_workers(value) if name == "workers" else value)
        settings.data_dir = Path(settings.data_dir)
        if settings.workers > 1 and not os.environ.get("BERTH_THREADS") and "threads" not in overrides:
            # A few request threads per process: each keeps a database connection (and its page
            # cache), and threads of one process take turns on its GIL, so past a few they cost
            # CPU too (measured, manifest PUTs of one process, SQLite and PostgreSQL alike: 8
            # threads used ~15% more CPU per push than 4, at a lower rate). Reads are answered
            # on the event loop (app/server/inline.py) and bodies arrive before a thread is
            # taken, so a thread is held only while a request is worked on.
            settings.threads = WORKER_THREADS
        oidc = (settings.oidc_jwks_url, settings.oidc_issuer, settings.oidc_audience)
        if any(oidc) and not all(oidc):
            raise SystemExit("set all of BERTH_OIDC_JWKS_URL, BERTH_OIDC_ISSUER and BERTH_OIDC_AUDIENCE, or none")
        if bool(settings.oidc_authorization_url) != bool(settings.oidc_token_url) or (
            settings.oidc_authorization_url and not all(oidc)
        ):
            raise SystemExit(
                "console sign-in needs BERTH_OIDC_AUTHORIZATION_URL and BERTH_OIDC_TOKEN_URL together, "
                "with BERTH_OIDC_JWKS_URL, BERTH_OIDC_ISSUER and BERTH_OIDC_AUDIENCE"
            )
        if not settings.database_url:
            settings.database_url = f"sqlite:///{(settings.data_dir / 'berth.db').resolve()}"
        if not settings.token_keys_dir:
            settings.token_keys_dir = settings.data_dir / "token-keys"
        settings.token_keys_dir = Path(settings.token_keys_dir)
        if not settings.storage_url:
            settings.storage_url = f"file://{(settings.data_dir / 'storage').resolve()}"
        if settings.provisioner not in ("local", "pulumi", "none"):
            raise SystemExit(f"BERTH_PROVISIONER={settings.provisioner!r}: use local, pulumi or none")
        if not settings.pulumi_backend_url:
            settings.pulumi_backend_url = f"file://{(settings.data_dir / 'pulumi-state').resolve()}"
        return settings


def _convert(type_name, raw: str, name: str):
    type_name = str(type_name)
    try:
        if type_name == "int":
            return int(raw)
        if type_name == "bool":
            return _bool(raw)
        if type_name in ("Path", "Path | None"):
            return Path(raw)
    except ValueError:
        raise SystemExit(f"BERTH_{name.upper()}={raw!r} is not a valid {type_name}") from None
    return raw
