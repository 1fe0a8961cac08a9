"""Showing a job's events to a person (or a pipe): live rich display, plain lines, JSON lines.

Used by ``aura-actors follow`` and ``submit --follow``; usable from scripts too::

    with LiveView(Console()) as view:
        async for event in stream:
            view.event(event)
        view.finish(event)

Every view has the same methods (:class:`EventView`): ``event`` for each event,
``note`` for a message about the connection or the command, ``finish`` for the
summary, ``paused`` to get the terminal back for a question.
"""

from ._live import LiveView
from ._state import FollowState, format_eta, format_size, job_title, outcome_status
from ._views import ArtifactUrl, EventView, JsonLinesView, PlainView

__all__ = [
    "ArtifactUrl",
    "EventView",
    "FollowState",
    "JsonLinesView",
    "LiveView",
    "PlainView",
    "format_eta",
    "format_size",
    "job_title",
    "outcome_status",
]
