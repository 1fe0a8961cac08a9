"""The script: a title and one or two spoken sentences per scene, made from the topic alone.

Deterministic (the same topic and length give the same script, on every
machine) and offline: the sentences come from the templates below, picked
by a hash of the topic, so different topics read a little differently.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ._plan import RenderPlan, SceneTiming, format_clock

#: Words of the topic that go into spoken sentences (a long topic is shortened there).
SPOKEN_TOPIC_WORDS = 8

_OPENING = (
    "Welcome",
    "Here is a short video about {topic}. Let us take it one step at a time.",
)
_CLOSING = (
    "Wrapping up",
    "That was {topic} in {length}. Thank you for watching, and stay curious.",
)
_MIDDLE = (
    ("The big picture", "Start with the big picture: what {topic} is, and why people care."),
    ("Where it began", "Every story has a beginning, and {topic} is no different."),
    ("How it works", "Under the surface, {topic} follows a few simple rules."),
    ("A closer look", "Look closer, and {topic} shows details that are easy to miss."),
    ("Why it matters", "Why does {topic} matter? Because it shapes more than it seems."),
    ("A common myth", "A common myth about {topic} does not survive a careful look."),
    ("In practice", "In practice, {topic} shows up in places you would not expect."),
    ("By the numbers", "Numbers help: measure {topic}, and patterns start to appear."),
    ("Open questions", "Some questions about {topic} are still open, and that is exciting."),
    ("Try it yourself", "The best way to understand {topic} is to try it yourself."),
)


@dataclass(frozen=True, slots=True)
class Scene:
    """One scene of the script: its timing, a short title and the sentence spoken over it."""

    timing: SceneTiming
    title: str
    text: str


#: First words written in lower case when the topic goes mid-sentence ("about how …").
_LOWER_FIRST_WORDS = "a an the how why what when where who which this that these those our my your"
_LOWER_FIRST = frozenset(_LOWER_FIRST_WORDS.split())

#: Words a shortened topic must not end on ("… history of").
_DANGLING_WORDS = (
    "a an the and or but of in on at to for with about from by as why how what that "
    "which who is are"
)
_DANGLING = frozenset(_DANGLING_WORDS.split())


def spoken_topic(topic: str) -> str:
    """The topic as it goes into a sentence: whitespace collapsed, a leading "How"/"The"/…
    in lower case, and a long one cut to :data:`SPOKEN_TOPIC_WORDS` words (not ending
    on "of", "and", …)."""
    words = topic.split()
    if len(words) > SPOKEN_TOPIC_WORDS:
        words = words[:SPOKEN_TOPIC_WORDS]
        while len(words) > 1 and words[-1].casefold().strip(",;:") in _DANGLING:
            words.pop()
        words[-1] = words[-1].rstrip(",;:")
    if words and words[0].casefold() in _LOWER_FIRST:
        words[0] = words[0].casefold()
    return " ".join(words)


def _describe_length(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{whole} seconds"
    minutes, rest = divmod(whole, 60)
    unit = "minute" if minutes == 1 else "minutes"
    return f"{minutes} {unit}" if rest == 0 else f"{minutes} {unit} and {rest} seconds"


def _offset(topic: str) -> int:
    digest = hashlib.sha256(topic.strip().casefold().encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") % len(_MIDDLE)


def _template(index: int, count: int, offset: int) -> tuple[str, str]:
    if index == count - 1 and count > 1:
        return _CLOSING
    if index == 0:
        return _OPENING
    return _MIDDLE[(offset + index - 1) % len(_MIDDLE)]


def write_scenes(plan: RenderPlan) -> list[Scene]:
    """The scenes of ``plan``: an opening, middle scenes from the templates, a closing.

    A one-scene video is the opening alone. Pure: no I/O, not a checkpoint.
    """
    topic = spoken_topic(plan.topic)
    length = _describe_length(plan.duration_seconds)
    offset = _offset(plan.topic)
    scenes = []
    for timing in plan.scenes:
        title, text = _template(timing.index, plan.scene_count, offset)
        scenes.append(Scene(timing, title, text.format(topic=topic, length=length)))
    return scenes


def script_text(plan: RenderPlan, scenes: list[Scene]) -> str:
    """``script.txt``: the topic as a heading, then each scene with its time range and text."""
    lines = [f"# {plan.topic.strip()}", ""]
    for scene in scenes:
        start = format_clock(scene.timing.start)
        end = format_clock(scene.timing.start + scene.timing.seconds)
        lines.append(
            f"Scene {scene.timing.number} of {plan.scene_count} · {scene.title} ({start}–{end})"
        )
        lines.append(scene.text)
        lines.append("")
    return "\n".join(lines)
