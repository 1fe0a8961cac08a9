"""The embedded store's schema, and the migrations that bring an older database up to it.

``PRAGMA user_version`` is the schema version. Each step of :data:`MIGRATIONS`
takes a database from version ``n`` to ``n + 1`` inside one transaction, so a
crash mid-migration leaves the older version intact.
"""

from __future__ import annotations

import sqlite3
from typing import Final

#: Version 1: jobs and their events.
_V1: Final = """
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    owner TEXT,
    status TEXT NOT NULL,
    snapshot TEXT NOT NULL,
    finished_wall REAL,
    history_expired INTEGER NOT NULL DEFAULT 0,
    truncated_through TEXT
);
CREATE INDEX jobs_by_owner ON jobs (owner, seq);
CREATE INDEX jobs_by_finish ON jobs (finished_wall) WHERE finished_wall IS NOT NULL;
CREATE TABLE events (
    millis INTEGER NOT NULL,
    counter INTEGER NOT NULL,
    job_id TEXT NOT NULL,
    owner TEXT,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (millis, counter)
) WITHOUT ROWID;
CREATE INDEX events_by_job ON events (job_id, millis, counter);
CREATE INDEX events_by_owner ON events (owner, millis, counter);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

#: Version 2: each job's log lines.
_V2: Final = """
CREATE TABLE job_logs (job_id TEXT PRIMARY KEY, lines TEXT NOT NULL);
"""

#: ``MIGRATIONS[n]`` takes a database of version ``n`` to ``n + 1``.
MIGRATIONS: Final = (_V1, _V2)
#: The version this code reads and writes.
SCHEMA_VERSION: Final = len(MIGRATIONS)


class SchemaTooNew(Exception):
    """The database was written by a newer aura-actors."""


def migrate(connection: sqlite3.Connection) -> int:
    """Bring ``connection``'s database to :data:`SCHEMA_VERSION`; return the version found.

    Blocking. Raises :class:`SchemaTooNew` for a database newer than this code.
    """
    found = int(connection.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"the database has schema version {found}; this aura-actors reads up to "
            f"{SCHEMA_VERSION}: upgrade aura-actors"
        )
    for version in range(found, SCHEMA_VERSION):
        with connection:
            connection.execute("BEGIN IMMEDIATE")
            for statement in MIGRATIONS[version].split(";"):
                if statement.strip():
                    connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {version + 1}")
    return found
