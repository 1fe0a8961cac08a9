"""A job id as the user typed it: the whole id, or any unique prefix of it (``74ef7efa``)."""

from __future__ import annotations

from ..client import AuraClient, JobSnapshot, NotFound
from ._state import job_title

__all__ = ["AmbiguousJobId", "resolve_job"]

#: How many candidates an ambiguous prefix lists.
_SHOWN = 10


class AmbiguousJobId(Exception):
    """The prefix matches more than one job; the message lists them."""

    def __init__(self, prefix: str, matches: list[JobSnapshot]) -> None:
        lines = [f"job id {prefix!r} is ambiguous: {len(matches)} jobs have ids starting with it:"]
        for job in matches[:_SHOWN]:
            title = job_title(job.pipeline, job.params)
            lines.append(f"  {job.id}  {job.status.value:<8}  {title}")
        if len(matches) > _SHOWN:
            lines.append(f"  ... and {len(matches) - _SHOWN} more")
        lines.append("type more of the id")
        super().__init__("\n".join(lines))
        self.prefix = prefix
        self.matches = matches


async def resolve_job(client: AuraClient, typed: str) -> JobSnapshot:
    """The snapshot of the job ``typed`` names: its id, or a prefix of exactly one job's id.

    A leading ``#`` is ignored (the page writes ids that way). The whole id is
    asked for first (one request); a prefix is looked up in the caller's job
    list, page by page. Raises :class:`~aura_actors.client.NotFound` when no job
    matches and :class:`AmbiguousJobId` when several do. A checkpoint.
    """
    text = typed.strip().removeprefix("#")
    if not text:
        raise NotFound(404, "job_not_found", "no job id given")
    try:
        return await client.get_job(text)
    except NotFound as missing:
        not_found = missing
    prefix = text.lower()
    matches = [job async for job in client.iter_jobs(page_size=200) if job.id.startswith(prefix)]
    if not matches:
        raise not_found
    if len(matches) > 1:
        raise AmbiguousJobId(text, matches)
    return matches[0]
