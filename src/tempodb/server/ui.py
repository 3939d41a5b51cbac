"""The data explorer: the static files of the single-page UI at ``/ui/``.

The page asks for an API key and secret, keeps them in the browser's sessionStorage and calls
the v1 API from JavaScript with HTTP Basic; the server only serves files, which need no
credentials.  The files are a fixed list (no part of a request path ever reaches the file
system), and every answer carries a strict Content-Security-Policy: scripts, styles and
connections from this origin only, no inline script or style, no framing.

The charting library (uPlot) is not in git: ``build_support/ui_assets.py`` fetches the pinned
release from the npm registry at build time (``setup.py`` and ``make install`` run it) into
``ui/vendor/``.
Without it the page still loads, and the library's URL answers 503 saying how to build it.
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

from tempodb.server.http import HTTPError, Response, accepts_gzip

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
#: URL path below ``/ui/`` -> (file below ``server/ui/``, content type).
FILES: dict[str, tuple[str, bytes]] = {
    "": ("index.html", b"text/html; charset=utf-8"),
    "index.html": ("index.html", b"text/html; charset=utf-8"),
    "app.js": ("app.js", b"text/javascript; charset=utf-8"),
    "app.css": ("app.css", b"text/css; charset=utf-8"),
    "icon.svg": ("icon.svg", b"image/svg+xml"),
    "vendor/uPlot.iife.min.js": ("vendor/uPlot.iife.min.js", b"text/javascript; charset=utf-8"),
    "vendor/uPlot.min.css": ("vendor/uPlot.min.css", b"text/css; charset=utf-8"),
}
NOT_BUILT = (
    "The explorer's chart library was not built into this installation: run "
    "build_support/ui_assets.py (make install and every wheel build do) and reinstall."
)


@dataclass(frozen=True)
class Asset:
    content_type: bytes
    body: bytes
    gzipped: bytes


_cache: dict[str, Asset] = {}


def _load(name: str, content_type: bytes) -> Asset | None:
    """The file ``name`` below ``server/ui/``, read once; None when it is missing."""
    asset = _cache.get(name)
    if asset is None:
        path = resources.files("tempodb.server").joinpath("ui", *name.split("/"))
        try:
            body = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        asset = Asset(content_type, body, gzip.compress(body, 6, mtime=0))
        _cache[name] = asset
    return asset


def serve(method: str, raw_path: bytes, headers: Mapping[str, str]) -> Response:
    """Answer a request for ``/ui`` or a path below it."""
    if method not in ("GET", "HEAD"):
        raise HTTPError(
            405,
            f"Method {method} not allowed here (allowed: GET, HEAD)",
            "method-not-allowed",
            {"Allow": "GET, HEAD"},
        )
    path = raw_path.decode("utf-8", "replace")
    if path == "/ui":
        # Relative, so that the page also works behind a proxy that adds a prefix.
        return Response(308, b"", None, {"Location": "ui/", **SECURITY_HEADERS})
    found = FILES.get(path.removeprefix("/ui/"))
    if found is None or not path.startswith("/ui/"):
        raise HTTPError(404, f"Not found: {path}", "not-found")
    name, content_type = found
    asset = _load(name, content_type)
    if asset is None:
        if not name.startswith("vendor/"):
            raise HTTPError(404, f"Not found: {path}", "not-found")
        return Response(
            503,
            NOT_BUILT.encode() + b"\n",
            b"text/plain; charset=utf-8",
            {
                "Retry-After": "3600",
                **SECURITY_HEADERS,
            },
        )
    response_headers = {"Cache-Control": "no-cache", "Vary": "Accept-Encoding", **SECURITY_HEADERS}
    if accepts_gzip(headers.get("accept-encoding", "")) and len(asset.gzipped) < len(asset.body):
        response_headers["Content-Encoding"] = "gzip"
        return Response(200, asset.gzipped, asset.content_type, response_headers)
    return Response(200, asset.body, asset.content_type, response_headers)
