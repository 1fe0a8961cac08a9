"""Pipelines: a named recipe that validates params and builds the list of stages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from ._errors import UnknownPipeline
from ._stage import Stage


class Pipeline(Protocol):
    """What the runtime needs of a pipeline."""

    @property
    def name(self) -> str:
        """The name clients use in ``POST /api/jobs``."""
        ...

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Return normalized params (defaults filled in) or raise ``InvalidJobRequest``."""
        ...

    def build(self, params: dict[str, Any]) -> Sequence[Stage]:
        """The stages of one job with these (validated) params."""
        ...


class PipelineRegistry:
    """The pipelines a runtime knows, by name."""

    def __init__(self, pipelines: Iterable[Pipeline] = ()) -> None:
        self._pipelines: dict[str, Pipeline] = {}
        for pipeline in pipelines:
            self.register(pipeline)

    def register(self, pipeline: Pipeline) -> None:
        """Add ``pipeline``; its name must be new."""
        if pipeline.name in self._pipelines:
            raise ValueError(f"pipeline {pipeline.name!r} is already registered")
        self._pipelines[pipeline.name] = pipeline

    def get(self, name: object) -> Pipeline:
        """The pipeline called ``name``; raises :class:`UnknownPipeline`."""
        if isinstance(name, str) and name in self._pipelines:
            return self._pipelines[name]
        raise UnknownPipeline(name, list(self._pipelines))

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._pipelines)
