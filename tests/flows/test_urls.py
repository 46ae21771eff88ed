"""Scheduled URL ingestion against a real HTTP server on 127.0.0.1 and a real warehouse: a page the warehouse
holds is asked for with the validators stored with its article, so an unchanged page costs a 304, not a
download, from one run to the next (each run a process of its own under `newsetl serve`)."""

from __future__ import annotations

import http.server
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pytest

pytestmark = pytest.mark.slow

PARAGRAPHS = [
    "The island ferry returns to its winter timetable on Monday, the operator said on Tuesday morning.",
    "Residents had asked for an earlier first crossing and a later last one for years, and the council agreed.",
    "The new timetable adds two sailings on weekdays and moves the Sunday service forward by an hour.",
    "The operator says the change will cost less than expected because the older vessel stays in reserve.",
]


def page(topic: str, version: int) -> bytes:
    body = "".join(f"<p>{p.replace('ferry', topic)}</p>" for p in PARAGRAPHS)
    note = f"<p>Updated {version} times since the first report of the {topic} story this week.</p>" if version else ""
    return (f"<html><head><title>{topic} timetable</title><meta charset='utf-8'></head>"
            f"<body><article><h1>{topic} timetable</h1>{body}{note}</article></body></html>").encode()


class Site(http.server.BaseHTTPRequestHandler):
    """Three pages: one with an ETag, one with Last-Modified only, one with neither; and a feed of them."""

    versions: ClassVar[dict[str, int]] = {"/etag": 0, "/modified": 0, "/plain": 0}
    lastmod: ClassVar[dict[str, str]] = {}  # a page's <lastmod> in /sitemap.xml
    requests: ClassVar[list[tuple[str, bool, int]]] = []  # (path, conditional, status)

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        base = f"http://{self.headers['Host']}"
        conditional = bool(self.headers.get("If-None-Match") or self.headers.get("If-Modified-Since"))
        if self.path == "/feed.rss":
            items = "".join(f"<item><title>{p}</title><link>{base}{p}</link></item>" for p in Site.versions)
            return self._send(f"<rss><channel>{items}</channel></rss>".encode(), "application/rss+xml", conditional)
        if self.path == "/sitemap.xml":
            urls = "".join(f"<url><loc>{base}{p}</loc><lastmod>{Site.lastmod.get(p, '2024-06-10')}</lastmod></url>"
                           for p in Site.versions)
            return self._send(f"<urlset>{urls}</urlset>".encode(), "application/xml", conditional)
        version = Site.versions.get(self.path)
        if version is None:
            return self._send(b"gone", "text/plain", conditional, 404)
        etag, stamp = f'"{self.path}-v{version}"', f"Mon, 1{version} Jun 2024 10:00:00 GMT"
        if self.path == "/etag" and self.headers.get("If-None-Match") == etag:
            return self._send(b"", "text/html", conditional, 304)
        if self.path == "/modified" and self.headers.get("If-Modified-Since") == stamp:
            return self._send(b"", "text/html", conditional, 304)
        headers = {"/etag": {"ETag": etag}, "/modified": {"Last-Modified": stamp}}.get(self.path, {})
        self._send(page(self.path.strip("/"), version), "text/html; charset=utf-8", conditional, headers=headers)

    def _send(self, body: bytes, ctype: str, conditional: bool, status: int = 200,
              headers: dict[str, str] | None = None) -> None:
        Site.requests.append((self.path, conditional, status))
        self.send_response(status)
        for name, value in {"Content-Type": ctype, **(headers or {})}.items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 304:
            self.wfile.write(body)


@pytest.fixture
def site() -> Iterator[str]:
    Site.versions = {"/etag": 0, "/modified": 0, "/plain": 0}
    Site.lastmod = {}
    Site.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def ingest(sources: list[str], db: Path) -> dict[str, Any]:
    from newsetl.flows.ingest import ingest as flow

    Site.requests = []
    return flow(sources=sources, db=str(db), workers=1)


def requests() -> Counter[tuple[str, bool, int]]:
    return Counter(Site.requests)


def test_unchanged_pages_are_not_downloaded_again_and_changed_ones_are(prefect_harness: None, site: str,
                                                                        tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    first = ingest([f"{site}/feed.rss"], db)
    assert first["loaded"] == 3
    assert requests() == Counter({("/feed.rss", False, 200): 1, ("/etag", False, 200): 1,
                                  ("/modified", False, 200): 1, ("/plain", False, 200): 1})

    second = ingest([f"{site}/feed.rss"], db)
    assert second["loaded"] == 0 and second["skipped_reasons"] == {"not_modified": 2}
    assert second["skipped_known"] == 1  # the page without validators: downloaded, its bytes known
    # The feed is always fetched whole: a page of it that failed last time must be tried again.
    assert requests() == Counter({("/feed.rss", False, 200): 1, ("/etag", True, 304): 1,
                                  ("/modified", True, 304): 1, ("/plain", False, 200): 1})
    with duckdb.connect(str(db), read_only=True) as con:
        # A 304 names the stored document: the source's lineage row is the one its first fetch wrote.
        assert con.execute("SELECT count(*) FROM sources").fetchone() == (3,)
        assert con.execute("SELECT count(*) FROM sources WHERE doc_id IS NULL").fetchone() == (0,)

    Site.versions["/etag"] = 1  # the story is updated: a new ETag
    third = ingest([f"{site}/feed.rss"], db)
    assert third["loaded"] == 1 and third["skipped_reasons"] == {"not_modified": 1}
    assert requests()[("/etag", True, 200)] == 1
    fourth = ingest([f"{site}/etag"], db)  # the page given alone: asked with the new version's ETag
    assert fourth["loaded"] == 0 and fourth["skipped_reasons"] == {"not_modified": 1}
    assert requests() == Counter({("/etag", True, 304): 1})
    with duckdb.connect(str(db), read_only=True) as con:
        versions = con.execute("SELECT count(*) FROM articles WHERE source_uri = ?", [f"{site}/etag"]).fetchone()
    assert versions == (2,)


def test_validators_exist_only_for_pages_the_warehouse_holds(prefect_harness: None, site: str,
                                                             tmp_path: Path) -> None:
    # A page fetched into one warehouse is not "unchanged" for another (nor for a run whose load never came):
    # the fetcher remembers nothing, the warehouse does.
    ingest([f"{site}/feed.rss"], tmp_path / "a.duckdb")
    other = ingest([f"{site}/feed.rss"], tmp_path / "b.duckdb")
    assert other["loaded"] == 3
    assert all(not conditional for _, conditional, _ in Site.requests)


def test_a_sitemap_that_dates_its_pages_before_their_stored_fetch_costs_one_request(
        prefect_harness: None, site: str, tmp_path: Path) -> None:
    db = tmp_path / "news.duckdb"
    assert ingest([f"{site}/sitemap.xml"], db)["loaded"] == 3
    again = ingest([f"{site}/sitemap.xml"], db)
    assert again["loaded"] == 0 and again["skipped_reasons"] == {"not_modified": 3}
    assert requests() == Counter({("/sitemap.xml", False, 200): 1})  # no page asked for, not even for a 304

    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat(timespec="seconds")
    Site.versions["/etag"] = 1
    Site.lastmod = {"/etag": later, "/plain": later}  # dated after the stored fetch: asked for
    third = ingest([f"{site}/sitemap.xml"], db)
    assert third["loaded"] == 1 and third["skipped_reasons"] == {"not_modified": 1} and third["skipped_known"] == 1
    assert requests() == Counter({("/sitemap.xml", False, 200): 1, ("/etag", True, 200): 1, ("/plain", False, 200): 1})
