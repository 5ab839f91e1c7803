"""The one-call DataLoader recipe: encoded corpus + bucketing batch sampler + vectorized collate.

    loader = make_dataloader(corpus, batch_size=64, num_workers=2)
    for epoch in range(epochs):
        loader.batch_sampler.set_epoch(epoch)      # new order each epoch, identical on every rank
        for ids, lengths, labels in loader:        # (B, T), (B,), (B,) int64 CPU tensors
            ids = ids.to(device, non_blocking=True)

With ``num_workers > 0`` each worker task is a chunk of ``chunk_size`` consecutive batches, collated into
one shared-memory storage and split back into batches in the main process (see :class:`ChunkedLoader`).

Run the tests: python3 -m pytest -q tests/test_loader.py
"""
from __future__ import annotations

import functools
import math
import multiprocessing
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Sampler

from textpipe.collate import offsets_collate, pad_collate
from textpipe.corpus import EncodedCorpus
from textpipe.sampler import BucketBatchSampler

__all__ = ["make_dataloader", "ChunkedLoader"]

CHUNK_SIZE = 16  # batches per worker transfer; see ChunkedLoader


def _default_context() -> str:
    # Not "fork": forking a process that holds CUDA state or runs threads can deadlock. "forkserver"
    # starts workers from a clean process and, like "spawn" on macOS/Windows, requires a picklable dataset
    # and collate, so a recipe that works here works on every platform.
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def _worker_init(worker_id: int) -> None:
    # subtle: in worker processes only, send batches by shared-memory file name instead of passing a file
    # descriptor over a socket per tensor: measured about 4x less transfer cost per batch. The main
    # process keeps its own sharing strategy. (Each worker starts a torch_shm_manager helper, which
    # unlinks the segments and exits with it.)
    torch.multiprocessing.set_sharing_strategy("file_system")


class _ChunkSampler(Sampler[list[list[int]]]):
    """Group one epoch of a batch sampler into lists of ``size`` consecutive batches (the last one shorter).

    Each ``iter`` starts a new pass over ``batch_sampler``, so a chunk never spans two epochs.
    """

    def __init__(self, batch_sampler: BucketBatchSampler, size: int) -> None:
        self.batch_sampler, self.size = batch_sampler, size

    def __iter__(self) -> Iterator[list[list[int]]]:
        chunk = []
        for batch in self.batch_sampler:
            chunk.append(batch)
            if len(chunk) == self.size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def __len__(self) -> int:
        return -(-len(self.batch_sampler) // self.size)


def _pack(batches: list[tuple[torch.Tensor, ...]]) -> tuple[list[torch.Tensor], list[tuple], int]:
    """Copy a chunk's batches into one storage per dtype: ``(buffers, layout, tensors per batch)``.

    ``layout[i] = (buffer index, start, shape)`` of the i-th tensor. Only the buffers are tensors, so a
    chunk is one or two shared-memory storages plus a few ints to unpickle; :func:`_unpack` makes the views.
    """
    flat = [t for batch in batches for t in batch]
    sizes: dict[torch.dtype, int] = {}
    layout = []
    for t in flat:
        start = sizes.get(t.dtype, 0)
        layout.append((t.dtype, start, tuple(t.shape)))
        sizes[t.dtype] = start + t.numel()
    index = {dtype: i for i, dtype in enumerate(sizes)}
    buffers = [torch.empty(size, dtype=dtype) for dtype, size in sizes.items()]
    for t, (dtype, start, shape) in zip(flat, layout):
        buffers[index[dtype]][start:start + t.numel()].view(shape).copy_(t)
    width = len(batches[0]) if batches else 0
    return buffers, [(index[dtype], start, shape) for dtype, start, shape in layout], width


def _unpack(chunk) -> Iterator[tuple[torch.Tensor, ...]]:
    """Main process: the chunk's batches, as views of its (possibly pinned) buffers."""
    buffers, layout, width = chunk
    views = [buffers[b][start:start + math.prod(shape)].view(shape) for b, start, shape in layout]
    for i in range(0, len(views), width):
        yield tuple(views[i:i + width])



class _ChunkDataset:
    """Worker-side: item ``[batch, batch, ...]`` -> the collated batches, packed by :func:`_pack`."""

    def __init__(self, corpus: EncodedCorpus, collate) -> None:
        self.corpus, self.collate = corpus, collate

    def __getitem__(self, chunk: list[list[int]]):
        return _pack([self.collate(self.corpus.__getitems__(batch)) for batch in chunk])

    def __len__(self) -> int:
        return len(self.corpus)


def _chunk_collate(chunk):
    return chunk  # the dataset item is already the collated chunk


class ChunkedLoader:
    """What ``make_dataloader(..., num_workers=N > 0)`` returns: a ``DataLoader`` over chunks of batches.

    Why: from a worker, shipping a batch (queue message + one shared-memory storage) costs about 10x
    building it (~400 us vs ~40 us on a 2-core machine), so one batch per task made workers slower than
    none. Here a worker task is ``chunk_size`` consecutive batches of the sampler (never two epochs),
    collated and packed into one storage, and the main process yields them one by one: the per-transfer
    cost is paid once per chunk. Batches, their order and ``len()`` are exactly those of ``num_workers=0``.
    Measured (``benchmarks/collate_throughput.py``, 120,000 rows, B=64, 2 cores, ``num_workers=2``): an
    epoch took 1.1-1.3 s with one batch per task and 0.31-0.38 s with chunks of 16 (chunks of 8: 0.56 s,
    32: 0.33 s), against the tutorial's 7.7-9.0 s.

    Not a ``DataLoader`` subclass: a ``DataLoader``'s ``batch_sampler`` cannot be set after construction and
    would be the chunk sampler, and its ``len``/``iter`` would count chunks; wrapping keeps both meanings
    plain. The attributes the training loop uses are the same: ``batch_sampler`` (call ``set_epoch`` on
    it), ``len()`` and iteration; the inner ``DataLoader`` is ``.loader``.

    Attributes:
        batch_sampler: The :class:`BucketBatchSampler` (per-batch indices, this rank's share).
        dataset: The corpus.
        chunk_size: Batches per worker task.
        loader: The inner ``DataLoader``; each item is one packed chunk of up to ``chunk_size`` batches.
    """

    def __init__(self, corpus: EncodedCorpus, batch_sampler: BucketBatchSampler, collate, *, chunk_size: int,
                 num_workers: int, pin_memory: bool, **loader_options) -> None:
        self.dataset, self.batch_sampler, self.chunk_size = corpus, batch_sampler, chunk_size
        self.num_workers, self.pin_memory, self.collate_fn = num_workers, pin_memory, collate
        self.loader = DataLoader(_ChunkDataset(corpus, collate), sampler=_ChunkSampler(batch_sampler, chunk_size),
                                 batch_size=None, collate_fn=_chunk_collate, num_workers=num_workers,
                                 pin_memory=pin_memory, **loader_options)

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        for chunk in self.loader:
            yield from _unpack(chunk)


def make_dataloader(corpus: EncodedCorpus, *, batch_size: int, shuffle: bool = True, seed: int = 0,
                    bucket: bool = True, num_workers: int = 0, pin_memory: bool = False,
                    drop_last: bool = False, num_replicas: int | None = None, rank: int | None = None,
                    form: str = "pad", bucket_size_multiplier: int = 100,
                    multiprocessing_context: str | None = None, chunk_size: int = CHUNK_SIZE,
                    window: int | None = None, **collate_options) -> DataLoader | ChunkedLoader:
    """Build a ``DataLoader`` over an :class:`EncodedCorpus` that yields whole, padded batches.

    Each batch is fetched with one ``corpus.__getitems__`` call and padded by :func:`pad_collate` (or
    concatenated by :func:`offsets_collate` with ``form="offsets"``) in a few vectorized steps. Batches are
    CPU tensors; move them in the training loop. Call ``loader.batch_sampler.set_epoch(epoch)`` each epoch.

    Args:
        corpus: The encoded dataset.
        batch_size: Samples per batch on this rank.
        shuffle: New sample and batch order every epoch (from ``seed`` and the epoch).
        seed: Sampler seed; use the same value on every rank.
        bucket: Group samples of similar length (little padding); ``False`` gives random batches.
        num_workers: Worker processes (persistent across epochs). 0 is usually fastest here: a batch
            is cut from the corpus in tens of microseconds, less than the cost of sending it from a worker
            process (measured in ``benchmarks/collate_throughput.py``). With workers, each task is a chunk
            of ``chunk_size`` batches sent as one transfer (:class:`ChunkedLoader`).
        pin_memory: Pin batches for faster host-to-GPU copies (only useful with CUDA).
        drop_last: Drop the short batch and the batches that do not divide over the ranks; see
            :class:`BucketBatchSampler` for what happens to the remainder either way.
        num_replicas: Ranks; defaults to the ``torch.distributed`` world size, else 1.
        rank: This rank; defaults to the ``torch.distributed`` rank, else 0.
        form: ``"pad"`` for ``(ids (B, T), lengths, labels)``, ``"offsets"`` for ``nn.EmbeddingBag``'s
            ``(flat ids, offsets, labels)``.
        bucket_size_multiplier: Bucket size in batches (when ``bucket``).
        multiprocessing_context: Worker start method; default ``"forkserver"`` where available, else
            ``"spawn"``.
        chunk_size: Batches per worker task when ``num_workers > 0`` (amortizes the per-transfer cost).
        window: ``None``: one global shuffle per epoch (about 16 bytes of RAM per row). An int: corpora
            longer than ``window`` rows are shuffled and bucketed ``window`` rows at a time (memory bounded
            by the window; see :class:`BucketBatchSampler`); shorter ones are batched exactly as with ``None``.
        **collate_options: Passed to the collate: ``pad_idx``, ``max_len``, ``pad_to_multiple_of``,
            ``padding_side``, ``dtype`` (pad form) or ``max_len`` (offsets form).

    Returns:
        A ``DataLoader`` (``num_workers=0``) or a :class:`ChunkedLoader` (workers); either way iterate it for
        batches, ``len()`` is batches per epoch on this rank and ``batch_sampler`` is a
        :class:`BucketBatchSampler`.

    Raises:
        TypeError: If ``corpus`` is not an ``EncodedCorpus`` or a collate option is unknown.
        ValueError: For an unknown ``form`` or invalid sampler arguments.

    Example:
        >>> loader = make_dataloader(EncodedCorpus([5, 6, 7], [0, 2, 3], [1, 0]), batch_size=2, shuffle=False)
        >>> next(iter(loader))
        (tensor([[7, 0],
                [5, 6]]), tensor([1, 2]), tensor([0, 1]))
    """
    if not isinstance(corpus, EncodedCorpus):
        raise TypeError(f"corpus must be an EncodedCorpus, got {type(corpus).__name__}; build one with "
                        f"EncodedCorpus.from_texts(texts, labels, vocab)")
    if form not in ("pad", "offsets"):
        raise ValueError(f"form must be 'pad' or 'offsets', got {form!r}")
    allowed = {"pad_idx", "max_len", "pad_to_multiple_of", "padding_side", "dtype"} if form == "pad" else {"max_len"}
    unknown = set(collate_options) - allowed
    if unknown:
        raise TypeError(f"unknown option(s) {sorted(unknown)} for form={form!r}; expected some of {sorted(allowed)}")
    if not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers must be an int >= 0, got {num_workers!r}")
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an int >= 1, got {chunk_size!r}")
    # the corpus itself, not corpus.lengths: the windowed mode reads one window of lengths at a time
    sampler = BucketBatchSampler(corpus, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last,
                                 num_replicas=num_replicas, rank=rank, window=window,
                                 bucket_size_multiplier=bucket_size_multiplier if bucket else 1)
    collate = functools.partial(pad_collate if form == "pad" else offsets_collate, **collate_options)
    if num_workers == 0:
        return DataLoader(corpus, batch_sampler=sampler, collate_fn=collate, pin_memory=pin_memory)
    return ChunkedLoader(corpus, sampler, collate, chunk_size=chunk_size, num_workers=num_workers,
                         pin_memory=pin_memory, persistent_workers=True, worker_init_fn=_worker_init,
                         multiprocessing_context=multiprocessing_context or _default_context())
