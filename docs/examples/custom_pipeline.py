"""Run the runtime in-process with a pipeline of your own: a subprocess and a thread."""

import time
from pathlib import Path

import trio

from aura_actors.runtime import (
    PipelineRegistry,
    RuntimeConfig,
    Stage,
    StageContext,
    open_runtime,
)


async def transcode(ctx: StageContext) -> None:
    # Killed (with everything it spawned) the moment the job is cancelled.
    await ctx.run_process(["sh", "-c", "sleep 0.2; echo transcoded"])
    await ctx.report(1.0, "transcoded")


def checksum(ctx: StageContext) -> None:
    for chunk in range(1, 6):
        time.sleep(0.02)  # blocking work
        ctx.report_from_thread(chunk / 5, f"chunk {chunk} of 5")  # raises if cancelled


async def verify(ctx: StageContext) -> None:
    await ctx.run_in_thread(checksum, ctx)


class MediaPipeline:
    name = "media"

    def validate(self, params: dict) -> dict:
        return dict(params)

    def build(self, params: dict) -> list[Stage]:
        return [
            Stage("Transcode", transcode, weight=3, stall_timeout=30),
            Stage("Verify", verify, weight=1),
        ]


async def main() -> None:
    config = RuntimeConfig(data_dir=Path("aura-data"))
    async with open_runtime(config, PipelineRegistry([MediaPipeline()])) as runtime:
        job = await runtime.submit("media", {})  # returns once the job is stored
        with await runtime.subscribe_job(job.id) as events:
            async for event in events:
                print(event.id, event.type, event.data.get("progressPct", ""))


trio.run(main)
