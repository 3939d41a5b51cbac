"""The data explorer at /ui/ in a real headless Chromium (Debian's, driven by Playwright)
against a real server: sign in, filter, plot, summary, time zones, drag-zoom, sign out.

``make test`` installs Chromium first (scripts/ensure-chromium.sh); the screenshot goes to
``build/test-artifacts/explorer.png`` (or ``$TEMPODB_ARTIFACTS``).
"""

from __future__ import annotations

import datetime
import math
import os
import statistics
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import (
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    expect,
    sync_playwright,
)

from serverproc import ServerProcess, create_key, data_args
from tempodb import Client, DataPoint

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("TEMPODB_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("TEMPODB_ARTIFACTS", ROOT / "build" / "test-artifacts"))
#: Without the networking flags Chromium keeps trying to reach Google's hosts.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
UTC = datetime.UTC
START = datetime.datetime(2012, 1, 1, tzinfo=UTC)
MINUTES = 360  # six hours of one point a minute


def values(series: int) -> list[float]:
    """A smooth daily-looking curve per series, two decimals."""
    return [
        round(18 + 3 * series + 4 * math.sin(i / 40 + series) + 1.2 * math.sin(i / 6), 2)
        for i in range(MINUTES)
    ]


@pytest.fixture(scope="module")
def explorer_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """A server with three series written through the client: (url, key, secret)."""
    store = data_args(tmp_path_factory.mktemp("explorer-data"))
    key, secret = create_key(store, "--name", "explorer")
    server = ServerProcess.start(store)
    with Client(key, secret, host=server.host, port=server.port, secure=False) as client:
        for number, site in ((1, "north"), (2, "south")):
            series = client.create_series(f"boiler.{number}.temp")
            series.name = f"Boiler {number}"
            series.tags = ["boiler", "temp"]
            series.attributes = {"site": site}
            client.update_series(series)
            points = [
                DataPoint(START + datetime.timedelta(minutes=i), v)
                for i, v in enumerate(values(number))
            ]
            client.write_key(series.key, points)
        office = client.create_series("office.humidity")
        office.tags = ["office"]
        client.update_series(office)
        client.write_key(office.key, [DataPoint(START, 40)])
    yield server.url, key, secret
    assert server.stop() == 0


@pytest.fixture
def browser() -> Iterator[BrowserContext]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh (make test does)")
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 860},
        )
        yield context
        context.close()


def chart_state(page: Page) -> dict[str, str]:
    page.wait_for_selector("#chart[data-state=ready]")
    return page.eval_on_selector("#chart", "el => ({...el.dataset})")  # type: ignore[no-any-return]


def plot(page: Page) -> dict[str, str]:
    """Press Plot and wait for the chart to be redrawn."""
    page.evaluate("document.getElementById('chart').dataset.state = 'stale'")
    page.click("#plot")
    return chart_state(page)


def summary(page: Page, key: str) -> dict[str, str]:
    row = page.locator(f"#summary tbody tr[data-key='{key}']")
    cells = row.locator("td[data-field]")
    return {
        cells.nth(i).get_attribute("data-field") or "": cells.nth(i).inner_text()
        for i in range(cells.count())
    }


def listed(page: Page) -> list[str]:
    return page.eval_on_selector_all(  # type: ignore[no-any-return]
        "#series-list li", "items => items.map(li => li.dataset.key)"
    )


def test_explorer(explorer_server: tuple[str, str, str], browser: BrowserContext) -> None:
    url, key, secret = explorer_server
    page = browser.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console: {message.text}")

    page.on("console", on_console)
    requested: list[str] = []

    def on_request(request: Request) -> None:
        requested.append(request.url)

    page.on("request", on_request)

    # The page loads from /ui (redirected to /ui/), with its library, under the strict CSP.
    response = page.goto(f"{url}/ui")
    assert response is not None
    assert response.ok
    assert page.url == f"{url}/ui/"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert page.evaluate("typeof uPlot") == "function"
    page.wait_for_selector("#signin-form")

    # A wrong secret is refused; the right one signs in and lists every series.
    page.fill("#signin-key", key)
    page.fill("#signin-secret", "0" * 32)
    page.click("#signin-submit")
    page.wait_for_selector("#signin-error:not([hidden])")
    assert "Wrong API key or secret" in page.inner_text("#signin-error")
    assert problems == [
        "console: Failed to load resource: the server responded with a status of 403 (Forbidden)"
    ]
    problems.clear()
    page.fill("#signin-secret", secret)
    page.click("#signin-submit")
    page.wait_for_selector("#series-list li")
    assert listed(page) == ["boiler.1.temp", "boiler.2.temp", "office.humidity"]
    assert page.inner_text("#who-key") == key

    # Filters: tags and attributes on the server, the key on the page.
    page.fill("#filter-tags", "boiler, temp")
    page.click("#filter-apply")
    expect(page.locator("#series-list li")).to_have_count(2)
    page.fill("#filter-attrs", "site=north")
    page.click("#filter-apply")
    expect(page.locator("#series-list li")).to_have_count(1)
    assert listed(page) == ["boiler.1.temp"]
    page.fill("#filter-attrs", "")
    page.click("#filter-apply")
    expect(page.locator("#series-list li")).to_have_count(2)
    page.fill("#filter-key", ".2.")
    assert listed(page) == ["boiler.2.temp"]
    page.fill("#filter-key", "")

    # One series, raw, in UTC: the range fits the data, every point is plotted.
    page.click("#series-list li[data-key='boiler.1.temp']")
    page.fill("#tz", "UTC")
    page.select_option("#interval", "raw")
    state = plot(page)
    assert state["points"] == str(MINUTES)
    assert state["start"] == "2012-01-01T00:00:00.000Z"
    assert state["end"] == "2012-01-01T05:59:01.000Z"
    assert page.input_value("#range-start") == "2012-01-01T00:00"
    expected = values(1)
    shown = summary(page, "boiler.1.temp")
    assert shown["plotted"] == str(MINUTES)
    assert shown["count"] == str(MINUTES)
    assert float(shown["mean"]) == pytest.approx(statistics.mean(expected), rel=1e-5)
    assert float(shown["min"]) == min(expected)
    assert float(shown["max"]) == max(expected)
    assert float(shown["stddev"]) == pytest.approx(statistics.stdev(expected), rel=1e-5)
    assert page.locator("#chart canvas").count() == 1

    # Hourly maxima in Chicago: six buckets, and the axis and the range in Chicago's time.
    page.select_option("#interval", "1hour")
    page.select_option("#function", "max")
    page.fill("#tz", "America/Chicago")
    page.dispatch_event("#tz", "change")
    assert page.input_value("#range-start") == "2011-12-31T18:00"
    state = plot(page)
    assert state["points"] == "6"
    assert state["start"] == "2012-01-01T00:00:00.000Z"
    assert "-06:00" in page.inner_text("#chart-caption")
    assert "PT1H max" in page.inner_text("#chart-caption")
    over = page.locator("#chart .u-over").bounding_box()
    assert over is not None
    page.mouse.move(over["x"] + 2, over["y"] + over["height"] / 2)
    legend_time = page.locator("#chart .u-legend .u-series").first.locator(".u-value")
    expect(legend_time).to_have_text("2011-12-31 18:00:00 -06:00")
    assert summary(page, "boiler.1.temp")["count"] == str(MINUTES)

    # Drag-zoom: the middle half of the chart, raw; then zoom out again.
    page.select_option("#interval", "raw")
    plot(page)
    over = page.locator("#chart .u-over").bounding_box()
    assert over is not None
    y = over["y"] + over["height"] / 2
    page.evaluate("document.getElementById('chart').dataset.state = 'stale'")
    page.mouse.move(over["x"] + over["width"] * 0.25, y)
    page.mouse.down()
    page.mouse.move(over["x"] + over["width"] * 0.5, y, steps=5)
    page.mouse.move(over["x"] + over["width"] * 0.75, y, steps=5)
    page.mouse.up()
    zoomed = chart_state(page)
    lo = datetime.datetime.fromisoformat(zoomed["start"])
    hi = datetime.datetime.fromisoformat(zoomed["end"])
    assert START + datetime.timedelta(hours=1) < lo < hi < START + datetime.timedelta(hours=5)
    inside = sum(1 for i in range(MINUTES) if lo <= START + datetime.timedelta(minutes=i) < hi)
    assert zoomed["points"] == str(inside)
    assert 120 < inside < 240
    assert summary(page, "boiler.1.temp")["count"] == str(inside)
    assert page.is_enabled("#zoom-out")
    page.evaluate("document.getElementById('chart').dataset.state = 'stale'")
    page.click("#zoom-out")
    assert chart_state(page)["points"] == str(MINUTES)

    # Two series at once: one table row each, every point of both on the chart.
    page.click("#series-list li[data-key='boiler.2.temp']")
    state = plot(page)
    assert state["series"] == "2"
    assert state["points"] == str(2 * MINUTES)
    assert summary(page, "boiler.2.temp")["max"] == str(max(values(2)))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "explorer.png"), full_page=True)

    # The credentials never left the tab's sessionStorage, nor appeared in a URL.
    assert page.evaluate("localStorage.length") == 0
    assert page.evaluate("document.cookie") == ""
    assert page.evaluate("sessionStorage.getItem('tempodb.key')") == key
    assert not [u for u in requested if secret in u or key in u]
    assert all(u.startswith(url) for u in requested), requested

    page.click("#signout")
    page.wait_for_selector("#signin-form")
    assert page.evaluate("sessionStorage.length") == 0
    assert page.locator("#series-list li").count() == 0
    assert not problems, problems


def test_missing_chart_library_is_reported(
    explorer_server: tuple[str, str, str], browser: BrowserContext
) -> None:
    """Without the built library, the page says how to build it (the URL answers 503)."""
    url, _, _ = explorer_server
    page = browser.new_page()
    page.route("**/vendor/uPlot.iife.min.js", lambda route: route.fulfill(status=503, body="x"))
    page.goto(f"{url}/ui/")
    page.wait_for_selector("#status:not([hidden])")
    assert "build_support/ui_assets.py" in page.inner_text("#status")


def test_fit_range_spans_every_year_and_counts_in_words(
    explorer_server: tuple[str, str, str], browser: BrowserContext
) -> None:
    """ "Fit range" finds points anywhere in years 1-9999, and a single point is "1 point"."""
    url, key, secret = explorer_server
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with Client(key, secret, host=host, port=int(port), secure=False) as client:
        ancient = [
            DataPoint(datetime.datetime(500, 3, 1, tzinfo=UTC), 1),
            DataPoint(datetime.datetime(9500, 6, 1, 12, tzinfo=UTC), 2),
        ]
        client.write_key("zz.ancient", ancient)
    page = browser.new_page()
    page.goto(f"{url}/ui/")
    page.fill("#signin-key", key)
    page.fill("#signin-secret", secret)
    page.click("#signin-submit")
    page.wait_for_selector("#series-list li[data-key='zz.ancient']")
    page.fill("#tz", "UTC")
    page.dispatch_event("#tz", "change")
    page.select_option("#interval", "raw")
    page.click("#series-list li[data-key='zz.ancient']")
    page.click("#fit")
    expect(page.locator("#range-start")).to_have_value("0500-03-01T00:00")
    assert page.input_value("#range-end").startswith("9500-06-01T12:00")
    state = plot(page)
    assert state["points"] == "2"
    assert " 2 points · " in page.inner_text("#chart-caption")
    # In local mean time (Chicago's -05:50:36 then), times show whole-minute offsets as the
    # API's timestamps do.
    page.fill("#tz", "America/Chicago")
    page.dispatch_event("#tz", "change")
    plot(page)
    assert page.inner_text("#chart-caption").startswith("0500-02-28 18:10:00 -05:50 → ")

    page.click("#series-list li[data-key='zz.ancient']")  # deselect
    page.click("#series-list li[data-key='office.humidity']")
    page.click("#fit")
    state = plot(page)
    assert state["points"] == "1"
    assert " 1 point · " in page.inner_text("#chart-caption")
