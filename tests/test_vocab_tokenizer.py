"""The vocabulary's tokenizer (names, registry, save/load, fast and generic paths), its byte table,
``build_vocab_from_texts``, vocab-file integrity and error classes.

Run: python3 -m pytest -q tests/test_vocab_tokenizer.py      (HYPOTHESIS_PROFILE=ci for derandomized runs)
"""
import errno
import os
import pickle
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from textpipe.text import _count, _encode, tokenizer as tokenizer_module
from textpipe.text import _format as _vocab_format
from textpipe.text._bytetable import ByteTable, token_keys
from textpipe.text._store import encode_tokens, extra_tokens
from textpipe.core.fileio import WriteError
from textpipe.batches.text_collate import TextCollate
from textpipe.text.tokenizer import (TokenizerTypeError, basic_english, get_tokenizer, register_tokenizer,
                                tokenizer_name)
from textpipe.vocab import (DuplicateTokenError, MaxTokensError, Vocab, build_vocab_from_iterator,
                            build_vocab_from_texts, vocab)

WHITESPACE = "".join(c for c in map(chr, range(0x110000)) if c.isspace())
ALPHABET = list('<br />"\'.;:,()!?BbrRAaΣσ') + list(WHITESPACE) + ["\x00", "\xad", "\u200b", "\ud800", "😀", "é"]
texts_st = st.lists(st.lists(st.sampled_from(ALPHABET + ["hello", "World", "<br />"]), max_size=30).map("".join),
                    max_size=8)


def chars(text):  # a module-level custom tokenizer (picklable)
    return [c for c in text if not c.isspace()]


def ints(text):
    return [len(w) for w in text.split()]


@pytest.fixture
def registry():
    """Registered names added by a test are removed afterwards."""
    before = dict(tokenizer_module._TOKENIZERS)
    yield
    tokenizer_module._TOKENIZERS.clear()
    tokenizer_module._TOKENIZERS.update(before)


# -- the tokenizer a vocabulary carries -------------------------------------------------------------
def test_split_vocab_encodes_decodes_saves_and_loads_with_split(tmp_path):
    texts = ["Hello, World!", "hello world", "It's   x"]
    v = build_vocab_from_texts([texts], tokenizer="split")
    v.set_default_index(v["<unk>"])
    assert v.tokenizer_name == "split" and v.tokenize("Hello, World!") == ["Hello,", "World!"]
    assert v.decode(v.encode("Hello, World!")) == ["Hello,", "World!"]  # not <unk> <unk>
    assert v.encode_flat(["Hello, World!"])[0].tolist() == v.encode("Hello, World!")
    v.save(tmp_path / "v.txt")
    w = Vocab.load(tmp_path / "v.txt")
    assert w == v and w.tokenizer_name == "split"
    assert w.decode(w.encode("Hello, World!")) == ["Hello,", "World!"]
    assert "tokenizer split\n" in (tmp_path / "v.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize("tokenizer", ["basic_english", "split", chars])
@given(texts=texts_st)
@example(texts=["a\x00b c", "x\ud800 y", "AΣ B", 'a<br "/>b'])
def test_every_path_gives_the_per_text_ids(tokenizer, texts):
    """Fast byte paths (basic_english, split) and the generic path equal [lookup(tokenize(t))]."""
    known = [t for text in texts[::2] for t in get_tokenizer(tokenizer)(text)]
    v = Vocab(["<pad>", "<unk>", *dict.fromkeys(k for k in known if k not in ("<pad>", "<unk>"))],
              default_index=1, tokenizer=tokenizer)
    expected = [[v.get_stoi().get(t, 1) for t in get_tokenizer(tokenizer)(text)] for text in texts]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_encode, "CHUNK_TEXTS", 3)
        mp.setattr(_encode, "_DISTINCT_MIN", 0)
        ids, offsets = v.encode_flat(texts, num_workers=2)
    assert [ids[a:b].tolist() for a, b in zip(offsets, offsets[1:])] == expected
    assert [v.encode(t) for t in texts] == expected
    if texts:
        got, lengths, _ = TextCollate(v, form="offsets")([(0, t) for t in texts])
        assert got.tolist() == [i for row in expected for i in row]


def test_split_fast_path_has_no_python_step_per_token(monkeypatch):
    """split runs as a byte rule: the tokenizer function itself is never called for plain texts."""
    v = Vocab(["<unk>", "a", "B,"], default_index=0, tokenizer="split")
    calls = []
    monkeypatch.setattr(v, "tokenize", lambda text: calls.append(text) or text.split())
    assert v.encode_flat(["a B, c"] * 5000)[0].tolist() == [1, 2, 0] * 5000
    assert calls == []


def test_unregistered_callable_works_in_process_but_cannot_be_saved(tmp_path, registry):
    v = Vocab(["<unk>", "a", "b"], default_index=0, tokenizer=chars)
    assert v.tokenizer_name is None and v.encode("ab c") == [1, 2, 0]
    assert v.encode_flat(["ab c"])[0].tolist() == [1, 2, 0]
    assert pickle.loads(pickle.dumps(v)).encode("ab") == [1, 2]
    with pytest.raises(ValueError, match=r"tokenizer chars has no registered name.*register_tokenizer"):
        v.save(tmp_path / "v.txt")
    assert not (tmp_path / "v.txt").exists()
    register_tokenizer("chars", chars)
    assert v.tokenizer_name == "chars"
    v.save(tmp_path / "v.txt")
    assert Vocab.load(tmp_path / "v.txt") == v


def test_loading_an_unregistered_tokenizer_names_it(tmp_path, registry):
    register_tokenizer("chars", chars)
    Vocab(["a"], tokenizer="chars").save(tmp_path / "v.txt")
    del tokenizer_module._TOKENIZERS["chars"]
    with pytest.raises(ValueError, match=r"v.txt: .*tokenizer 'chars', which is not registered.*"
                                         r"register_tokenizer\('chars', fn\)"):
        Vocab.load(tmp_path / "v.txt")


def test_register_tokenizer_rules(registry):
    register_tokenizer("chars", chars)
    register_tokenizer("chars", chars)  # the same function again: fine
    assert tokenizer_name(chars) == "chars" and get_tokenizer("chars") is chars
    with pytest.raises(ValueError, match="already registered"):
        register_tokenizer("chars", ints)
    register_tokenizer("chars", ints, overwrite=True)
    assert get_tokenizer("chars") is ints
    with pytest.raises(ValueError, match="built-in tokenizer name"):
        register_tokenizer("split", chars, overwrite=True)
    with pytest.raises(ValueError, match="without whitespace"):
        register_tokenizer("my tok", chars)
    with pytest.raises(TypeError, match="fn must be a callable"):
        register_tokenizer("x", 3)


def test_tokenizer_returning_non_str_is_a_type_error_naming_it():
    v = Vocab(["<unk>", "a"], default_index=0, tokenizer=ints)
    for call in (lambda: v.encode("a bb"), lambda: v.encode_flat(["a bb"]), lambda: v.tokenize("a"),
                 lambda: TextCollate(v)([(0, "a bb")]),
                 lambda: TextCollate(Vocab(["a"], default_index=0), tokenizer=ints)([(0, "a")])):
        with pytest.raises(TypeError, match=r"tokenizer ints returned an item of type int \(1\) at position 0"):
            call()
    with pytest.raises(TypeError, match="returned str"):
        Vocab(["a"], tokenizer=str.lower).encode("A")


def test_tokenizer_argument_errors():
    with pytest.raises(TypeError, match="tokenizer must be a registered name"):
        Vocab(["a"], tokenizer=3)
    with pytest.raises(ValueError, match="unknown tokenizer 'nope'"):
        Vocab(["a"], tokenizer="nope")
    assert Vocab(["a"], tokenizer=None).tokenizer_name == "split"


def test_vocabularies_with_other_tokenizers_differ():
    assert Vocab(["a"]) != Vocab(["a"], tokenizer="split")
    assert Vocab(["a"], tokenizer="split") == Vocab(["a"], tokenizer=None)
    assert repr(Vocab(["a"], tokenizer="split")) == "Vocab(size=1, default_index=None, tokenizer='split')"


# -- torchtext exception classes (issue 10) ---------------------------------------------------------
def test_clearer_errors_are_still_torchtexts_classes():
    for call, classes in [
        (lambda: get_tokenizer(1), (TypeError, ValueError, TokenizerTypeError)),
        (lambda: vocab({"a": 1}, specials=["<unk>", "<unk>"]), (RuntimeError, ValueError)),
        (lambda: Vocab(["a", "a"]), (RuntimeError, ValueError)),
        (lambda: Vocab(["a"]).append_token("a"), (RuntimeError, ValueError)),
        (lambda: Vocab(["a"]).insert_token("a", 0), (RuntimeError, ValueError)),
        (lambda: build_vocab_from_iterator([["a"]], specials=["<unk>"], max_tokens=1),
         (AssertionError, ValueError, MaxTokensError)),
        (lambda: Vocab(["a"])["zz"], (RuntimeError, KeyError)),
        (lambda: Vocab(["a"]).lookup_token(5), (RuntimeError, IndexError)),
    ]:
        with pytest.raises(classes[0]) as info:
            call()
        assert all(isinstance(info.value, c) for c in classes), (info.value, classes)
    assert issubclass(DuplicateTokenError, RuntimeError)


def test_specials_must_be_a_list_not_a_str():
    with pytest.raises(TypeError, match=r"specials must be a list of str tokens, got a single str '<unk>'"):
        vocab({"a": 1}, specials="<unk>")
    with pytest.raises(TypeError, match="specials must be a list"):
        build_vocab_from_iterator([["a"]], specials="<unk>")
    with pytest.raises(TypeError, match="specials must be a list"):
        build_vocab_from_texts([["a"]], specials="<unk>")


# -- the byte table -----------------------------------------------------------------------------------
def table_of(itos: list[str]) -> ByteTable:
    data, offsets = encode_tokens(itos)
    return ByteTable(data, offsets, extra_tokens(data, offsets))


def colliding_tokens(n: int) -> list[str]:
    """``n`` tokens that share one home slot of a small table, so lookups need up to ``n`` probes."""
    probe = table_of([])
    words = [f"t{i}" for i in range(20_000)]
    data = "\x00".join(words).encode()
    starts = np.array([0, *np.cumsum([len(w) + 1 for w in words[:-1]])])
    sizes = np.array([len(w) for w in words])
    homes = probe._slots(*token_keys(data, starts, sizes))
    target = np.bincount(homes).argmax()
    return [w for w, h in zip(words, homes) if h == target][:n]


def test_byte_table_finds_tokens_that_need_several_probes():
    tokens = colliding_tokens(8)
    itos = ["<unk>", *tokens]
    table = table_of(itos)
    assert table.probe >= 7  # they really do share one slot
    v = Vocab(itos, default_index=0)
    texts = [" ".join(reversed(tokens)), tokens[-1], "zz " + tokens[3]]
    expected = [v.encode(t) for t in texts]
    assert expected[0] == list(range(8, 0, -1))
    ids, offsets = v.encode_flat(texts)
    assert [ids[a:b].tolist() for a, b in zip(offsets, offsets[1:])] == expected
    assert TextCollate(v, form="offsets")([(0, t) for t in texts])[0].tolist() == sum(expected, [])


@given(st.sets(st.text(alphabet=st.sampled_from("ab\x00é😀\ud800 "), min_size=0, max_size=20), max_size=40),
       st.lists(st.text(alphabet=st.sampled_from("abé😀"), min_size=1, max_size=20), max_size=30))
def test_byte_table_equals_dict_lookup(itos, queries):
    itos = sorted(itos)
    stoi = {t: i for i, t in enumerate(itos)}
    table = table_of(itos)
    data = "\x00".join(queries).encode()
    sizes = np.array([len(q.encode()) for q in queries], np.int64)
    starts = np.cumsum(sizes + 1) - (sizes + 1)
    assert table.lookup(data, starts, sizes).tolist() == [stoi.get(q, -1) for q in queries]


def test_lookup_table_is_rebuilt_only_when_tokens_change():
    v = Vocab(["<unk>", "a"], default_index=0)
    v.encode_flat(["a"])
    table = v._table()
    v.set_default_index(1)
    assert v._table() is table
    v.append_token("b")
    assert v._table() is not table and v.encode_flat(["a b"])[0].tolist() == [1, 2]


# -- huge texts ---------------------------------------------------------------------------------------
def test_one_huge_text_takes_memory_linear_in_its_size():
    v = build_vocab_from_iterator([basic_english("the cat sat on a mat, said she.")], specials=["<pad>", "<unk>"])
    v.set_default_index(1)
    text = "The cat sat on a mat, said she. " * 125_000  # 4 MB
    collate = TextCollate(v, form="pad")
    tracemalloc.start()
    ids, lengths, _ = collate([(0, text)])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert int(lengths[0]) == 10 * 125_000 and ids[0, :3].tolist() == v.encode("The cat sat")
    assert peak < 8 * len(text) + 3 * ids.numel() * 8, f"peak {peak / 1e6:.0f} MB for a {len(text) / 1e6:.0f} MB text"


@pytest.mark.parametrize("text", ['a<br />b ' * 5, 'x "y" <BR />z r /w R "/>q ' * 4, "Σ Σ ΑΣ ς " * 5])
def test_huge_texts_are_cut_where_no_token_changes(monkeypatch, text):
    monkeypatch.setattr(_encode, "CHUNK_CHARS", 8)
    pieces, first = _encode.pieces([text], 8)
    assert len(pieces) > 1 and "".join(pieces) == text
    assert sum((basic_english(p) for p in pieces), []) == basic_english(text)
    v = Vocab(["<unk>", *dict.fromkeys(basic_english(text))], default_index=0)
    assert v.encode_flat([text, "b"])[0].tolist() == v.encode(text) + v.encode("b")


# -- build_vocab_from_texts -------------------------------------------------------------------------
@given(st.lists(texts_st, max_size=5), st.integers(1, 3), st.none() | st.integers(3, 12),
       st.sampled_from([(), ("<unk>",), ("<pad>", "<unk>")]), st.sampled_from(["basic_english", "split"]),
       st.integers(1, 2), st.booleans())
@example([["a a b", "b c x\ud800"], ["a\x00b"]], 1, 3, ("<unk>",), "basic_english", 2, True)
def test_build_vocab_from_texts_equals_build_vocab_from_iterator(chunks, min_freq, max_tokens, specials,
                                                                  tokenizer, workers, small_merges):
    if max_tokens is not None and max_tokens <= len(specials):
        max_tokens = len(specials) + 1
    with pytest.MonkeyPatch.context() as mp:
        if small_merges:
            mp.setattr(_encode, "CHUNK_TEXTS", 2)
        got = build_vocab_from_texts(iter(chunks), tokenizer=tokenizer, min_freq=min_freq, specials=specials,
                                     max_tokens=max_tokens, num_workers=workers)
    tok = get_tokenizer(tokenizer)
    want = build_vocab_from_iterator((tok(t) for chunk in chunks for t in chunk), min_freq=min_freq,
                                     specials=list(specials), max_tokens=max_tokens)
    assert got.get_itos() == want.get_itos() and got.tokenizer_name == tokenizer
    assert got.get_default_index() is None


def test_build_vocab_from_texts_generic_tokenizer_and_errors():
    got = build_vocab_from_texts([["ab", "ba c"]], tokenizer=chars, specials=["<unk>"])
    assert got.get_itos() == ["<unk>", "a", "b", "c"] and got.tokenizer is chars
    with pytest.raises(TypeError, match=r"text_chunks\[1\] must be a list of str texts, got str"):
        build_vocab_from_texts([["a"], "b c"])
    with pytest.raises(TypeError, match=r"text_chunks\[0\]\[1\] must be a str, got int"):
        build_vocab_from_texts([["a", 3]])
    with pytest.raises(TypeError, match="got a single str"):
        build_vocab_from_texts("a b")
    with pytest.raises(TypeError, match="num_workers must be an int"):
        build_vocab_from_texts([["a"]], num_workers=True)
    assert build_vocab_from_texts([["a"]], num_workers=np.int64(2)).get_itos() == ["<pad>", "<unk>", "a"]


# -- the vocab file: atomic, checksummed, clear errors -------------------------------------------------
def saved(tmp_path, itos=("<pad>", "<unk>", "hello", "world")) -> Path:
    path = tmp_path / "vocab.txt"
    Vocab(list(itos), default_index=1).save(path)
    return path


def test_load_names_file_and_line_of_invalid_utf8(tmp_path):
    path = saved(tmp_path)
    path.write_bytes(path.read_bytes().replace(b"world", b"wor\xffd"))
    with pytest.raises(ValueError, match=r"vocab.txt: line 9: not valid UTF-8 \(byte 0xff at column 4\)"):
        Vocab.load(path)


def test_checksum_mismatch_and_truncation(tmp_path):
    path = saved(tmp_path)
    good = path.read_bytes()
    path.write_bytes(good.replace(b"hello", b"hellp"))
    with pytest.raises(ValueError, match=r"vocab.txt: checksum mismatch"):
        Vocab.load(path)
    path.write_bytes(good[:len(good) - 7])  # cut inside the last token
    with pytest.raises(ValueError, match=r"vocab.txt: the file does not end with a newline; it is truncated"):
        Vocab.load(path)
    path.write_bytes(good[:good.rindex(b"world")])  # cut at a line end
    with pytest.raises(ValueError, match=r"vocab.txt: line 4 says size 4 but the file holds 3 token lines"):
        Vocab.load(path)


def test_missing_file_directory_and_permission_have_their_own_messages(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"vocab file .*nope.txt does not exist"):
        Vocab.load(tmp_path / "nope.txt")
    with pytest.raises(FileNotFoundError, match=r"cannot read the vocab file .*nope.txt: .*missing does not exist"):
        Vocab.load(tmp_path / "missing" / "nope.txt")
    with pytest.raises(IsADirectoryError, match=r"cannot read the vocab file .*: it is a directory"):
        Vocab.load(tmp_path)
    path = saved(tmp_path)

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))
    monkeypatch.setattr(_vocab_format, "open", denied, raising=False)
    with pytest.raises(PermissionError, match=r"permission denied: cannot read the vocab file .*vocab.txt"):
        Vocab.load(path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_permission_denied_not_corrupt(tmp_path):
    path = saved(tmp_path)
    path.chmod(0)
    with pytest.raises(PermissionError, match="permission denied"):
        Vocab.load(path)


def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = saved(tmp_path)
    before = path.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(WriteError, match="no space left"):
        Vocab(["x", "y"]).save(path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["vocab.txt"]


def test_corpus_from_texts_uses_the_vocabularys_tokenizer():
    from textpipe.corpus import EncodedCorpus

    v = Vocab(["<pad>", "<unk>", "Hello,", "World!"], default_index=1, tokenizer="split")
    corpus = EncodedCorpus.from_texts(["Hello, World!", "hello world"], [0, 1], v)
    assert corpus.ids.tolist() == [2, 3, 1, 1]  # basic_english would give <unk> for all four


def test_pickles_from_before_the_tokenizer_was_recorded_load_as_basic_english():
    v = Vocab.__new__(Vocab)
    v.__setstate__({"itos": ["<unk>", "hello"], "default_index": 0})
    assert v.tokenizer_name == "basic_english" and v.encode("Hello!") == [1, 0]


def test_build_vocab_from_texts_memory_does_not_grow_with_the_stream(monkeypatch):
    pa = pytest.importorskip("pyarrow")
    words = [f"w{i}" for i in range(2000)]
    arrow_bytes = []
    add = _count._Counts.add

    def tracked_add(self, parts):  # Arrow's own memory pool is invisible to tracemalloc
        add(self, parts)
        arrow_bytes.append(pa.total_allocated_bytes())
    monkeypatch.setattr(_count._Counts, "add", tracked_add)

    def stream(n_chunks):  # fresh strings in every chunk, as a file reader yields them
        for c in range(n_chunks):
            yield [" ".join(words[(10 * j + k + c) % 2000] for k in range(20)) for j in range(200)]

    def peak(n_chunks: int) -> int:
        arrow_bytes.clear()
        tracemalloc.start()
        got = build_vocab_from_texts(stream(n_chunks), num_workers=2)
        result = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert len(got) == 2002
        return result

    small, large = peak(12), peak(120)  # the same distinct tokens, 10x the texts
    assert large < 1.5 * small, f"Python heap peak {large / 1e6:.1f} MB for 120 chunks vs {small / 1e6:.1f} MB"
    first, second = max(arrow_bytes[:60]), max(arrow_bytes[60:])
    assert second < 1.5 * first + 1e6, f"Arrow memory {second / 1e6:.1f} MB late in the stream vs {first / 1e6:.1f} MB early"


def test_build_vocab_from_texts_without_pyarrow(monkeypatch):
    chunks = [["The cat.", "the dog x\ud800"], ["A cat"]]
    want = build_vocab_from_texts(chunks).get_itos()
    monkeypatch.setattr(_count, "arrow", lambda: None)
    assert build_vocab_from_texts(chunks).get_itos() == want == \
        build_vocab_from_iterator((basic_english(t) for c in chunks for t in c), specials=["<pad>", "<unk>"]).get_itos()


# -- compact storage ------------------------------------------------------------------------------
def test_a_vocab_holds_no_python_object_per_token_until_get_itos(tmp_path):
    import gc
    import sys
    n = 50_000
    chunks = [[" ".join(f"tok{i}" for i in range(j, j + 1000))] for j in range(0, n, 1000)]
    v = build_vocab_from_texts(chunks)
    assert len(v) == n + 2 and v["tok123"] == v.get_stoi()["tok123"]
    gc.collect()
    big = sum(1 for o in gc.get_objects() if type(o) in (list, dict) and len(o) >= n)
    assert big == 0, "a list or dict with one entry per token is alive"
    slots = v._tables.slots.nbytes  # sized for speed: load <= 1/8 up to 2**20 slots, then <= 1/2
    held = sys.getsizeof(v._data) + v._off.nbytes + v._tables.nbytes() + sys.getsizeof(v._extra) - slots
    assert held < 40 * n and slots <= 4 << 20, f"{held / n:.0f} bytes a token"  # list of str + dict: ~150
    v.save(tmp_path / "v.txt")
    tracemalloc.start()
    v2 = Vocab.load(tmp_path / "v.txt")
    current = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert v2 == v and current - slots < 40 * n, f"loading holds {(current - slots) / n:.0f} bytes a token"
    v2.set_default_index(1)
    assert v2.lookup_token(n + 1) == v.get_itos()[-1] and v2(["tok5", "nope" * 9]) == [v["tok5"], 1]


@given(st.lists(st.text(alphabet=st.sampled_from("ab\\ é\x00\ud800\n"), max_size=20), unique=True, max_size=30),
       st.lists(st.text(alphabet=st.sampled_from("abé\x00"), max_size=20), max_size=30))
def test_compact_vocab_round_trips_and_looks_up_like_a_dict(itos, queries):
    v = Vocab(itos, default_index=None)
    stoi = {t: i for i, t in enumerate(itos)}
    assert v.get_itos() == itos and v.get_stoi() == stoi and len(v) == len(itos)
    assert [v.lookup_token(i) for i in range(len(itos))] == itos
    assert [t in v for t in queries] == [t in stoi for t in queries]
    many = (queries * 5)[:100]  # long enough for the vectorized path
    v.set_default_index(-7)
    assert v(many) == [stoi.get(t, -7) for t in many]
    for token in ("zz", "q" * 20):
        if token not in stoi:
            v.append_token(token)
            stoi[token] = len(stoi)
    assert v(many + ["zz"]) == [stoi.get(t, -7) for t in many + ["zz"]] and v.get_itos() == list(stoi)
    w = Vocab.__new__(Vocab)
    w.__setstate__(v.__getstate__())
    assert w == v and w.get_stoi() == stoi


def test_many_scalar_lookups_switch_to_a_dict_with_the_same_answers(monkeypatch):
    import textpipe.text.vocabulary as vocab_module
    monkeypatch.setattr(vocab_module, "SCALAR_LOOKUPS_FOR_DICT", 3)
    v = Vocab(["<unk>", "a", "b"], default_index=0)
    assert [v[t] for t in ("a", "b", "zz")] == [1, 2, 0] and v._dict is None
    assert v["b"] == 2 and v._dict == {"<unk>": 0, "a": 1, "b": 2}  # the 4th lookup built it
    v.append_token("c")
    assert v["c"] == 3 and "c" in v and v(["c", "a", "q"] * 100) == [3, 1, 0] * 100
    v.insert_token("x", 0)  # a new store: the dict goes, ids shift
    assert v._dict is None and [v[t] for t in ("x", "<unk>", "c")] == [0, 1, 4]


def test_counting_long_tokens_and_shared_prefixes_keeps_torchtext_order():
    # tokens past 16 bytes are counted outside the key table; ties sort by their full bytes
    words = ["a" * 16, "a" * 17, "a" * 16 + "b", "a" * 30, "é" * 9, "é" * 8 + "e", "x", "a" * 15 + "é"]
    texts = [" ".join(words[i % len(words)] for i in range(j, j + 5)) for j in range(40)]
    chunks = [texts[i:i + 7] for i in range(0, 40, 7)]
    want = build_vocab_from_iterator((t.split() for t in texts), specials=["<pad>", "<unk>"])
    for workers in (1, 2):
        got = build_vocab_from_texts(chunks, tokenizer="split", num_workers=workers)
        assert got.get_itos() == want.get_itos() and [got[w] for w in words] == [want[w] for w in words]


@given(st.lists(st.text(alphabet=st.sampled_from("ab é😀\ud800\x00"), max_size=6), unique=True, max_size=20))
def test_packed_tokens_are_the_joined_tokens_and_their_lengths(itos):
    v = Vocab(itos)
    v.append_token("\x01tail")
    text, lengths = v.packed_tokens()
    assert text == "".join(itos) + "\x01tail" and lengths.tolist() == [len(t) for t in [*itos, "\x01tail"]]
