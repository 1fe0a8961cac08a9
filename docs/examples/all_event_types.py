"""Handle every event type of a job's stream."""

import os

import trio

from aura_actors.client import (
    AuraClient,
    ErrorEvent,
    JobCancelledEvent,
    JobCompletedEvent,
    JobFailedEvent,
    JobStatusEvent,
    StepProgressEvent,
    StepStatusEvent,
    WarningEvent,
)

URL = os.environ.get("AURA_URL", "http://127.0.0.1:8000")


async def main() -> None:
    params = {"stages": 2, "ticks": 5, "tickSeconds": 0.01, "warnAt": {"stage": 0, "tick": 2}}
    async with AuraClient(URL) as client:
        job = await client.create_job("synthetic", params)
        async with client.events(job.id) as stream:
            async for event in stream:
                match event:
                    case JobStatusEvent():
                        print(f"status  {event.previous_status} -> {event.status}")
                    case StepStatusEvent():
                        print(f"step    {event.step} {event.state}")
                    case StepProgressEvent():
                        print(f"        {event.progress_pct:.0f}% eta={event.eta_seconds}")
                    case WarningEvent():
                        print(f"warning {event.step}: {event.message}")
                    case JobCompletedEvent():
                        print(f"done in {event.duration_seconds} s")
                    case JobFailedEvent():
                        for error in event.errors:
                            print(f"failed  {error.code}: {error.message} ({error.remediation})")
                    case JobCancelledEvent():
                        print(f"canceled in {event.step}")
                    case ErrorEvent():
                        print(f"stream error {event.code}: {event.message}")


trio.run(main)
