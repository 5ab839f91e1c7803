"""Pretrained word vectors (torchtext's ``Vectors``, ``GloVe``, ``FastText``) and embedding initialisation.

    vectors = Vectors("wiki.en.vec")                  # .txt/.vec, .gz or .zip; cached as .vector_cache/wiki.en.vec.pt
    vectors["cat"], vectors.get_vecs_by_tokens(["Cat", "dog"], lower_case_backup=True)
    coverage = init_embedding_from_vectors(model, vocab, vectors)   # TextClassifier rows <- vectors
    print(coverage)                                   # "31,207 of 32,000 vocabulary tokens (97.5%) ..."

Text files are read streaming into one float32 array (``textpipe/_vectors_io.py``); the first load writes
torchtext's ``.pt`` cache ``(itos, stoi, vectors, dim)``, which later loads (textpipe's or torchtext's)
read instead. ``textpipe train --vectors FILE`` uses ``init_embedding_from_vectors``.

Run the tests: python3 -m pytest -q tests/test_vectors.py
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch

from textpipe.core.specials import SPECIALS
from textpipe.vectors._io import VectorsFormatError, read_vectors_text
from textpipe.data.download import DownloadError, download_file
from textpipe.core.fileio import atomic_write, atomic_write_text

__all__ = ["Vectors", "GloVe", "FastText", "pretrained_aliases", "VectorsFormatError", "VectorsNotFoundError",
           "UnknownVectorsError",
           "Coverage", "vectors_for_vocab", "init_embedding_from_vectors", "init_embedding_from_file"]


class VectorsNotFoundError(FileNotFoundError, RuntimeError):
    """No vectors file at the path or in the cache, and no URL to fetch. Also a ``RuntimeError`` (torchtext's)."""


class UnknownVectorsError(ValueError, KeyError):
    """An unknown ``GloVe`` name. Also a ``KeyError``, which torchtext's table lookup raised."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


class Vectors:
    """Word vectors from a local file, the cache, or a URL: ``itos``, ``stoi``, ``vectors (N, dim)``, ``dim``.

    Args:
        name: A vectors file (``.txt``/``.vec``, ``.gz``, ``.zip``), or its name inside ``cache``.
        cache: Directory for the ``.pt`` cache and downloads (default ``.vector_cache``, as in torchtext).
        url: Where to fetch the file (or an archive holding it) when it is neither at ``name`` nor cached.
        unk_init: Called on a fresh ``(dim,)`` tensor for an unknown token (default: zeros).
        max_vectors: Keep only the first ``max_vectors`` (most files are sorted by frequency).
        md5: Expected MD5 of the download (textpipe addition; without it the download is not verified and
            a warning says so).
        on_bad_lines: ``"raise"`` (default) or ``"skip"`` lines whose word is not UTF-8 or whose numbers do
            not parse (torchtext skipped non-UTF-8 words silently).
        member: The member of a ``.zip`` that holds the vectors, when the archive has several.

    Raises:
        VectorsNotFoundError: Nothing at ``name``, nothing cached, and no ``url``.
        VectorsFormatError: A malformed line (``file:line: ...``).
        DownloadError: The download failed.

    Example:
        >>> v = Vectors("tiny.vec", cache="cache")  # doctest: +SKIP
        >>> v.dim, v.itos[:2], v["the"].shape  # doctest: +SKIP
        (300, ['the', ','], torch.Size([300]))
    """

    def __init__(self, name: str | os.PathLike, cache: str | os.PathLike | None = None, url: str | None = None,
                 unk_init=None, max_vectors: int | None = None, *, md5: str | None = None,
                 on_bad_lines: str = "raise", member: str | None = None) -> None:
        self.unk_init = torch.Tensor.zero_ if unk_init is None else unk_init
        cache = Path(".vector_cache" if cache is None else cache)
        name = Path(name)
        suffix = f"_{max_vectors}.pt" if max_vectors else ".pt"
        if name.is_file():
            path, path_pt = name, cache / (name.name + suffix)
        else:
            path = cache / name
            path_pt = Path(str(path) + suffix)
        key = _source_key(path, _key_path(path_pt)) if path.is_file() else None
        if path_pt.is_file():
            if key is None:  # only the cache is left (torchtext's way): nothing to compare it with
                self._load_pt(path_pt)
                return
            old = _read_key(_key_path(path_pt))
            if _same_content(old, key):  # built from this very content (path, size, SHA-256)
                try:
                    self._load_pt(path_pt)
                    if old != key:  # touched, same content: remember the new stat (best effort)
                        with contextlib.suppress(OSError):
                            atomic_write_text(_key_path(path_pt), json.dumps(key) + "\n")
                    return
                except VectorsFormatError as e:
                    warnings.warn(f"{e}; rebuilding it from {path}", UserWarning, stacklevel=2)
        if not path.is_file():
            if url is None:
                raise VectorsNotFoundError(f"no vectors found at {name} (nor {path}, nor a cached {path_pt}); "
                                           f"pass the path of a .txt/.vec/.gz/.zip vectors file, or url=")
            archive = _fetch(url, cache, md5=md5)
            if archive.name != path.name:  # an archive that holds the file (GloVe's .zip)
                path, member = archive, member or name.name
            key = _source_key(path, _key_path(path_pt))
        itos, array = read_vectors_text(path, max_vectors=max_vectors, on_bad_lines=on_bad_lines, member=member)
        self.itos = itos
        self.stoi = {word: i for i, word in enumerate(itos)}  # torchtext's: a repeated word maps to its last row
        self.vectors = torch.from_numpy(array)  # shares the array's memory: no copy
        self.dim = int(array.shape[1])
        try:
            cache.mkdir(parents=True, exist_ok=True)
            _key_path(path_pt).unlink(missing_ok=True)  # no key: the .pt is not trusted until both are written
            with atomic_write(path_pt) as f:  # torchtext's cache format, so either library can read it
                torch.save((self.itos, self.stoi, self.vectors, self.dim), f)
            atomic_write_text(_key_path(path_pt), json.dumps(key) + "\n")
        except OSError as e:  # a read-only cache: the vectors are loaded, only the next load is slower
            warnings.warn(f"could not write the vectors cache {path_pt} ({getattr(e, 'strerror', None) or e}); "
                          f"continuing without it", UserWarning, stacklevel=2)

    def _load_pt(self, path_pt: Path) -> None:
        try:
            loaded = torch.load(path_pt, weights_only=True)
        except Exception as e:
            raise VectorsFormatError(f"{path_pt}: not a readable vectors cache ({type(e).__name__}: {e}); delete "
                                     f"it and load the text file again") from e
        if not (isinstance(loaded, tuple) and len(loaded) == 4 and isinstance(loaded[2], torch.Tensor)
                and loaded[2].dim() == 2 and loaded[2].shape[1] == loaded[3] and len(loaded[0]) == len(loaded[2])):
            raise VectorsFormatError(f"{path_pt}: expected torchtext's (itos, stoi, vectors, dim) tuple; delete it "
                                     f"and load the text file again")
        self.itos, self.stoi, self.vectors, self.dim = loaded

    def __getitem__(self, token: str) -> torch.Tensor:
        if token in self.stoi:
            return self.vectors[self.stoi[token]]
        return self.unk_init(torch.empty(self.dim))

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __len__(self) -> int:
        return len(self.vectors)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} vectors, dim={self.dim})"

    def get_vecs_by_tokens(self, tokens: str | list[str], lower_case_backup: bool = False) -> torch.Tensor:
        """Vectors of a token ``(dim,)`` or of a list of tokens ``(len(tokens), dim)``.

        With ``lower_case_backup``, a token not found as written is looked up lower-cased.

        Example:
            >>> v.get_vecs_by_tokens(["Cat", "dog"], lower_case_backup=True).shape  # doctest: +SKIP
            torch.Size([2, 300])
        """
        single = not isinstance(tokens, list)
        tokens = [tokens] if single else tokens
        if lower_case_backup:
            rows = [self[t] if t in self.stoi else self[t.lower()] for t in tokens]
        else:
            rows = [self[t] for t in tokens]
        if not rows:
            return torch.empty(0, self.dim)
        vecs = torch.stack(rows)
        return vecs[0] if single else vecs


class GloVe(Vectors):
    """GloVe vectors by name and dimension: ``GloVe(name="6B", dim=100)`` reads ``glove.6B.100d.txt``."""

    url = {
        "42B": "http://nlp.stanford.edu/data/glove.42B.300d.zip",
        "840B": "http://nlp.stanford.edu/data/glove.840B.300d.zip",
        "twitter.27B": "http://nlp.stanford.edu/data/glove.twitter.27B.zip",
        "6B": "http://nlp.stanford.edu/data/glove.6B.zip",
    }

    def __init__(self, name: str = "840B", dim: int | str = 300, **kwargs) -> None:
        if name not in self.url:
            raise UnknownVectorsError(f"GloVe name must be one of {sorted(self.url)}, got {name!r}")
        kwargs.setdefault("url", self.url[name])
        super().__init__(f"glove.{name}.{dim}d.txt", **kwargs)


class FastText(Vectors):
    """fastText's Wikipedia vectors for a language: ``FastText("en")`` reads ``wiki.en.vec``."""

    url_base = "https://dl.fbaipublicfiles.com/fasttext/vectors-wiki/wiki.{}.vec"

    def __init__(self, language: str = "en", **kwargs) -> None:
        url = self.url_base.format(language)
        kwargs.setdefault("url", url)
        super().__init__(os.path.basename(url), **kwargs)


pretrained_aliases = {
    "fasttext.en.300d": partial(FastText, language="en"),
    "fasttext.simple.300d": partial(FastText, language="simple"),
    **{f"glove.{n}.{d}d": partial(GloVe, name=n, dim=d) for n, ds in
       (("42B", (300,)), ("840B", (300,)), ("twitter.27B", (25, 50, 100, 200)), ("6B", (50, 100, 200, 300)))
       for d in ds},
}


def _key_path(path_pt: Path) -> Path:
    return path_pt.with_name(path_pt.name + ".key.json")


def _same_content(a: dict | None, b: dict) -> bool:
    return isinstance(a, dict) and all(a.get(k) == b[k] for k in ("path", "size", "sha256"))


def _read_key(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _source_key(path: Path, key_path: Path) -> dict:
    """What a ``.pt`` cache was built from: the file's path, size and SHA-256 of its content. The hash is
    recomputed unless the file's size, mtime, inode and ctime (which ``os.utime`` cannot set back) are the ones
    recorded with the cache."""
    st = path.stat()
    stat = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]
    old = _read_key(key_path)
    if isinstance(old, dict) and old.get("stat") == stat and old.get("path") == str(path.resolve()):
        return old
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return {"path": str(path.resolve()), "size": st.st_size, "sha256": h.hexdigest(), "stat": stat}


def _fetch(url: str, cache: Path, *, md5: str | None) -> Path:
    """Download `url` into `cache` once (atomic; checked against `md5` when given) and return the file."""
    dest = cache / os.path.basename(url)
    if dest.is_file():
        return dest
    if md5 is not None:
        return download_file(url, dest, md5=md5)
    warnings.warn(f"downloading {url} without a checksum (none is known for it); pass md5= to verify it",
                  UserWarning, stacklevel=3)
    cache.mkdir(parents=True, exist_ok=True)
    h = hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, atomic_write(dest) as f:
            expected = resp.headers.get("Content-Length")
            n = 0
            while chunk := resp.read(1 << 20):
                f.write(chunk)
                h.update(chunk)
                n += len(chunk)
            if expected and expected.isdigit() and n != int(expected):
                raise DownloadError(f"download of {url} was cut short: got {n} of {expected} bytes; nothing was kept")
    except urllib.error.URLError as e:
        raise DownloadError(f"could not download {url}: {getattr(e, 'reason', e)}; place the file in {cache} "
                            f"by hand") from e
    except OSError as e:
        if isinstance(e, DownloadError):
            raise
        raise DownloadError(f"download of {url} failed: {type(e).__name__}: {e}; nothing was kept") from e
    return dest


@dataclass(frozen=True)
class Coverage:
    """How many vocabulary tokens got a pretrained vector.

    Attributes:
        found: Tokens with a vector (as written, or lower-cased with ``lower_case_backup``).
        total: Tokens considered (the vocabulary minus ``skip``).
        missing: Up to 20 tokens without a vector, in id order.
    """

    found: int
    total: int
    missing: list[str] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        return self.found / self.total if self.total else 0.0

    def __str__(self) -> str:
        text = f"{self.found:,} of {self.total:,} vocabulary tokens ({self.fraction:.1%}) have a pretrained vector"
        return text + (f"; missing e.g. {self.missing[:5]}" if self.missing else "")


def vectors_for_vocab(vocab, vectors: Vectors, *, lower_case_backup: bool = False,
                      skip: tuple[str, ...] = SPECIALS) -> tuple[torch.Tensor, torch.Tensor, Coverage]:
    """Rows of ``vectors`` in ``vocab``'s id order: ``(weight (V, dim), found mask (V,), coverage)``.

    Rows of tokens without a vector (and of ``skip`` tokens) are zero in ``weight`` and False in the mask.

    Example:
        >>> weight, found, coverage = vectors_for_vocab(vocab, vectors)  # doctest: +SKIP
    """
    itos = vocab.get_itos()
    weight = torch.zeros(len(itos), vectors.dim)
    found = torch.zeros(len(itos), dtype=torch.bool)
    rows, ids, missing = [], [], []
    stoi = vectors.stoi
    for i, token in enumerate(itos):
        if token in skip:
            continue
        row = stoi.get(token)
        if row is None and lower_case_backup:
            row = stoi.get(token.lower())
        if row is None:
            if len(missing) < 20:
                missing.append(token)
        else:
            rows.append(row)
            ids.append(i)
    if ids:
        index = torch.tensor(ids)
        weight[index] = vectors.vectors[torch.tensor(rows)].to(weight.dtype)
        found[index] = True
    total = sum(1 for t in itos if t not in skip)
    return weight, found, Coverage(found=len(ids), total=total, missing=missing)


def init_embedding_from_vectors(model: torch.nn.Module, vocab, vectors: Vectors, *,
                                lower_case_backup: bool = False) -> Coverage:
    """Copy pretrained vectors into a model's token rows; other rows keep their initialisation.

    The hook is the model's ``.embedding`` (every ``textpipe.models`` model has one: an ``nn.EmbeddingBag`` for
    the bag, an ``nn.Embedding`` for cnn/rnn/transformer): rows ``0..len(vocab)-1`` of its weight are the
    vocabulary's tokens (the bag's bigram buckets follow and are left as they are); ``<pad>``/``<unk>`` are not
    overwritten.

    Raises:
        ValueError: The model's ``embed_dim`` differs from ``vectors.dim`` (the message says which flag to
            set), or the model has fewer token rows than the vocabulary.

    Example:
        >>> coverage = init_embedding_from_vectors(model, vocab, Vectors("wiki.en.vec"))  # doctest: +SKIP
        >>> print(coverage)  # doctest: +SKIP
        29,801 of 31,998 vocabulary tokens (93.1%) have a pretrained vector; missing e.g. [...]
    """
    weight = getattr(getattr(model, "embedding", None), "weight", None)
    if weight is None:
        raise TypeError(f"model must have an .embedding with a weight (as every textpipe.models model has), got {type(model).__name__}")
    if weight.shape[1] != vectors.dim:
        raise ValueError(f"the model's embed_dim is {weight.shape[1]} but the vectors have dim {vectors.dim}; build "
                         f"the model with embed_dim={vectors.dim} (train: --embed-dim {vectors.dim})")
    if weight.shape[0] < len(vocab):
        raise ValueError(f"the embedding has {weight.shape[0]} rows, fewer than the {len(vocab)} vocabulary tokens")
    values, found, coverage = vectors_for_vocab(vocab, vectors, lower_case_backup=lower_case_backup)
    with torch.no_grad():
        rows = weight[:len(vocab)]
        rows[found] = values[found].to(device=weight.device, dtype=weight.dtype)
    return coverage


def init_embedding_from_file(model: torch.nn.Module, vocab, path: str | os.PathLike, *,
                             cache: str | os.PathLike | None = None) -> Coverage:
    """``init_embedding_from_vectors`` from a vectors file, cached in textpipe's cache (what ``--vectors`` does).

    Args:
        cache: Where the ``.pt`` cache goes; default ``<textpipe cache>/vectors`` (see ``default_cache_dir``).
    """
    from textpipe.data.download import default_cache_dir
    vectors = Vectors(path, cache=default_cache_dir() / "vectors" if cache is None else cache)
    return init_embedding_from_vectors(model, vocab, vectors)
