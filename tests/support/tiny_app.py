"""A tiny falcon.App for unit tests: just the middleware or resource under test, the error handlers
the real app registers (app/web.py), and a resource that echoes what the middleware left on the
request. The real Falcon, in-process, through falcon.testing.TestClient."""

from __future__ import annotations

import falcon
import falcon.testing

from app.edge import error_responses, preflight
from app.spec.errors import RegistryError


class Echo:
    """Answers every method with what the middleware put on `req.context`."""

    def on_get(self, req, resp, **params):
        resp.media = {k: v for k, v in vars(req.context).items() if isinstance(v, (str, int, float, type(None)))}

    on_post = on_put = on_delete = on_head = on_get


def tiny_app(*middleware, resource=None, path="/{rest:path}") -> falcon.testing.TestClient:
    app = falcon.App(middleware=list(middleware))
    app.add_error_handler(Exception, error_responses.handle_unexpected)
    app.add_error_handler(falcon.HTTPError, error_responses.handle_http_error)
    app.add_error_handler(RegistryError, error_responses.handle_registry_error)
    app.add_error_handler(preflight.Passed, preflight.handle_passed)
    app.add_route(path, resource or Echo())
    app.add_route("/", resource or Echo())
    return falcon.testing.TestClient(app)
