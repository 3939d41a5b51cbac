"""The explorer's static files: a fixed list, a strict CSP, no inline code, 503 without the
built chart library."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tempodb.server import ui
from tempodb.server.app import EncodedResponse, TempoDBApp
from tempodb.storage.sqlite import SQLiteStore

UI_DIR = Path(ui.__file__).with_name("ui")


@pytest.fixture
def app(tmp_path: Path) -> Iterator[TempoDBApp]:
    application = TempoDBApp(SQLiteStore(tmp_path))
    yield application
    application.close()


def get(
    app: TempoDBApp, path: str, method: str = "GET", **headers: str
) -> tuple[EncodedResponse, dict[str, str]]:
    response = app.handle(method, path.encode(), b"", headers, b"")
    return response, {k.decode(): v.decode() for k, v in response.headers}


def test_the_page_and_its_files(app: TempoDBApp) -> None:
    page, headers = get(app, "/ui/")
    assert page.status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["content-security-policy"] == ui.CSP
    assert "'unsafe-inline'" not in ui.CSP
    assert "'unsafe-eval'" not in ui.CSP
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert "access-control-allow-origin" not in headers
    assert page.body == (UI_DIR / "index.html").read_bytes()
    for name in ("app.js", "app.css", "icon.svg", "vendor/uPlot.iife.min.js"):
        response, file_headers = get(app, f"/ui/{name}")
        assert response.status == 200, name
        assert file_headers["content-security-policy"] == ui.CSP
    head, _ = get(app, "/ui/app.js", "HEAD")
    assert head.status == 200


def test_ui_redirects_to_the_folder(app: TempoDBApp) -> None:
    response, headers = get(app, "/ui")
    assert response.status == 308
    assert headers["location"] == "ui/"


@pytest.mark.parametrize(
    "path",
    [
        "/ui/../server/ui.py",
        "/ui/%2e%2e/ui.py",
        "/ui/vendor/LICENSE.uPlot",
        "/ui/vendor/VERSION",
        "/ui//app.js",
        "/ui/app.js/",
        "/uiapp.js",
    ],
)
def test_only_listed_files_are_served(app: TempoDBApp, path: str) -> None:
    response, _ = get(app, path)
    assert response.status == 404


def test_only_get_and_head(app: TempoDBApp) -> None:
    response, headers = get(app, "/ui/", "POST")
    assert response.status == 405
    assert headers["allow"] == "GET, HEAD"


def test_gzip_when_asked(app: TempoDBApp) -> None:
    response, headers = get(app, "/ui/vendor/uPlot.iife.min.js", **{"accept-encoding": "gzip"})
    assert headers["content-encoding"] == "gzip"
    expected = (UI_DIR / "vendor" / "uPlot.iife.min.js").read_bytes()
    assert gzip.decompress(response.body) == expected
    assert len(response.body) < len(expected) / 2


def test_missing_chart_library_answers_503(
    app: TempoDBApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = dict(ui.FILES)
    files["vendor/uPlot.iife.min.js"] = ("vendor/not-built.js", b"text/javascript")
    monkeypatch.setattr(ui, "FILES", files)
    response, headers = get(app, "/ui/vendor/uPlot.iife.min.js")
    assert response.status == 503
    assert b"build_support/ui_assets.py" in response.body
    assert headers["content-security-policy"] == ui.CSP


def test_the_page_has_no_inline_code() -> None:
    """What the CSP forbids is not in the page: inline scripts, handlers or styles."""
    html = (UI_DIR / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert not re.search(r"\son[a-z]+\s*=", html)
    assert not re.search(r"\sstyle\s*=|<style", html)
    referenced = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert referenced
    assert all(ref in ui.FILES for ref in referenced), referenced


def test_the_api_still_needs_credentials(app: TempoDBApp) -> None:
    response, _ = get(app, "/v1/series/")
    assert response.status == 401
