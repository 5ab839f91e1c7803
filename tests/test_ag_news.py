"""Tests for textpipe.data.ag_news: parsing, malformed rows, classes.txt, and where files are found.

Run: python3 -m pytest -q tests/test_ag_news.py
The real-data test reads /work/shared/data/ag_news (or ../shared/data/ag_news beside the repo) and
skips when neither exists.
"""
import errno
import gzip
import hashlib
import os
import socket
from collections import Counter
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from _http import local_server

from textpipe.data import ag_news
from textpipe.data.ag_news import (AG_NEWS_CLASSES, AG_NEWS_URLS, load_ag_news,
                                   read_ag_news_classes, read_ag_news_csv)
from textpipe.data.download import DownloadError

SHARED = [Path("/work/shared/data/ag_news"), Path(__file__).resolve().parents[2] / "shared/data/ag_news"]
TINY = ('"3","Wall St. Bears Claw Back"," Reuters - Short-sellers are seeing green again. "\n'
        '"1","Title, with ""quotes""","back\\\\slash \\n and #39;s kept"\n')


@pytest.fixture(autouse=True)
def hermetic_env(monkeypatch, tmp_path):
    """No test sees the caller's TEXTPIPE_DATA, or writes to the real ~/.cache."""
    monkeypatch.delenv("TEXTPIPE_DATA", raising=False)
    monkeypatch.setenv("TEXTPIPE_CACHE", str(tmp_path / "cache"))


def write(path, text_or_bytes):
    data = text_or_bytes.encode() if isinstance(text_or_bytes, str) else text_or_bytes
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


# ---------------------------------------------------------------- parsing


def test_fields_are_joined_as_torchtext_did(tmp_path):
    rows = read_ag_news_csv(write(tmp_path / "train.csv", TINY))
    assert rows == [
        (2, "Wall St. Bears Claw Back  Reuters - Short-sellers are seeing green again. "),
        (0, 'Title, with "quotes" back\\\\slash \\n and #39;s kept'),  # escapes stay verbatim
    ]


def test_labels_1_to_4_become_0_to_3(tmp_path):
    text = "".join(f'"{k}","t{k}","d{k}"\n' for k in (4, 2, 1, 3))
    assert read_ag_news_csv(write(tmp_path / "x.csv", text)) == [
        (3, "t4 d4"), (1, "t2 d2"), (0, "t1 d1"), (2, "t3 d3")]


def test_gzip_and_plain_give_the_same_rows(tmp_path):
    plain = read_ag_news_csv(write(tmp_path / "train.csv", TINY))
    assert read_ag_news_csv(write(tmp_path / "train.csv.gz", TINY)) == plain


def test_crlf_line_endings(tmp_path):
    rows = read_ag_news_csv(write(tmp_path / "x.csv", TINY.replace("\n", "\r\n")))
    assert rows == read_ag_news_csv(write(tmp_path / "y.csv", TINY))


def test_byte_order_mark_is_ignored(tmp_path):
    path = write(tmp_path / "x.csv", b"\xef\xbb\xbf" + TINY.encode())
    assert read_ag_news_csv(path) == read_ag_news_csv(write(tmp_path / "y.csv", TINY))


@pytest.mark.parametrize("line, why", [
    ('"1","only two"', "expected 3 fields .* found 2"),
    ('"1","a","b","extra"', "expected 3 fields .* found 4"),
    ("", "expected 3 fields .* found 0"),
    ('"0","t","d"', "class must be one of 1, 2, 3, 4, found '0'"),
    ('"5","t","d"', "class must be one of 1, 2, 3, 4, found '5'"),
    ('"x","t","d"', "class must be one of 1, 2, 3, 4, found 'x'"),
    (b'"2","caf\xe9","d"', "invalid UTF-8"),
])
@pytest.mark.parametrize("name", ["bad.csv", "bad.csv.gz"])
def test_malformed_row_raises_with_file_and_line(tmp_path, line, why, name):
    line = line.encode() if isinstance(line, str) else line
    path = write(tmp_path / name, TINY.encode() + line + b"\n" + b'"1","t","d"\n')
    with pytest.raises(ValueError, match=f"{name}, line 3: {why}.*on_bad_rows='skip'"):
        read_ag_news_csv(path)


def test_line_numbers_count_physical_lines(tmp_path):
    # A quoted field may span lines; the bad record after it is still reported at its own line.
    text = '"1","multi\nline title","d"\n"2","t","d"\n"9","t","d"\n'
    with pytest.raises(ValueError, match=r"x\.csv, line 4: class"):
        read_ag_news_csv(write(tmp_path / "x.csv", text))


def test_unclosed_quote_does_not_swallow_rows_silently(tmp_path):
    text = '"1","t","d\n"2","t2","d2"\n"3","t3","d3"\n'  # the first description never closes
    with pytest.raises(ValueError, match=r"x\.csv, line 1: unclosed quote: the quoted field opened on line 1 "
                                         r"runs into line 2, which starts the next record"):
        read_ag_news_csv(write(tmp_path / "x.csv", text))


def test_skip_mode_skips_and_warns_with_count_and_lines(tmp_path):
    text = TINY + '"5","t","d"\n"1","two fields"\n' + TINY
    path = write(tmp_path / "x.csv", text.encode() + b'"1","\xff","d"\n')
    expected = r"skipped 3 malformed line\(s\): 3, 4, 7; first: line 3"
    with pytest.warns(UserWarning, match=expected):
        rows = read_ag_news_csv(path, on_bad_rows="skip")
    assert rows == read_ag_news_csv(write(tmp_path / "ok.csv", TINY)) * 2


GOOD = [f'"{i % 4 + 1}","title {i}","description {i}"' for i in range(6)]
CORRUPTIONS = {  # ways to break one row's quoting
    "description never closes": lambda row: row[:-1],
    "title never closes": lambda row: row.replace('","description', ',"description'),
    "class never closes": lambda row: row.replace('","title', ',"title', 1),
}


@pytest.mark.parametrize("kind", CORRUPTIONS)
@pytest.mark.parametrize("bad_row", range(len(GOOD)))
def test_a_malformed_row_never_takes_a_good_row_with_it(tmp_path, kind, bad_row):
    lines = list(GOOD)
    lines[bad_row] = CORRUPTIONS[kind](lines[bad_row])
    path = write(tmp_path / "x.csv", "\n".join(lines) + "\n")
    expected = [row for i, row in enumerate(read_ag_news_csv(write(tmp_path / "ok.csv", "\n".join(GOOD) + "\n")))
                if i != bad_row]
    with pytest.raises(ValueError, match=f"x\\.csv, line {bad_row + 1}: "):
        read_ag_news_csv(path)
    with pytest.warns(UserWarning, match=f"skipped 1 malformed line\\(s\\): {bad_row + 1};"):
        assert read_ag_news_csv(path, on_bad_rows="skip") == expected


def test_every_line_a_broken_record_swallowed_is_counted_and_parsing_resumes_at_the_next_record(tmp_path):
    text = '"1","a","b"\n"2","t","unclosed\nmore text, here\nand more\n"3","good","row"\n"4","c","d"\n'
    path = write(tmp_path / "x.csv", text)
    with pytest.warns(UserWarning, match=r"skipped 3 malformed line\(s\): 2, 3, 4; first: line 2: unclosed quote: "
                                         r"the quoted field opened on line 2 runs into line 5"):
        rows = read_ag_news_csv(path, on_bad_rows="skip")
    assert rows == [(0, "a b"), (2, "good row"), (3, "c d")]


@pytest.mark.parametrize("text", [
    '"1","a","b"\n"2","t","unclosed\n',
    '"1","a","b"\n"2","t","unclosed',                          # no final newline
    '"1","a","b"\n"2","t","open\nstill open\n',               # runs over two lines to the end
])
def test_an_unclosed_quote_at_the_end_of_the_file_raises_and_is_reported_when_skipping(tmp_path, text):
    path = write(tmp_path / "x.csv", text)
    with pytest.raises(ValueError, match="line 2: unclosed quote: the quoted field opened on line 2 runs to "
                                         "the end of the file"):
        read_ag_news_csv(path)
    with pytest.warns(UserWarning, match=r"skipped \d malformed line\(s\): 2(, 3)?; first: line 2: unclosed quote"):
        assert read_ag_news_csv(path, on_bad_rows="skip") == [(0, "a b")]


def test_many_unclosed_quotes_cost_only_their_own_lines(tmp_path):
    # every other row never closes its description: each is cut at the next record, none swallows a good one
    lines = [f'"1","bad {i}","open' if i % 2 else f'"2","good {i}","row"' for i in range(3000)]
    path = write(tmp_path / "x.csv", "\n".join(lines) + "\n")
    with pytest.warns(UserWarning, match=r"skipped 1500 malformed line\(s\): 2, 4, 6, 8, 10, \.\.\."):
        rows = read_ag_news_csv(path, on_bad_rows="skip")
    assert rows == [(1, f"good {i} row") for i in range(0, 3000, 2)]


def test_a_legit_multi_line_field_still_parses(tmp_path):
    text = '"1","title","first line\nsecond line, with ""quotes""\n1, 2, 3 go"\n"2","t","d"\n'
    assert read_ag_news_csv(write(tmp_path / "x.csv", text)) == [
        (0, 'title first line\nsecond line, with "quotes"\n1, 2, 3 go'), (1, "t d")]


def test_resynchronised_then_open_at_the_end(tmp_path):
    path = write(tmp_path / "x.csv", '"2","t","unclosed\n"3","x","y"\n"4","p","q\n')
    with pytest.warns(UserWarning, match=r"skipped 2 malformed line\(s\): 1, 3; first: line 1: unclosed quote"):
        assert read_ag_news_csv(path, on_bad_rows="skip") == [(2, "x y")]


def test_skip_mode_with_only_bad_rows_still_fails(tmp_path):
    path = write(tmp_path / "x.csv", '"0","t","d"\n')
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="no valid row: all 1 line\\(s\\) are malformed"):
        read_ag_news_csv(path, on_bad_rows="skip")


@pytest.mark.parametrize("name", ["empty.csv", "empty.csv.gz"])
def test_empty_file(tmp_path, name):
    with pytest.raises(ValueError, match=f"{name} is empty"):
        read_ag_news_csv(write(tmp_path / name, b""))


def test_truncated_gzip(tmp_path):
    path = tmp_path / "train.csv.gz"
    path.write_bytes(gzip.compress(TINY.encode() * 50)[:-20])
    with pytest.raises(ValueError, match=r"train\.csv\.gz: corrupt or truncated gzip file"):
        read_ag_news_csv(path)


def test_not_a_gzip_file(tmp_path):
    path = tmp_path / "train.csv.gz"
    path.write_bytes(TINY.encode())
    with pytest.raises(ValueError, match=r"train\.csv\.gz: corrupt or truncated gzip file"):
        read_ag_news_csv(path)


def test_bad_on_bad_rows_value(tmp_path):
    with pytest.raises(ValueError, match="on_bad_rows must be one of .* got 'ignore'"):
        read_ag_news_csv(write(tmp_path / "x.csv", TINY), on_bad_rows="ignore")


# ---------------------------------------------------------------- classes.txt

def test_classes_default_and_from_file(tmp_path):
    assert read_ag_news_classes(tmp_path) == AG_NEWS_CLASSES
    write(tmp_path / "classes.txt", "World\nSports\nBusiness\nSci/Tech\n")
    assert read_ag_news_classes(tmp_path) == ("World", "Sports", "Business", "Sci/Tech")


def test_classes_in_another_order_are_refused(tmp_path):
    write(tmp_path / "classes.txt", "Sports\nWorld\nBusiness\nSci/Tech\n")
    write(tmp_path / "train.csv", TINY)
    with pytest.raises(ValueError, match=r"classes\.txt lists classes .*'Sports', 'World'"):
        load_ag_news("train", root=tmp_path)


# ---------------------------------------------------------------- the real stand-in data

def test_real_stand_in_data():
    root = next((p for p in SHARED if p.is_dir()), None)
    if root is None:
        pytest.skip(f"AG_NEWS stand-in not found at {' or '.join(map(str, SHARED))}")
    train, test = load_ag_news("train", root=root), load_ag_news("test", root=root)
    assert (len(train), len(test)) == (5600, 2000)
    assert Counter(label for label, _ in train) == {0: 1400, 1: 1400, 2: 1400, 3: 1400}
    assert Counter(label for label, _ in test) == {0: 500, 1: 500, 2: 500, 3: 500}
    assert test[0] == (2, "Fears for T N pension after talks Unions representing workers at Turner"
                          "   Newall say they are 'disappointed' after talks with stricken parent "
                          "firm Federal Mogul.")
    assert read_ag_news_classes(root) == AG_NEWS_CLASSES
    # The checksums SOURCE.md gives for the uncompressed CSVs.
    assert hashlib.md5(gzip.decompress((root / "train.csv.gz").read_bytes())).hexdigest() == \
        "f3d208b903561b52f6ef39e8d0f20d31"


# ---------------------------------------------------------------- where files are found

def one_row(directory, label, name="train.csv"):
    """A directory whose train file has one row, whose label says which directory was read."""
    write(Path(directory) / name, f'"{label}","from","{directory}"\n')
    return Path(directory)


@pytest.fixture
def no_download(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("download_file must not be called")
    monkeypatch.setattr(ag_news, "download_file", fail)


def test_root_beats_env_and_cache(tmp_path, monkeypatch, no_download):
    root = one_row(tmp_path / "root", 1)
    monkeypatch.setenv("TEXTPIPE_DATA", str(one_row(tmp_path / "env", 2)))
    one_row(tmp_path / "cache" / "ag_news", 3)
    assert load_ag_news("train", root=root)[0][0] == 0


def test_env_beats_cache(tmp_path, monkeypatch, no_download):
    monkeypatch.setenv("TEXTPIPE_DATA", str(one_row(tmp_path / "env", 2, "train.csv.gz")))
    one_row(tmp_path / "cache" / "ag_news", 3)
    assert load_ag_news("train")[0][0] == 1


def test_cache_used_when_no_root(tmp_path, no_download):
    one_row(tmp_path / "cache" / "ag_news", 3)
    assert load_ag_news("train")[0][0] == 2


def test_cache_dir_argument_beats_env(tmp_path, no_download):
    one_row(tmp_path / "mine" / "ag_news", 4)
    one_row(tmp_path / "cache" / "ag_news", 3)
    assert load_ag_news("train", cache_dir=tmp_path / "mine")[0][0] == 3


def test_root_without_the_file_is_an_error_not_a_fallback(tmp_path, monkeypatch, no_download):
    one_row(tmp_path / "cache" / "ag_news", 3)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=f"root= points to {tmp_path / 'empty'}, which holds "
                                                 r"no test\.csv or test\.csv\.gz"):
        load_ag_news("test", root=tmp_path / "empty")
    monkeypatch.setenv("TEXTPIPE_DATA", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match=r"\$TEXTPIPE_DATA points to"):
        load_ag_news("train")


def test_root_that_is_a_file_is_refused(tmp_path, no_download):
    path = write(tmp_path / "train.csv", TINY)
    with pytest.raises(ValueError, match="root= must be a directory .* got the file"):
        load_ag_news("train", root=path)


def test_urls_without_the_split_is_refused(no_download):
    with pytest.raises(ValueError, match=r"urls must map 'test' to \(url, md5\), got keys \['train'\]"):
        load_ag_news("test", urls={"train": ("http://127.0.0.1:1/train.csv", "0" * 32)})


def test_nothing_found_and_download_false_names_the_directory(tmp_path, no_download):
    cache = tmp_path / "cache" / "ag_news"
    with pytest.raises(FileNotFoundError, match=f"not found in {cache} and download=False: "
                                                f"place test.csv .* in {cache} by hand"):
        load_ag_news("test", download=False)


def test_download_when_nothing_found(tmp_path, monkeypatch):
    calls = []

    def fake_download(url, dest, *, md5, progress):
        calls.append((url, dest, md5))
        return one_row(dest.parent, 4) / dest.name
    monkeypatch.setattr(ag_news, "download_file", fake_download)
    assert load_ag_news("train") == [(3, f"from {tmp_path / 'cache' / 'ag_news'}")]
    assert calls == [(*AG_NEWS_URLS["train"][:1], tmp_path / "cache" / "ag_news" / "train.csv",
                      AG_NEWS_URLS["train"][1])]


def test_bad_split():
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'valid'"):
        load_ag_news("valid")


# ---------------------------------------------------------------- download end to end

class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.hits += 1
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    with local_server(_Handler) as srv:
        yield srv


@pytest.mark.parametrize("path", ["/train.csv", "/train.csv.gz"])
def test_download_from_local_server_then_cache(server, tmp_path, path):
    server.body = gzip.compress(TINY.encode()) if path.endswith(".gz") else TINY.encode()
    urls = {"train": (f"http://127.0.0.1:{server.server_address[1]}{path}",
                      hashlib.md5(server.body).hexdigest())}
    expected = read_ag_news_csv(write(tmp_path / "ok.csv", TINY))
    assert load_ag_news("train", urls=urls, progress=False) == expected
    assert load_ag_news("train", urls=urls, progress=False) == expected
    assert server.hits == 1
    assert (tmp_path / "cache" / "ag_news" / path.lstrip("/")).is_file()


def test_offline_error_says_where_to_put_the_files(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cache = tmp_path / "cache" / "ag_news"
    urls = {"test": (f"http://127.0.0.1:{port}/test.csv", "0" * 32)}
    with pytest.raises(DownloadError, match=f"(?s)could not reach .*Offline\\? place test.csv "
                                            f"\\(or test.csv.gz\\) in {cache} by hand, or pass root="):
        load_ag_news("test", urls=urls, progress=False)
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == []


# ---------------------------------------------------------------- read errors: each its own message

def test_missing_directory_and_permission_problems_get_their_own_messages(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"nope\.csv does not exist"):
        read_ag_news_csv(tmp_path / "nope.csv")
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(IsADirectoryError, match=r"dir\.csv is a directory, expected an AG_NEWS CSV file"):
        read_ag_news_csv(tmp_path / "dir.csv")
    path = write(tmp_path / "x.csv", TINY)
    if os.geteuid() != 0:
        path.chmod(0)
    else:  # root reads anything: fail the open as it fails for another user
        def denied(p, *args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied", str(p))
        monkeypatch.setattr(ag_news, "open", denied, raising=False)
    with pytest.raises(PermissionError, match=r"permission denied: cannot read .*x\.csv; check its permissions"):
        read_ag_news_csv(path)


def test_root_that_does_not_exist_or_holds_a_directory_named_like_the_split(tmp_path, no_download):
    with pytest.raises(FileNotFoundError, match=r"root= points to .*nope, which does not exist"):
        load_ag_news("test", root=tmp_path / "nope")
    (tmp_path / "d" / "test.csv").mkdir(parents=True)
    with pytest.raises(IsADirectoryError, match=r"test\.csv is a directory, expected the AG_NEWS test split"):
        load_ag_news("test", root=tmp_path / "d")
