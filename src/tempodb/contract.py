"""What the client and the server must agree on, in one module that imports nothing of either.

- Series keys (spec §2.3): 1 to ``MAX_KEY_LENGTH`` (255) characters, each a letter, a digit,
  a space or one of ``. : ; - _ / \\`` (``KEY_PATTERN``).  ``key_error`` says why a key is
  refused, with the same message on both sides; the client checks before sending, the server
  when it reads a request, so a key one accepts the other accepts too.
- ``DIRECTIONS``: where a single-value lookup looks around its timestamp.
- ``ERROR_CODE_HEADER``: the header that carries the machine-readable code of an error;
  ``SERIES_NOT_FOUND`` the code by which the client tells an unknown series (403) from bad
  credentials; ``OUTCOME_UNKNOWN`` the code of a 500 whose write may or may not have been
  applied (safe to retry only with its ``IDEMPOTENCY_KEY_HEADER``).
- ``API_VERSION``: the path prefix of the API; ``__version__`` the installed distribution's.

The client, the server, the OpenAPI document and the storage layer import from here; this
module imports only the standard library, so loading it loads neither side.
"""

from __future__ import annotations

import re
from importlib import metadata
from typing import Final, Literal

#: The characters of a series key, as a regular expression of one or more of them.
KEY_PATTERN: Final = r"[a-zA-Z0-9.:;\-_/\\ ]+"
KEY_RE: Final = re.compile(KEY_PATTERN)
#: The longest series key, in characters.
MAX_KEY_LENGTH: Final = 255

Direction = Literal["exact", "before", "after", "nearest"]
#: Where a single-value lookup takes its point: at ``ts`` exactly, the last one before (or at)
#: it, the first one after (or at) it, or the nearest of those two.
DIRECTIONS: Final[tuple[Direction, ...]] = ("exact", "before", "after", "nearest")

ERROR_CODE_HEADER: Final = "X-TempoDB-Error"
#: The error code of a 403 for an unknown series (a 403 without it is about the credentials).
SERIES_NOT_FOUND: Final = "series-not-found"
#: The error code of a 500 for a write that was cut off while it committed.
OUTCOME_UNKNOWN: Final = "outcome-unknown"
#: The request header that makes a write apply at most once (``server/idempotency.py``).
IDEMPOTENCY_KEY_HEADER: Final = "Idempotency-Key"
API_VERSION: Final = "v1"

try:
    __version__ = metadata.version("tempodb-revived")
except metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"


def key_error(key: object) -> str | None:
    """Why ``key`` is not a valid series key, or None when it is one."""
    if not isinstance(key, str) or not key:
        return "Series key must be a non-empty string"
    if len(key) > MAX_KEY_LENGTH:
        return f"Series key is longer than {MAX_KEY_LENGTH} characters"
    if not KEY_RE.fullmatch(key):
        return f"Invalid series key: {key!r} (allowed: letters, digits, space and . : ; - _ / \\)"
    return None
