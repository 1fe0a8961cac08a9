"""Slides: one 1280×720 picture per scene, drawn with Pillow, and the video's thumbnail.

Blocking (Pillow): the Visuals stage calls these in a worker thread. They
return encoded bytes and write no file, so a thread left behind by a cancel
cannot put a file into a job's folder after the job removed it.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 1280, 720
THUMBNAIL_SIZE = (640, 360)
MARGIN = 96
#: Dark gradients (top, bottom): white text stays legible on each.
PALETTES = (
    ((14, 30, 64), (36, 86, 128)),
    ((38, 18, 58), (112, 42, 92)),
    ((8, 48, 44), (22, 112, 92)),
    ((52, 28, 14), (138, 70, 30)),
    ((22, 24, 36), (62, 72, 112)),
)
ACCENTS = ((255, 196, 87), (126, 231, 200), (255, 138, 128), (150, 190, 255), (240, 240, 160))
TEXT = (255, 255, 255)
MUTED = (214, 222, 236)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
_REGULAR = ("DejaVuSans.ttf", "LiberationSans-Regular.ttf", "FreeSans.ttf", "Arial.ttf")
_BOLD = ("DejaVuSans-Bold.ttf", "LiberationSans-Bold.ttf", "FreeSansBold.ttf", "Arial Bold.ttf")


@dataclass(frozen=True, slots=True)
class Fonts:
    """The four faces a slide uses; ``truetype`` is ``False`` when Pillow's own font stood in."""

    label: Font
    title: Font
    body: Font
    footer: Font
    truetype: bool


def _font(names: tuple[str, ...], size: int) -> tuple[Font, bool]:
    for name in names:
        try:
            return ImageFont.truetype(name, size), True
        except OSError:
            continue
    return ImageFont.load_default(size=size), False


def load_fonts() -> Fonts:
    """A TrueType font if one is installed (DejaVu, Liberation, …), else Pillow's default."""
    label, found = _font(_BOLD, 26)
    title, _ = _font(_BOLD, 66)
    body, _ = _font(_REGULAR, 42)
    footer, _ = _font(_REGULAR, 24)
    return Fonts(label, title, body, footer, found)


def _choice(topic: str) -> int:
    return hashlib.sha256(topic.strip().casefold().encode("utf-8")).digest()[0]


def wrap(text: str, font: Font, width: float) -> list[str]:
    """``text`` in lines no wider than ``width`` pixels; over-long words are broken."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if font.getlength(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        while font.getlength(word) > width and len(word) > 1:
            cut = len(word) - 1
            while cut > 1 and font.getlength(word[:cut]) > width:
                cut -= 1
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    if current:
        lines.append(current)
    return lines


def clip(lines: list[str], count: int, font: Font, width: float) -> list[str]:
    """At most ``count`` of ``lines``; the last one kept ends in an ellipsis if any were cut."""
    if len(lines) <= count:
        return lines
    last = lines[count - 1]
    while last and font.getlength(last + "…") > width:
        last = last[:-1]
    return [*lines[: count - 1], last.rstrip() + "…"]


def _background(palette: int) -> Image.Image:
    top, bottom = PALETTES[palette % len(PALETTES)]
    mask = Image.linear_gradient("L").resize((WIDTH, HEIGHT))
    return Image.composite(
        Image.new("RGB", (WIDTH, HEIGHT), bottom), Image.new("RGB", (WIDTH, HEIGHT), top), mask
    )


def _footer(
    draw: ImageDraw.ImageDraw, fonts: Fonts, accent: tuple[int, int, int], number: int, count: int
) -> None:
    y = HEIGHT - 78
    draw.text((MARGIN, y), f"Scene {number} of {count}", font=fonts.footer, fill=MUTED)
    track_left, track_right = WIDTH - MARGIN - 360, WIDTH - MARGIN
    middle = y + 14
    draw.rounded_rectangle(
        (track_left, middle - 3, track_right, middle + 3), radius=3, fill=(255, 255, 255, 60)
    )
    done = track_left + (track_right - track_left) * number / count
    draw.rounded_rectangle((track_left, middle - 3, done, middle + 3), radius=3, fill=accent)


def render_slide(
    fonts: Fonts, topic: str, title: str, text: str, number: int, count: int
) -> Image.Image:
    """The slide of scene ``number`` (from 1) of ``count``: topic, title, wrapped text, footer."""
    choice = _choice(topic)
    accent = ACCENTS[choice % len(ACCENTS)]
    image = _background(choice + number // 4)
    draw = ImageDraw.Draw(image, "RGBA")
    usable = WIDTH - 2 * MARGIN
    draw.rectangle((0, 0, 14, HEIGHT), fill=accent)
    label = clip(wrap(" ".join(topic.split()).upper(), fonts.label, usable), 1, fonts.label, usable)
    draw.text((MARGIN, 84), label[0] if label else "", font=fonts.label, fill=accent)
    y = 140
    for line in clip(wrap(title, fonts.title, usable), 2, fonts.title, usable):
        draw.text((MARGIN, y), line, font=fonts.title, fill=TEXT)
        y += 82
    y += 28
    draw.line((MARGIN, y, MARGIN + 120, y), fill=accent, width=6)
    y += 44
    for line in clip(wrap(text, fonts.body, usable), 6, fonts.body, usable):
        draw.text((MARGIN, y), line, font=fonts.body, fill=MUTED)
        y += 58
    _footer(draw, fonts, accent, number, count)
    return image


def png_bytes(image: Image.Image) -> bytes:
    """``image`` as PNG."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=3)
    return buffer.getvalue()


def thumbnail_bytes(image: Image.Image) -> bytes:
    """``image`` shrunk to 640×360, as JPEG: the video's poster."""
    small = image.resize(THUMBNAIL_SIZE, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=85, optimize=True)
    return buffer.getvalue()
