"""create_app(settings) -> falcon.App: wiring, routes and middleware order live here."""

from __future__ import annotations

import datetime as dt
import os
import socket
from dataclasses import dataclass

import falcon

from app.edge import error_responses
from app.api.audit import AuditResource, AuditTrail
from app.api.browse import RepositoriesResource, RepositoryPathResource
from app.api.credentials import CredentialsResource
from app.api.gate import ManagementGate
from app.api.gc import GarbageCollectionResource
from app.api.health import HealthResource, ReadyResource
from app.api.idempotency import Idempotency
from app.api.members import MemberResource, MembersResource
from app.api.operations import OperationResource, OperationRetryResource
from app.api.openapi import OpenApiResource
from app.api.orgs import OrgsResource
from app.api.registries import CustomDomainVerificationResource, RegistriesResource, RegistryResource
from app.api.retention import RetentionApplyResource, RetentionPolicyResource, RetentionPreviewResource
from app.api.tokens import TokenResource, TokensResource
from app.api.usage import SkusResource, UsageResource
from app.auth.identity import Identity
from app.auth.idp import IdentityProvider, IdpSettings
from app.auth.keys import KeyRing
from app.auth.registry_tokens import RegistryTokens
from app.auth.throttle import LoginThrottle
from app.oci.token_endpoint import JwksResource, RegistryTokenResource, TokenService
from app.config import Settings
from app.console import routes as console_routes
from app.db.setup import ReleaseConnection
from app.lifecycle.operations import OperationRunner, RunnerSettings
from app.lifecycle.provisioner import Provisioner
from app.lifecycle.from_settings import open_provisioner
from app.lifecycle.worker import Worker
from app.edge import preflight
from app.edge.bodies import request_handlers
from app.edge.context import RequestContext
from app.counters import Counters
from app.edge.headers import SecurityHeaders
from app.edge.proxies import ProxyTrust, parse_networks
from app.edge.rate_limit import RateLimiter
from app.spec.errors import RegistryError
from app.oci.openapi import DistributionOpenApiResource
from app.oci.router import DataPlaneRouter
from app.services import listings, quotas, retention
from app.services.blobs import BlobService
from app.services.custom_domains import DnsSettings, DomainVerifier
from app.services.gc import Collector
from app.services.manifests import ManifestService
from app.services.upload_expiry import UploadReaper
from app.services.uploads import UploadService
from app.storage import capacity, open_store
from app.storage.base import BlobStore
from app.telemetry.metrics import Metrics
from app.edge.request_log import RequestLog
from app.telemetry.tracing import TracedStore, TracingMiddleware
from app.telemetry.tracing import enabled as tracing_enabled


@dataclass
class Services:
    store: BlobStore
    blobs: BlobService
    uploads: UploadService
    manifests: ManifestService
    identity: Identity
    token_service: TokenService
    provisioner: Provisioner
    worker: Worker  # started by `berth serve`; resources wake it when they queue an operation
    collector: Collector  # periodic garbage collection, started by `berth serve`
    retention_schedule: retention.Schedule  # periodic retention, started by `berth serve`
    upload_reaper: UploadReaper  # expires idle upload sessions, started by `berth serve`
    counters: Counters  # rate-limit and login-failure counters (Redis, or this process's memory)


def build_services(settings: Settings) -> Services:
    try:
        quotas.install(quotas.parse_catalog(settings.skus, settings.default_sku))
    except quotas.CatalogError as e:
        raise SystemExit(str(e)) from None
    store = open_store(settings.storage_url)
    listings.configure_cache(settings.data_dir / "cache" / "tags")
    if tracing_enabled():  # no per-call wrapper on the blob path when nothing is traced
        store = TracedStore(store)
    registry_tokens = RegistryTokens(KeyRing(settings.token_keys_dir).load())
    idp = None
    if settings.oidc_jwks_url:
        idp = IdentityProvider(IdpSettings(
            settings.oidc_jwks_url, settings.oidc_issuer, settings.oidc_audience, settings.oidc_roles_claim,
            cooldown=settings.oidc_jwks_cooldown))
    counters = Counters(counters_uri(settings))
    identity = Identity(registry_tokens, idp, LoginThrottle(settings.login_failure_limit, counters))
    provisioner = open_provisioner(settings)
    runner = OperationRunner(provisioner, store, RunnerSettings(
        domain=settings.domain, lease=dt.timedelta(seconds=settings.operation_lease),
        max_attempts=settings.operation_max_attempts), owner=f"{socket.gethostname()}:{os.getpid()}")
    uploads = UploadService(store)
    return Services(
        store=store,
        blobs=BlobService(store, redirect=settings.storage_redirect,
                          gc_grace=dt.timedelta(seconds=settings.gc_grace)),
        uploads=uploads,
        manifests=ManifestService(settings.max_manifest_bytes, settings.max_json_depth),
        identity=identity,
        token_service=TokenService(identity, registry_tokens, settings.domain),
        provisioner=provisioner,
        worker=Worker(runner, poll_interval=settings.operation_poll),
        collector=Collector(store, interval=dt.timedelta(seconds=settings.gc_interval),
                            grace=dt.timedelta(seconds=settings.gc_grace),
                            upload_expiry=dt.timedelta(seconds=settings.upload_expiry)),
        retention_schedule=retention.Schedule(store, interval=dt.timedelta(seconds=settings.retention_interval),
                                              grace=dt.timedelta(seconds=settings.gc_grace),
                                              upload_expiry=dt.timedelta(seconds=settings.upload_expiry)),
        upload_reaper=UploadReaper(store, expiry=dt.timedelta(seconds=settings.upload_expiry), forget=uploads.forget),
        counters=counters,
    )


CORS_EXPOSED = ["Docker-Content-Digest", "Docker-Upload-UUID", "Docker-Distribution-API-Version", "Link",
                "Location", "Range", "Content-Range", "OCI-Subject", "OCI-Tag", "OCI-Filters-Applied",
                "WWW-Authenticate", "X-Request-ID", "Retry-After", "RateLimit-Limit", "RateLimit-Remaining",
                "RateLimit-Reset"]


def counters_uri(settings: Settings) -> str:
    """Where rate-limit and login-failure counters live: Redis when configured (shared by
    replicas), else this process's memory."""
    return settings.redis_url or "memory://"


def _cors(settings: Settings) -> list:
    if not settings.cors_origins:
        return []
    origins = "*" if settings.cors_origins.strip() == "*" else [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    credentials = [o.strip() for o in settings.cors_credentials.split(",") if o.strip()] or None
    return [falcon.CORSMiddleware(allow_origins=origins, expose_headers=CORS_EXPOSED, allow_credentials=credentials)]


def middleware(settings: Settings, services: Services, metrics: Metrics) -> list:
    """The order matters: context first (request id, client address), then headers, limits,
    tracing and logging, CORS, and the management gate last."""
    services.counters.on_fallback = metrics.dependency_fallback("redis")
    return [
        ReleaseConnection(),  # first: its process_response runs last, after any database work
        RequestContext(ProxyTrust(parse_networks(settings.trusted_proxies)), settings.require_https),
        SecurityHeaders(),
        RateLimiter(settings.rate_limit, settings.rate_limit_routes, parse_networks(settings.rate_limit_allow),
                    services.counters),
        TracingMiddleware(),
        RequestLog(metrics),
        *_cors(settings),
        AuditTrail(),
        ManagementGate(services.identity),
        preflight.PublicRoutesTakeNoBody(),  # before Idempotency: a preflight never reaches it
        Idempotency(),
    ]


def create_app(settings: Settings, services: Services | None = None, metrics: Metrics | None = None) -> falcon.App:
    services = services or build_services(settings)
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

    app.add_sink(DataPlaneRouter(services, settings), prefix=r"^/v2(?=/|$)")
    wake = services.worker.wake
    app.add_route("/api/v1/openapi.json", OpenApiResource())
    app.add_route("/api/v1/openapi/distribution.json", DistributionOpenApiResource())
    app.add_route("/api/v1/orgs", OrgsResource())
    app.add_route("/api/v1/orgs/{org}/registries", RegistriesResource(settings.domain, wake))
    app.add_route("/api/v1/orgs/{org}/registries/{registry}", RegistryResource(settings.domain, wake))
    app.add_route("/api/v1/orgs/{org}/registries/{registry}/custom-domain/verify", CustomDomainVerificationResource(
        settings.domain, DomainVerifier(DnsSettings(settings.dns_resolver)), wake))
    app.add_route("/api/v1/orgs/{org}/registries/{registry}/repositories", RepositoriesResource())
    app.add_route("/api/v1/orgs/{org}/registries/{registry}/repositories/{rest:path}",
                  RepositoryPathResource(services.store))
    app.add_route("/api/v1/orgs/{org}/registries/{registry}/credentials", CredentialsResource(settings.domain))
    app.add_route("/api/v1/orgs/{org}/registries/{registry}/gc", GarbageCollectionResource(services.collector))
    app.add_route("/api/v1/orgs/{org}/registries/{registry}/usage", UsageResource())
    app.add_route("/api/v1/skus", SkusResource())
    grace = dt.timedelta(seconds=settings.gc_grace)  # the collection's, so previews match it
    app.add_route("/api/v1/orgs/{org}/registries/{registry}/retention", RetentionPolicyResource())
    app.add_route("/api/v1/orgs/{org}/registries/{registry}/retention/preview", RetentionPreviewResource(grace))
    app.add_route("/api/v1/orgs/{org}/registries/{registry}/retention/apply", RetentionApplyResource(
        services.store, grace, dt.timedelta(seconds=settings.upload_expiry)))
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
    app.add_route("/readyz", ReadyResource(services.store, capacity.FreeSpace(
        capacity.watched_paths(settings.data_dir, settings.storage_url), settings.min_free_bytes)))
    # No /metrics here: the series name every tenant, and this app is what every registry
    # hostname reaches. They are served on BERTH_METRICS_ADDR (app/telemetry/metrics_listener.py).
    return app
