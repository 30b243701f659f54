"""create_app(settings, services) -> falcon.App: routes and middleware order live here. The
services come from the composition root (app/server/composition.py's build_services), which also
starts and stops what they run in the background; `berth serve` hands this function to the server
(app/cli.py), so neither package imports the other."""

from __future__ import annotations

import datetime as dt

import falcon

from app.api.audit import AuditResource, AuditTrail
from app.api.browse import RepositoriesResource, RepositoryPathResource
from app.api.credentials import CredentialsResource
from app.api.gate import ManagementGate
from app.api.gc import GarbageCollectionResource
from app.api.health import HealthResource, ReadyResource
from app.api.idempotency import Idempotency
from app.api.members import MemberResource, MembersResource
from app.api.openapi import OpenApiResource
from app.api.operations import OperationResource, OperationRetryResource
from app.api.orgs import OrgsResource
from app.api.registries import CustomDomainVerificationResource, RegistriesResource, RegistryResource
from app.api.retention import RetentionApplyResource, RetentionPolicyResource, RetentionPreviewResource
from app.api.tokens import TokenResource, TokensResource
from app.api.usage import SkusResource, UsageResource
from app.config import Settings
from app.console import routes as console_routes
from app.db.setup import ReleaseConnection
from app.edge import error_responses, preflight
from app.edge.bodies import request_handlers
from app.edge.context import RequestContext
from app.edge.headers import SecurityHeaders
from app.edge.proxies import ProxyTrust, parse_networks
from app.edge.rate_limit import RateLimiter
from app.edge.request_log import RequestLog
from app.oci.openapi import DistributionOpenApiResource
from app.oci.router import DataPlaneRouter
from app.oci.token_endpoint import JwksResource, RegistryTokenResource
from app.services.custom_domains import DnsSettings, DomainVerifier
from app.spec.errors import RegistryError
from app.storage import capacity
from app.telemetry.metrics import Metrics
from app.telemetry.tracing import TracingMiddleware

CORS_EXPOSED = [
    "Docker-Content-Digest",
    "Docker-Upload-UUID",
    "Docker-Distribution-API-Version",
    "Link",
    "Location",
    "Range",
    "Content-Range",
    "OCI-Subject",
    "OCI-Tag",
    "OCI-Filters-Applied",
    "WWW-Authenticate",
    "X-Request-ID",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
]


def _cors(settings: Settings) -> list:
    if not settings.cors_origins:
        return []
    origins = (
        "*"
        if settings.cors_origins.strip() == "*"
        else [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    )
    credentials = [o.strip() for o in settings.cors_credentials.split(",") if o.strip()] or None
    return [falcon.CORSMiddleware(allow_origins=origins, expose_headers=CORS_EXPOSED, allow_credentials=credentials)]


def middleware(settings: Settings, services, metrics: Metrics) -> list:
    """The order matters: context first (request id, client address), then headers, limits,
    tracing and logging, CORS, and the management gate last."""
    services.counters.on_fallback = metrics.dependency_fallback("redis")
    services.counters.local.on_overflow = metrics.dependency_fallback("counter_table")
    return [
        ReleaseConnection(),  # first: its process_response runs last, after any database work
        RequestContext(ProxyTrust(parse_networks(settings.trusted_proxies)), settings.require_https),
        SecurityHeaders(),
        RateLimiter(
            settings.rate_limit,
            settings.rate_limit_routes,
            parse_networks(settings.rate_limit_allow),
            services.counters,
        ),
        TracingMiddleware(),
        RequestLog(metrics),
        *_cors(settings),
        AuditTrail(),
        ManagementGate(services.identity),
        preflight.PublicRoutesTakeNoBody(),  # before Idempotency: a preflight never reaches it
        Idempotency(),
    ]


def create_app(settings: Settings, services, metrics: Metrics | None = None) -> falcon.App:
    """The application over `services` (app/server/composition.py's Services)."""
    metrics = metrics or Metrics()
    app = falcon.App(middleware=middleware(settings, services, metrics))
    app.req_options.strip_url_path_trailing_slash = False
    app.req_options.auto_parse_qs_csv = False
    app.req_options.keep_blank_qs_values = False
    app.resp_options.default_media_type = "application/json"
    app.req_options.media_handlers = request_handlers(settings.max_api_body_bytes, settings.max_json_depth)

    app.add_error_handler(Exception, error_responses.handle_unexpected)
    app.add_error_handler(falcon.HTTPError, error_responses.handle_http_error)
    app.add_error_handler(RegistryError, error_responses.handle_registry_error)
    app.add_error_handler(preflight.Passed, preflight.handle_passed)

    app.add_sink(
        DataPlaneRouter(services, settings, on_row_changed=metrics.kept_rows_changed.inc), prefix=r"^/v2(?=/|$)"
    )
    wake = services.worker.wake
    app.add_route("/api/v1/openapi.json", OpenApiResource())
    app.add_route("/api/v1/openapi/distribution.json", DistributionOpenApiResource())
    app.add_route("/api/v1/orgs", OrgsResource())
    app.add_route("/api/v1/orgs/{org}/registries", RegistriesResource(settings.domain, wake))
    app.add_route("/api/v1/orgs/{org}/registries/{registry}", RegistryResource(settings.domain, wake))
    app.add_route(
        "/api/v1/orgs/{org}/registries/{registry}/custom-domain/verify",
        CustomDomainVerificationResource(settings.domain, DomainVerifier(DnsSettings(settings.dns_resolver)), wake),
    )
    app.add_route("/api/v1/orgs/{org}/registries/{registry}/repositories", RepositoriesResource())
    app.add_route(
        "/api/v1/orgs/{org}/registries/{registry}/repositories/{rest:path}", RepositoryPathResource(services.store)
    )
    app.add_route("/api/v1/orgs/{org}/registries/{registry}/credentials", CredentialsResource(settings.domain))
    app.add_route("/api/v1/orgs/{org}/registries/{registry}/gc", GarbageCollectionResource(services.collector))
    app.add_route("/api/v1/orgs/{org}/registries/{registry}/usage", UsageResource(services.meter))
    app.add_route("/api/v1/skus", SkusResource())
    grace = dt.timedelta(seconds=settings.gc_grace)  # the collection's, so previews match it
    app.add_route("/api/v1/orgs/{org}/registries/{registry}/retention", RetentionPolicyResource())
    app.add_route("/api/v1/orgs/{org}/registries/{registry}/retention/preview", RetentionPreviewResource(grace))
    app.add_route(
        "/api/v1/orgs/{org}/registries/{registry}/retention/apply",
        RetentionApplyResource(services.store, grace, dt.timedelta(seconds=settings.upload_expiry), services.tag_lists),
    )
    app.add_route("/api/v1/orgs/{org}/audit", AuditResource())
    app.add_route("/api/v1/operations/{operation_id}", OperationResource())
    app.add_route("/api/v1/operations/{operation_id}/retry", OperationRetryResource(wake))
    app.add_route("/api/v1/orgs/{org}/members", MembersResource())
    app.add_route("/api/v1/orgs/{org}/members/{subject}", MemberResource())
    app.add_route("/api/v1/orgs/{org}/tokens", TokensResource())
    app.add_route("/api/v1/orgs/{org}/tokens/{token_id}", TokenResource())
    app.add_route("/auth/token", RegistryTokenResource(services.token_service))
    app.add_route("/auth/jwks.json", JwksResource(services.token_service.tokens))
    console_routes.add_routes(app, settings)
    app.add_route("/healthz", HealthResource())
    app.add_route(
        "/readyz",
        ReadyResource(
            services.store,
            capacity.FreeSpace(
                capacity.watched_paths(settings.data_dir, settings.storage_url), settings.min_free_bytes
            ),
        ),
    )
    # No /metrics here: the series name every tenant, and this app is what every registry
    # hostname reaches. They are served on BERTH_METRICS_ADDR (app/server/metrics_listener.py).
    return app
