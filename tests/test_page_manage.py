"""The page's job tools in a real browser: retry, the job's log, the full id, sizes.

(Clearing finished jobs, which deletes them on the server, and downloads with a
token are in ``test_page_browser.py``, with the scenarios they belong to.)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from support.browser import (
    Locator,
    Page,
    card_by_id,
    expect,
    expect_live,
    in_browser,
    needs_chromium,
    video,
)
from support.servers import run_server

from aura_actors.cli.display import format_size
from aura_actors.web import ServerSettings

pytestmark = needs_chromium

FAILING = {
    "pipeline": "synthetic",
    "params": {"stages": 2, "ticks": 3, "tickSeconds": 0, "failAt": {"stage": 1, "tick": 1}},
}
#: A job that sits in its first tick until cancelled.
WAITING = {"pipeline": "synthetic", "params": {"stages": 1, "ticks": 1, "tickSeconds": 600}}
QUICK = {
    "pipeline": "synthetic",
    "params": {"stages": 2, "ticks": 3, "tickSeconds": 0, "warnAt": {"stage": 0, "tick": 1}},
}


def retry_button(card: Locator) -> Locator:
    return card.get_by_role("button", name=re.compile(r"^Retry"))


def log_lines(card: Locator) -> Locator:
    return card.locator(".log .log-line")


async def test_retry_starts_the_same_job_again_as_a_new_one(tmp_path: Path) -> None:
    async with run_server(data_dir=tmp_path) as server:

        def scenario(page: Page) -> None:
            page.goto(server.url)
            expect_live(page)
            api = f"{server.url}/api/jobs"
            failed = page.request.post(api, data=FAILING).json()["id"]
            canceled = page.request.post(api, data=video("Tides", 60)).json()["id"]
            page.request.post(f"{api}/{canceled}/cancel")
            expect(card_by_id(page, failed).locator(".badge")).to_have_text("Failed")
            expect(card_by_id(page, canceled).locator(".badge")).to_have_text("Canceled")
            expect(page.locator("li.job")).to_have_count(2)

            retry_button(card_by_id(page, failed)).click()
            expect(page.locator("li.job")).to_have_count(3)
            newest = page.locator("li.job").first
            new_id = newest.get_attribute("data-job-id")
            assert new_id is not None and new_id not in (failed, canceled)
            snapshot = page.request.get(f"{api}/{new_id}").json()
            assert snapshot["retryOf"] == failed and snapshot["params"] == FAILING["params"]
            expect(newest.locator(".job-meta")).to_contain_text(f"retry of {failed[:8]}")
            # It runs and fails like the first; it can be retried in turn.
            expect(newest.locator(".badge")).to_have_text("Failed")
            expect(retry_button(newest)).to_be_enabled()

            # A canceled video: the new one has the same topic, and runs.
            retry_button(card_by_id(page, canceled)).click()
            expect(page.locator("li.job")).to_have_count(4)
            again = page.locator("li.job").first
            expect(again.locator(".job-title")).to_have_text("Tides")
            expect(again.locator(".badge")).to_have_text("Running")
            expect(retry_button(again)).to_have_count(0)
            again_id = again.get_attribute("data-job-id")
            assert page.request.get(f"{api}/{again_id}").json()["retryOf"] == canceled
            page.request.post(f"{api}/{again_id}/cancel")

        await in_browser(scenario)


async def test_the_log_panel_shows_the_jobs_log_and_follows_it_while_open(
    tmp_path: Path,
) -> None:
    async with run_server(ServerSettings.of(max_concurrent_jobs=1), data_dir=tmp_path) as server:

        def scenario(page: Page) -> None:
            page.goto(server.url)
            expect_live(page)
            api = f"{server.url}/api/jobs"
            failed = page.request.post(api, data=FAILING).json()["id"]
            card = card_by_id(page, failed)
            expect(card.locator(".badge")).to_have_text("Failed")

            # Closed until asked for; opened, it shows the job's log, the failure last.
            expect(card.locator(".log-box")).to_be_hidden()
            card.locator(".log summary").click()
            lines = log_lines(card)
            stored = page.request.get(f"{api}/{failed}/logs").json()["lines"]
            expect(lines).to_have_count(len(stored))
            expect(lines.first).to_contain_text("[stage-1] stage-1 started")
            expect(lines.last).to_have_attribute("data-level", "error")
            expect(lines.last).to_contain_text(
                "synthetic failure at stage-2, tick 2 (failAt stage 1, tick 1)"
            )

            # A job waiting behind another has no log yet; its open panel follows it
            # as it runs, from its own events.
            blocker = page.request.post(api, data=WAITING).json()["id"]
            expect(card_by_id(page, blocker).locator(".badge")).to_have_text("Running")
            waiting = page.request.post(api, data=QUICK).json()["id"]
            waiting_card = card_by_id(page, waiting)
            expect(waiting_card.locator(".badge")).to_have_text("Queued")
            waiting_card.get_by_text("Log", exact=True).click()
            expect(waiting_card.locator(".log-status")).to_have_text("No lines yet.")
            expect(log_lines(waiting_card)).to_have_count(0)
            page.request.post(f"{api}/{blocker}/cancel")
            expect(waiting_card.locator(".badge")).to_have_text("Done")
            expect(log_lines(waiting_card).last).to_contain_text(re.compile(r"done in [\d.]+ s$"))
            stored = page.request.get(f"{api}/{waiting}/logs").json()["lines"]
            expect(log_lines(waiting_card)).to_have_count(len(stored))
            expect(waiting_card.locator('.log-line[data-level="warning"]')).to_contain_text(
                "synthetic warning"
            )
            expect(waiting_card.locator(".log-status")).to_be_hidden()
            # Closing it hides the lines again.
            waiting_card.get_by_text("Log", exact=True).click()
            expect(waiting_card.locator(".log-box")).to_be_hidden()

        await in_browser(scenario)


async def test_the_full_id_shows_and_copies(tmp_path: Path) -> None:
    async with run_server(data_dir=tmp_path) as server:

        def scenario(page: Page) -> None:
            page.goto(server.url)
            expect_live(page)
            job_id = page.request.post(f"{server.url}/api/jobs", data=WAITING).json()["id"]
            card = card_by_id(page, job_id)
            expect(card.locator(".job-id")).to_have_text(job_id)
            copy = card.get_by_role("button", name=re.compile("^Copy the id of"))
            copy.click()
            expect(copy).to_have_text("Copied")
            assert page.evaluate("navigator.clipboard.readText()") == job_id
            expect(page.locator("#announcer")).to_contain_text("Job id copied.")
            page.request.post(f"{server.url}/api/jobs/{job_id}/cancel")

        await in_browser(scenario, permissions=["clipboard-read", "clipboard-write"])


async def test_sizes_are_written_as_the_cli_writes_them(tmp_path: Path) -> None:
    sizes = [0, 238, 999, 1000, 1049, 1050, 48_213, 480_000, 999_949, 999_950]
    sizes += [1_234_567, 999_999_999, 5 * 10**9, 12_345_678_901_234]
    async with run_server(data_dir=tmp_path) as server:
        shown: list[Any] = []

        def scenario(page: Page) -> None:
            page.goto(server.url)
            expect_live(page)
            shown.extend(page.evaluate("(sizes) => sizes.map(window.auraPage.formatBytes)", sizes))

        await in_browser(scenario)
    assert shown == [format_size(size) for size in sizes]
