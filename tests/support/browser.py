"""Driving the web page in a real browser: Debian's chromium through Playwright's sync API.

A test runs the server on trio and the browser in a worker thread
(:func:`in_browser`), so the server keeps serving while the browser waits.
Waiting is Playwright's own (``expect``, ``wait_for_function``), never sleeps.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import trio

CHROMIUM = Path("/usr/bin/chromium")

#: Mark a test module with this: the browser tests need chromium.
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="the browser tests need Debian's chromium at /usr/bin/chromium "
    "(apt-get install chromium)",
)

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = sync_api.expect
Page = sync_api.Page
Locator = sync_api.Locator

LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TIMEOUT_MS = 15_000

#: Counts EventSource constructions, so a test can check the page opens only one.
COUNT_EVENT_SOURCES = """
(() => {
  const Native = window.EventSource;
  window.__eventSources = [];
  window.EventSource = class extends Native {
    constructor(url, init) {
      super(url, init);
      window.__eventSources.push(String(url));
    }
  };
})();
"""

#: Console lines that are expected while a server is down or a token is missing.
_EXPECTED_CONSOLE = re.compile(
    r"Failed to load resource|net::ERR_|EventSource|status of (401|503)", re.IGNORECASE
)


def video(topic: str, duration: float = 30, speed: float = 1) -> dict[str, Any]:
    return {
        "pipeline": "video",
        "params": {"topic": topic, "durationSeconds": duration, "speed": speed},
    }


def synthetic(stages: int, ticks: int, tick_seconds: float) -> dict[str, Any]:
    return {
        "pipeline": "synthetic",
        "params": {"stages": stages, "ticks": ticks, "tickSeconds": tick_seconds},
    }


# -- running a scenario in the browser ------------------------------------------------------


def _drive(
    scenario: Callable[[Page], None], viewport: dict[str, int], permissions: Sequence[str]
) -> None:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
        )
        try:
            context = browser.new_context(
                viewport=viewport, color_scheme="light", permissions=list(permissions)
            )
            context.set_default_timeout(TIMEOUT_MS)
            context.add_init_script(COUNT_EVENT_SOURCES)
            page = context.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
            page.on(
                "console",
                lambda message: (
                    problems.append(f"console: {message.text}")
                    if message.type == "error" and not _EXPECTED_CONSOLE.search(message.text)
                    else None
                ),
            )
            scenario(page)
            assert problems == [], problems
        finally:
            browser.close()


async def in_browser(
    scenario: Callable[[Page], None],
    *,
    viewport: dict[str, int] | None = None,
    permissions: Sequence[str] = (),
) -> None:
    """Run ``scenario(page)`` in chromium, in a worker thread (the server stays on trio).

    ``permissions`` are granted to the page (e.g. ``"clipboard-read"``).
    """
    expect.set_options(timeout=TIMEOUT_MS)
    size = viewport or {"width": 1280, "height": 900}
    await trio.to_thread.run_sync(functools.partial(_drive, scenario, size, permissions))


# -- page helpers ----------------------------------------------------------------------------


def card_by_topic(page: Page, topic: str) -> Locator:
    return page.locator("li.job").filter(
        has=page.locator(".job-title", has_text=re.compile(f"^{re.escape(topic)}$"))
    )


def card_by_id(page: Page, job_id: str) -> Locator:
    return page.locator(f'li.job[data-job-id="{job_id}"]')


def progress_of(card: Locator) -> int:
    value = card.get_by_role("progressbar").get_attribute("aria-valuenow")
    assert value is not None
    return int(value)


def wait_progress_above(page: Page, card: Locator, value: int) -> int:
    """Wait (Playwright's waiting) until the card's bar is above ``value``; return the new value."""
    bar = card.get_by_role("progressbar")
    handle = bar.element_handle()
    page.wait_for_function(
        "([bar, value]) => Number(bar.getAttribute('aria-valuenow')) > value", arg=[handle, value]
    )
    return progress_of(card)


def expect_live(page: Page, timeout: int = TIMEOUT_MS) -> None:
    expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=timeout)


def start_from_form(page: Page, topic: str, duration: int) -> Locator:
    page.get_by_label("Topic").fill(topic)
    page.get_by_label("Length of the video").fill(str(duration))
    page.get_by_role("button", name="Start render").click()
    card = card_by_topic(page, topic)
    expect(card).to_have_count(1)
    return card


def cancel_button(card: Locator) -> Locator:
    return card.get_by_role("button", name=re.compile(r"^Cancel"))


def save_screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path
