"""A job's files in the data dir: where they go, and removing them."""

from __future__ import annotations

import shutil
from pathlib import Path


def job_files_dir(artifacts_dir: Path, job_id: str) -> Path:
    """The folder of ``job_id``'s files (it may not exist)."""
    return artifacts_dir / job_id


def remove_job_files(artifacts_dir: Path, job_id: str) -> None:
    """Delete ``job_id``'s folder of files, if any. Blocking: call it in a thread."""
    folder = job_files_dir(artifacts_dir, job_id)
    if folder.is_symlink():
        folder.unlink()
    elif folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
