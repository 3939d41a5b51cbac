"""Long arrays as query parameters.  psycopg adapts a Python list element by element (measured
here: 19 ms for 10,000 integers, 36 ms for 10,000 strings, against 5-7 ms for the whole query
below): a number or boolean array goes as one array literal (``'{1,2,3}'``) that PostgreSQL
parses in C, a text array as one JSON array (``TEXTS``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import numpy as np
import orjson

#: A ``text[]`` made of a JSON array of strings (the parameter in place of ``{}``).
TEXTS: Final = "ARRAY(SELECT json_array_elements_text({}::json))"


def literal(values: Any) -> str:
    """The array literal of a numpy array or a list of numbers or booleans, for a
    ``%s::bigint[]`` (``float8[]``, ``bool[]``) parameter.  Floats are written in their
    shortest form that reads back as the same float64 (orjson's), so nothing is rounded."""
    if isinstance(values, np.ndarray):
        values = np.ascontiguousarray(values)  # orjson writes C-ordered arrays only
    return "{" + orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY).decode()[1:-1] + "}"


def texts(values: Iterable[str]) -> str:
    """The JSON parameter of ``TEXTS``."""
    return orjson.dumps(list(values)).decode()
