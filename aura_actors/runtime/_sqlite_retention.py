"""The SQL of the store's upkeep: expiring histories, and which jobs retention deletes."""

from __future__ import annotations

import sqlite3


def expire_histories(connection: sqlite3.Connection, finished_before: float) -> int:
    """Delete the events of jobs finished before ``finished_before``; how many jobs."""
    ids = [
        job_id
        for (job_id,) in connection.execute(
            "SELECT id FROM jobs WHERE finished_wall < ? AND history_expired = 0",
            (finished_before,),
        )
    ]
    for job_id in ids:
        connection.execute("DELETE FROM events WHERE job_id = ?", (job_id,))
        connection.execute("UPDATE jobs SET history_expired = 1 WHERE id = ?", (job_id,))
    return len(ids)


def retention_victims(
    connection: sqlite3.Connection, now: float, days: float | None, jobs: int | None
) -> list[str]:
    """Finished jobs past ``days`` old, or past the newest ``jobs`` finished ones; oldest first."""
    victims: dict[str, None] = {}
    if days is not None:
        cutoff = now - days * 86400.0
        for (job_id,) in connection.execute(
            "SELECT id FROM jobs WHERE finished_wall < ? ORDER BY seq", (cutoff,)
        ):
            victims[job_id] = None
    if jobs is not None:
        for (job_id,) in connection.execute(
            "SELECT id FROM jobs WHERE finished_wall IS NOT NULL ORDER BY seq DESC "
            "LIMIT -1 OFFSET ?",
            (jobs,),
        ):
            victims[job_id] = None
    return list(victims)


def delete_rows(connection: sqlite3.Connection, job_ids: list[str]) -> None:
    """Delete the jobs' records, events and logs."""
    for job_id in job_ids:
        connection.execute("DELETE FROM events WHERE job_id = ?", (job_id,))
        connection.execute("DELETE FROM job_logs WHERE job_id = ?", (job_id,))
        connection.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
