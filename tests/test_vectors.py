"""textpipe.vectors (torchtext's Vectors/GloVe/FastText) on small files in each format, and embedding init.

Run: python3 -m pytest -q tests/test_vectors.py
"""
import gzip
import hashlib
import os
import zipfile

import numpy as np
import pytest
from _http import local_server
import torch
from hypothesis import given, strategies as st

from textpipe.vectors import _io as _vectors_io
from textpipe.models.bag import ModelConfig, TextClassifier
from textpipe.vectors import (FastText, GloVe, Vectors, VectorsFormatError, VectorsNotFoundError,
                              init_embedding_from_vectors, vectors_for_vocab)
from textpipe.vocab import Vocab

# word, then values; "dog\xa0x" holds a non-breaking space, which is part of the word (split on " " only)
ROWS = [("the", "0.418 0.24968 -0.41242"), ("Cat", "1 2 3"), ("dog\u00a0x", "-1e-3 5.5 nan"),
        ("émigré", "0.1 0.2 0.3")]
TEXT = "".join(f"{w} {v}\n" for w, v in ROWS)


def torchtext_reference(text: str):
    """What torchtext 0.18 did per line: rstrip, split on b' ', float() each value, a float32 tensor."""
    itos, rows = [], []
    for line in text.encode().splitlines():
        entries = line.rstrip().split(b" ")
        itos.append(entries[0].decode())
        rows.append(torch.tensor([float(x) for x in entries[1:]]))
    return itos, torch.stack(rows)


def assert_matches_reference(v, text=TEXT):
    itos, vectors = torchtext_reference(text)
    assert v.itos == itos and v.dim == vectors.shape[1]
    assert v.vectors.dtype == torch.float32 and v.vectors.shape == vectors.shape
    assert torch.equal(v.vectors.nan_to_num(7.0), vectors.nan_to_num(7.0))
    assert v.stoi == {w: i for i, w in enumerate(itos)}


def write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("fmt", ["txt", "vec_header", "gz", "zip", "zip_named"])
def test_each_format_gives_torchtexts_values(tmp_path, fmt):
    data = TEXT.encode()
    if fmt == "txt":
        path = write(tmp_path / "glove.txt", data)
    elif fmt == "vec_header":
        path = write(tmp_path / "wiki.vec", f"{len(ROWS)} 3\n".encode() + data.replace(b"\n", b" \n"))
    elif fmt == "gz":
        path = write(tmp_path / "v.txt.gz", gzip.compress(data))
    else:
        path = tmp_path / "v.vec.zip"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("v.vec", data)
            if fmt == "zip_named":  # two members: the one named like the archive is taken
                zf.writestr("readme.txt", b"not vectors")
    v = Vectors(str(path), cache=str(tmp_path / "cache"))
    assert_matches_reference(v)
    assert "dog\u00a0x" in v and v["Cat"].tolist() == [1.0, 2.0, 3.0]


def test_zip_with_several_members_needs_member(tmp_path):
    path = tmp_path / "glove.6B.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("glove.6B.50d.txt", TEXT)
        zf.writestr("glove.6B.100d.txt", TEXT)
    with pytest.raises(VectorsFormatError, match="pass member="):
        Vectors(path, cache=tmp_path / "c")
    assert Vectors(path, cache=tmp_path / "c", member="glove.6B.100d.txt").itos[0] == "the"


@pytest.mark.parametrize("text, line, match", [
    ("a 1 2\nb 1 2 3\n", 2, "the vector for b'b' has 3 values, but the first vector has 2"),
    ("2 3\na 1 2 3\nb 1 2\n", 3, "has 2 values, but the header says 3"),
    ("a 1 2\nb 1 x\n", 2, "'x' is not a number in the vector for 'b'"),
    ("a 1 2\nb 1  2\n", 2, "has 3 values"),  # two spaces: an empty value, as torchtext's split saw it
    ("a 1 2\nb  1\n", 2, "an empty value"),
    ("a 1 2\nb 1-2 3\n", 2, "'1-2' is not a number"),  # never read as two numbers
    ("lonely\n", 1, "expected 'word v1 v2 ...'"),
])
def test_malformed_lines_name_file_and_line(tmp_path, text, line, match):
    path = write(tmp_path / "bad.txt", text.encode())
    with pytest.raises(VectorsFormatError, match=match) as e:
        Vectors(path, cache=tmp_path / "c")
    assert f"bad.txt:{line}:" in str(e.value)
    assert isinstance(e.value, RuntimeError) and isinstance(e.value, ValueError)  # torchtext raised RuntimeError
    assert not (tmp_path / "c" / "bad.txt.pt").exists()


def test_non_utf8_word_raises_or_is_skipped_with_a_warning(tmp_path):
    path = write(tmp_path / "v.txt", b"a 1 2\n\xff\xfe 3 4\nb 5 6\n")
    with pytest.raises(VectorsFormatError, match=r"v.txt:2: the word .* is not UTF-8"):
        Vectors(path, cache=tmp_path / "c")
    with pytest.warns(UserWarning, match="skipped 1 malformed line"):
        v = Vectors(path, cache=tmp_path / "c", on_bad_lines="skip")
    assert v.itos == ["a", "b"] and v.vectors.tolist() == [[1, 2], [5, 6]]  # no stray zero row (torchtext had one)


@pytest.mark.parametrize("text", [b"", b"3 300\n", b"\n\n"])
def test_empty_files_are_errors(tmp_path, text):
    with pytest.raises(VectorsFormatError, match="no vectors found"):
        Vectors(write(tmp_path / "e.vec", text), cache=tmp_path / "c")


def test_blank_lines_are_ignored_and_crlf_is_stripped(tmp_path):
    v = Vectors(write(tmp_path / "v.txt", b"a 1 2\r\n\r\nb 3 4\r\n"), cache=tmp_path / "c")
    assert v.itos == ["a", "b"] and v.vectors.tolist() == [[1, 2], [3, 4]]


def test_missing_file_without_url(tmp_path):
    with pytest.raises(VectorsNotFoundError, match="no vectors found at nope.vec") as e:
        Vectors("nope.vec", cache=tmp_path)
    assert isinstance(e.value, RuntimeError)


def test_max_vectors_and_its_cache_name(tmp_path):
    path = write(tmp_path / "v.txt", TEXT.encode())
    v = Vectors(path, cache=tmp_path / "c", max_vectors=2)
    assert v.itos == ["the", "Cat"] and len(v) == 2
    assert (tmp_path / "c" / "v.txt_2.pt").is_file()


def test_pt_cache_is_torchtexts_tuple_and_is_used(tmp_path):
    path = write(tmp_path / "v.txt", TEXT.encode())
    cache = tmp_path / "c"
    Vectors(path, cache=cache)
    itos, stoi, vectors, dim = torch.load(cache / "v.txt.pt", weights_only=True)  # what torchtext reads back
    assert itos[0] == "the" and stoi["Cat"] == 1 and vectors.shape == (4, 3) and dim == 3
    # A cache made by "torchtext" (same tuple) is read when only the cache is left (no text file to compare).
    torch.save((["x"], {"x": 0}, torch.ones(1, 3), 3), cache / "v.txt.pt")
    assert Vectors("v.txt", cache=cache).itos == ["x"]
    # With the text file there, a cache without textpipe's content key is not trusted: the file is read again.
    (cache / "v.txt.pt.key.json").unlink()
    os.utime(path, (1, 1))  # the text file is older than the cache (what fooled the mtime check)
    assert Vectors(path, cache=cache).itos[0] == "the"


def test_vectors_cache_is_keyed_by_content_not_name_or_mtime(tmp_path):
    """Issue 20 #1: B/vectors.vec copied with A's mtime (cp -p, tar, unzip) got A's cached numbers."""
    cache = tmp_path / "c"
    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    a = write(tmp_path / "A" / "vectors.vec", b"the 1 2 3\n")
    assert Vectors(a, cache=cache)["the"].tolist() == [1, 2, 3]
    b = write(tmp_path / "B" / "vectors.vec", b"the 7 8 9\n")
    st = os.stat(a)
    os.utime(b, ns=(st.st_atime_ns, st.st_mtime_ns))  # same name, same size, same mtime: only the content differs
    assert Vectors(b, cache=cache)["the"].tolist() == [7, 8, 9]
    assert Vectors(a, cache=cache)["the"].tolist() == [1, 2, 3]
    # an edit in place that keeps size and mtime (the ctime moves; os.utime cannot set it back)
    a.write_bytes(b"the 4 5 6\n")
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert Vectors(a, cache=cache)["the"].tolist() == [4, 5, 6]
    # an unchanged file is read from the cache (a cache-only entry proves it: the tuple is what loads)
    cached = Vectors(a, cache=cache)
    assert cached["the"].tolist() == [4, 5, 6]


def test_damaged_or_read_only_vectors_cache_is_not_a_blocker(tmp_path, monkeypatch):
    cache = tmp_path / "c"
    path = write(tmp_path / "v.vec", b"the 1 2\n")
    Vectors(path, cache=cache)
    (cache / "v.vec.pt").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="rebuilding it from"):
        assert Vectors(path, cache=cache)["the"].tolist() == [1, 2]
    import textpipe.vectors.pretrained as pretrained

    def read_only(*a, **k):
        raise PermissionError(13, "Permission denied", str(a[0]))

    monkeypatch.setattr(pretrained, "atomic_write", read_only)
    with pytest.warns(UserWarning, match="could not write the vectors cache"):
        assert Vectors(path, cache=tmp_path / "ro")["the"].tolist() == [1, 2]


def test_corrupt_pt_cache_is_a_clear_error(tmp_path):
    (tmp_path / "c").mkdir()
    write(tmp_path / "c" / "gone.vec.pt", b"garbage")
    with pytest.raises(VectorsFormatError, match="not a readable vectors cache"):
        Vectors("gone.vec", cache=tmp_path / "c")


def test_lookups_like_torchtext(tmp_path):
    v = Vectors(write(tmp_path / "v.txt", TEXT.encode()), cache=tmp_path / "c")
    assert v["zebra"].tolist() == [0, 0, 0]  # unknown: unk_init(zeros)
    assert v.get_vecs_by_tokens("Cat").shape == (3,)
    assert v.get_vecs_by_tokens(["cat", "The"]).tolist() == [[0, 0, 0], [0, 0, 0]]
    got = v.get_vecs_by_tokens(["THE", "Cat"], lower_case_backup=True)
    assert torch.equal(got, torch.stack([v["the"], v["Cat"]]))


def test_custom_unk_init(tmp_path):
    v = Vectors(write(tmp_path / "v.txt", TEXT.encode()), cache=tmp_path / "c", unk_init=lambda t: t.fill_(2.0))
    assert v["zebra"].tolist() == [2.0, 2.0, 2.0]


def test_repeated_word_maps_to_its_last_row_as_in_torchtext(tmp_path):
    v = Vectors(write(tmp_path / "v.txt", b"a 1\na 2\n"), cache=tmp_path / "c")
    assert v.itos == ["a", "a"] and v.stoi == {"a": 1} and v["a"].tolist() == [2.0]


@pytest.mark.parametrize("header", [True, False])
def test_many_blocks_assemble_in_order(tmp_path, monkeypatch, header):
    monkeypatch.setattr(_vectors_io, "_READ_HINT", 64)  # a few lines per parse
    monkeypatch.setattr(_vectors_io, "_BLOCK_BYTES", 4 * 3 * 10)  # rows per storage block: the 1024 minimum
    rng = np.random.default_rng(0)
    values = rng.standard_normal((2500, 3)).astype(np.float32)
    lines = [f"w{i} " + " ".join(repr(float(x)) for x in row) for i, row in enumerate(values)]
    text = (f"{len(lines)} 3\n" if header else "") + "\n".join(lines) + "\n"
    v = Vectors(write(tmp_path / "v.vec", text.encode()), cache=tmp_path / "c")
    assert v.itos == [f"w{i}" for i in range(2500)]
    assert torch.equal(v.vectors, torch.from_numpy(values)) and v.vectors.is_contiguous()


@given(st.lists(st.floats(allow_nan=False, width=64), min_size=1, max_size=8), st.sampled_from(["r", "e", "f"]))
def test_values_round_like_float_then_float32(tmp_path_factory, xs, style):
    fmt = {"r": repr, "e": lambda x: f"{x:.17e}", "f": lambda x: f"{x:.9f}"}[style]
    text = "w " + " ".join(fmt(x) for x in xs) + "\n"
    d = tmp_path_factory.mktemp("v")
    itos, array = _vectors_io.read_vectors_text(write(d / "v.txt", text.encode()))
    expected = torch.tensor([float(t) for t in text.split()[1:]])  # torchtext: float() then a float32 tensor
    assert torch.equal(torch.from_numpy(array[0]), expected)


# --- downloads over a local HTTP server (GloVe's zip, fastText's .vec)

@pytest.fixture
def server():
    with local_server() as srv:
        yield srv


def test_glove_downloads_its_zip_and_reads_the_member(server, tmp_path):
    import io
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("glove.6B.50d.txt", TEXT)
        zf.writestr("glove.6B.100d.txt", "x 1\n")
    server.files["/glove.6B.zip"] = buf.getvalue()
    md5 = hashlib.md5(buf.getvalue()).hexdigest()
    v = GloVe(name="6B", dim=50, cache=tmp_path, url=server.url("/glove.6B.zip"), md5=md5)
    assert_matches_reference(v)
    assert (tmp_path / "glove.6B.zip").is_file() and (tmp_path / "glove.6B.50d.txt.pt").is_file()
    server.files.clear()  # the second load needs no server: the .pt cache is used
    assert GloVe(name="6B", dim=50, cache=tmp_path, url=server.url("/glove.6B.zip")).itos == v.itos


def test_download_checksum_mismatch_keeps_nothing(server, tmp_path):
    server.files["/wiki.xx.vec"] = TEXT.encode()
    with pytest.raises(OSError, match="checksum mismatch"):
        FastText("xx", cache=tmp_path, url=server.url("/wiki.xx.vec"), md5="0" * 32)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == []


def test_fasttext_download_without_checksum_warns(server, tmp_path):
    server.files["/wiki.xx.vec"] = f"{len(ROWS)} 3\n{TEXT}".encode()
    with pytest.warns(UserWarning, match="without a checksum"):
        v = FastText("xx", cache=tmp_path, url=server.url("/wiki.xx.vec"))
    assert_matches_reference(v)


def test_download_failure_is_a_download_error(server, tmp_path):
    with pytest.raises(OSError, match="could not download"), pytest.warns(UserWarning):
        FastText("zz", cache=tmp_path, url=server.url("/missing.vec"))
    assert list(tmp_path.iterdir()) == []


def test_glove_unknown_name():
    with pytest.raises(ValueError, match="GloVe name must be one of") as e:
        GloVe(name="7B")
    assert isinstance(e.value, KeyError)  # torchtext's url[name] raised KeyError


# --- the embedding of a TextClassifier from vectors, with the coverage

@pytest.fixture
def small(tmp_path):
    vectors = Vectors(write(tmp_path / "v.txt", b"the 1 1\ncat 2 2\nDog 3 3\n<unk> 9 9\n"), cache=tmp_path / "c")
    return Vocab(["<pad>", "<unk>", "the", "cat", "dog", "emu"], default_index=1), vectors


def test_vectors_for_vocab(small):
    vocab, vectors = small
    weight, found, coverage = vectors_for_vocab(vocab, vectors)
    assert weight.tolist() == [[0, 0], [0, 0], [1, 1], [2, 2], [0, 0], [0, 0]]  # <unk> is skipped
    assert found.tolist() == [False, False, True, True, False, False]
    assert (coverage.found, coverage.total, coverage.missing) == (2, 4, ["dog", "emu"])
    assert "2 of 4 vocabulary tokens (50.0%)" in str(coverage)
    assert vectors_for_vocab(vocab, vectors, lower_case_backup=False)[2].found == 2
    # lower_case_backup looks up the vocabulary token lower-cased ("dog" is not in the file, "Dog" is)
    assert vectors_for_vocab(Vocab(["DOG", "THE"]), vectors, lower_case_backup=True)[2].found == 1


def test_init_embedding_copies_token_rows_only(small):
    vocab, vectors = small
    torch.manual_seed(0)
    model = TextClassifier(ModelConfig(vocab_size=len(vocab), embed_dim=2, buckets=16))
    before = model.embedding.weight.detach().clone()
    coverage = init_embedding_from_vectors(model, vocab, vectors)
    after = model.embedding.weight.detach()
    assert coverage.found == 2
    assert after[2].tolist() == [1, 1] and after[3].tolist() == [2, 2]
    unchanged = [0, 1, 4, 5, *range(len(vocab), after.shape[0])]  # pad, unk, missing tokens, bigram buckets
    assert torch.equal(after[unchanged], before[unchanged])


def test_init_embedding_dim_mismatch(small):
    vocab, vectors = small
    model = TextClassifier(ModelConfig(vocab_size=len(vocab), embed_dim=8))
    with pytest.raises(ValueError, match="embed_dim is 8 but the vectors have dim 2.*--embed-dim 2"):
        init_embedding_from_vectors(model, vocab, vectors)


def test_torchtext_vocab_names_are_importable():
    from textpipe.vocab import FastText as F, GloVe as G, Vectors as V, pretrained_aliases
    assert (V, G, F) == (Vectors, GloVe, FastText) and "glove.6B.100d" in pretrained_aliases


def test_train_cli_vectors_flag(tmp_path, monkeypatch, capsys):
    """`textpipe.train --vectors FILE`: the token rows start from the vectors (lr 0 keeps them) and the coverage is printed."""
    from textpipe.checkpoint import load_checkpoint
    from textpipe.train import main
    monkeypatch.setenv("TEXTPIPE_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data"
    data.mkdir()
    rows = [f'"{i % 4 + 1}","word{i % 4} title","common text {i}"' for i in range(40)]
    for split in ("train", "test"):
        (data / f"{split}.csv").write_text("\n".join(rows) + "\n")
    vec = write(tmp_path / "small.vec", b"3 4\nword0 1 2 3 4\ncommon 0.5 0.5 0.5 0.5\nnotinvocab 9 9 9 9\n")
    n = torch.get_num_threads()
    try:
        assert main(["--data-dir", str(data), "--output-dir", str(tmp_path / "run"), "--vectors", str(vec),
                     "--embed-dim", "4", "--buckets", "16", "--epochs", "1", "--lr", "0", "--no-progress"]) == 0
    finally:
        torch.set_num_threads(n)
    out = capsys.readouterr().out
    assert "have a pretrained vector" in out and "--vectors" in out
    ckpt = load_checkpoint(tmp_path / "run" / "best.pt")
    itos, weight = ckpt["vocab_itos"], ckpt["model"]["embedding.weight"]
    assert weight[itos.index("word0")].tolist() == [1, 2, 3, 4]
    assert weight[itos.index("common")].tolist() == [0.5] * 4
    assert (tmp_path / "cache" / "vectors" / "small.vec.pt").is_file()
    with pytest.raises(ValueError, match="--embed-dim 4"):
        main(["--data-dir", str(data), "--output-dir", str(tmp_path / "run2"), "--vectors", str(vec),
              "--embed-dim", "8", "--epochs", "1", "--no-progress", "--debug"])


def test_bom_and_corrupt_zip_issue20(tmp_path):
    """Issue 20: the first word kept a BOM; a corrupt zip's message did not name the file."""
    v = Vectors(write(tmp_path / "bom.vec", b"\xef\xbb\xbfthe 1 2\nb 3 4\n"), cache=tmp_path / "c")
    assert v.itos == ["the", "b"]
    bad = write(tmp_path / "broken.zip", b"PK\x03\x04 not really a zip")
    with pytest.raises(VectorsFormatError, match="broken.zip"):
        Vectors(bad, cache=tmp_path / "c")
