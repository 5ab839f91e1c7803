"""Pretrained word vectors (GloVe, fastText, any .txt/.vec/.gz/.zip file, torchtext's `.pt` cache) and the
initialisation of a model's token embedding from them, with the coverage it reached."""
from textpipe.vectors.pretrained import (Coverage, FastText, GloVe, UnknownVectorsError, Vectors, VectorsFormatError,
                                         VectorsNotFoundError, init_embedding_from_file, init_embedding_from_vectors,
                                         pretrained_aliases, vectors_for_vocab)

__all__ = ["Vectors", "GloVe", "FastText", "pretrained_aliases", "VectorsFormatError", "VectorsNotFoundError",
           "UnknownVectorsError", "Coverage", "vectors_for_vocab", "init_embedding_from_vectors",
           "init_embedding_from_file"]
