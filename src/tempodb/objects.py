"""The wire objects of the v1 API, with the names and signatures of the original client."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tempodb.timeutil import from_wire, to_wire

if TYPE_CHECKING:
    import pandas

Value = int | float
JSONDict = dict[str, Any]


class DataPoint:
    """One timestamp/value pair.

    ``ts`` is a datetime (naive means UTC; every DataPoint the client returns is time-zone
    aware), ``value`` a number (bool is accepted and stored as 1/0).
    """

    __slots__ = ("ts", "value")

    def __init__(self, ts: datetime.datetime, value: Value) -> None:
        self.ts = ts
        self.value = value

    def to_json(self) -> JSONDict:
        return {"t": to_wire(self.ts), "v": self.value}

    @staticmethod
    def from_json(json: Mapping[str, Any]) -> DataPoint:
        return DataPoint(from_wire(json["t"]), json["v"])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DataPoint):
            return NotImplemented
        return self.ts == other.ts and self.value == other.value

    __hash__ = None  # type: ignore[assignment]  # mutable, like the original

    def __repr__(self) -> str:
        return f"DataPoint({self.ts!r}, {self.value!r})"

    def __str__(self) -> str:
        return f"t: {self.ts.isoformat()}, v: {self.value}"


class Series:
    """Series metadata: a system ``id``, a user ``key``, a ``name``, ``tags`` and
    string ``attributes``."""

    def __init__(
        self,
        id: str,
        key: str,
        name: str = "",
        attributes: dict[str, str] | None = None,
        tags: list[str] | None = None,
    ) -> None:
        self.id = id
        self.key = key
        self.name = name
        self.attributes: dict[str, str] = dict(attributes) if attributes else {}
        self.tags: list[str] = list(tags) if tags else []

    def to_json(self) -> JSONDict:
        return {
            "id": self.id,
            "key": self.key,
            "name": self.name,
            "tags": list(self.tags),
            "attributes": dict(self.attributes),
        }

    @staticmethod
    def from_json(json: Mapping[str, Any]) -> Series:
        return Series(
            json.get("id") or "",
            json.get("key") or "",
            name=json.get("name") or "",
            attributes=json.get("attributes") or {},
            tags=json.get("tags") or [],
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Series):
            return NotImplemented
        return self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Series(id={self.id!r}, key={self.key!r}, name={self.name!r}, "
            f"attributes={self.attributes!r}, tags={self.tags!r})"
        )


@dataclass(frozen=True)
class RefusedSeries:
    """A series that ``create_many_series`` did not create.

    ``index`` is its position in the list given, ``key`` the key it asked for (None when it
    gave none), ``status`` 409 (the key exists, or an earlier series of the same call has it)
    or 422 (the series object is invalid), and ``messages`` what the server said.
    """

    index: int
    key: str | None
    status: int
    messages: list[str] = field(default_factory=list)


class CreatedSeries(list[Series]):
    """The result of ``create_many_series``: a list of the series created, in the order
    given, with what the server refused.

    ``errors`` is empty when every series was created; otherwise (HTTP 207) it lists the
    refused ones, and, as with ``write_multi``, the valid ones were created all the same.
    ``multistatus`` is None when every series was created, else the server's 207 body:
    ``{'multistatus': [{'status': '200', 'messages': [], 'series': {...}},
    {'status': '409', 'messages': [...]}, ...]}``, one entry per series given.
    """

    def __init__(
        self,
        created: Iterable[Series] = (),
        errors: Iterable[RefusedSeries] = (),
        multistatus: JSONDict | None = None,
    ) -> None:
        super().__init__(created)
        self.errors: list[RefusedSeries] = list(errors)
        self.multistatus = multistatus

    @staticmethod
    def from_json(json: Any, keys: Sequence[str | None] = ()) -> CreatedSeries:
        """From the 200 body (an array of series) or the 207 body (a multistatus);
        ``keys`` are the keys that were asked for, in order (for ``RefusedSeries.key``)."""
        if isinstance(json, list):
            return CreatedSeries(Series.from_json(item) for item in json)
        created: list[Series] = []
        errors: list[RefusedSeries] = []
        for index, entry in enumerate(json["multistatus"]):
            status = int(entry["status"])  # a string as v1 sends it; an integer is fine too
            if status == 200:
                created.append(Series.from_json(entry["series"]))
            else:
                key = keys[index] if index < len(keys) else None
                errors.append(RefusedSeries(index, key, status, list(entry.get("messages") or [])))
        return CreatedSeries(created, errors, json)

    def __repr__(self) -> str:
        return f"CreatedSeries({list.__repr__(self)}, errors={self.errors!r})"


class Summary:
    """Statistics over the raw points of a read: ``sum``, ``mean``, ``max``, ``min``,
    ``stddev`` (sample), ``ss`` (sum of squared deviations) and ``count``.

    An open attribute bag, as in the original: an empty range gives an empty Summary.
    """

    def __init__(self, **kwargs: Any) -> None:
        self.__dict__.update(kwargs)

    def __getattr__(self, name: str) -> Any:
        # Only reached for missing attributes: a clear error naming what is there.
        raise AttributeError(f"Summary has no {name!r} (it has: {sorted(self.__dict__)})")

    @staticmethod
    def from_json(json: Mapping[str, Any]) -> Summary:
        return Summary(**json)

    def to_json(self) -> JSONDict:
        return dict(self.__dict__)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Summary):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())
        return f"Summary({fields})"


class DataSet:
    """The points of one series in ``[start, end)``, with the series and a summary.

    ``tz`` is the zone the read asked for (``"UTC"`` by default); :meth:`to_series` and
    :meth:`to_dataframe` index the points in it.
    """

    def __init__(
        self,
        series: Series,
        start: datetime.datetime,
        end: datetime.datetime,
        data: list[DataPoint] | None = None,
        summary: Summary | None = None,
        *,
        tz: str | None = None,
    ) -> None:
        self.series = series
        self.start = start
        self.end = end
        self.data: list[DataPoint] = data if data is not None else []
        self.summary = summary
        self.tz = tz

    @staticmethod
    def from_json(json: Mapping[str, Any], *, tz: str | None = None) -> DataSet:
        summary = json.get("summary")
        return DataSet(
            Series.from_json(json.get("series") or {}),
            from_wire(json["start"]),
            from_wire(json["end"]),
            [DataPoint(from_wire(p["t"]), p["v"]) for p in json.get("data") or ()],
            Summary.from_json(summary) if summary is not None else None,
            tz=tz,
        )

    def to_series(self) -> pandas.Series[Any]:
        """The points as a pandas Series named by the series key, on a time-zone aware
        DatetimeIndex in the read's zone (int64 values when every value is an integer,
        else float64).  Needs ``pip install 'tempodb-revived[pandas]'``.

        >>> client.read_key("k", start, end, tz="America/Chicago").to_series()
        time
        2012-01-01 00:00:00-06:00    1.5
        Name: k, dtype: float64
        """
        from tempodb.frames import dataset_to_series

        return dataset_to_series(self)

    def to_dataframe(self) -> pandas.DataFrame:
        """The points as a one-column DataFrame (the column is the series key); see
        :meth:`to_series`."""
        from tempodb.frames import dataset_to_frame

        return dataset_to_frame(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DataSet):
            return NotImplemented
        return (self.series, self.start, self.end, self.data, self.summary) == (
            other.series,
            other.start,
            other.end,
            other.data,
            other.summary,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"DataSet(series={self.series!r}, start={self.start!r}, end={self.end!r}, "
            f"data=[{len(self.data)} points], summary={self.summary!r})"
        )


class DeleteSummary:
    """The result of ``delete_series``: ``deleted`` is the number of series removed."""

    def __init__(self, deleted: int) -> None:
        self.deleted = deleted

    @staticmethod
    def from_json(json: Mapping[str, Any]) -> DeleteSummary:
        return DeleteSummary(int(json["deleted"]))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DeleteSummary):
            return NotImplemented
        return self.deleted == other.deleted

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"DeleteSummary(deleted={self.deleted})"


class SingleValueSet:
    """The result of a single-value lookup: the ``series`` and its ``data`` point, or None."""

    def __init__(self, series: Series, data: DataPoint | None) -> None:
        self.series = series
        self.data = data

    @staticmethod
    def from_json(json: Mapping[str, Any]) -> SingleValueSet:
        data = json.get("data")
        return SingleValueSet(
            Series.from_json(json.get("series") or {}),
            DataPoint.from_json(data) if data is not None else None,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SingleValueSet):
            return NotImplemented
        return (self.series, self.data) == (other.series, other.data)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SingleValueSet(series={self.series!r}, data={self.data!r})"


class MultiPoint:
    """One timestamp of a 1.0 read with several values: by fold (``read_rollups``) or by
    series key (``read_multi``; a series without a point there is absent)."""

    __slots__ = ("ts", "values")

    def __init__(self, ts: datetime.datetime, values: Mapping[str, Value]) -> None:
        self.ts = ts
        self.values = dict(values)

    @staticmethod
    def from_json(json: Mapping[str, Any]) -> MultiPoint:
        return MultiPoint(from_wire(json["t"]), json["v"])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MultiPoint):
            return NotImplemented
        return self.ts == other.ts and self.values == other.values

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"MultiPoint({self.ts!r}, {self.values!r})"


@dataclass(frozen=True)
class Found:
    """What ``find`` picked in one interval ``[start, end)``: the point."""

    start: datetime.datetime
    end: datetime.datetime
    point: DataPoint

    @staticmethod
    def from_json(json: Mapping[str, Any]) -> Found:
        interval = json["interval"]
        return Found(
            from_wire(interval["start"]),
            from_wire(interval["end"]),
            DataPoint.from_json(json["found"]),
        )
