"""What can go wrong, and how to recover from each."""

import os

import trio

from aura_actors.client import (
    AuraClient,
    ConnectionLost,
    NotFound,
    QueueFull,
    ReconnectPolicy,
    ServerUnavailable,
    ValidationFailed,
)

URL = os.environ.get("AURA_URL", "http://127.0.0.1:8000")


async def main() -> None:
    policy = ReconnectPolicy(max_attempts=5, base_delay=1.0)  # 1, 2, 4, 8, 16 s
    async with AuraClient(URL, reconnect=policy) as client:
        try:
            await client.create_job("video", {"topic": "", "durationSeconds": 4})
        except ValidationFailed as error:  # 422: fix the request, do not retry it
            for detail in error.details:
                print(f"invalid {detail['field']}: {detail['message']}")

        try:
            await client.get_job("no-such-job")
        except NotFound as error:  # 404: unknown, or another user's job
            print("not found:", error.message)

        try:
            job = await client.create_job("synthetic", {"ticks": 3})
        except (QueueFull, ServerUnavailable):  # 429 / 503: retry later
            print("busy; try again later")
            return

        try:
            final = await client.wait(job.id)  # reconnects and resumes on its own
            print("ended with", final.type if final else "no terminal event")
        except ConnectionLost as error:  # five reconnects in a row failed
            print(f"gave up after {error.attempts} tries; resume from {error.last_event_id}")


trio.run(main)
