"""Arrow arrays read, and scalars made, through their buffers.

subtle: pyarrow imports pandas (0.2-0.3 s here, more than reading a 5,600-row file) on the first
`pa.scalar(...)`, `pa.array(...)` or `Array.to_numpy()`; the table reader, the token counts and the encoder use
these instead, so that reading and training never import pandas (checked by tests/test_table.py).
"""
from __future__ import annotations

import functools

import numpy as np

__all__ = ["int_values", "string_scalar"]


def int_values(array) -> np.ndarray:
    """A null-free Arrow int32/int64 array as numpy: a view of its buffer.

    Example:
        >>> import pyarrow.compute as pc, pyarrow.csv, io
        >>> int_values(pc.index_in(pyarrow.csv.read_csv(io.BytesIO(b"a\\nx\\ny\\nx\\n"))["a"].combine_chunks(),
        ...                        value_set=pyarrow.csv.read_csv(io.BytesIO(b"a\\ny\\nx\\n"))["a"])).tolist()
        [1, 0, 1]
    """
    dtype = np.int64 if array.type.bit_width == 64 else np.int32
    return np.frombuffer(array.buffers()[1], dtype)[array.offset:array.offset + len(array)]


@functools.cache
def string_scalar(text: str, type_):
    """`text` as an Arrow scalar of the string type `type_` (string or large_string)."""
    import pyarrow as pa

    data = text.encode("utf-8")
    space = pa.StringArray.from_buffers(1, pa.py_buffer(np.array([0, len(data)], dtype=np.int32)),
                                        pa.py_buffer(data))[0]
    return space.cast(type_)
