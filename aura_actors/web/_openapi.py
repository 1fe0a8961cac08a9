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
            "content": {"text/event-stream": {"schema": {}}},
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
            "content": {"text/event-stream": {"schema": {}}},
        },
    },
    ("/api/jobs/{job_id}", "delete"): {
        204: {"description": "Deleted: the job's record, history and files are gone."},
    },
    ("/api/jobs/{job_id}/artifacts/{name}", "get"): {
        200: {
            "description": "The artifact's bytes, with its MIME type.",
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        },
    },
}


#: The app config key holding the registered pipelines' names (for the request's enum).
PIPELINES_CONFIG_KEY = "AURA_PIPELINES"

#: Answers of the request guards (``_guards``), by method: added to every such operation.
_GUARD_ANSWERS: dict[str, dict[int, str]] = {
    "post": {
        403: "forbidden_origin: a browser's Origin that is not allowed",
        415: "unsupported_media_type: a body that is not declared application/json",
    },
    "delete": {403: "forbidden_origin: a browser's Origin that is not allowed"},
}


class ApiDocsProvider(OpenAPIProvider):
    """quart-schema's provider plus the non-JSON answers, the guards' and the bearer scheme."""

    def schema(self) -> dict[str, Any]:
        document = super().schema()
        paths: dict[str, dict[str, Any]] = document["paths"]
        self._tighten(paths)
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

    def _tighten(self, paths: dict[str, dict[str, Any]]) -> None:
        """What the generator cannot know: the guards' answers, a required body, the pipelines."""
        error_content = _error_content(paths)
        for operations in paths.values():
            for method, operation in operations.items():
                for status, description in _GUARD_ANSWERS.get(method, {}).items():
                    answer: dict[str, Any] = {"description": description}
                    if error_content is not None:
                        answer["content"] = error_content
                    operation.setdefault("responses", {}).setdefault(str(status), answer)
        create = paths.get("/api/jobs", {}).get("post")
        if create is not None and "requestBody" in create:
            create["requestBody"]["required"] = True
            names = self._app.config.get(PIPELINES_CONFIG_KEY)
            content = create["requestBody"].get("content", {}).get("application/json", {})
            pipeline = content.get("schema", {}).get("properties", {}).get("pipeline")
            if names and pipeline is not None:
                pipeline["enum"] = list(names)


def _error_content(paths: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The ``content`` of a documented error answer (the ``ErrorBody`` schema), to reuse."""
    for operations in paths.values():
        for operation in operations.values():
            for answer in operation.get("responses", {}).values():
                content = answer.get("content", {})
                schema = content.get("application/json", {}).get("schema", {})
                if schema.get("title") == "ErrorBody":
                    return dict(content)
    return None
