"""The REST routes: create, get, list, cancel, artifacts, health."""

from __future__ import annotations

import json
from typing import Any

from quart import Quart, Response, jsonify, request, send_file
from quart_schema import (
    document_querystring,
    document_request,
    document_response,
)

from .. import __version__
from ..protocol import (
    CreateJobRequest,
    ErrorBody,
    Health,
    HealthJobs,
    HealthNode,
    HealthStorage,
    JobList,
    JobListQuery,
    JobLogs,
    JobSnapshot,
    dump_json_bytes,
)
from ..runtime import JobRecord, Runtime, RuntimeConfig
from ._context import ServerContext
from ._errors import ApiError, parse_model
from ._job_counts import read_reported_counts


def _json_response(body: Any, status: int = 200) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


async def _read_json() -> Any:
    """The request body as JSON; a 400 ``malformed_json`` if it is not."""
    raw = await request.get_data(as_text=False)
    try:
        return json.loads(raw)
    except RecursionError:
        raise ApiError(400, "malformed_json", "request body is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an int over 4300 digits
        raise ApiError(400, "malformed_json", f"request body is not valid JSON: {exc}") from None


def _accepted(job: JobRecord) -> Response:
    """202 with the new job's snapshot and its ``Location``."""
    response = _json_response(job.snapshot(), 202)
    response.headers["Location"] = f"/api/jobs/{job.id}"
    return response


def register_rest_routes(app: Quart, context: ServerContext) -> None:
    """Add the REST routes to ``app``: the job collection here, the rest below."""
    runtime = context.runtime

    @app.post("/api/jobs")
    @document_request(CreateJobRequest)
    @document_response(JobSnapshot, 202)
    @document_response(ErrorBody, 400)
    @document_response(ErrorBody, 413)
    @document_response(ErrorBody, 422)
    @document_response(ErrorBody, 429)
    @document_response(ErrorBody, 503)
    async def create_job() -> Response:
        """Start a job; it runs at once or waits as Queued."""
        user = context.current_user()
        body = parse_model(CreateJobRequest, await _read_json(), "request body")
        return _accepted(await runtime.submit(body.pipeline, body.params, owner=user))

    @app.get("/api/jobs")
    @document_querystring(JobListQuery)
    @document_response(JobList, 200)
    @document_response(ErrorBody, 422)
    async def list_jobs() -> Response:
        """The caller's jobs, newest first, a page at a time."""
        user = context.current_user()
        query = parse_model(JobListQuery, request.args.to_dict(), "query")
        page = await runtime.list_jobs(
            owner=user, status=query.status, limit=query.limit, cursor=query.cursor or None
        )
        return _json_response(
            {"jobs": [job.snapshot() for job in page.jobs], "nextCursor": page.next_cursor}
        )

    _register_job_routes(app, context)
    _register_job_output_routes(app, context)


def _register_job_routes(app: Quart, context: ServerContext) -> None:
    """One job: get, cancel, delete, retry."""
    runtime = context.runtime

    @app.get("/api/jobs/<job_id>")
    @document_response(JobSnapshot, 200)
    @document_response(ErrorBody, 404)
    async def get_job(job_id: str) -> Response:
        """One job's snapshot."""
        user = context.current_user()
        return _json_response((await runtime.get(job_id, owner=user)).snapshot())

    @app.post("/api/jobs/<job_id>/cancel")
    @document_response(JobSnapshot, 202)
    @document_response(ErrorBody, 404)
    @document_response(ErrorBody, 409)
    async def cancel_job(job_id: str) -> Response:
        """Cancel a Queued or Running job (409 when it already ended)."""
        user = context.current_user()
        job = await runtime.cancel(job_id, owner=user)
        return _json_response(job.snapshot(), 202)

    @app.delete("/api/jobs/<job_id>")
    @document_response(ErrorBody, 404)
    @document_response(ErrorBody, 409)
    async def delete_job(job_id: str) -> Response:
        """Delete a finished job: its record, history and files (409 while it is live)."""
        user = context.current_user()
        await runtime.delete(job_id, owner=user)
        return Response(b"", status=204)

    @app.post("/api/jobs/<job_id>/retry")
    @document_response(JobSnapshot, 202)
    @document_response(ErrorBody, 404)
    @document_response(ErrorBody, 409)
    async def retry_job(job_id: str) -> Response:
        """Run a Failed or Canceled job again, as a new job with ``retryOf`` set."""
        user = context.current_user()
        return _accepted(await runtime.retry(job_id, owner=user))


def _register_job_output_routes(app: Quart, context: ServerContext) -> None:
    """What one job made: its log, its artifacts."""
    runtime = context.runtime

    @app.get("/api/jobs/<job_id>/logs")
    @document_response(JobLogs, 200)
    @document_response(ErrorBody, 404)
    async def job_logs(job_id: str) -> Response:
        """The job's log: stage lines, warnings, the failure (bounded; owner only)."""
        user = context.current_user()
        return _json_response({"lines": await runtime.logs(job_id, owner=user)})

    @app.get("/api/jobs/<job_id>/artifacts/<name>")
    @document_response(ErrorBody, 404)
    async def get_artifact(job_id: str, name: str) -> Response:
        """Download one of a job's artifacts (its owner only)."""
        user = context.current_user()
        job = await runtime.get(job_id, owner=user)
        return await _send_artifact(runtime.config, job, name)


async def _send_artifact(config: RuntimeConfig, job: JobRecord, name: str) -> Response:
    """The file of ``job``'s artifact ``name``; a 404 ``artifact_not_found`` if there is none."""
    for artifact in job.artifacts:
        if artifact.name == name:
            # Resolved now, not when the file was made: a tampered record or a
            # symlink in the job's folder (or the folder itself a symlink) must
            # not lead anywhere else.
            folder = config.artifacts_dir.resolve() / job.id
            path = (config.data_dir / artifact.path).resolve()
            if not path.is_relative_to(folder) or not path.is_file():
                break
            response = await send_file(path, mimetype=artifact.mime_type, conditional=True)
            response.headers["Content-Disposition"] = f'inline; filename="{artifact.name}"'
            response.headers["Cache-Control"] = "private, max-age=0"
            return response
    raise ApiError(404, "artifact_not_found", f"job {job.id!r} has no artifact {name!r}")


def register_service_routes(app: Quart, context: ServerContext) -> None:
    """The server itself: health (a cluster's worker serves it, and ``/metrics``, alone)."""
    runtime = context.runtime

    @app.get("/api/health")
    @document_response(Health, 200)
    @document_response(Health, 503)
    async def health() -> Response:
        """Liveness: 200 while serving, 503 once shutting down or while storage fails.

        ``jobs`` counts the whole cluster's jobs on a cluster's node, which adds
        ``node``: its name, role and own jobs.
        """
        problem = runtime.storage_problem
        status = "shutting_down" if runtime.shutting_down else "degraded" if problem else "ok"
        counts = await read_reported_counts(runtime)
        body = Health(
            status=status,
            version=__version__,
            storage=HealthStorage(ok=problem is None, problem=problem),
            jobs=HealthJobs(running=counts.running, queued=counts.queued, total=counts.total),
            subscribers=runtime.subscriber_count,
            node=_node_health(runtime),
        )
        return Response(
            dump_json_bytes(body),
            status=200 if status == "ok" else 503,
            content_type="application/json",
        )


def _node_health(runtime: Runtime) -> HealthNode | None:
    """This node of a cluster: its name, role and own jobs (``None`` in one process)."""
    if not runtime.clustered:
        return None
    config = runtime.config
    return HealthNode(
        name=config.node_name or "",
        role=config.role,
        running=runtime.running_count,
        queued=runtime.queued_count,
    )
