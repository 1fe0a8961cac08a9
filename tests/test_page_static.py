"""The page's files as the server serves them: types, headers, and nothing from elsewhere."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
from support.servers import run_server, write_tokens

from aura_actors.web import ServerSettings

STATIC = Path(__file__).resolve().parents[1] / "aura_actors" / "web" / "static"


class _Page(HTMLParser):
    """Collects what the page loads, its form controls and their labels."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.controls: list[dict[str, str | None]] = []
        self.labels: set[str] = set()
        self.progressbars: list[dict[str, str | None]] = []
        self.live_regions = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag in {"script", "img", "audio", "video", "iframe", "source"} and attributes.get("src"):
            self.loads.append(attributes["src"] or "")
        if tag == "link" and attributes.get("href"):
            self.loads.append(attributes["href"] or "")
        if tag in {"input", "select", "textarea"}:
            self.controls.append(attributes)
        if tag == "label" and attributes.get("for"):
            self.labels.add(attributes["for"] or "")
        if attributes.get("role") == "progressbar":
            self.progressbars.append(attributes)
        if attributes.get("aria-live") or attributes.get("role") in {"status", "alert"}:
            self.live_regions += 1


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


async def test_page_and_assets_are_served_with_their_types(tmp_path: Path) -> None:
    async with (
        run_server(data_dir=tmp_path) as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        index = await client.get("/")
        assert index.status_code == 200
        assert index.headers["content-type"] == "text/html; charset=utf-8"
        policy = index.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "connect-src 'self'" in policy
        assert index.headers["x-content-type-options"] == "nosniff"
        expected = {
            "app.js": "text/javascript; charset=utf-8",
            "style.css": "text/css; charset=utf-8",
            "favicon.svg": "image/svg+xml",
        }
        for name, content_type in expected.items():
            asset = await client.get(f"/static/{name}")
            assert asset.status_code == 200, name
            assert asset.headers["content-type"] == content_type
            assert asset.content == (STATIC / name).read_bytes()
        for missing in ("/static/nope.js", "/static/..%2F_pages.py", "/static/index.htm"):
            assert (await client.get(missing)).status_code == 404, missing


async def test_page_is_public_even_when_the_api_needs_a_token(tmp_path: Path) -> None:
    tokens = write_tokens(tmp_path / "tokens.json", {"t0ken": "alice"})
    async with (
        run_server(ServerSettings.of(auth_tokens=tokens), data_dir=tmp_path / "data") as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        assert (await client.get("/")).status_code == 200
        assert (await client.get("/static/app.js")).status_code == 200
        assert (await client.get("/api/jobs")).status_code == 401


def test_page_loads_nothing_from_elsewhere() -> None:
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    page = _parse(html)
    assert page.loads, "the page loads its script and stylesheet"
    for url in page.loads:
        assert url.startswith("/static/"), url
    for name in ("index.html", "app.js", "style.css"):
        text = (STATIC / name).read_text(encoding="utf-8")
        # The only absolute URL allowed is the SVG namespace, which is never fetched.
        urls = set(re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^\s\"')]*", text))
        assert urls <= {"http://www.w3.org/2000/svg"}, (name, urls)
        assert "@import" not in text and "@font-face" not in text


def test_page_is_accessible_by_construction() -> None:
    page = _parse((STATIC / "index.html").read_text(encoding="utf-8"))
    assert page.controls
    for control in page.controls:
        assert control.get("id") in page.labels, f"no <label for> for {control}"
    assert page.progressbars, "the job template has a progress bar"
    for bar in page.progressbars:
        assert bar.get("aria-valuemin") == "0" and bar.get("aria-valuemax") == "100"
        assert bar.get("aria-valuenow") is not None
    assert page.live_regions >= 3  # connection, job status, announcements (and form errors)
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in html
    assert 'name="viewport"' in html


def test_page_uses_one_event_source_for_every_job() -> None:
    script = (STATIC / "app.js").read_text(encoding="utf-8")
    assert script.count("new EventSource(") == 1
    assert "/api/events" in script
    assert "/api/jobs/${encodeURIComponent(job.id)}/events" not in script
