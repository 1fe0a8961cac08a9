"""The ``synthetic`` pipeline: N stages of M ticks, for tests and benchmarks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import pydantic
import trio

from ..runtime import Stage, StageContext, StageError
from ._params import ParamsModel, validate_params


class TickAt(ParamsModel):
    """A point in a synthetic job: stage index and tick index, both from 0."""

    stage: int = pydantic.Field(ge=0)
    tick: int = pydantic.Field(ge=0)


#: The shortest stall timeout of a synthetic stage, in seconds.
MIN_STALL_SECONDS = 30.0


class SyntheticParams(ParamsModel):
    """Params of the ``synthetic`` pipeline."""

    stages: int = pydantic.Field(default=3, ge=1, le=50)
    ticks: int = pydantic.Field(default=10, ge=1, le=100_000)
    tick_seconds: float = pydantic.Field(default=0.01, ge=0, le=3600)
    fail_at: TickAt | None = None
    warn_at: TickAt | None = None

    @pydantic.model_validator(mode="after")
    def _points_inside_the_job(self) -> SyntheticParams:
        for name, point in (("failAt", self.fail_at), ("warnAt", self.warn_at)):
            if point is None:
                continue
            if point.stage >= self.stages:
                raise ValueError(f"{name}.stage must be below stages ({self.stages})")
            if point.tick >= self.ticks:
                raise ValueError(f"{name}.tick must be below ticks ({self.ticks})")
        return self


async def _tick_stage(params: SyntheticParams, context: StageContext) -> None:
    here = context.stage_index
    for tick in range(params.ticks):
        if params.tick_seconds > 0:
            await trio.sleep(params.tick_seconds)
        if params.fail_at is not None and (params.fail_at.stage, params.fail_at.tick) == (
            here,
            tick,
        ):
            raise StageError(
                f"synthetic failure at {context.stage_name}, tick {tick + 1} "
                f"(failAt stage {here}, tick {tick})",
                code="synthetic_failure",
                remediation="remove failAt from the params to let the job finish",
            )
        if params.warn_at is not None and (params.warn_at.stage, params.warn_at.tick) == (
            here,
            tick,
        ):
            await context.warn(
                f"synthetic warning at {context.stage_name}, tick {tick + 1} "
                f"(warnAt stage {here}, tick {tick})"
            )
        await context.report(
            (tick + 1) / params.ticks,
            f"tick {tick + 1}/{params.ticks}",
            current_item=tick + 1,
            total_items=params.ticks,
        )


class SyntheticPipeline:
    """``synthetic``: ``stages`` equal stages, each of ``ticks`` ticks of ``tickSeconds``."""

    name = "synthetic"

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Fill defaults and check ranges; raise ``InvalidJobRequest`` otherwise."""
        model = validate_params(SyntheticParams, self.name, params)
        return model.model_dump(by_alias=True, exclude_none=True)

    def build(self, params: dict[str, Any]) -> Sequence[Stage]:
        """One :class:`Stage` per requested stage, named ``stage-1`` … ``stage-N``."""
        model = SyntheticParams.model_validate(params)
        run = partial(_tick_stage, model)
        # A stage reports every tick: ten ticks without a report means it is stuck.
        stall = max(MIN_STALL_SECONDS, 10 * model.tick_seconds)
        return [
            Stage(name=f"stage-{i + 1}", run=run, weight=1.0, stall_timeout=stall)
            for i in range(model.stages)
        ]
