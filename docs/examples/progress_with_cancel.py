"""Follow a job and cancel it once it reaches the Visuals stage."""

import os

import trio

from aura_actors.client import AuraClient, JobCancelledEvent, StepStatusEvent

URL = os.environ.get("AURA_URL", "http://127.0.0.1:8000")


async def main() -> None:
    async with AuraClient(URL) as client:
        job = await client.create_job("video", {"topic": "Glaciers", "speed": 5})
        async with client.events(job.id) as stream:
            async for event in stream:
                if isinstance(event, StepStatusEvent) and event.step == "Visuals":
                    await client.cancel_job(job.id)  # 202: the stream says when it ended
                elif isinstance(event, JobCancelledEvent):
                    print(f"canceled in {event.step}: {event.message}")
        print("final status:", (await client.get_job(job.id)).status)


trio.run(main)
