"""Tests for textpipe.utils (torchtext.utils): downloads from a local HTTP server, crafted archives under tmp_path.

Hermetic: the server is a thread on 127.0.0.1 (tests/_http.py); every file lives under tmp_path.
Run: python3 -m pytest -q tests/test_utils.py
"""
import gzip
import hashlib
import io
import os
import tarfile
import zipfile
from http.server import BaseHTTPRequestHandler

import pytest
from _http import local_server

import textpipe
from textpipe.data.download import DownloadError
from textpipe.utils import (ArchiveError, HashMismatchError, UnsafeArchiveError, UnsupportedArchiveError,
                            download_from_url, extract_archive, get_asset_local_path, validate_file)

BODY = b"der Hund\ndie Katze\n" * 300
SHA256 = hashlib.sha256(BODY).hexdigest()
MD5 = hashlib.md5(BODY).hexdigest()


@pytest.fixture
def server():
    with local_server() as srv:
        srv.files["/assets/validation.tar.gz"] = BODY
        yield srv


def leftovers(directory):
    """Temporary download/extraction files left in `directory` (there must be none)."""
    return sorted(n for n in os.listdir(directory) if n.endswith(".part"))


# --- download_from_url

def test_download_goes_to_root_named_like_the_url_and_is_not_repeated(server, tmp_path):
    root = tmp_path / ".data"
    path = download_from_url(server.url("/assets/validation.tar.gz"), root=root, progress=False)
    assert path == str(root / "validation.tar.gz") and isinstance(path, str)
    assert (root / "validation.tar.gz").read_bytes() == BODY and server.hits == 1
    assert (root / "validation.tar.gz").stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
    assert download_from_url(server.url("/assets/validation.tar.gz"), root=root, progress=False) == path
    assert server.hits == 1  # an existing file is not downloaded again
    download_from_url(server.url("/assets/validation.tar.gz"), root=root, overwrite=True, progress=False)
    assert server.hits == 2 and leftovers(root) == []


def test_default_root_is_dot_data_in_the_working_directory(server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = download_from_url(server.url("/assets/validation.tar.gz"), progress=False)
    assert path == str(tmp_path / ".data" / "validation.tar.gz")


def test_explicit_path_creates_its_directory_and_a_query_string_is_not_part_of_the_name(server, tmp_path):
    server.files["/get?id=7"] = BODY
    target = tmp_path / "a" / "b" / "file.bin"
    assert download_from_url(server.url("/get?id=7"), path=target, progress=False) == str(target)
    assert target.read_bytes() == BODY
    assert download_from_url(server.url("/get?id=7"), root=tmp_path, progress=False) == str(tmp_path / "get")


@pytest.mark.parametrize("hash_type, digest", [("sha256", SHA256), ("md5", MD5), ("sha256", SHA256.upper())])
def test_right_hash_is_accepted(server, tmp_path, hash_type, digest):
    path = download_from_url(server.url("/assets/validation.tar.gz"), root=tmp_path, hash_value=digest,
                             hash_type=hash_type, progress=False)
    assert open(path, "rb").read() == BODY


def test_wrong_hash_removes_the_download_and_is_a_runtime_error(server, tmp_path):
    with pytest.raises(HashMismatchError, match=r"sha256 of .* is [0-9a-f]{64}, expected 0+; the download was "
                                                r"removed") as e:
        download_from_url(server.url("/assets/validation.tar.gz"), root=tmp_path, hash_value="0" * 64,
                          progress=False)
    assert isinstance(e.value, RuntimeError)  # torchtext raised RuntimeError: `except RuntimeError` still works
    assert os.listdir(tmp_path) == []  # nothing kept, no temp file


def test_existing_file_with_the_wrong_hash_names_the_file_and_the_fix(server, tmp_path):
    (tmp_path / "validation.tar.gz").write_bytes(b"not it")
    with pytest.raises(HashMismatchError, match=r"validation.tar.gz exists but its sha256 is not .*overwrite=True"):
        download_from_url(server.url("/assets/validation.tar.gz"), root=tmp_path, hash_value=SHA256, progress=False)
    assert server.hits == 0
    download_from_url(server.url("/assets/validation.tar.gz"), root=tmp_path, hash_value=SHA256, overwrite=True,
                      progress=False)
    assert (tmp_path / "validation.tar.gz").read_bytes() == BODY


def test_unknown_hash_type_is_refused_before_any_request(server, tmp_path):
    with pytest.raises(ValueError, match=r"hash_type must be one of \['md5', 'sha256'\], got 'sha1'"):
        download_from_url(server.url("/assets/validation.tar.gz"), root=tmp_path, hash_value="x", hash_type="sha1")
    assert server.hits == 0


def test_http_error_names_the_status_and_leaves_nothing(server, tmp_path):
    with pytest.raises(DownloadError, match=r"download of http://127.0.0.1:\d+/missing.zip failed: HTTP 404"):
        download_from_url(server.url("/missing.zip"), root=tmp_path, progress=False)
    assert os.listdir(tmp_path) == []


class _ShortBody(BaseHTTPRequestHandler):
    """Promises 1000 bytes, sends 10, closes the connection."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"0123456789")

    def log_message(self, *args):
        pass


def test_a_body_cut_short_is_an_error_and_leaves_nothing(tmp_path):
    with local_server(_ShortBody) as srv:
        with pytest.raises(DownloadError, match="(cut short: got 10 of 1000 bytes|interrupted after)"):
            download_from_url(srv.url("/x.gz"), root=tmp_path, progress=False)
    assert os.listdir(tmp_path) == []


def test_neither_a_file_nor_a_url(tmp_path):
    with pytest.raises(DownloadError, match="'fakedownload/glove.zip' is neither an existing file nor a URL"):
        download_from_url("fakedownload/glove.zip", root=tmp_path, progress=False)


def test_an_existing_file_in_root_is_used_without_a_url_scheme(tmp_path):
    (tmp_path / "glove.840B.300d.zip").write_bytes(b"zip")  # torchtext's test_no_download, hermetic
    assert download_from_url("fakedownload/glove.840B.300d.zip", root=tmp_path) == str(tmp_path / "glove.840B.300d.zip")


def test_a_directory_in_the_way(tmp_path):
    (tmp_path / "x.zip").mkdir()
    with pytest.raises(IsADirectoryError, match="x.zip is a directory"):
        download_from_url("http://127.0.0.1:9/x.zip", root=tmp_path)


def test_get_asset_local_path_keeps_local_paths_and_caches_urls(server, tmp_path, monkeypatch):
    local = tmp_path / "mine.txt"
    local.write_text("x")
    assert get_asset_local_path(str(local)) == str(local)
    monkeypatch.setenv("TEXTPIPE_CACHE", str(tmp_path / "cache"))
    path = get_asset_local_path(server.url("/assets/validation.tar.gz"))
    assert path == str(tmp_path / "cache" / "assets" / "validation.tar.gz") and open(path, "rb").read() == BODY
    assert get_asset_local_path(server.url("/assets/validation.tar.gz")) == path and server.hits == 1


def test_validate_file():
    assert validate_file(io.BytesIO(BODY), SHA256) and validate_file(io.BytesIO(BODY), MD5, "md5")
    assert not validate_file(io.BytesIO(BODY + b"!"), SHA256)
    with pytest.raises(ValueError, match="hash_type"):
        validate_file(io.BytesIO(BODY), MD5, "crc32")


def test_bare_import_then_attribute_access(server, tmp_path):
    """`import torchtext` then `torchtext.utils.download_from_url` (0.12-0.17 style)."""
    path = textpipe.utils.download_from_url(server.url("/assets/validation.tar.gz"), root=tmp_path, progress=False)
    assert os.path.basename(path) == "validation.tar.gz"


# --- extract_archive

FILES = {"val.de": b"Hallo\n", "val.en": b"Hello\n"}


def make_tar(path, files=FILES, mode="w:gz", extra=()):
    with tarfile.open(path, mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info)
    return path


def make_zip(path, files=FILES):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize("suffix, mode", [(".tar.gz", "w:gz"), (".tgz", "w:gz"), (".tar", "w"),
                                          (".tar.bz2", "w:bz2"), (".tar.xz", "w:xz")])
def test_tar_extracts_beside_the_archive_and_lists_the_files(tmp_path, suffix, mode):
    archive = make_tar(tmp_path / f"validation{suffix}", mode=mode)
    files = extract_archive(str(archive))
    assert files == [str(tmp_path / "val.de"), str(tmp_path / "val.en")]
    assert [open(f, "rb").read() for f in files] == list(FILES.values())


def test_overwrite_false_keeps_existing_files_but_still_lists_them(tmp_path):
    archive = make_tar(tmp_path / "v.tar.gz")
    extract_archive(archive)
    (tmp_path / "val.de").write_bytes(b"edited")
    assert extract_archive(archive) == [str(tmp_path / "val.de"), str(tmp_path / "val.en")]
    assert (tmp_path / "val.de").read_bytes() == b"edited"
    extract_archive(archive, overwrite=True)
    assert (tmp_path / "val.de").read_bytes() == b"Hallo\n" and leftovers(tmp_path) == []


def test_to_path_is_joined_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_tar("v.tar.gz", files={"sub/a.txt": b"a", "b.txt": b"b"})
    assert extract_archive("v.tar.gz", ".new_data") == [os.path.join(".new_data", "sub/a.txt"),
                                                         os.path.join(".new_data", "b.txt")]
    assert (tmp_path / ".new_data" / "sub" / "a.txt").read_bytes() == b"a"


def test_zip_lists_files_not_directories(tmp_path):
    archive = make_zip(tmp_path / "en-ud-v2.zip", {"en-ud-v2/": b"", "en-ud-v2/a.txt": b"a", "en-ud-v2/b.txt": b"b"})
    assert extract_archive(archive) == [os.path.join(tmp_path, "en-ud-v2/a.txt"), os.path.join(tmp_path, "en-ud-v2/b.txt")]
    assert (tmp_path / "en-ud-v2" / "a.txt").stat().st_mode & 0o777 == 0o644
    (tmp_path / "en-ud-v2" / "a.txt").write_bytes(b"edited")
    extract_archive(archive)
    assert (tmp_path / "en-ud-v2" / "a.txt").read_bytes() == b"edited"
    extract_archive(archive, overwrite=True)
    assert (tmp_path / "en-ud-v2" / "a.txt").read_bytes() == b"a"


def test_gz_is_one_file_named_without_the_suffix(tmp_path):
    archive = tmp_path / "val.5.en.gz"
    archive.write_bytes(gzip.compress(b"five\n" * 1000))
    assert extract_archive(str(archive)) == [str(tmp_path / "val.5.en")]
    assert (tmp_path / "val.5.en").read_bytes() == b"five\n" * 1000
    assert extract_archive(archive, tmp_path / "out") == [str(tmp_path / "out" / "val.5.en")]


def test_unsupported_suffix_is_a_not_implemented_error_naming_the_file(tmp_path):
    (tmp_path / "wiki.simple.vec").write_text("1 1\na 1\n")
    with pytest.raises(NotImplementedError, match=r"wiki.simple.vec: cannot extract it: the name must end in .zip"):
        extract_archive(tmp_path / "wiki.simple.vec")
    assert issubclass(UnsupportedArchiveError, ValueError)


def test_missing_archive(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.zip: no such archive"):
        extract_archive(tmp_path / "nope.zip")


@pytest.mark.parametrize("name, data", [
    ("bad.tar.gz", b"\x1f\x8b" + b"x" * 50),               # gzip magic, garbage after it
    ("bad.zip", b"PK\x03\x04 not really a zip"),
    ("bad.gz", b"plain text, not gzip"),
])
def test_damaged_archive_is_one_clear_error_and_leaves_nothing(tmp_path, name, data):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(ArchiveError, match=f"{name} is damaged or not the archive its name says .*download it again"):
        extract_archive(tmp_path / name)
    assert sorted(os.listdir(tmp_path)) == [name]


def test_truncated_gz_leaves_no_partial_file(tmp_path):
    whole = gzip.compress(os.urandom(200_000))
    (tmp_path / "big.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ArchiveError):
        extract_archive(tmp_path / "big.gz")
    assert sorted(os.listdir(tmp_path)) == ["big.gz"]


def link(name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def special(name, kind):
    info = tarfile.TarInfo(name)
    info.type = kind
    return info


@pytest.mark.parametrize("files, extra, why", [
    ({"/etc/evil": b"x"}, (), "has an absolute path"),
    ({"../evil": b"x"}, (), "has a '..' component"),
    ({"ok/../../evil": b"x"}, (), "has a '..' component"),
    ({}, (link("l", "/etc/passwd"),), "is a link to '/etc/passwd', an absolute path"),
    ({}, (link("l", "../../outside"),), r"is a link to '../../outside', a '..' component"),
    ({}, (link("s", "."), ), None),  # a link inside the target is fine ...
    ({}, (link("h", "/etc/passwd", tarfile.LNKTYPE),), "is a link to '/etc/passwd', an absolute path"),
    ({}, (special("fifo", tarfile.FIFOTYPE),), "is a device or FIFO entry"),
    ({}, (special("dev", tarfile.CHRTYPE),), "is a device or FIFO entry"),
])
def test_members_that_could_escape_are_refused_before_anything_is_written(tmp_path, files, extra, why):
    archive = make_tar(tmp_path / "a.tar", {"first.txt": b"1", **files}, mode="w", extra=extra)
    out = tmp_path / "out"
    if why is None:
        extract_archive(archive, out)
        assert (out / "s").is_symlink() and os.readlink(out / "s") == "."
        return
    with pytest.raises(UnsafeArchiveError, match=f"refusing to extract .*a.tar: member .* {why}, so it could be "
                                                 f"written outside .*out; nothing was extracted"):
        extract_archive(archive, out)
    assert not out.exists() and not (tmp_path / "evil").exists()  # not even first.txt


def test_a_link_then_a_member_through_it_cannot_climb_out(tmp_path):
    """`s -> .` is allowed, but `s/../x` has a '..' component, so the pair cannot reach the parent."""
    archive = make_tar(tmp_path / "a.tar", {"s/../escaped": b"x"}, mode="w", extra=(link("s", "."),))
    with pytest.raises(UnsafeArchiveError):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "escaped").exists()


@pytest.mark.parametrize("name", ["../evil.txt", "/abs/evil.txt", "C:/evil.txt", "a\\..\\..\\evil.txt"])
def test_zip_members_that_could_escape_are_refused(tmp_path, name):
    archive = make_zip(tmp_path / "a.zip", {"first.txt": b"1", name: b"x"})
    with pytest.raises(UnsafeArchiveError, match="member .* has an? "):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_hard_link_inside_the_archive_is_written_as_a_copy(tmp_path):
    archive = make_tar(tmp_path / "a.tar", {"a.txt": b"same"}, mode="w", extra=(link("b.txt", "a.txt", tarfile.LNKTYPE),))
    assert extract_archive(archive, tmp_path / "out") == [str(tmp_path / "out" / "a.txt"), str(tmp_path / "out" / "b.txt")]
    assert (tmp_path / "out" / "b.txt").read_bytes() == b"same"
