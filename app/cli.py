"""The `berth` command.

- `serve`, `db migrate|status`, `keys ...`, and `admin ...`: operator commands that open the
  server's own database and key directory directly (run them where the server runs);
- `login`, `org`, `registry`, `repo`, `tags`, `credentials`, `token`, `audit`: clients of the
  management API over HTTP, for any deployment (app/client/).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys

from app.config import Settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {k: getattr(args, k, None) for k in ("host", "port", "data_dir", "workers", "metrics_addr")}
    return Settings.load(**overrides)


def _open(settings: Settings):
    """Open (and on first use, create and bootstrap) the registry's database."""
    from app.auth.keys import KeyRing
    from app.db.setup import open_database
    from app.services.registries import bootstrap

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _make_private(settings.data_dir)
    db = open_database(settings.database_url)
    # The token signing key, created here, once: `--workers` processes each load the ring after
    # the fork, and two that found it empty would each sign with a key of their own, refusing
    # each other's tokens until their next rescan.
    KeyRing(settings.signing_keys_dir).load()
    generated = bootstrap(settings.data_dir, settings.bootstrap_token or None)
    if generated:
        print(
            "Created organization 'default', private registry 'default' and an owner token.\n"
            f"Owner token (shown once; also in {settings.data_dir / 'bootstrap-token'}):\n\n"
            f"    {generated}\n\n"
            f"    docker login {settings.host}:{settings.port} -u admin -p <token>\n",
            flush=True,
        )
    return db


def _keep_files_private() -> None:
    """What Berth writes under its data directory (database, blobs, spool, keys, pull Secrets,
    caches) is for its own process only: files 0600 and directories 0700, whatever umask it was
    started with. Set before anything is opened, and inherited by `--workers` and Pulumi."""
    os.umask(0o077)


def _make_private(data_dir) -> None:
    """A data directory made by an earlier version (or by hand) may be 0755: closing it keeps
    what is inside, whatever its own modes, from other users."""
    try:
        os.chmod(data_dir, 0o700)
    except OSError as e:  # not ours (a mount point): say so, the operator decides
        print(f"warning: could not make {data_dir} private (0700): {e.strerror or e}", file=sys.stderr, flush=True)


M_ARENA_MAX = -8  # glibc mallopt parameter


def _cap_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives busy threads malloc arenas of their own (up to 8 per core), and memory freed
    in one is rarely returned: with 16 waitress threads moving 1 MiB buffers, a chunked 1 GiB
    push took the peak RSS from 52 to 91 MiB. Two arenas keep it at 61 MiB. Must run before
    the worker threads start; a no-op off glibc."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, arenas)
    except (OSError, AttributeError):
        pass


def serve(args: argparse.Namespace) -> int:
    from app.server import process, workers
    from app.server.metrics_listener import MetricsListener
    from app.telemetry import logs
    from app.web import create_app

    _cap_malloc_arenas()
    settings = _settings(args)
    logs.configure(settings.log_level, settings.log_format)
    process.check(settings)  # a bad BERTH_INLINE_READS stops here, before any worker starts
    # Bound once, before any worker: every worker serves it and counts into its directory.
    metrics = MetricsListener.open(settings)
    try:
        problem = _provisioner_problem(settings)
        if problem:  # before bootstrapping: no owner token is printed for a server that cannot start
            print(problem, file=sys.stderr)
            return 2
        db = _open(settings)  # migrations and the first-start bootstrap, once, before any worker
        _compile_queries()
        if settings.workers <= 1:
            return process.serve_process(settings, create_app, metrics=metrics)
        _close_all(db)  # each worker process opens its own connections
        return workers.serve_workers(settings, create_app, metrics)
    finally:
        if metrics is not None:  # the supervisor's (or single process's) exit: workers os._exit
            metrics.close()


def _provisioner_problem(settings: Settings) -> str | None:
    """What stops the configured provisioner from running here (e.g. BERTH_PROVISIONER=pulumi
    without the pulumi CLI), or None."""
    from app.lifecycle.from_settings import open_provisioner
    from app.lifecycle.provisioner import ProvisionError

    try:
        open_provisioner(settings).check()
    except (ProvisionError, ValueError) as e:
        return f"error: the {settings.provisioner} provisioner cannot run here: {e}"
    return None


def _compile_queries() -> None:
    """The hot-path queries, compiled once here (the modules that declare them imported first)."""
    import app.server.composition  # noqa: F401 - with app.web: every service and resource, so every Prepared exists
    import app.web  # noqa: F401
    from app.db.prepared import Prepared

    Prepared.compile_all()


def _close_all(db) -> None:
    close_all = getattr(db, "close_all", None)
    close_all() if close_all else db.close()


def _local_command(fn):
    """A command run against the local database as the deployment's operator: open (and
    bootstrap) the database, run, and turn a domain error into its message and exit status 1."""

    @functools.wraps(fn)
    def run(args: argparse.Namespace) -> int:
        from app.spec.errors import RegistryError

        settings = _settings(args)
        _open(settings)
        try:
            return fn(args, settings) or 0
        except RegistryError as e:
            print(f"error: {e.message}", file=sys.stderr)
            return 1

    return run


def _operator(org):
    """The CLI acts as the operator of the deployment: an owner of the organization."""
    from app.auth.subject import Subject

    return Subject(name="cli", roles={org.id: "owner"})


@_local_command
def registry_create(args: argparse.Namespace, settings: Settings) -> None:
    from app.lifecycle import operations
    from app.services import registries

    org = registries.get_org(args.org)
    registry, operation = operations.request_create(
        org, args.name, visibility="public" if args.public else "private", requested_by="cli"
    )
    print(
        f"created {registry.visibility} registry {registry.name!r} in organization {org.name!r}; the "
        f"server's worker provisions it (operation {operation.id})"
    )
    print(f"  push to: {settings.host}:{settings.port}/{registry.name}/<repository>:<tag>")
    print(f"  or:      {registry.name}.{settings.domain}/<repository>:<tag>")


@_local_command
def registry_list(args: argparse.Namespace, settings: Settings) -> None:
    from app.services import registries

    for r in registries.list_registries(registries.get_org(args.org)):
        print(f"{r.name}\t{r.visibility}\t{r.status}")


@_local_command
def token_create(args: argparse.Namespace, settings: Settings) -> None:
    from app.services import registries, tokens

    org = registries.get_org(args.org)
    token, secret = tokens.create_token(
        org,
        _operator(org),
        args.name,
        scope=args.scope,
        role=args.role,
        registry=args.registry,
        expires_in=args.expires_in,
    )
    where = f"registry {args.registry!r}" if args.registry else f"organization {org.name!r}"
    print(
        f"token {token.id} ({token.name}): {token.role} on {where}"
        + (f", expires {token.expires_at.isoformat()}Z" if token.expires_at else ""),
        file=sys.stderr,
    )
    print("the secret is shown once; store it now:", file=sys.stderr)
    print(secret)


@_local_command
def token_list(args: argparse.Namespace, settings: Settings) -> None:
    from app.api.tokens import render_token
    from app.services import registries, tokens

    org = registries.get_org(args.org)
    for t in tokens.list_tokens(org, _operator(org)):
        r = render_token(t)
        state = "revoked" if r["revoked_at"] else "active"
        print(
            f"{r['id']}\t{r['name']}\t{r['role']}\t{r['registry'] or '*'}\t{state}\t"
            f"expires={r['expires_at'] or 'never'}\tlast_used={r['last_used_at'] or 'never'}"
        )


@_local_command
def token_revoke(args: argparse.Namespace, settings: Settings) -> None:
    from app.services import registries, tokens

    org = registries.get_org(args.org)
    tokens.revoke_token(org, _operator(org), args.id)
    print(f"revoked token {args.id}")


@_local_command
def org_sku(args: argparse.Namespace, settings: Settings) -> None:
    from app.db.models import Organization
    from app.services import quotas, registries

    try:
        catalog = quotas.parse_catalog(settings.skus, settings.default_sku)
    except quotas.CatalogError as e:
        raise SystemExit(str(e)) from None
    org = registries.get_org(args.name)
    if args.sku is not None:
        name = None if args.sku == "default" else args.sku
        if name is not None and catalog.get(name) is None:
            raise SystemExit(f"no SKU {name!r}; the catalog has {catalog.names()}")
        Organization.update(sku=name).where(Organization.id == org.id).execute()
        org.sku = name
    print(
        f"organization {org.name!r}: SKU {org.sku or catalog.default!r}"
        + ("" if org.sku else " (the catalog's default)")
    )


@_local_command
def org_create(args: argparse.Namespace, settings: Settings) -> None:
    from app.services import registries, tokens

    org = registries.create_org(args.name)
    token, secret = tokens.create_token(org, _operator(org), "owner", role="owner")
    print(f"created organization {org.name!r} with owner token {token.id} (shown once):", file=sys.stderr)
    print(secret)


@_local_command
def gc_command(args: argparse.Namespace, settings: Settings) -> int:
    """`berth gc [--registry R] [--dry-run] [--grace S]`: collect garbage now, on the server's
    database and blob store, while it keeps serving."""
    import datetime as dt
    import json

    from app.api.gc import render_report
    from app.db.models import Registry
    from app.services import gc
    from app.storage import open_store

    store = open_store(settings.storage_url)
    grace = dt.timedelta(seconds=settings.gc_grace if args.grace is None else args.grace)
    if args.registry:
        chosen = list(Registry.select().where(Registry.name == args.registry))
        if not chosen:
            print(f"error: no registry {args.registry!r}; `berth admin registry list` shows them", file=sys.stderr)
            return 1
    else:
        chosen = list(Registry.select().where(Registry.status != "deleting").order_by(Registry.name))
    reports = []
    for registry in chosen:
        print(
            f"collecting {registry.name} (grace {grace.total_seconds():.0f}s){', dry run' if args.dry_run else ''} ...",
            file=sys.stderr,
            flush=True,
        )
        report = gc.collect(
            registry,
            store,
            grace=grace,
            dry_run=args.dry_run,
            upload_expiry=dt.timedelta(seconds=settings.upload_expiry),
        )
        reports.append(render_report(report))
        if not args.json:
            verb = "would delete" if args.dry_run else "deleted"
            print(
                f"{registry.name}: {verb} {len(report.manifests)} manifest(s), {len(report.blobs)} blob(s) "
                f"({report.bytes_freed} bytes), {report.orphan_files} orphan file(s), "
                f"{report.expired_uploads} idle upload(s)"
            )
    if args.json:
        print(json.dumps(reports, indent=2))
    return 0


def keys_command(args: argparse.Namespace) -> int:
    """`berth keys list|rotate|prune`: the registry-token signing keyring."""
    from app.auth.keys import KeyRing

    settings = _settings(args)
    ring = KeyRing(settings.signing_keys_dir).load()
    if args.action == "rotate":
        key = ring.rotate()
        print(
            f"new signing key {key.kid}; older keys keep verifying until pruned "
            "(prune no sooner than 5 minutes from now, the registry-token lifetime)"
        )
    elif args.action == "prune":
        removed = ring.prune()
        print(f"removed {len(removed)} key(s): {', '.join(removed) or '-'}; signing with {ring.active.kid}")
    else:
        active = ring.active
        for key in ring.keys:
            print(f"{key.kid}\t{'signing' if key is active else 'verify-only'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="berth", description="Berth, an OCI container registry")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", help="where SQLite and blobs live (BERTH_DATA_DIR, default ./var)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", parents=[common], help="run the registry")
    p.add_argument("--host", help="listen address (BERTH_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port (BERTH_PORT, default 5000)")
    p.add_argument(
        "--workers",
        help="server processes sharing the port: auto (one per CPU this process may use: its affinity, "
        "or its cgroup CPU quota when lower) or a number; 1 is a single process (BERTH_WORKERS, default auto)",
    )
    p.add_argument(
        "--metrics-addr",
        help="host:port of the Prometheus /metrics listener, off the public port (BERTH_METRICS_ADDR, default: none)",
    )
    p.set_defaults(func=serve)

    from app.client.commands import add_global_options
    from app.client.commands import add_parsers as add_client_parsers

    add_global_options(parser, suppress=False)
    add_client_parsers(sub)  # login, org, registry, repo, tags, credentials, token, audit (HTTP)

    admin = sub.add_parser(
        "admin",
        help="operator commands on the local database (where the server runs)",
        description="Operator commands that open the server's database directly (BERTH_DATABASE_URL or "
        "--data-dir), acting as an owner of the organization; for a remote server use the "
        "HTTP commands (berth login).",
    ).add_subparsers(dest="admin_command", required=True)
    reg = admin.add_parser("registry", help="manage registries").add_subparsers(dest="action", required=True)
    p = reg.add_parser("create", parents=[common], help="create a registry")
    p.add_argument("name")
    p.add_argument("--public", action="store_true", help="allow anonymous pulls")
    p.add_argument("--org", default="default")
    p.set_defaults(func=registry_create)
    p = reg.add_parser("list", parents=[common], help="list registries")
    p.add_argument("--org", default="default")
    p.set_defaults(func=registry_list)

    org = admin.add_parser("org", help="manage organizations").add_subparsers(dest="action", required=True)
    p = org.add_parser("create", parents=[common], help="create an organization and print an owner token")
    p.add_argument("name")
    p.set_defaults(func=org_create)
    p = org.add_parser("sku", parents=[common], help="show or set an organization's storage SKU (berth skus)")
    p.add_argument("name")
    p.add_argument("sku", nargs="?", help="a SKU of BERTH_SKUS, or 'default' (omit to show)")
    p.set_defaults(func=org_sku)

    from app.db.commands import add_parser as add_db_parser  # berth db migrate|status

    add_db_parser(sub, common)

    p = sub.add_parser("gc", parents=[common], help="collect garbage now (on the server's database and storage)")
    p.add_argument("--registry", help="only this registry (default: all)")
    p.add_argument("--dry-run", action="store_true", help="list what would go; delete nothing")
    p.add_argument(
        "--grace",
        type=int,
        help="seconds untouched content is kept (default BERTH_GC_GRACE); 0 only when no push is in flight",
    )
    p.add_argument("--json", action="store_true", help="print the reports as JSON")
    p.set_defaults(func=gc_command)
    keys = sub.add_parser("keys", help="registry-token signing keys").add_subparsers(dest="action", required=True)
    for name, text in (
        ("list", "list keys"),
        ("rotate", "add a new signing key"),
        ("prune", "remove all but the newest key"),
    ):
        p = keys.add_parser(name, parents=[common], help=text)
        p.set_defaults(func=keys_command)

    tok = admin.add_parser("token", help="manage access tokens").add_subparsers(dest="action", required=True)
    p = tok.add_parser("create", parents=[common], help="issue an access token (printed once)")
    p.add_argument("name")
    p.add_argument("--scope", choices=["pull", "push"], help="pull (reader) or push (developer); default pull")
    p.add_argument("--role", choices=["reader", "developer", "admin", "owner"], help="instead of --scope")
    p.add_argument("--registry", help="limit the token to one registry (default: the whole organization)")
    p.add_argument("--expires-in", help="e.g. 3600s, 12h, 30d (default: never)")
    p.add_argument("--org", default="default")
    p.set_defaults(func=token_create)
    p = tok.add_parser("list", parents=[common], help="list access tokens")
    p.add_argument("--org", default="default")
    p.set_defaults(func=token_list)
    p = tok.add_parser("revoke", parents=[common], help="revoke an access token")
    p.add_argument("id", type=int)
    p.add_argument("--org", default="default")
    p.set_defaults(func=token_revoke)
    return parser


def main(argv: list[str] | None = None) -> int:
    _keep_files_private()
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
