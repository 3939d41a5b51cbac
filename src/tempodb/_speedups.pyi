from typing import Literal

import numpy as np
import numpy.typing as npt

def render_points(
    ts: npt.NDArray[np.int64], offsets: npt.NDArray[np.int64], numbers: bytes, /
) -> bytes | None: ...
def parse_points(body: bytes, /) -> tuple[bytearray, bytearray, bytearray] | None: ...
def parse_multi_points(
    body: bytes, /
) -> (
    tuple[bytearray, bytearray, bytearray, bytearray, list[Literal["id", "key"]], list[str]] | None
): ...
def summary_moments(values: npt.NDArray[np.float64], /) -> tuple[float, float, float, float]: ...
def decimal_mantissas(
    values: npt.NDArray[np.float64], scale: float, limit: float, /
) -> bytearray | None: ...
