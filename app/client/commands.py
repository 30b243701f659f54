"""`berth login|logout|org|registry|skus|usage|repo|tags|credentials|token|audit`: the management API from the
command line. Tables for people by default, `--json` for scripts; every failure is one
`error: ...` line on stderr and exit status 1."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import re
import sys
import uuid
from urllib.parse import quote

from app.client import config, retention
from app.client.context import Context, fail, guarded, http_command
from app.client.endpoints import HOST_FORM_HINT, host_form_works
from app.client.http import ApiError, Client, stderr
from app.client.output import emit_json, fields, short_digest, size, table, when

OPERATION_TIMEOUT = 1800.0  # seconds `registry create|delete` wait (Pulumi stacks can take minutes)


# --- login ---------------------------------------------------------------------------------


@guarded
def login(args: argparse.Namespace) -> int:
    try:
        url = config.normalize_url(args.url)
    except ValueError as e:
        return fail(str(e))
    if args.token is not None:
        token = args.token
    elif args.token_stdin:
        token = sys.stdin.readline()
    elif sys.stdin.isatty():
        try:
            token = getpass.getpass(f"Access token for {url}: ")
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            return 1
    else:
        return fail("no token: give --token-stdin (and pipe the token in) or --token")
    token = token.strip()
    if not token:
        return fail("the token is empty")
    client = Client(url, token)
    try:
        orgs = client.get("/api/v1/orgs").get("orgs") or []
    except ApiError as e:
        message = str(e)
        if message.startswith("not logged in or token rejected"):
            message = f"{url} rejected the token; nothing was saved"
        return fail(message)
    names = [o["name"] for o in orgs]
    org = args.org
    if org and org not in names:
        return fail(
            f"the token is not a member of organization {org!r} (its organizations: "
            f"{', '.join(names) or 'none'}); nothing was saved"
        )
    if not org and names:
        org = config.DEFAULT_ORG if config.DEFAULT_ORG in names else names[0]
    try:
        saved = config.save(url, token, org)
    except OSError as e:
        return fail(f"cannot save the login: {e}")
    if args.json:
        emit_json({"url": url, "org": org, "orgs": orgs, "config": str(saved)})
    else:
        member = ", ".join(f"{o['name']} ({o['role']})" for o in orgs) or "no organizations"
        print(f"Logged in to {url}: {member}.")
        print(f"Default organization: {org or config.DEFAULT_ORG}. Saved to {saved} (mode 0600).")
    return 0


@guarded
def logout(args: argparse.Namespace) -> int:
    removed = config.remove()
    print(f"removed {config.path()}" if removed else f"not logged in ({config.path()} does not exist)")
    return 0


# --- organizations ---------------------------------------------------------------------------


@http_command
def org_list(ctx: Context) -> None:
    orgs = ctx.client.get("/api/v1/orgs").get("orgs") or []
    if ctx.json:
        return emit_json({"orgs": orgs})
    table(
        ["NAME", "ROLE", "CREATED"],
        [(o["name"], o["role"], when(o.get("created_at"))) for o in orgs],
        empty="no organizations",
    )


@http_command
def org_members(ctx: Context) -> None:
    members = ctx.client.get(ctx.org_path("/members")).get("members") or []
    if ctx.json:
        return emit_json({"members": members})
    table(
        ["SUBJECT", "ROLE", "ADDED", "BY"],
        [(m["subject"], m["role"], when(m.get("created_at")), m.get("created_by")) for m in members],
        empty=f"organization {ctx.org!r} has no members",
    )


# --- registries -------------------------------------------------------------------------------


def _progress(ctx: Context):
    return lambda line: stderr(f"  {line}")


def _follow(ctx: Context, operation: dict) -> dict:
    return ctx.client.follow(operation, timeout=ctx.args.timeout, progress=_progress(ctx))


@http_command
def registry_create(ctx: Context) -> int:
    args = ctx.args
    body: dict = {"name": args.name, "visibility": "public" if args.public else "private"}
    if args.pull_namespace:
        body["pull_namespaces"] = args.pull_namespace
    created = ctx.client.json(
        "POST", ctx.org_path("/registries"), json=body, headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    operation = created.get("operation") or {}
    if args.no_wait:
        if ctx.json:
            emit_json(created)
            return 0
        print(
            f"creating {created['visibility']} registry {created['name']!r} in organization {ctx.org!r}: "
            f"operation {operation.get('id')} ({operation.get('state')})"
        )
        print(f"  follow: berth registry show {created['name']}")
        return 0
    stderr(
        f"creating {body['visibility']} registry {args.name!r} in organization {ctx.org!r} "
        f"(operation {operation.get('id')})"
    )
    op = _follow(ctx, operation)
    if op["state"] != "succeeded":
        if ctx.json:
            emit_json({**created, "operation": op})
        return fail(
            f"creating registry {args.name!r} failed: {op.get('error') or 'see the operation log'} "
            f"(operation {op.get('id')}; berth operation retry {op.get('id')} runs it again)"
        )
    registry = ctx.client.get(ctx.registry_path(args.name))
    if ctx.json:
        emit_json({**registry, "operation": op})
        return 0
    print(f"created {registry['visibility']} registry {registry['name']!r} in organization {ctx.org!r}")
    print(f"  push to: {registry['path_endpoint']}/<repository>:<tag>")
    if host_form_works(registry.get("endpoint")):
        print(f"  or:      {registry['endpoint']}/<repository>:<tag>")
    else:
        print(f"  ({HOST_FORM_HINT})")
    return 0


@http_command
def registry_list(ctx: Context) -> None:
    items = ctx.client.paged(ctx.org_path("/registries"), "registries", limit=ctx.args.limit)
    if ctx.json:
        return emit_json({"registries": items})
    rows = []
    for r in items:
        usage = r.get("usage") or {}
        rows.append(
            (
                r["name"],
                r["visibility"],
                r["status"],
                usage.get("repositories"),
                usage.get("tags"),
                size(usage.get("stored_bytes")),
                r.get("path_endpoint"),
            )
        )
    table(
        ["NAME", "VISIBILITY", "STATUS", "REPOS", "TAGS", "SIZE", "ENDPOINT"],
        rows,
        empty=f"no registries in organization {ctx.org!r}",
    )


def _show_registry(r: dict) -> None:
    usage = r.get("usage") or {}
    fields(
        [
            ("name", r["name"]),
            ("organization", r.get("org")),
            ("visibility", r["visibility"]),
            ("status", r["status"]),
            ("endpoint", r.get("endpoint") if host_form_works(r.get("endpoint")) else r.get("path_endpoint")),
            ("path endpoint", r.get("path_endpoint") if host_form_works(r.get("endpoint")) else None),
            (
                "host form",
                None if host_form_works(r.get("endpoint")) else f"{r.get('endpoint')}: off ({HOST_FORM_HINT})",
            ),
            ("custom domain", _custom_domain_line(r)),
            ("pull namespaces", ", ".join(r.get("pull_namespaces") or [])),
            ("created", f"{when(r.get('created_at'))} by {r.get('created_by') or '-'}"),
            ("repositories", usage.get("repositories")),
            ("tags", usage.get("tags")),
            ("manifests", usage.get("manifests")),
            ("stored", f"{size(usage.get('stored_bytes'))} in {usage.get('blobs', 0)} blobs" if usage else None),
            ("sku", r.get("sku")),
            ("quota", _quota_line(r.get("quota"))),
            ("immutable tags", ", ".join(r.get("immutable_tags") or []) or "none (tags may be overwritten)"),
            ("manifest policy", _manifest_policy_line(r.get("manifest_policy"))),
            ("operation", (r.get("links") or {}).get("operation")),
        ]
    )


def _custom_domain_line(r: dict) -> str | None:
    if not r.get("custom_domain"):
        return None
    if r.get("custom_domain_status") == "verified":
        return f"{r['custom_domain']} (verified)"
    record = r.get("custom_domain_verification") or {}
    return (
        f"{r['custom_domain']} (pending: publish TXT {record.get('name')} = {record.get('value')!r}, "
        f"then `berth registry verify-domain {r['name']}`)"
    )


def _manifest_policy_line(policy: dict | None) -> str | None:
    if not policy:
        return None
    line = {
        "strict": "strict (every referenced blob and child manifest must be pushed first)",
        "index-sparse": "index-sparse (an index's child manifests may be absent)",
        "sparse": "sparse (referenced blobs and child manifests may be absent)",
    }.get(policy["mode"], policy["mode"])
    platforms = policy.get("required_platforms") or []
    return line + (f"; required platforms: {', '.join(platforms)}" if platforms else "")


def _quota_line(quota: dict | None) -> str | None:
    if not quota:
        return None
    used = size(quota.get("used_bytes"))
    if quota.get("limit_bytes") is None:
        return f"{used} used, no hard limit ({size(quota.get('included_bytes'))} included)"
    percent = 100 * quota["used_bytes"] / quota["limit_bytes"] if quota["limit_bytes"] else 100.0
    return (
        f"{used} of {size(quota['limit_bytes'])} used ({percent:.0f}%), {size(quota.get('remaining_bytes'))} remaining"
    )


@http_command
def registry_show(ctx: Context) -> None:
    registry = ctx.client.get(ctx.registry_path(ctx.args.name))
    if ctx.json:
        return emit_json(registry)
    _show_registry(registry)


@http_command
def registry_set(ctx: Context) -> int:
    args = ctx.args
    changes: dict = {}
    if args.visibility:
        changes["visibility"] = args.visibility
    if args.sku:
        changes["sku"] = None if args.sku == "default" else args.sku
    if args.immutable_tags is not None:
        changes["immutable_tags"] = [p.strip() for p in args.immutable_tags.split(",") if p.strip()]
    if args.custom_domain is not None:
        changes["custom_domain"] = args.custom_domain or None
    if args.require_platform and not args.manifest_policy:
        return fail("--require-platform goes with --manifest-policy index-sparse or sparse")
    if args.manifest_policy:
        changes["manifest_policy"] = {"mode": args.manifest_policy, "required_platforms": args.require_platform or []}
    if not changes:
        return fail(
            "nothing to change: give --visibility, --sku, --immutable-tags, --custom-domain or --manifest-policy"
        )
    registry = ctx.client.json("PATCH", ctx.registry_path(args.name), json=changes)
    if ctx.json:
        emit_json(registry)
        return 0
    said = []
    if "visibility" in changes:
        said.append(f"is now {registry['visibility']}")
    if "sku" in changes:
        said.append(f"has SKU {registry.get('sku')!r} ({_quota_line(registry.get('quota')) or '-'})")
    if "immutable_tags" in changes:
        patterns = registry.get("immutable_tags") or []
        said.append(
            f"has immutable tags in repositories matching {', '.join(patterns)}"
            if patterns
            else "allows tag overwrites in every repository"
        )
    if "custom_domain" in changes:
        said.append(
            f"claims {_custom_domain_line(registry)}" if registry.get("custom_domain") else "has no custom domain"
        )
    if "manifest_policy" in changes:
        said.append(f"has manifest policy {_manifest_policy_line(registry.get('manifest_policy'))}")
    print(f"registry {registry['name']!r} " + "; ".join(said))
    return 0


@http_command
def registry_verify_domain(ctx: Context) -> int:
    registry = ctx.client.json("POST", ctx.registry_path(ctx.args.name) + "/custom-domain/verify")
    if ctx.json:
        emit_json(registry)
        return 0
    operation = registry.get("operation")
    print(
        f"custom domain {registry['custom_domain']} of registry {registry['name']!r} is verified"
        + (f"; routing it: operation {operation['id']}" if operation else "")
    )
    return 0


def _gib(n) -> str:
    return "none" if n is None else size(n)


@http_command
def skus(ctx: Context) -> None:
    catalog = ctx.client.get("/api/v1/skus")
    if ctx.json:
        return emit_json(catalog)
    table(
        ["NAME", "TITLE", "INCLUDED", "HARD LIMIT", "PRICE/GiB OVER", "DEFAULT"],
        [
            (
                s["name"],
                s.get("title"),
                size(s.get("included_bytes")),
                _gib(s.get("hard_limit_bytes")),
                "-" if s.get("price_per_gib") is None else f"{s['price_per_gib']:g} {s.get('currency', '')}".strip(),
                "yes" if s.get("default") else "",
            )
            for s in catalog.get("skus", [])
        ],
    )


@http_command
def usage(ctx: Context) -> None:
    args = ctx.args
    params = {
        k: v
        for k, v in {"since": args.since, "until": args.until, "repository": args.repository}.items()
        if v is not None
    }
    report = ctx.client.get(ctx.registry_path(args.registry, "/usage"), params=params)
    if ctx.json:
        return emit_json(report)
    storage, traffic = report.get("storage") or {}, report.get("traffic") or {}
    fields(
        [
            ("registry", report.get("registry")),
            ("stored", f"{size(storage.get('stored_bytes'))} in {storage.get('blobs', 0)} blobs"),
            ("repositories", storage.get("repositories")),
            ("tags", storage.get("tags")),
            ("manifests", storage.get("manifests")),
            ("sku", (report.get("quota") or {}).get("sku")),
            ("quota", _quota_line(report.get("quota"))),
            (
                f"traffic {report.get('since')}..{report.get('until')}",
                f"{traffic.get('pulls', 0)} pulls ({size(traffic.get('pull_bytes', 0))}), "
                f"{traffic.get('pushes', 0)} pushes ({size(traffic.get('push_bytes', 0))})",
            ),
        ]
    )
    print()
    table(
        ["REPOSITORY", "STORED", "BLOBS", "TAGS", "MANIFESTS"],
        [
            (r["name"], size(r["stored_bytes"]), r["blobs"], r["tags"], r["manifests"])
            for r in report.get("repositories", [])
        ],
        empty="no repositories",
    )
    if report.get("days"):
        print()
        table(
            ["DAY", "REPOSITORY", "PULLS", "PULLED", "PUSHES", "PUSHED"],
            [
                (d["day"], d["repository"], d["pulls"], size(d["pull_bytes"]), d["pushes"], size(d["push_bytes"]))
                for d in report["days"]
            ],
        )


@http_command
def registry_delete(ctx: Context) -> int:
    args = ctx.args
    if not args.yes:
        if not sys.stdin.isatty():
            return fail(
                f"deleting registry {args.name!r} removes all its repositories and images: add --yes to confirm"
            )
        try:
            typed = input(
                f"Delete registry {args.name!r} with all its repositories and images? Type its name to confirm: "
            )
        except EOFError:
            typed = ""
        if typed.strip() != args.name:
            return fail("not confirmed; nothing deleted")
    answer = ctx.client.json("DELETE", ctx.registry_path(args.name))
    operation = answer.get("operation") or {}
    if args.no_wait:
        if ctx.json:
            emit_json(answer)
            return 0
        print(f"deleting registry {args.name!r}: operation {operation.get('id')} ({operation.get('state')})")
        return 0
    stderr(f"deleting registry {args.name!r} (operation {operation.get('id')})")
    op = _follow(ctx, operation)
    if ctx.json:
        emit_json({"operation": op})
    if op["state"] != "succeeded":
        return fail(
            f"deleting registry {args.name!r} failed: {op.get('error') or 'see the operation log'} "
            f"(operation {op.get('id')}; berth operation retry {op.get('id')} runs it again)"
        )
    if not ctx.json:
        print(f"deleted registry {args.name!r}")
    return 0


def _show_operation(op: dict) -> None:
    fields(
        [
            ("operation", op["id"]),
            ("kind", f"{op.get('kind')} registry {op.get('registry')!r} in organization {op.get('org')!r}"),
            ("state", op.get("state")),
            ("steps", ", ".join(f"{s.get('name')}={s.get('state')}" for s in op.get("steps") or [])),
            ("attempts", op.get("attempts")),
            ("error", op.get("error")),
            ("requested", f"{when(op.get('created_at'))} by {op.get('requested_by') or '-'}"),
            ("finished", when(op.get("finished_at")) if op.get("finished_at") else None),
        ]
    )
    for line in op.get("log") or []:
        print(f"  {line}")


def _operation_path(op_id: str) -> str:
    return f"/api/v1/operations/{quote(op_id, safe='')}"


def _get_operation(ctx: Context, op_id: str) -> dict:
    try:
        return ctx.client.get(_operation_path(op_id))
    except ApiError as e:
        if e.status != 404:
            raise
        raise ApiError(
            f"operation {op_id!r} not found (or not in your organizations): operation ids are printed "
            f"by berth registry create|delete, and berth registry show NAME links a registry's latest "
            f"one",
            404,
        ) from None


@http_command
def operation_show(ctx: Context) -> int:
    op = _get_operation(ctx, ctx.args.id)
    if ctx.args.follow:
        op = _follow(ctx, op)
    if ctx.json:
        emit_json(op)
    else:
        _show_operation(op)
    return 1 if ctx.args.follow and op["state"] == "failed" else 0


@http_command
def operation_retry(ctx: Context) -> int:
    _get_operation(ctx, ctx.args.id)  # an unknown id is told where ids come from
    op = ctx.client.json("POST", _operation_path(ctx.args.id) + "/retry")
    if not ctx.args.no_wait:
        stderr(f"retrying operation {op['id']} ({op.get('kind')} registry {op.get('registry')!r})")
        op = _follow(ctx, op)
    if ctx.json:
        emit_json(op)
    elif ctx.args.no_wait:
        print(f"operation {op['id']} is {op.get('state')} again")
    if op["state"] == "failed":
        return fail(f"operation {op['id']} failed again: {op.get('error') or 'see its log'}")
    if not ctx.json and not ctx.args.no_wait:
        print(f"operation {op['id']} succeeded")
    return 0


# --- browsing --------------------------------------------------------------------------------


@http_command
def repo_list(ctx: Context) -> None:
    path = ctx.args.path or ""
    if path and not path.endswith("/"):
        path += "/"
    entries = ctx.client.paged(
        ctx.registry_path(ctx.args.registry, "/repositories"),
        "entries",
        params={"path": path or None},
        limit=ctx.args.limit,
    )
    if ctx.json:
        return emit_json({"path": path, "entries": entries})
    rows: list[tuple] = []
    for e in entries:
        if e["type"] == "folder":
            rows.append((e["path"], "folder", e.get("repositories"), None, None, None))
        else:
            rows.append((e["path"], "repository", None, e.get("tags"), size(e.get("size")), when(e.get("last_push"))))
    table(
        ["PATH", "TYPE", "REPOS", "TAGS", "SIZE", "LAST PUSH"],
        rows,
        empty=f"no repositories in {ctx.args.registry!r}" + (f" under {path!r}" if path else ""),
    )


# Artifact types by their manifest's artifactType or config media type (app/services/manifests.py).
_IMAGE_CONFIGS = ("application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json")
_KINDS = {
    "application/vnd.cncf.helm.config.v1+json": "helm chart",
    "application/vnd.dev.cosign.artifact.sig.v1+json": "signature (cosign)",
    "application/vnd.dev.sigstore.bundle.v0.3+json": "signature (sigstore)",
    "application/vnd.dev.sigstore.bundle+json;version=0.3": "signature (sigstore)",
    "application/vnd.cncf.notary.signature": "signature (notation)",
    "application/vnd.in-toto+json": "attestation",
    "application/spdx+json": "sbom (spdx)",
    "application/vnd.cyclonedx+json": "sbom (cyclonedx)",
}


def _kind(tag: dict) -> str:
    """What a tag holds: an image, an index, or an artifact (by its type)."""
    if tag.get("platforms") or "index" in (tag.get("media_type") or "") or "list" in (tag.get("media_type") or ""):
        return "index"
    artifact = tag.get("artifact_type")
    if not artifact or artifact in _IMAGE_CONFIGS:
        return "image"
    return _KINDS.get(artifact, artifact)


def _single_platform(ctx: Context, registry: str, repo: str, digest: str) -> str:
    """An image manifest's platform, from its config (the manifest detail's preview)."""
    try:
        detail = ctx.client.get(
            ctx.registry_path(registry, f"/repositories/{quote(repo, safe='/')}/manifests/{quote(digest, safe=':')}")
        )
    except ApiError:
        return ""
    image = (detail.get("config") or {}).get("image") or {}
    if not image.get("os"):
        return ""
    return "/".join(p for p in (image.get("os"), image.get("architecture"), image.get("variant")) if p)


@http_command
def tags(ctx: Context) -> int:
    registry, slash, repo = ctx.args.reference.partition("/")
    if not slash or not registry or not repo:
        return fail(f"give REGISTRY/REPOSITORY, such as default/team/app (not {ctx.args.reference!r})")
    repo = repo.split("@", 1)[0]
    items = ctx.client.paged(
        ctx.registry_path(registry, f"/repositories/{quote(repo, safe='/')}/tags"), "tags", limit=ctx.args.limit
    )
    if ctx.json:
        emit_json({"repository": repo, "tags": items})
        return 0
    rows, platform_of = [], {}
    for t in items:
        kind = _kind(t)
        if t.get("platforms"):
            platforms = ", ".join(p.get("platform") or "?" for p in t["platforms"])
        elif kind == "image":
            if t.get("digest") not in platform_of:
                platform_of[t.get("digest")] = _single_platform(ctx, registry, repo, t.get("digest") or "")
            platforms = platform_of[t.get("digest")]
        else:
            platforms = ""
        rows.append(
            (t["name"], kind, short_digest(t.get("digest")), size(t.get("size")), platforms, when(t.get("pushed_at")))
        )
    table(["TAG", "TYPE", "DIGEST", "SIZE", "PLATFORMS", "PUSHED"], rows, empty=f"{registry}/{repo} has no tags")
    return 0


# --- credentials and tokens ---------------------------------------------------------------------


def _expires_body(value: str | None) -> dict:
    """`--expires-in`: absent leaves the server's default (90 days), `never` asks for none."""
    if value is None:
        return {}
    return {"expires_in": None if value.lower() == "never" else value}


def _registry_tokens(ctx: Context, registry: str) -> list[dict]:
    return [t for t in ctx.client.paged(ctx.org_path("/tokens"), "tokens") if t.get("registry") == registry]


@http_command
def credentials(ctx: Context) -> int:
    args = ctx.args
    if args.list:
        return _credentials_list(ctx)
    push, name, revoke = bool(args.push), args.name, None
    if args.rotate is not None:
        old = next((t for t in _registry_tokens(ctx, args.registry) if t["id"] == args.rotate), None)
        if old is None:
            return fail(
                f"registry {args.registry!r} has no credentials with token id {args.rotate} "
                f"(berth credentials {args.registry} --list shows them)"
            )
        if _token_state(old) == "revoked":
            return fail(f"token {old['id']} ({old['name']}) is already revoked: issue new credentials instead")
        push, name, revoke = old.get("scope") == "push", name or old["name"], old
    body: dict = {"push": push, **_expires_body(args.expires_in)}
    for key, value in (("k8s_secret_name", args.k8s_secret), ("namespace", args.namespace), ("name", name)):
        if value is not None:
            body[key] = value
    issued = ctx.client.json(
        "POST",
        ctx.registry_path(args.registry, "/credentials"),
        json=body,
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    if revoke is not None:  # the new password exists before the old one stops working
        ctx.client.json("DELETE", ctx.org_path(f"/tokens/{revoke['id']}"))
    fmt = args.format or ("k8s" if args.k8s_secret or args.namespace else "login")
    if ctx.json:
        emit_json(issued if revoke is None else {**issued, "revoked_token": revoke["id"]})
        return 0
    token = issued.get("token") or {}
    if fmt == "dockerconfigjson":
        emit_json(issued["dockerconfigjson"])
    elif fmt == "k8s":
        import yaml

        sys.stdout.write(yaml.safe_dump(issued["kubernetes_secret"], sort_keys=False, default_flow_style=False))
    else:
        servers = issued.get("servers") or []
        usable = [s for s in servers if host_form_works(s)]
        fields(
            [
                ("server", usable[0] if usable else None),
                ("also", ", ".join(usable[1:])),
                ("username", issued["username"]),
                ("password", issued["password"]),
                ("access", f"{'push and pull' if push else 'pull only'} on registry {args.registry!r}"),
                ("expires", when(token.get("expires_at")) if token.get("expires_at") else "never"),
            ]
        )
        print()
        print(f"  {issued['docker_login']}")
        if usable and len(usable) < len(servers):
            print(f"  images: {usable[0]}/{args.registry}/<repository>:<tag>  ({HOST_FORM_HINT})")
    what = "" if fmt == "login" else " inside this document"
    stderr(
        f"token {token.get('id')} ({token.get('name')}): the password{what} is shown once; "
        f"revoke with berth token revoke {token.get('id')}"
    )
    if revoke is not None:
        stderr(f"revoked the old token {revoke['id']} ({revoke['name']})")
    return 0


def _credentials_list(ctx: Context) -> int:
    items = _registry_tokens(ctx, ctx.args.registry)
    if ctx.json:
        emit_json({"registry": ctx.args.registry, "tokens": items})
        return 0
    table(
        ["ID", "NAME", "ACCESS", "STATE", "EXPIRES", "LAST USED", "CREATED BY"],
        [
            (
                t["id"],
                t["name"],
                t.get("scope") or t["role"],
                _token_state(t),
                when(t.get("expires_at")) if t.get("expires_at") else "never",
                when(t.get("last_used_at")) if t.get("last_used_at") else "never",
                t.get("created_by"),
            )
            for t in items
        ],
        empty=f"no credentials for registry {ctx.args.registry!r}",
    )
    return 0


def _token_state(t: dict) -> str:
    if t.get("revoked_at"):
        return "revoked"
    expires = t.get("expires_at")
    if expires:
        try:
            at = dt.datetime.fromisoformat(expires.replace("Z", "+00:00"))
            if at.tzinfo is None:
                at = at.replace(tzinfo=dt.UTC)
            if at <= dt.datetime.now(dt.UTC):
                return "expired"
        except ValueError:
            pass
    return "active"


@http_command
def token_create(ctx: Context) -> None:
    args = ctx.args
    body: dict = {"name": args.name}
    for key, value in (
        ("scope", args.scope),
        ("role", args.role),
        ("registry", args.registry),
        ("expires_in", args.expires_in),
    ):
        if value is not None:
            body[key] = value
    created = ctx.client.json(
        "POST", ctx.org_path("/tokens"), json=body, headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    if ctx.json:
        return emit_json(created)
    where = f"registry {created['registry']!r}" if created.get("registry") else f"organization {ctx.org!r}"
    stderr(
        f"token {created['id']} ({created['name']}): {created['role']} on {where}"
        + (f", expires {when(created['expires_at'])}" if created.get("expires_at") else "")
    )
    stderr("the secret is shown once; store it now:")
    print(created["token"])


@http_command
def token_list(ctx: Context) -> None:
    items = ctx.client.paged(ctx.org_path("/tokens"), "tokens")
    if ctx.json:
        return emit_json({"tokens": items})
    table(
        ["ID", "NAME", "ROLE", "REGISTRY", "STATE", "EXPIRES", "LAST USED", "CREATED BY"],
        [
            (
                t["id"],
                t["name"],
                t["role"],
                t.get("registry") or "*",
                _token_state(t),
                when(t.get("expires_at")) if t.get("expires_at") else "never",
                when(t.get("last_used_at")) if t.get("last_used_at") else "never",
                t.get("created_by"),
            )
            for t in items
        ],
        empty=f"no access tokens in organization {ctx.org!r}",
    )


@http_command
def token_revoke(ctx: Context) -> None:
    known = next((t for t in ctx.client.paged(ctx.org_path("/tokens"), "tokens") if t["id"] == ctx.args.id), None)
    if known is not None and known.get("revoked_at"):
        if ctx.json:
            return emit_json({"id": ctx.args.id, "revoked": True, "already_revoked": True})
        print(f"token {known['id']} ({known['name']}) was already revoked on {when(known['revoked_at'])}")
        return None
    ctx.client.json("DELETE", ctx.org_path(f"/tokens/{ctx.args.id}"))  # unknown ids: the server's 404
    if ctx.json:
        return emit_json({"id": ctx.args.id, "revoked": True})
    print(f"revoked token {ctx.args.id}" + (f" ({known['name']})" if known else ""))


# --- audit -------------------------------------------------------------------------------------

# ASCII digits, few enough to stay on the calendar (99999d is 273 years); anything else goes to
# the server as given, which refuses it.
_RELATIVE = re.compile(r"([0-9]{1,5})([smhd])")


def _time_arg(value: str | None) -> str | None:
    """An ISO 8601 time as given, or `30m`, `12h`, `7d`: that long ago."""
    if value is None:
        return None
    m = _RELATIVE.fullmatch(value.strip())
    if not m:
        return value
    seconds = int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _target(e: dict) -> str:
    detail = e.get("detail") or {}
    if "token_id" in detail and not e.get("repository"):  # token and credentials events: which token
        name = f" ({detail['token_name']})" if detail.get("token_name") else ""
        return f"{e.get('registry') or ''} token {detail['token_id']}{name}".strip()
    target = e.get("registry") or ""
    if e.get("repository"):
        target += f"/{e['repository']}"
    if e.get("tag"):
        target += f":{e['tag']}"
    elif e.get("digest"):
        target += f"@{short_digest(e['digest'])}"
    return target


@http_command
def audit(ctx: Context) -> None:
    args = ctx.args
    params = {
        "actor": args.actor,
        "action": args.action,
        "registry": args.registry,
        "since": _time_arg(args.since),
        "until": _time_arg(args.until),
    }
    events = ctx.client.paged(ctx.org_path("/audit"), "events", params=params, limit=args.limit or None)
    if ctx.json:
        return emit_json({"events": events})
    table(
        ["TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "STATUS", "CLIENT"],
        [
            (
                when(e.get("time")),
                e.get("actor"),
                e.get("action"),
                _target(e),
                e.get("outcome"),
                e.get("status"),
                e.get("client_ip"),
            )
            for e in events
        ],
        empty="no audit events match",
    )


# --- argparse ---------------------------------------------------------------------------------


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return n


def add_global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """`--json` and `--org`, accepted before the command and after it."""
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="print JSON instead of tables",
    )
    parser.add_argument(
        "--org", default=default, help="organization (default: the one saved by berth login, else 'default'; BERTH_ORG)"
    )


def add_parsers(sub) -> None:
    """The HTTP commands on the top-level subparsers of `berth`."""
    g = argparse.ArgumentParser(add_help=False)
    add_global_options(g, suppress=True)
    wait = argparse.ArgumentParser(add_help=False)
    wait.add_argument("--no-wait", action="store_true", help="return once the server accepted the request")
    wait.add_argument("--timeout", type=float, default=OPERATION_TIMEOUT, help="seconds to wait (default 1800)")
    limit = argparse.ArgumentParser(add_help=False)
    limit.add_argument("--limit", type=_positive, help="at most this many items (default: all pages)")

    p = sub.add_parser(
        "login",
        parents=[g],
        help="save the URL and an access token of a Berth server",
        description="Verify an access token against the server and save it (mode 0600) in "
        "$BERTH_CONFIG or $XDG_CONFIG_HOME/berth/credentials.json.",
    )
    p.add_argument("url", help="e.g. http://127.0.0.1:5000 or https://registry.example.com")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--token", help="the access token (visible to other local users in ps; prefer --token-stdin)")
    src.add_argument("--token-stdin", action="store_true", help="read the token from standard input")
    p.set_defaults(func=login)
    p = sub.add_parser("logout", help="forget the saved login")
    p.set_defaults(func=logout)

    org = sub.add_parser("org", help="organizations (over the API)").add_subparsers(dest="action", required=True)
    org.add_parser("list", parents=[g], help="the organizations you belong to").set_defaults(func=org_list)
    org.add_parser("members", parents=[g], help="members of the organization").set_defaults(func=org_members)

    reg = sub.add_parser("registry", help="registries (over the API)").add_subparsers(dest="action", required=True)
    p = reg.add_parser("create", parents=[g, wait], help="create a registry and wait until it is ready")
    p.add_argument("name")
    p.add_argument("--public", action="store_true", help="allow anonymous pulls (default: private)")
    p.add_argument(
        "--pull-namespace",
        action="append",
        metavar="NS",
        help="a Kubernetes namespace that gets a pull Secret (repeatable)",
    )
    p.set_defaults(func=registry_create)
    p = reg.add_parser("list", parents=[g, limit], help="list registries with their usage")
    p.set_defaults(func=registry_list)
    p = reg.add_parser("show", parents=[g], help="one registry: endpoints, status, usage")
    p.add_argument("name")
    p.set_defaults(func=registry_show)
    p = reg.add_parser("set", parents=[g], help="change a registry")
    p.add_argument("name")
    p.add_argument("--visibility", choices=["public", "private"])
    p.add_argument("--sku", help="a storage SKU from `berth skus` (owner or admin); 'default': the organization's")
    p.add_argument(
        "--immutable-tags",
        metavar="PATTERNS",
        help="comma-separated repository globs whose tags cannot be overwritten or deleted, "
        "e.g. 'release/*,prod-*'; '' allows overwrites everywhere",
    )
    p.add_argument(
        "--custom-domain",
        metavar="HOST",
        help="claim a hostname of yours (routed once verified: see `registry show`); '' removes it",
    )
    p.add_argument(
        "--manifest-policy",
        choices=["strict", "index-sparse", "sparse"],
        help="what a manifest push may reference without it being pushed first: strict (nothing), "
        "index-sparse (an index's child manifests), sparse (blobs too)",
    )
    p.add_argument(
        "--require-platform",
        action="append",
        metavar="OS/ARCH[/VARIANT]",
        help="with index-sparse or sparse: an index's child for this platform must be present (repeatable)",
    )
    p.set_defaults(func=registry_set)
    p = reg.add_parser(
        "verify-domain",
        parents=[g],
        help="check the custom domain's TXT record now and, once it proves the claim, route it",
    )
    p.add_argument("name")
    p.set_defaults(func=registry_verify_domain)
    p = reg.add_parser("delete", parents=[g, wait], help="delete a registry and everything in it")
    p.add_argument("name")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=registry_delete)

    ops = sub.add_parser("operation", help="registry lifecycle operations").add_subparsers(dest="action", required=True)
    p = ops.add_parser("show", parents=[g], help="an operation's state, steps and log")
    p.add_argument("id")
    p.add_argument("--timeout", type=float, default=OPERATION_TIMEOUT, help="seconds --follow waits")
    p.add_argument("--follow", "-f", action="store_true", help="wait until it succeeds or fails")
    p.set_defaults(func=operation_show)
    p = ops.add_parser("retry", parents=[g, wait], help="run a failed operation again")
    p.add_argument("id")
    p.set_defaults(func=operation_retry)

    p = sub.add_parser("skus", parents=[g], help="the storage SKUs: included storage, hard limit, price")
    p.set_defaults(func=skus)
    p = sub.add_parser("usage", parents=[g], help="a registry's storage, quota and daily pull/push traffic")
    p.add_argument("registry")
    p.add_argument("--since", help="first day, YYYY-MM-DD (default: 29 days before --until)")
    p.add_argument("--until", help="last day, YYYY-MM-DD (default: today, UTC)")
    p.add_argument("--repository", help="only this repository")
    p.set_defaults(func=usage)

    repo = sub.add_parser("repo", help="repositories").add_subparsers(dest="action", required=True)
    p = repo.add_parser("list", parents=[g, limit], help="the repositories of a registry, one folder level at a time")
    p.add_argument("registry")
    p.add_argument("--path", help="a folder, such as team/ (default: the top level)")
    p.set_defaults(func=repo_list)

    p = sub.add_parser("tags", parents=[g, limit], help="the tags of a repository: digest, size, platforms")
    p.add_argument("reference", metavar="REGISTRY/REPOSITORY")
    p.set_defaults(func=tags)

    p = sub.add_parser(
        "credentials",
        parents=[g],
        help="issue registry credentials: docker login, dockerconfigjson or a Kubernetes pull Secret",
    )
    p.add_argument("registry")
    p.add_argument("--push", action="store_true", help="push as well as pull (default: pull only)")
    p.add_argument("--expires-in", help="e.g. 3600s, 12h, 30d, or never (default: 90d)")
    p.add_argument("--list", action="store_true", help="the registry's credentials (tokens), with their state")
    p.add_argument(
        "--rotate",
        type=int,
        metavar="TOKEN_ID",
        help="issue a new password for these credentials (same name and access), then revoke the old",
    )
    p.add_argument("--name", help="the token's name (default: <registry>-pull or -push)")
    p.add_argument("--k8s-secret", metavar="NAME", help="the Secret's name (implies --format k8s)")
    p.add_argument("--namespace", help="the Secret's namespace (implies --format k8s)")
    p.add_argument(
        "--format",
        choices=["login", "dockerconfigjson", "k8s"],
        help="login: username/password (default); dockerconfigjson: a Docker/skopeo auth file; "
        "k8s: a Secret for kubectl apply -f -",
    )
    p.set_defaults(func=credentials)

    tok = sub.add_parser("token", help="access tokens (over the API)").add_subparsers(dest="action", required=True)
    p = tok.add_parser("create", parents=[g], help="issue an access token (printed once)")
    p.add_argument("name")
    p.add_argument("--scope", choices=["pull", "push"], help="pull (reader) or push (developer); default pull")
    p.add_argument("--role", choices=["reader", "developer", "admin", "owner"], help="instead of --scope")
    p.add_argument("--registry", help="limit the token to one registry (default: the whole organization)")
    p.add_argument("--expires-in", help="e.g. 3600s, 12h, 30d (default: never)")
    p.set_defaults(func=token_create)
    tok.add_parser("list", parents=[g], help="list access tokens").set_defaults(func=token_list)
    p = tok.add_parser("revoke", parents=[g], help="revoke an access token")
    p.add_argument("id", type=int)
    p.set_defaults(func=token_revoke)

    p = sub.add_parser("audit", parents=[g], help="the audit trail, newest first")
    p.add_argument("--actor", help="e.g. token:1 or an IdP subject")
    p.add_argument("--action", help="an action or its prefix: registry, registry.create, manifest.push ...")
    p.add_argument("--registry")
    p.add_argument("--since", help="ISO 8601 time, or 30m / 12h / 7d ago")
    p.add_argument("--until", help="ISO 8601 time, or 30m / 12h / 7d ago")
    p.add_argument("--limit", type=_positive, default=100, help="at most this many events (default 100; 0: all)")
    p.set_defaults(func=audit)

    retention.add_parsers(sub, g)
