"""The generated OpenAPI document, completed where the generator cannot see.

quart-schema builds the document from the routes and their pydantic models;
it only knows JSON bodies. This provider adds what is not JSON (the SSE
streams, the artifact download, the 204 that stops an EventSource) and the
auth scheme, so the document stays generated from the real routes and valid.
"""

from __future__ import annotations

from typing import Any

from quart_schema import OpenAPIProvider

#: Operations whose success is not JSON, by (path, method): the response to document.
_NON_JSON: dict[tuple[str, str], dict[int, dict[str, Any]]] = {
    ("/api/jobs/{job_id}/events", "get"): {
        200: {
            "description": "The job's events as Server-Sent Events: history, then live; "
            "ends after the terminal event.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        204: {
            "description": "The last event id is the job's terminal event (or its history "
            "has expired): nothing more will come."
        },
    },
    ("/api/events", "get"): {
        200: {
            "description": "Every job of the caller as one Server-Sent Events stream; "
            "never ends on its own.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
    },
    ("/api/jobs/{job_id}/artifacts/{name}", "get"): {
        200: {
            "description": "The artifact's bytes, with its MIME type.",
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        },
    },
}


class ApiDocsProvider(OpenAPIProvider):
    """quart-schema's provider plus the non-JSON answers and the bearer scheme."""

    def schema(self) -> dict[str, Any]:
        document = super().schema()
        paths: dict[str, dict[str, Any]] = document["paths"]
        for (path, method), responses in _NON_JSON.items():
            operation = paths.get(path, {}).get(method)
            if operation is not None:
                operation.setdefault("responses", {}).update(responses)
        for operations in paths.values():
            for operation in operations.values():
                if isinstance(operation, dict) and not operation.get("responses"):
                    operation["responses"] = {"default": {"description": "See the description."}}
        document["components"].setdefault("securitySchemes", {})["bearer"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "With --auth-tokens: every /api/ route but /api/health needs it "
            "(or ?access_token= on the streams).",
        }
        return document
