"""The web page in a real browser: Debian's chromium driven by Playwright against the real server.

Each test runs the server (in-process, or as a subprocess where it must be
killed and restarted) on trio, and drives the browser with Playwright's sync
API in a worker thread (``trio.to_thread.run_sync``), so the server keeps
serving while the browser waits. Waiting is Playwright's own (``expect``,
``wait_for_function``), never sleeps.
"""

from __future__ import annotations

import itertools
import re
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trio
from support.browser import (
    Page,
    cancel_button,
    card_by_id,
    card_by_topic,
    expect,
    expect_live,
    in_browser,
    needs_chromium,
    progress_of,
    save_screenshot,
    start_from_form,
    synthetic,
    video,
    wait_progress_above,
)
from support.servers import ServerProcess, run_server, server_process, write_tokens

from aura_actors.cli.display import format_size
from aura_actors.web import ServerSettings

pytestmark = needs_chromium

#: Records every change of a progress bar's aria-valuenow: [jobId, value, ms].
RECORD_PROGRESS = """
() => {
  window.__progress = [];
  new MutationObserver((records) => {
    for (const record of records) {
      const card = record.target.closest("li.job");
      window.__progress.push([
        card.dataset.jobId,
        Number(record.target.getAttribute("aria-valuenow")),
        performance.now(),
      ]);
    }
  }).observe(document.getElementById("job-list"), {
    subtree: true,
    attributes: true,
    attributeFilter: ["aria-valuenow"],
  });
}
"""

#: POST several jobs from the page at the same moment; returns their ids.
POST_JOBS_AT_ONCE = """
async ([bodies, token]) => Promise.all(bodies.map(async (body) => {
  const headers = {"Content-Type": "application/json"};
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch("/api/jobs", {method: "POST", headers, body: JSON.stringify(body)});
  if (response.status !== 202) throw new Error(`POST /api/jobs answered ${response.status}`);
  return (await response.json()).id;
}))
"""

#: The duration the browser reads from a <video> element's file, or null when it cannot
#: decode H.264 (a chromium built without it).
PLAYABLE_SECONDS = """
async (video) => {
  if (!video.canPlayType('video/mp4; codecs="avc1.42E01E, mp4a.40.2"')) return null;
  if (video.readyState < 1) {
    video.preload = "metadata";  // the page says "none": nothing loads before a click
    await new Promise((resolve, reject) => {
      video.addEventListener("loadedmetadata", resolve, { once: true });
      const failed = () => reject(new Error(`video error ${video.error?.code}`));
      video.addEventListener("error", failed, { once: true });
      video.load();
    });
  }
  return video.duration;
}
"""


def id_pair(event_id: str) -> tuple[int, int]:
    millis, counter = event_id.split("-")
    return int(millis), int(counter)


# -- tests -------------------------------------------------------------------------------------


async def test_start_from_form_watch_progress_and_cancel_through_confirm(tmp_path: Path) -> None:
    async with run_server(data_dir=tmp_path) as server:

        def scenario(page: Page) -> None:
            page.goto(server.url)
            expect_live(page)
            expect(page.locator("#empty")).to_be_visible()

            # An empty topic is refused on the page, with the reason next to the form.
            page.get_by_role("button", name="Start render").click()
            expect(page.get_by_role("alert")).to_contain_text("Enter a topic")
            expect(page.get_by_label("Topic")).to_have_attribute("aria-invalid", "true")
            expect(page.locator("li.job")).to_have_count(0)

            # 60 s of video at speed 1: about 15 s of work, plenty of time to cancel.
            card = start_from_form(page, "Tides of the North Sea", 60)
            expect(page.locator("#empty")).to_be_hidden()
            expect(card.locator(".badge")).to_have_text("Running")
            bar = card.get_by_role("progressbar")
            expect(bar).to_have_attribute("aria-valuemin", "0")
            expect(bar).to_have_attribute("aria-valuemax", "100")
            first = wait_progress_above(page, card, 0)
            wait_progress_above(page, card, first)
            expect(card.locator(".pct")).to_have_text(re.compile(r"^\d+%$"))
            expect(card.locator(".stage")).to_have_text(re.compile(r"\(\d of 5\)$"))
            expect(card.locator(".item")).to_have_text(re.compile(r"^\d+ of \d+$"))

            # Saying no to the confirmation leaves the job running.
            dialogs: list[str] = []

            def dismiss(dialog: Any) -> None:
                dialogs.append(dialog.message)
                dialog.dismiss()

            page.once("dialog", dismiss)
            cancel_button(card).click()
            expect(card.locator(".badge")).to_have_text("Running")
            wait_progress_above(page, card, progress_of(card))
            assert dialogs and "Tides of the North Sea" in dialogs[0]

            # Saying yes cancels it: the final state shows and the button is gone.
            def accept(dialog: Any) -> None:
                dialogs.append(dialog.message)
                dialog.accept()

            page.once("dialog", accept)
            cancel_button(card).click()
            expect(card.locator(".badge")).to_have_text("Canceled")
            expect(cancel_button(card)).to_have_count(0)
            expect(card).to_have_attribute("data-status", "Canceled")
            expect(page.locator("#announcer")).to_contain_text("Tides of the North Sea: canceled.")
            expect(card.locator(".message")).to_have_text(re.compile("canceled", re.IGNORECASE))
            assert len(dialogs) == 2
            job_id = card.get_attribute("data-job-id")
            snapshot = page.request.get(f"{server.url}/api/jobs/{job_id}").json()
            assert snapshot["status"] == "Canceled"
            assert int(progress_of(card)) == int(snapshot["progressPct"])

        await in_browser(scenario)


async def test_three_jobs_move_independently_over_one_event_source(tmp_path: Path) -> None:
    async with run_server(data_dir=tmp_path) as server:

        def scenario(page: Page) -> None:
            page.goto(server.url)
            expect_live(page)
            page.evaluate(RECORD_PROGRESS)
            # A real render of about 2 s, and two synthetic jobs of 20 and 10 s, started
            # in the same instant.
            fast, middle, slow = page.evaluate(
                POST_JOBS_AT_ONCE,
                [[video("Fast", 12, 2), synthetic(2, 100, 0.1), synthetic(2, 50, 0.1)], None],
            )
            cards = {job_id: card_by_id(page, job_id) for job_id in (fast, middle, slow)}
            for card in cards.values():
                expect(card).to_have_count(1)

            expect(cards[fast].locator(".badge")).to_have_text("Done")
            # The others are still on their way when the fast one is done.
            for job_id in (middle, slow):
                expect(cards[job_id].locator(".badge")).to_have_text("Running")
                assert 0 < progress_of(cards[job_id]) < 100
            # Cancelling one of them leaves the other running to its end.
            page.once("dialog", lambda dialog: dialog.accept())
            cancel_button(cards[middle]).click()
            expect(cards[middle].locator(".badge")).to_have_text("Canceled")
            expect(cards[slow].locator(".badge")).to_have_text("Running")
            expect(cards[slow].locator(".badge")).to_have_text("Done")
            expect(cancel_button(cards[slow])).to_have_count(0)

            timeline: list[list[Any]] = page.evaluate("window.__progress")
            per_job: dict[str, list[int]] = {job_id: [] for job_id in cards}
            for job_id, value, _ in timeline:
                per_job[job_id].append(value)
            for job_id, values in per_job.items():
                assert values == sorted(values), f"{job_id} went back: {values}"
                assert len(set(values)) >= 5, f"{job_id} barely moved: {values}"
            assert per_job[fast][-1] == 100 and per_job[slow][-1] == 100
            assert per_job[middle][-1] < 100
            # The bars moved in turns, not one after the other.
            order = [job_id for job_id, _, _ in timeline]
            switches = sum(1 for a, b in itertools.pairwise(order) if a != b)
            assert switches >= 6, order

            # The finished video plays on the page, its thumbnail as the poster.
            files = f"/api/jobs/{fast}/artifacts"
            player = cards[fast].locator(".player video")
            expect(player).to_be_visible()
            expect(player).to_have_attribute("src", f"{files}/video.mp4")
            expect(player).to_have_attribute("poster", f"{files}/thumbnail.jpg")
            expect(player).to_have_attribute("controls", "")
            # Nothing is fetched before the user asks: a list of many finished jobs
            # must not open a download per video.
            expect(player).to_have_attribute("preload", "none")
            for job_id in (middle, slow):  # no video, no player
                expect(cards[job_id].locator(".player")).to_be_hidden()
            # The browser reads the MP4 (when it has an H.264 decoder: Debian's has).
            seconds = page.evaluate(PLAYABLE_SECONDS, player.element_handle())
            if seconds is not None:
                assert abs(seconds - 12) < 0.5, seconds
            poster = page.request.get(f"{server.url}{files}/thumbnail.jpg")
            assert poster.status == 200 and poster.headers["content-type"] == "image/jpeg"

            # The finished jobs link to their files, and the links work.
            links = cards[fast].locator("a.artifact")
            expect(links).to_have_count(4)
            names = [link.get_attribute("data-name") for link in links.all()]
            assert names == ["video.mp4", "thumbnail.jpg", "voice.wav", "script.txt"]
            href = cards[fast].locator('a.artifact[data-name="script.txt"]').get_attribute("href")
            response = page.request.get(f"{server.url}{href}")
            assert response.status == 200
            assert "Fast" in response.text()
            # Each link downloads its file under the file's own name.
            for link in links.all():
                assert link.get_attribute("download") == link.get_attribute("data-name")
            # Sizes in the one convention (1 kB = 1000 bytes), as the CLI writes them.
            snapshot = page.request.get(f"{server.url}/api/jobs/{fast}").json()
            for artifact in snapshot["artifacts"]:
                size = cards[fast].locator(
                    f'a.artifact[data-name="{artifact["name"]}"] .artifact-size'
                )
                expect(size).to_have_text(format_size(artifact["sizeBytes"]))
            # "The files are ready" only where there are files.
            expect(cards[fast].locator(".message")).to_have_text("Finished. The files are ready.")
            expect(cards[slow].locator(".message")).to_have_text("Finished.")
            movie = page.request.get(f"{server.url}{files}/video.mp4")
            assert movie.status == 200 and movie.headers["content-type"] == "video/mp4"

            # One EventSource for every job.
            assert page.evaluate("window.__eventSources.length") == 1
            assert page.evaluate("document.title") == "aura-actors · renders"

        await in_browser(scenario)


async def test_warnings_failures_and_screenshot(tmp_path: Path) -> None:
    async with run_server(ServerSettings.of(max_concurrent_jobs=3), data_dir=tmp_path) as server:

        def scenario(page: Page) -> None:
            page.goto(server.url)
            expect_live(page)
            request = page.request
            url = f"{server.url}/api/jobs"
            done = request.post(url, data=video("Why the sky is blue", 12, 40)).json()["id"]
            failed = request.post(
                url,
                data={
                    "pipeline": "synthetic",
                    "params": {"stages": 2, "ticks": 3, "failAt": {"stage": 1, "tick": 1}},
                },
            ).json()["id"]
            expect(card_by_id(page, done).locator(".badge")).to_have_text("Done")
            expect(card_by_id(page, failed).locator(".badge")).to_have_text("Failed")
            canceled = request.post(url, data=video("The history of the paperclip", 60)).json()
            request.post(f"{url}/{canceled['id']}/cancel")
            expect(card_by_id(page, canceled["id"]).locator(".badge")).to_have_text("Canceled")
            warned = request.post(
                url,
                data={
                    "pipeline": "synthetic",
                    "params": {
                        "stages": 3,
                        "ticks": 2000,
                        "tickSeconds": 0.01,
                        "warnAt": {"stage": 0, "tick": 2},
                    },
                },
            ).json()["id"]
            running = [
                request.post(url, data=body).json()["id"]
                for body in (
                    video("How octopuses taste with their arms", 60),
                    video("A day in the life of a honeybee", 90),
                )
            ]
            queued = request.post(url, data=video("Building a sundial", 30)).json()["id"]

            # A failed job shows its error and what to do about it.
            failed_card = card_by_id(page, failed)
            expect(failed_card.locator(".error")).to_contain_text("synthetic failure")
            expect(failed_card.locator(".error")).to_contain_text("What to do: remove failAt")
            expect(cancel_button(failed_card)).to_have_count(0)
            # A warning shows on its job while the job goes on.
            warned_card = card_by_id(page, warned)
            expect(warned_card.locator(".warnings li")).to_have_count(1)
            expect(warned_card.locator(".warnings")).to_contain_text("synthetic warning")
            expect(warned_card.locator(".badge")).to_have_text("Running")
            # Queued while three run; Canceled with its final state.
            expect(card_by_id(page, queued).locator(".badge")).to_have_text("Queued")
            expect(card_by_id(page, queued).locator(".eta")).to_have_text("in the queue")
            expect(card_by_id(page, canceled["id"]).locator(".badge")).to_have_text("Canceled")
            for job_id in running:
                card = card_by_id(page, job_id)
                wait_progress_above(page, card, 20)
                expect(card.locator(".eta")).to_have_text(re.compile(r"left$"))
            expect(page.locator("#summary")).to_have_text("3 running · 1 queued · 3 finished")
            expect(page.locator("li.job")).to_have_count(7)
            # Newest first.
            ids = page.locator("li.job").evaluate_all("cards => cards.map(c => c.dataset.jobId)")
            assert ids[0] == queued and ids[-1] == done

            path = save_screenshot(page, "page.png")
            assert path.stat().st_size > 10_000

            # Narrow screens: one column, nothing wider than the screen.
            page.set_viewport_size({"width": 390, "height": 844})
            expect(page.locator("#job-list")).to_be_visible()
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0
            save_screenshot(page, "page-mobile.png")

            # Retry is offered on the failed and the canceled job only.
            for job_id in (failed, canceled["id"]):
                expect(
                    card_by_id(page, job_id).get_by_role("button", name=re.compile("^Retry"))
                ).to_have_count(1)
            for job_id in (done, warned, queued, *running):
                expect(
                    card_by_id(page, job_id).get_by_role("button", name=re.compile("^Retry"))
                ).to_have_count(0)

            # Clearing finished jobs asks first; no leaves everything as it was.
            questions: list[str] = []

            def answer(accept: bool) -> Callable[[Any], None]:
                def on_dialog(dialog: Any) -> None:
                    questions.append(dialog.message)
                    if accept:
                        dialog.accept()
                    else:
                        dialog.dismiss()

                return on_dialog

            page.once("dialog", answer(False))
            page.get_by_role("button", name="Clear finished").click()
            expect(page.locator("li.job")).to_have_count(7)
            assert questions and questions[0].startswith("Delete 3 finished jobs?")
            # Yes deletes them on the server: the live ones stay, and a reload agrees.
            page.once("dialog", answer(True))
            page.get_by_role("button", name="Clear finished").click()
            expect(page.locator("li.job")).to_have_count(4)
            expect(page.get_by_role("button", name="Clear finished")).to_be_hidden()
            finished_ids = (done, failed, canceled["id"])
            for job_id in finished_ids:
                assert request.get(f"{url}/{job_id}").status == 404
            page.reload()
            expect_live(page)
            expect(page.locator("li.job")).to_have_count(4)
            for job_id in finished_ids:
                expect(card_by_id(page, job_id)).to_have_count(0)
            for job_id in running:
                request.post(f"{url}/{job_id}/cancel")

        await in_browser(scenario)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RestartableServer:
    """``aura-actors serve`` as a subprocess that a test kills and starts again on one port."""

    nursery: trio.Nursery
    data_dir: Path
    port: int = field(default_factory=_free_port)
    server: ServerProcess | None = None
    _stop: trio.Event = field(default_factory=trio.Event)
    _gone: trio.Event = field(default_factory=trio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _run(self, *, task_status: trio.TaskStatus[ServerProcess]) -> None:
        stop, gone = self._stop, self._gone
        try:
            async with server_process(self.data_dir, port=self.port) as server:
                task_status.started(server)
                await stop.wait()
        finally:
            gone.set()

    async def start(self) -> None:
        self._stop, self._gone = trio.Event(), trio.Event()
        self.server = await self.nursery.start(self._run)
        assert self.server.url == self.url

    async def kill(self) -> None:
        """SIGKILL: the server vanishes without a word."""
        assert self.server is not None
        self.server.send_signal(signal.SIGKILL)
        await self.server.wait()
        self._stop.set()
        await self._gone.wait()

    async def terminate(self) -> None:
        """SIGTERM: the graceful shutdown (running jobs end Canceled)."""
        assert self.server is not None
        self.server.send_signal(signal.SIGTERM)
        with trio.fail_after(15):
            assert await self.server.wait() == 0
        self._stop.set()
        await self._gone.wait()


async def test_page_recovers_when_the_server_restarts(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        slot = RestartableServer(nursery, tmp_path)
        await slot.start()

        def restart(how: Callable[[], Any]) -> None:
            trio.from_thread.run(how)
            trio.from_thread.run(slot.start)

        def scenario(page: Page) -> None:
            page.goto(slot.url)
            expect_live(page)

            # Killed mid-job: the page notices and comes back; the new server, on the same
            # data dir, reports the job Failed (interrupted), and the page shows that.
            old = page.request.post(f"{slot.url}/api/jobs", data=video("Before the crash", 60))
            old_card = card_by_id(page, old.json()["id"])
            wait_progress_above(page, old_card, 0)
            trio.from_thread.run(slot.kill)
            expect(page.locator("#connection")).not_to_have_attribute("data-state", "live")
            trio.from_thread.run(slot.start)
            expect_live(page, timeout=20_000)
            expect(old_card.locator(".badge")).to_have_text("Failed")
            expect(cancel_button(old_card)).to_have_count(0)
            expect(old_card).to_contain_text("the server stopped while the job was running")

            # A job started after the restart shows progress to its end.
            after = start_from_form(page, "After the crash", 5)
            wait_progress_above(page, after, 0)
            expect(after.locator(".badge")).to_have_text("Done")
            expect(after.locator("a.artifact")).to_have_count(4)

            # A graceful restart, and the new server's first answers to the stream are
            # 503 (as from a proxy): the browser's EventSource gives up (CLOSED), so the
            # page reconnects by itself, with backoff and ?lastEventId=.
            refusals: list[str] = []

            def refuse_stream(route: Any) -> None:
                if refusing:
                    refusals.append(route.request.url)
                    route.fulfill(
                        status=503,
                        content_type="application/json",
                        body='{"error": {"code": "unavailable", "message": "try later"}}',
                    )
                else:
                    route.continue_()

            refusing = True
            page.route("**/api/events*", refuse_stream)
            third = start_from_form(page, "During the restart", 60)
            wait_progress_above(page, third, 0)
            seen_before = page.evaluate("window.auraPage.lastEventId")
            restart(slot.terminate)
            expect(third.locator(".badge")).to_have_text("Canceled")
            expect(cancel_button(third)).to_have_count(0)
            expect(page.locator("#connection")).to_have_attribute("data-state", "offline")
            expect(page.get_by_role("button", name="Reconnect now")).to_be_visible()
            # While the page is cut off, a job runs to its end with a warning on the way.
            unseen = page.request.post(
                f"{slot.url}/api/jobs",
                data={
                    "pipeline": "synthetic",
                    "params": {"stages": 2, "ticks": 5, "warnAt": {"stage": 1, "tick": 2}},
                },
            ).json()["id"]
            page.wait_for_function(
                "async (url) => (await (await fetch(url)).json()).status === 'Done'",
                arg=f"/api/jobs/{unseen}",
                polling=100,
            )
            refusing = False
            expect_live(page, timeout=20_000)
            assert refusals, "the stream was never refused"
            # The page resumed from the last id it had seen: the warning, which only the
            # event stream carries, is there.
            unseen_card = card_by_id(page, unseen)
            expect(unseen_card.locator(".badge")).to_have_text("Done")
            expect(unseen_card.locator(".warnings")).to_contain_text("synthetic warning")
            fourth = start_from_form(page, "After the restart", 5)
            wait_progress_above(page, fourth, 0)
            expect(fourth.locator(".badge")).to_have_text("Done")

            # One EventSource at a time; each one the page made itself resumed from
            # the last id it had seen.
            sources: list[str] = page.evaluate("window.__eventSources")
            assert len(sources) >= 2, sources
            assert "lastEventId=" not in sources[0]
            for url in sources[1:]:
                assert "lastEventId=" in url, sources
            assert seen_before is not None
            resumed_from = parse_qs(urlsplit(sources[1]).query)["lastEventId"][0]
            assert id_pair(resumed_from) > id_pair(seen_before)
            assert page.evaluate("window.auraPage.eventSourceUrl").endswith(sources[-1])
            # The page still lists every job, old ones included.
            expect(page.locator("li.job")).to_have_count(5)

        await in_browser(scenario)
        await slot.terminate()


async def test_auth_asks_for_a_token_and_works_with_it(tmp_path: Path) -> None:
    tokens = write_tokens(tmp_path / "tokens.json", {"s3cret-alice": "alice", "s3cret-bob": "bob"})
    settings = ServerSettings.of(auth_tokens=tokens)
    async with run_server(settings, data_dir=tmp_path / "data") as server:

        def scenario(page: Page) -> None:
            # Bob has a job; Alice must never see it.
            bobs = page.request.post(
                f"{server.url}/api/jobs",
                data=video("Bob's secret", 30, 2),
                headers={"Authorization": "Bearer s3cret-bob"},
            )
            assert bobs.status == 202

            page.goto(server.url)
            token = page.get_by_label("Access token", exact=True)
            expect(token).to_be_visible()
            expect(token).to_be_focused()
            expect(page.locator("#connection")).to_have_attribute("data-state", "locked")

            token.fill("wrong")
            page.get_by_role("button", name="Continue").click()
            expect(page.locator("#auth-error")).to_contain_text("not accepted")
            expect(token).to_be_visible()

            token.fill("s3cret-alice")
            page.get_by_role("button", name="Continue").click()
            expect(token).to_be_hidden()
            expect_live(page)
            assert page.evaluate("localStorage.getItem('aura-actors.token')") == "s3cret-alice"
            stream_url = page.evaluate("window.auraPage.eventSourceUrl")
            assert "access_token=s3cret-alice" in stream_url

            card = start_from_form(page, "Alice's video", 5)
            wait_progress_above(page, card, 0)
            expect(card.locator(".badge")).to_have_text("Done")
            expect(card_by_topic(page, "Bob's secret")).to_have_count(0)

            # Files download with the token, under their own names.
            for name in ("script.txt", "thumbnail.jpg"):
                with page.expect_download() as downloading:
                    card.locator(f'a.artifact[data-name="{name}"]').click()
                download = downloading.value
                assert download.suggested_filename == name
                assert download.failure() is None
                saved = download.path()
                if name == "script.txt":
                    assert "# Alice's video" in saved.read_text(encoding="utf-8")
                else:
                    assert saved.read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG
            # The video element cannot send the header: its URLs carry the token.
            player = card.locator(".player video")
            expect(player).to_have_attribute(
                "src", re.compile(r"/artifacts/video\.mp4\?access_token=s3cret-alice$")
            )
            src = player.get_attribute("src")
            assert src is not None
            assert page.request.get(f"{server.url}{src}").status == 200

            # The token is remembered: a reload goes straight to the jobs.
            page.reload()
            expect_live(page)
            expect(page.get_by_label("Access token", exact=True)).to_be_hidden()
            expect(card_by_topic(page, "Alice's video").locator(".badge")).to_have_text("Done")
            expect(card_by_topic(page, "Bob's secret")).to_have_count(0)

            # Forgetting it asks again.
            page.get_by_role("button", name="Forget token").click()
            expect(page.get_by_label("Access token", exact=True)).to_be_visible()
            expect(page.locator("li.job")).to_have_count(0)
            assert page.evaluate("localStorage.getItem('aura-actors.token')") is None

        await in_browser(scenario)


async def test_a_job_the_new_server_never_heard_of_shows_lost(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        slot = RestartableServer(nursery, tmp_path / "first")
        await slot.start()

        def scenario(page: Page) -> None:
            page.goto(slot.url)
            expect_live(page)
            old = page.request.post(f"{slot.url}/api/jobs", data=video("Before the move", 60))
            old_card = card_by_id(page, old.json()["id"])
            wait_progress_above(page, old_card, 0)
            trio.from_thread.run(slot.kill)
            expect(page.locator("#connection")).not_to_have_attribute("data-state", "live")
            # The new server starts on another data dir: it has no record of the job.
            slot.data_dir = tmp_path / "second"
            trio.from_thread.run(slot.start)
            expect_live(page, timeout=20_000)
            expect(old_card.locator(".badge")).to_have_text("Lost")
            expect(cancel_button(old_card)).to_have_count(0)
            expect(old_card.locator(".message")).to_contain_text("no longer knows this job")

        await in_browser(scenario)
        await slot.terminate()
