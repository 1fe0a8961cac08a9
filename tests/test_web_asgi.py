"""The app's ASGI connection classes (``aura_actors.web._asgi``), piece by piece.

Answers after the body (fix 2) are tested end to end in ``test_web_rest.py``
(``test_an_answer_before_the_whole_body_never_wedges_the_connection``), the
event-stream hand-off and ``HEAD`` in ``test_web_sse.py``.
"""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from aura_actors.web._asgi import whole_sends

START = {"type": "http.response.start", "status": 200, "headers": []}
CHUNK = {"type": "http.response.body", "body": b"frame", "more_body": True}
END = {"type": "http.response.body", "body": b"", "more_body": False}
MESSAGE = {"type": "websocket.send", "text": "{}"}
CLOSE = {"type": "websocket.close", "code": 1000}


async def test_whole_sends_finish_what_closes_a_response_and_leave_chunks_cancellable(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Cancelled half-way, a start or an end would leave Hypercorn's connection wedged
    (fix 1); a chunk is one write Hypercorn shields itself, so it stays cancellable."""
    finished: list[str] = []

    async def slow_send(message: Any) -> None:
        await trio.sleep(1)  # a write that blocks for a while
        finished.append(message["type"] + (" more" if message.get("more_body") else ""))

    send = whole_sends(slow_send)
    for message in (START, CHUNK, END, MESSAGE, CLOSE):
        with trio.move_on_after(0.5):  # the request is cancelled mid-send
            await send(message)
    assert finished == ["http.response.start", "http.response.body", "websocket.close"]
