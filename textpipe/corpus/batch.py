"""`CorpusBatch`, what `EncodedCorpus.__getitems__` returns (where a batch's rows lie, not the rows), and
`windows`, the one gather that turns it into a `(B, T)` array (the collates in `textpipe.batches` pad it)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CorpusBatch", "windows"]

_I64 = np.dtype(np.int64)
_ROW_DTYPES: dict[int, np.dtype] = {}  # row size in bytes -> void dtype, for windows


@dataclass(slots=True)
class CorpusBatch:
    """A batch as ``EncodedCorpus.__getitems__`` returns it: where the rows are, not the rows themselves.

    Attributes:
        source: 1-D integer array (int64, or a stored corpus's uint16/uint32) holding the corpus ids, followed by a guard of at least ``max(lengths)``
            elements so that ``source[s:s + T]`` exists for every start ``s`` (rows are read as windows).
        starts: ``(B,)`` int64, where each sample's ids begin in ``source``.
        lengths: ``(B,)`` int64, number of ids of each sample.
        labels: ``(B,)`` int64 class labels.
    """

    source: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray


def windows(source: np.ndarray, starts: np.ndarray, T: int) -> np.ndarray:
    """``(B, T)`` copy of ``source[s:s + T]`` for each start ``s``: one fancy index, B memcpys.

    The gather goes through a read-only view whose element r is the ``T * itemsize`` bytes starting at
    ``source[r]`` (a void dtype), so each row is copied as one block; numpy checks it fits the buffer.
    Measured about 2x faster than indexing the equivalent ``(n, T)`` strided view.
    """
    n_rows = source.shape[0] - T + 1
    if n_rows > 0 and T > 0 and source.flags.c_contiguous:
        nbytes = T * source.itemsize
        row = _ROW_DTYPES.get(nbytes)
        if row is None:
            row = _ROW_DTYPES.setdefault(nbytes, np.dtype((np.void, nbytes)))
        view = np.ndarray((n_rows,), dtype=row, buffer=source, strides=(source.itemsize,))
        try:
            out = view[starts].view(source.dtype).reshape(starts.shape[0], T)
            return out if out.dtype == _I64 else out.astype(_I64)  # stored uint16/uint32 ids: int64 here
        except IndexError:
            pass  # no guard after the last sample: fall through to the clipped gather
    if starts.size and (starts.min() < 0 or starts.max() > source.shape[0]):
        raise ValueError(f"CorpusBatch starts must lie in [0, {source.shape[0]}] (the length of source), got "
                         f"{int(starts.min())}..{int(starts.max())}")
    pos = starts[:, None] + np.arange(T)  # (B, T)
    return source.take(pos, mode="clip").astype(_I64, copy=False) if source.size else np.zeros(pos.shape, _I64)
