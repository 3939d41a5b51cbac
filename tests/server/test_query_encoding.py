"""What the client encodes, the server decodes: filters, attributes and path segments."""

from __future__ import annotations

from urllib.parse import urlencode

import orjson
from hypothesis import given
from hypothesis import strategies as st

from tempodb.protocol import filter_params, segment
from tempodb.server.context import parse_filter
from tempodb.server.http import Query, Request, _drop_trailing_commas
from tempodb.server.routes import route, split_path

texts = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
key_texts = st.text(st.sampled_from("abcXYZ0189.:;-_/\\ "), min_size=1, max_size=30)


@given(
    ids=st.lists(texts, max_size=3),
    keys=st.lists(texts, max_size=3),
    tags=st.lists(texts, max_size=3),
    attributes=st.dictionaries(texts.filter(lambda n: "]" not in n), texts, max_size=3),
)
def test_filters_survive_the_query_string(
    ids: list[str], keys: list[str], tags: list[str], attributes: dict[str, str]
) -> None:
    query = urlencode(filter_params(ids, keys, tags, attributes)).encode()
    flt = parse_filter(Query.parse(query))
    assert flt.ids == tuple(ids)
    assert flt.keys == tuple(keys)
    assert flt.tags == tuple(tags)
    assert flt.attributes == {name: (value,) for name, value in attributes.items()}


@given(key=key_texts, action=st.sampled_from(["data", "increment", "single"]))
def test_keys_survive_the_path(key: str, action: str) -> None:
    raw = f"/v1/series/key/{segment(key)}/{action}/".encode()
    found = route(split_path(raw))
    assert found is not None
    assert found.params == {"field": "key", "value": key}


def test_repeated_attribute_means_any_of_its_values() -> None:
    flt = parse_filter(Query.parse(b"attr%5Bcolor%5D=red&attr[color]=blue&tag=&key=a"))
    assert flt.attributes == {"color": ("red", "blue")}
    assert flt.tags == ()  # empty values are absent
    assert flt.keys == ("a",)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-10, 10) | st.text('ab,\\" ', max_size=5),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text("ab", max_size=4), children, max_size=4)
        ),
        max_leaves=12,
    )
)
def test_trailing_commas_are_forgiven_and_nothing_else_changes(value: object) -> None:
    exact = orjson.dumps(value)
    assert Request("POST", [], Query([]), exact).json() == value
    sloppy = exact.replace(b"]", b",]").replace(b"[,]", b"[]")
    sloppy = sloppy.replace(b"}", b",}").replace(b"{,}", b"{}")
    assert Request("POST", [], Query([]), sloppy).json() == value
    assert _drop_trailing_commas(exact) is None
