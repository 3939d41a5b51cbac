"""``tempodb.connect_async``: the AsyncClient suite again, in-process (issue 19)."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

# The AsyncClient tests, collected again in this module with the in-process ``run`` below.
from test_async_client import (  # noqa: F401
    test_batch_writer,
    test_bulk_and_multi_examples,
    test_dataframes,
    test_series_examples,
    test_write_read_increment_delete_examples,
)

import tempodb
from tempodb import AsyncClient, AuthenticationError, DataPoint, TempoDBConnectionError
from tempodb.storage.sqlite.lock import FolderLocked

DAY = (datetime.datetime(2012, 1, 1), datetime.datetime(2012, 1, 2))


@pytest.fixture
def run() -> Callable[..., Any]:
    """Run ``body(client)`` with an in-process AsyncClient on a fresh private store."""

    def run_body(body: Callable[[AsyncClient], Awaitable[Any]]) -> Any:
        async def main() -> Any:
            async with tempodb.connect_async(":memory:") as client:
                return await body(client)

        return asyncio.run(main())

    return run_body


def test_the_async_twin_shares_the_folder_rules(tmp_path: Path) -> None:
    async def main() -> None:
        async with tempodb.connect_async(tmp_path) as client:
            assert isinstance(client, AsyncClient)
            await client.write_key("a", [DataPoint(DAY[0], 1)])
            with pytest.raises(FolderLocked):
                tempodb.connect(tmp_path)
            async with tempodb.connect_async(tmp_path, read_only=True) as reader:
                assert (await reader.read_key("a", *DAY)).data[0].value == 1
                with pytest.raises(AuthenticationError, match="read-only"):
                    await reader.write_key("a", [DataPoint(DAY[0], 2)])
        with pytest.raises(TempoDBConnectionError, match="closed"):
            await client.get_series()
        async with tempodb.connect_async(tmp_path) as again:  # released on close
            assert [s.key for s in await again.get_series()] == ["a"]

    asyncio.run(main())
