"""`/v2/<name>/referrers/<digest>`: the manifests whose `subject` is a digest, as an index."""

from __future__ import annotations

import json

import falcon

from app.auth import roles
from app.oci.resolved_request import RepositoryRequest
from app.services import repositories
from app.services.manifests import referrers
from app.spec import digests
from app.spec import media_types as mt


class ReferrersResource:
    actions = {"GET": roles.PULL, "HEAD": roles.PULL}

    def on_get(self, req: falcon.Request, resp: falcon.Response, resolved: RepositoryRequest) -> None:
        subject = str(digests.parse(resolved.arg))
        artifact_type = req.get_param("artifactType")
        repository = repositories.find(resolved.registry, resolved.target.repository)
        manifests = referrers(repository, subject, artifact_type) if repository else []
        if artifact_type is not None:
            resp.set_header("OCI-Filters-Applied", "artifactType")
        resp.content_type = mt.OCI_INDEX
        resp.data = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": manifests}).encode()
