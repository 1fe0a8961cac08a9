"""Start a video job and watch its progress until it ends."""

import os

import trio

from aura_actors.client import AuraClient, JobCompletedEvent, StepProgressEvent

URL = os.environ.get("AURA_URL", "http://127.0.0.1:8000")


async def main() -> None:
    async with AuraClient(URL) as client:
        job = await client.create_job("video", {"topic": "Tides", "speed": 20})
        async with client.events(job.id) as stream:
            async for event in stream:
                if isinstance(event, StepProgressEvent):
                    print(f"{event.step:<12} {event.progress_pct:5.1f}%  {event.message}")
                elif isinstance(event, JobCompletedEvent):
                    print("done:", ", ".join(artifact.name for artifact in event.artifacts))


trio.run(main)
