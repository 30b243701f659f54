"""create_app(settings) -> falcon.App: wiring, routes and middleware order live here."""

from __future__ import annotations

from dataclasses import dataclass

import falcon

from app import errors
from app.api.gate import ManagementGate
from app.auth.identity import Identity
from app.auth.idp import IdentityProvider, IdpSettings
from app.auth.keys import KeyRing
from app.auth.throttle import LoginThrottle
from app.auth.registry_tokens import RegistryTokens
from app.auth.token_service import JwksResource, RegistryTokenResource, TokenService
from app.api.members import MemberResource, MembersResource
from app.api.registries import RegistriesResource
from app.api.tokens import TokenResource, TokensResource
from app.config import Settings
from app.oci.errors import RegistryError
from app.oci.router import DataPlaneRouter
from app.services.blobs import BlobService
from app.services.manifests import ManifestService
from app.services.uploads import UploadService
from app.storage import open_store
from app.storage.base import BlobStore


@dataclass
class Services:
    store: BlobStore
    blobs: BlobService
    uploads: UploadService
    manifests: ManifestService
    identity: Identity
    token_service: TokenService


def build_services(settings: Settings) -> Services:
    store = open_store(settings.storage_url)
    registry_tokens = RegistryTokens(KeyRing(settings.token_keys_dir).load())
    idp = None
    if settings.oidc_jwks_url:
        idp = IdentityProvider(IdpSettings(
            settings.oidc_jwks_url, settings.oidc_issuer, settings.oidc_audience, settings.oidc_roles_claim))
    identity = Identity(registry_tokens, idp, LoginThrottle(settings.login_failure_limit))
    return Services(
        store=store,
        blobs=BlobService(store),
        uploads=UploadService(store),
        manifests=ManifestService(settings.max_manifest_bytes),
        identity=identity,
        token_service=TokenService(identity, registry_tokens, settings.domain),
    )


class HealthResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


def create_app(settings: Settings, services: Services | None = None) -> falcon.App:
    services = services or build_services(settings)
    app = falcon.App(middleware=[ManagementGate(services.identity)])
    app.req_options.strip_url_path_trailing_slash = False
    app.req_options.auto_parse_qs_csv = False
    app.req_options.keep_blank_qs_values = False
    app.resp_options.default_media_type = "application/json"

    app.add_error_handler(Exception, errors.handle_unexpected)
    app.add_error_handler(falcon.HTTPError, errors.handle_http_error)
    app.add_error_handler(RegistryError, errors.handle_registry_error)

    app.add_sink(DataPlaneRouter(services, settings), prefix=r"^/v2(?=/|$)")
    app.add_route("/api/v1/orgs/{org}/registries", RegistriesResource(settings.domain))
    app.add_route("/api/v1/orgs/{org}/members", MembersResource())
    app.add_route("/api/v1/orgs/{org}/members/{subject}", MemberResource())
    app.add_route("/api/v1/orgs/{org}/tokens", TokensResource())
    app.add_route("/api/v1/orgs/{org}/tokens/{token_id:int}", TokenResource())
    app.add_route("/auth/token", RegistryTokenResource(services.token_service))
    app.add_route("/auth/jwks.json", JwksResource(services.token_service.tokens))
    app.add_route("/healthz", HealthResource())
    return app
