"""The console's routes, added to the app in one call from the composition root."""

from __future__ import annotations

import falcon

from app.config import Settings
from app.console.assets import ConsoleAssets, ConsoleRedirect
from app.console.sign_in import ConsoleConfig, OidcClient, TokenExchange


def oidc_client(settings: Settings) -> OidcClient | None:
    """The console's OpenID Connect client, when the provider's endpoints are configured."""
    if not (settings.oidc_authorization_url and settings.oidc_token_url):
        return None
    return OidcClient(
        settings.oidc_authorization_url,
        settings.oidc_token_url,
        settings.oidc_client_id or settings.oidc_audience,
        settings.oidc_scope,
    )


def add_routes(app: falcon.App, settings: Settings) -> None:
    oidc = oidc_client(settings)
    assets = ConsoleAssets()
    app.add_route("/console", ConsoleRedirect())
    app.add_route("/console/", assets)
    app.add_route("/console/config.json", ConsoleConfig(oidc))
    app.add_route("/console/oidc/token", TokenExchange(oidc))
    app.add_route("/console/{path:path}", assets)
