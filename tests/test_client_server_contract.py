"""What the client and the server must agree on (``tempodb.contract``): they accept exactly
the same series keys, the OpenAPI document states the same rule, and the contract module
loads neither side."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tempodb import contract, protocol
from tempodb.server import openapi, wire
from tempodb.server.http import HTTPError

#: Strings near the grammar: mostly allowed characters, some others, lengths around the cap.
KEY_ALPHABET = st.sampled_from("abcXYZ019.:;-_/\\ " + "%+#?&=é\u2603\x00\n\t[]{}\"'")
near_keys = st.one_of(
    st.text(KEY_ALPHABET, max_size=260),
    st.text(max_size=20),
    st.text(st.sampled_from("ab.:"), min_size=250, max_size=260),
)


def client_accepts(key: str) -> bool:
    try:
        protocol.check_key(key)
    except ValueError:
        return False
    return True


def server_status(key: str) -> int:
    """200 if the server takes ``key``, else the status of its refusal."""
    try:
        wire.check_key(key)
    except HTTPError as refused:
        return refused.status
    return 200


def schema_accepts(key: str) -> bool:
    schema = openapi.KEY_SCHEMA
    return (
        schema["minLength"] <= len(key) <= schema["maxLength"]
        # JSON Schema patterns are ECMA-262: ``$`` is the very end (Python's ``\Z``).
        and re.search(schema["pattern"].replace("$", r"\Z"), key) is not None
    )


@given(near_keys)
@example("")
@example("a" * 255)
@example("a" * 256)
@example("a\n")
def test_client_server_and_document_accept_the_same_keys(key: str) -> None:
    accepted = contract.key_error(key) is None
    assert client_accepts(key) == accepted
    assert server_status(key) == (200 if accepted else 400)
    assert schema_accepts(key) == accepted


def test_the_key_rule() -> None:
    assert contract.key_error("cpu.load:1;a-b_c/d\\e f") is None
    assert contract.key_error("") is not None
    assert contract.key_error("x" * contract.MAX_KEY_LENGTH) is None
    assert contract.key_error("x" * (contract.MAX_KEY_LENGTH + 1)) is not None


def test_the_document_lists_the_directions() -> None:
    assert openapi.PARAMETERS["direction"]["schema"]["enum"] == list(contract.DIRECTIONS)


@pytest.mark.parametrize("module", ["tempodb.contract"])
def test_the_contract_loads_neither_side(module: str) -> None:
    code = (
        f"import sys, {module}; "
        "print(sorted(m for m in sys.modules if m.startswith('tempodb') and m != 'tempodb'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"[{module!r}]"
