"""The Berth policy pack (Pulumi CrossGuard). Both programs must pass it:

    pulumi up --policy-pack policies                     # the platform, from the repository root
    BERTH_PULUMI_POLICY_PACK=... (see docs/provisioning.md)  # registry stacks

The rules are plain functions in rules.py (tested without the CLI); this module only wraps them.
Configure the platform's names per policy (platformNamespace, gateway, httpsListener, issuer,
issuerKind) with `--policy-pack-config`; the defaults match the platform program's.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pulumi_policy import (  # noqa: E402
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ResourceValidationPolicy,
    StackValidationPolicy,
)
from rules import RULES, PolicyConfig, camel  # noqa: E402

CONFIG_SCHEMA = PolicyConfigSchema(
    properties={camel(name): {"type": "string"} for name in PolicyConfig.__dataclass_fields__},
)


def _resource_policy(rule) -> ResourceValidationPolicy:
    def validate(args, report_violation) -> None:
        config = PolicyConfig.from_dict(dict(args.get_config() or {}))
        for message in rule.check(args.resource_type, args.props, config):
            report_violation(message)

    return ResourceValidationPolicy(
        name=rule.name, description=rule.description, validate=validate, config_schema=CONFIG_SCHEMA
    )


def _stack_policy(rule) -> StackValidationPolicy:
    def validate(args, report_violation) -> None:
        config = PolicyConfig.from_dict(dict(args.get_config() or {}))
        resources = [(r.resource_type, r.props) for r in args.resources]
        for message in rule.check(resources, config):
            report_violation(message)

    return StackValidationPolicy(
        name=rule.name, description=rule.description, validate=validate, config_schema=CONFIG_SCHEMA
    )


PolicyPack(
    name="berth",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[_stack_policy(rule) if rule.stack else _resource_policy(rule) for rule in RULES],
)
