"""`berth retention show|set|preview|apply REGISTRY`: a registry's retention policy over the API
(rules: app/services/retention.py, docs/api.md#retention)."""

from __future__ import annotations

import argparse
import json
import sys

from app.client.context import Context, fail, http_command
from app.client.http import ApiError
from app.client.output import emit_json, fields, short_digest, size, table, when

RULES = ("keep_last", "keep_patterns", "expire_days", "delete_untagged")


def _path(ctx: Context, suffix: str = "") -> str:
    return ctx.registry_path(ctx.args.registry, "/retention" + suffix)


def _rules_text(rules: dict) -> list[tuple[str, object]]:
    def off(value, unit=""):
        return "off" if value is None else f"{value}{unit}"

    return [
        ("keep last", off(rules.get("keep_last"), " most recently pushed tags per repository")),
        ("keep patterns", ", ".join(rules.get("keep_patterns") or []) or "none"),
        ("expire after", off(rules.get("expire_days"), " days without a push or pull")),
        (
            "delete untagged",
            "yes"
            if rules.get("delete_untagged")
            else "no (garbage collection still removes unreferenced untagged manifests)",
        ),
    ]


def _show(policy: dict, registry: str) -> None:
    if not policy.get("configured"):
        print(
            f"registry {registry!r} has no retention policy "
            f"(berth retention set {registry} --keep-last N --expire-days D ...)"
        )
        return
    pairs = _rules_text(policy)
    for o in policy.get("overrides") or []:
        changed = ", ".join(f"{k}={_value_text(o[k])}" for k in RULES if k in o) or "(same rules)"
        pairs.append((f"override {o['repositories']}", changed))
    pairs.append(("updated", f"{when(policy.get('updated_at'))} by {policy.get('updated_by') or '-'}"))
    fields(pairs)


def _value_text(value) -> str:
    if value is None:
        return "off"
    if isinstance(value, list):
        return "|".join(value) or "none"
    return str(value).lower() if isinstance(value, bool) else str(value)


@http_command
def show(ctx: Context) -> None:
    policy = ctx.client.get(_path(ctx))
    if ctx.json:
        return emit_json(policy)
    _show(policy, ctx.args.registry)


def _parse_value(field: str, raw: str):
    raw = raw.strip()
    if field == "keep_patterns":
        return [p for p in raw.split("|") if p] if raw not in ("", "none") else []
    if field == "delete_untagged":
        if raw.lower() not in ("true", "false", "yes", "no"):
            raise ValueError("delete_untagged=true or false")
        return raw.lower() in ("true", "yes")
    if raw.lower() in ("off", "null", "none"):
        return None
    return int(raw)


def _override(text: str) -> dict:
    """`GLOB:field=value,field=value`, e.g. `ci/*:keep_last=3,expire_days=7,keep_patterns=v*|latest`;
    `GLOB:` alone: those repositories keep the registry-wide rules (no later override applies)."""
    pattern, colon, rest = text.partition(":")  # repository names never hold ':'
    if not pattern or not colon:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give GLOB:field=value,... such as 'ci/*:expire_days=7' (fields: {', '.join(RULES)})"
        )
    override: dict = {"repositories": pattern}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        field, eq, value = item.partition("=")
        if not eq or field not in RULES:
            raise argparse.ArgumentTypeError(f"{item!r}: expected field=value with field one of {', '.join(RULES)}")
        try:
            override[field] = _parse_value(field, value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r}: bad value for {field}") from None
    return override


def _count_or_off(minimum: int):
    def parse(value: str):
        if value.lower() in ("off", "none"):
            return None
        try:
            n = int(value)
        except ValueError:
            n = -1
        if n < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer of at least {minimum}, or off")
        return n

    return parse


@http_command
def set_(ctx: Context) -> int:
    args = ctx.args
    if args.clear:
        ctx.client.json("DELETE", _path(ctx))
        if ctx.json:
            emit_json({"registry": args.registry, "configured": False})
            return 0
        print(f"removed the retention policy of registry {args.registry!r}")
        return 0
    if args.file:
        try:
            text = sys.stdin.read() if args.file == "-" else open(args.file, encoding="utf-8").read()
            body = json.loads(text)
        except (OSError, ValueError) as e:
            return fail(f"cannot read a JSON policy from {args.file}: {e}")
    else:
        current = ctx.client.get(_path(ctx))
        body = {k: current[k] for k in (*RULES, "overrides") if k in current} if current.get("configured") else {}
        changed = False
        for field, value in (
            ("keep_last", args.keep_last),
            ("expire_days", args.expire_days),
            ("delete_untagged", args.delete_untagged),
        ):
            if value is not ...:
                body[field], changed = value, True
        if args.keep is not None or args.no_keep:
            body["keep_patterns"], changed = ([] if args.no_keep else args.keep), True
        if args.override is not None or args.no_overrides:
            body["overrides"], changed = ([] if args.no_overrides else args.override), True
        if not changed:
            return fail(
                "nothing to change: give --keep-last, --keep, --expire-days, --delete-untagged, "
                "--override, --file or --clear"
            )
    stored = ctx.client.json("PUT", _path(ctx), json=body)
    if ctx.json:
        emit_json(stored)
        return 0
    _show(stored, args.registry)
    return 0


def _result(result: dict, verb: str) -> None:
    summary = result.get("summary") or {}
    print(
        f"registry {result['registry']!r}: {verb} {summary.get('tags', 0)} tag(s) and "
        f"{summary.get('manifests', 0)} manifest(s) ({size(summary.get('manifest_bytes'))} of manifests); "
        f"{result.get('kept_tags', 0)} tag(s) kept in {result.get('repositories', 0)} repositories"
    )
    if result["tags"]:
        print()
        table(
            ["REPOSITORY", "TAG", "DIGEST", "PUSHED", "REASON"],
            [
                (t["repository"], t["tag"], short_digest(t["digest"]), when(t["pushed_at"]), t["reason"])
                for t in result["tags"]
            ],
        )
    if result["manifests"]:
        print()
        table(
            ["REPOSITORY", "MANIFEST", "SIZE", "BY", "REASON"],
            [
                (x["repository"], short_digest(x["digest"]), size(x["size"]), x["by"], x["reason"])
                for x in result["manifests"]
            ],
        )


def _run(ctx: Context, suffix: str, **kw) -> dict:
    """POST .../preview or .../apply; a registry without a policy is told how to set one."""
    try:
        return ctx.client.json("POST", _path(ctx, suffix), **kw)
    except ApiError as e:
        if e.status != 409 or "no retention policy" not in str(e):
            raise
        registry = ctx.args.registry
        raise ApiError(
            f"registry {registry!r} has no retention policy yet: set one first, e.g. "
            f"berth retention set {registry} --keep-last 10 --expire-days 30",
            e.status,
        ) from None


@http_command
def preview(ctx: Context) -> None:
    result = _run(ctx, "/preview")
    if ctx.json:
        return emit_json(result)
    _result(result, "would delete")


@http_command
def apply(ctx: Context) -> int:
    args = ctx.args
    if not args.yes:
        if not sys.stdin.isatty():
            return fail(
                f"applying the retention policy deletes tags and manifests of registry {args.registry!r} "
                f"(berth retention preview {args.registry} lists them): add --yes to confirm"
            )
        plan = _run(ctx, "/preview")
        _result(plan, "would delete")
        try:
            typed = input(f"Apply it to registry {args.registry!r}? Type its name to confirm: ")
        except EOFError:
            typed = ""
        if typed.strip() != args.registry:
            return fail("not confirmed; nothing deleted")
    result = _run(ctx, "/apply", timeout=3600)
    if ctx.json:
        emit_json(result)
        return 0
    _result(result, "deleted")
    gc = result.get("gc")
    print()
    print(
        f"garbage collection: {gc['blobs_deleted']} blob(s), {size(gc['bytes_freed'])} freed"
        if gc
        else "garbage collection did not run to completion; the periodic collection frees the bytes later"
    )
    return 0


def add_parsers(sub, g: argparse.ArgumentParser) -> None:
    ret = sub.add_parser("retention", help="a registry's retention policy: show, set, preview, apply").add_subparsers(
        dest="action", required=True
    )
    p = ret.add_parser("show", parents=[g], help="the registry's retention rules")
    p.add_argument("registry")
    p.set_defaults(func=show)

    p = ret.add_parser(
        "set",
        parents=[g],
        help="change the retention rules (the rest stay as they are)",
        description="Changes the given rules of the stored policy. A tag goes only when "
        "--keep-last or --expire-days limits tags and no rule keeps it.",
    )
    p.add_argument("registry")
    p.add_argument(
        "--keep-last",
        type=_count_or_off(0),
        default=...,
        metavar="N|off",
        help="keep the N most recently pushed tags of each repository",
    )
    p.add_argument(
        "--keep", action="append", metavar="GLOB", help="keep tags matching GLOB (repeat; replaces the list)"
    )
    p.add_argument("--no-keep", action="store_true", help="drop every keep pattern")
    p.add_argument(
        "--expire-days",
        type=_count_or_off(1),
        default=...,
        metavar="D|off",
        help="delete tags neither pushed nor pulled within D days",
    )
    untagged = p.add_mutually_exclusive_group()
    untagged.add_argument(
        "--delete-untagged",
        dest="delete_untagged",
        action="store_const",
        const=True,
        default=...,
        help="the run itself deletes manifests already untagged",
    )
    untagged.add_argument("--no-delete-untagged", dest="delete_untagged", action="store_const", const=False)
    p.add_argument(
        "--override",
        action="append",
        type=_override,
        metavar="GLOB:field=value,...",
        help="rules for repositories matching GLOB, e.g. 'ci/*:keep_last=3,expire_days=7' "
        "(repeat; the first match wins; replaces the list)",
    )
    p.add_argument("--no-overrides", action="store_true", help="drop every override")
    p.add_argument("--file", metavar="FILE", help="the whole policy as JSON ('-': standard input)")
    p.add_argument("--clear", action="store_true", help="remove the policy")
    p.set_defaults(func=set_)

    p = ret.add_parser("preview", parents=[g], help="dry run: exactly what applying would delete, and why")
    p.add_argument("registry")
    p.set_defaults(func=preview)

    p = ret.add_parser("apply", parents=[g], help="delete what the policy selects, then collect garbage")
    p.add_argument("registry")
    p.add_argument("--yes", action="store_true", help="do not ask (required when not on a terminal)")
    p.set_defaults(func=apply)
