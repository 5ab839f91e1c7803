"""Batches: the padded and offsets collates (vectorized, CPU only, picklable), `TextCollate` for raw text, the
length-bucketing `BucketBatchSampler` (sharded across ranks) and `make_dataloader`, the one-call recipe."""
from textpipe.batches.collate import offsets_collate, pad_collate
from textpipe.batches.loader import make_dataloader
from textpipe.batches.sampler import BucketBatchSampler
from textpipe.batches.text_collate import TextCollate

__all__ = ["pad_collate", "offsets_collate", "TextCollate", "BucketBatchSampler", "make_dataloader"]
