"""The PostgreSQL backend (docstring to be written)."""

from tempodb.storage.postgres.schema import SCHEMA_VERSION
from tempodb.storage.postgres.store import (
    BLOCK_POINTS,
    DIRECT_POINTS,
    FOLD_AFTER_S,
    HEAD_POINTS,
    PostgresStore,
)

__all__ = [
    "BLOCK_POINTS",
    "DIRECT_POINTS",
    "FOLD_AFTER_S",
    "HEAD_POINTS",
    "SCHEMA_VERSION",
    "PostgresStore",
]
