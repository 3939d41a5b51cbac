import numpy as np
import numpy.typing as npt

def render_points(
    ts: npt.NDArray[np.int64], offsets: npt.NDArray[np.int64], numbers: bytes, /
) -> bytes | None: ...
def parse_points(body: bytes, /) -> tuple[bytearray, bytearray, bytearray] | None: ...
