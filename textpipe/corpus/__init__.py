"""Encoded corpora: flat ids + offsets + labels, encoded once, saved as sharded, checksummed, memory-mapped files
(`writer`, `_format`), and the training command's cache of them (`cache`).

    >>> from textpipe.corpus import EncodedCorpus   # EncodedCorpus.from_texts(texts, labels, vocab)
"""
from textpipe.corpus.batch import CorpusBatch
from textpipe.corpus.encoded import EncodedCorpus
from textpipe.corpus.writer import CorpusWriter, write_shard

__all__ = ["CorpusBatch", "EncodedCorpus", "CorpusWriter", "write_shard"]
