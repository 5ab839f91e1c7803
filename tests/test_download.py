"""Tests for textpipe.data.download against a local HTTP server on 127.0.0.1 (a thread, port 0).

Run: python3 -m pytest -q tests/test_download.py
"""
import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler

import pytest
from _diskfull import fill_disk
from _http import local_server

from textpipe.data import download as dl
from textpipe.data.download import DownloadError, default_cache_dir, download_file, md5_file

BODY = b'"3","Fed Up","Rates rise, again."\n' * 500  # ~18 KB, several reads on slow paths
BODY_MD5 = hashlib.md5(BODY).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    """Dispatches GET to `server.routes[path](handler)` and counts requests per path."""

    def do_GET(self):
        self.server.hits[self.path] += 1
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        route(self)

    def log_message(self, *args):  # keep pytest output clean
        pass


def serve(body, *, length=None, before_body=None):
    """A route that sends `body` with Content-Length `length` (default: the true length)."""
    def handle(h):
        h.send_response(200)
        h.send_header("Content-Length", str(len(body) if length is None else length))
        h.end_headers()
        if before_body is not None:
            before_body()
        h.wfile.write(body)
        h.wfile.flush()
        # HTTP/1.0: the connection closes when the handler returns, short body or not.
    return handle


@pytest.fixture
def server():
    with local_server(_Handler, routes={}, hits=Counter(), stop=threading.Event()) as srv:
        try:
            yield srv
        finally:
            srv.stop.set()  # release handlers that wait


def leftovers(directory, keep=("data.csv",)):
    """Files in `directory` other than the target and its (harmless) lock file."""
    return sorted(n for n in os.listdir(directory) if n not in keep and not n.endswith(".lock"))


def test_success_writes_file_with_right_checksum_and_no_temp(server, tmp_path):
    server.routes["/data.csv"] = serve(BODY)
    dest = tmp_path / "sub" / "data.csv"  # the directory is created
    out = download_file(server.url("/data.csv"), dest, md5=BODY_MD5, timeout=5, progress=True)
    assert out == dest
    assert dest.read_bytes() == BODY and md5_file(dest) == BODY_MD5
    assert leftovers(dest.parent) == []
    assert oct(dest.stat().st_mode & 0o777) == oct(0o644)


def test_existing_file_is_not_downloaded_again(server, tmp_path):
    server.routes["/data.csv"] = serve(BODY)
    dest = tmp_path / "data.csv"
    download_file(server.url("/data.csv"), dest, md5=BODY_MD5, timeout=5, progress=False)
    download_file(server.url("/data.csv"), dest, md5=BODY_MD5, timeout=5, progress=False)
    assert server.hits["/data.csv"] == 1


def test_wrong_checksum_removes_everything_and_next_call_works(server, tmp_path):
    server.routes["/data.csv"] = serve(BODY)
    dest = tmp_path / "data.csv"
    wrong = "0" * 32
    with pytest.raises(DownloadError, match=f"expected MD5 {wrong}, got {BODY_MD5}.*removed"):
        download_file(server.url("/data.csv"), dest, md5=wrong, timeout=5, progress=False)
    assert not dest.exists() and leftovers(tmp_path) == []
    download_file(server.url("/data.csv"), dest, md5=BODY_MD5.upper(), timeout=5, progress=False)
    assert dest.read_bytes() == BODY and leftovers(tmp_path) == []


def test_connection_dropped_mid_body_leaves_nothing_and_next_call_starts_clean(server, tmp_path):
    server.routes["/data.csv"] = serve(BODY[:1000], length=len(BODY))  # promise more, then close
    dest = tmp_path / "data.csv"
    with pytest.raises(DownloadError, match=f"got 1000 of {len(BODY)} bytes"):
        download_file(server.url("/data.csv"), dest, md5=BODY_MD5, timeout=5, progress=False)
    assert not dest.exists() and leftovers(tmp_path) == []
    server.routes["/data.csv"] = serve(BODY)  # the server recovers
    download_file(server.url("/data.csv"), dest, md5=BODY_MD5, timeout=5, progress=False)
    assert dest.read_bytes() == BODY and leftovers(tmp_path) == []


def test_http_error_names_status_and_url(server, tmp_path):
    url = server.url("/missing.csv")
    with pytest.raises(DownloadError, match=f"{url} failed: HTTP 404"):
        download_file(url, tmp_path / "data.csv", md5=BODY_MD5, timeout=5, progress=False)
    assert leftovers(tmp_path) == []


def test_unreachable_host_is_a_download_error(tmp_path):
    with socket.socket() as s:  # a port nobody listens on any more
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/data.csv"
    with pytest.raises(DownloadError, match=f"could not reach {url}"):
        download_file(url, tmp_path / "data.csv", md5=BODY_MD5, timeout=5, progress=False)
    assert leftovers(tmp_path) == []


def test_stalled_server_times_out(server, tmp_path):
    server.routes["/data.csv"] = serve(BODY, before_body=lambda: server.stop.wait(10))
    with pytest.raises(DownloadError, match="interrupted after 0 bytes"):
        download_file(server.url("/data.csv"), tmp_path / "data.csv", md5=BODY_MD5, timeout=0.3,
                      progress=False)
    assert leftovers(tmp_path) == []


def test_keyboard_interrupt_removes_temp_file(monkeypatch, tmp_path):
    def interrupted(url, f, **kwargs):
        f.write(b"partial")
        raise KeyboardInterrupt
    monkeypatch.setattr(dl, "stream_url", interrupted)
    with pytest.raises(KeyboardInterrupt):
        download_file("http://127.0.0.1:1/x", tmp_path / "data.csv", md5=BODY_MD5, progress=False)
    assert leftovers(tmp_path) == []


def test_bad_md5_argument(tmp_path):
    with pytest.raises(ValueError, match="md5 must be a 32-character hex string, got 'abc'"):
        download_file("http://127.0.0.1:1/x", tmp_path / "data.csv", md5="abc")


_CHILD = """
import sys
from pathlib import Path
from textpipe.data.download import download_file
url, dest, marker, md5 = sys.argv[1:]
Path(marker).touch()
download_file(url, dest, md5=md5, timeout=20, progress=False)
"""


def test_two_processes_download_once(server, tmp_path):
    markers = [tmp_path / f"started{i}" for i in range(2)]

    def wait_for_both():  # hold the body until both processes run, so they overlap
        deadline = time.monotonic() + 10
        while not all(m.exists() for m in markers) and time.monotonic() < deadline:
            time.sleep(0.02)
        server.stop.wait(0.2)  # let the second process reach the lock

    server.routes["/data.csv"] = serve(BODY, before_body=wait_for_both)
    dest = tmp_path / "out" / "data.csv"
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD, server.url("/data.csv"), str(dest),
                               str(m), BODY_MD5], stderr=subprocess.PIPE) for m in markers]
    try:
        errs = [p.communicate(timeout=30)[1].decode() for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], errs
    assert server.hits["/data.csv"] == 1
    assert dest.read_bytes() == BODY and leftovers(dest.parent) == []


def test_default_cache_dir_env_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("TEXTPIPE_CACHE", str(tmp_path / "tp"))
    assert default_cache_dir() == tmp_path / "tp"
    monkeypatch.delenv("TEXTPIPE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "textpipe"


# ---------------------------------------------------------------- debris, disk full, directories (issue 9)

def test_temps_of_killed_downloads_are_swept_on_the_next_call(server, tmp_path):
    import textpipe.core.fileio as fileio

    server.routes["/data.csv"] = serve(BODY)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()  # a PID that no longer runs
    legacy = tmp_path / ".data.csv.k2j4h1x9.part"  # textpipe 0.1.0's mkstemp name (no PID in it)
    ours = tmp_path / f".data.csv.tmp-{fileio.HOST}-{dead}-0123abcd"
    for debris in (legacy, ours):
        debris.write_bytes(b"partial")
    download_file(server.url("/data.csv"), tmp_path / "data.csv", md5=BODY_MD5, progress=False)
    assert leftovers(tmp_path) == [] and (tmp_path / "data.csv").read_bytes() == BODY
    legacy.write_bytes(b"partial")  # swept also when the file is already there
    download_file(server.url("/data.csv"), tmp_path / "data.csv", md5=BODY_MD5, progress=False)
    assert leftovers(tmp_path) == [] and server.hits["/data.csv"] == 1


def test_disk_full_is_a_write_error_naming_the_file_not_a_network_error(server, tmp_path, monkeypatch):
    from textpipe.core.fileio import WriteError

    server.routes["/data.csv"] = serve(BODY)
    fill_disk(monkeypatch)
    with pytest.raises(WriteError, match=r"no space left on the device while trying to write .*data\.csv") as e:
        download_file(server.url("/data.csv"), tmp_path / "data.csv", md5=BODY_MD5, progress=False)
    assert not isinstance(e.value, DownloadError)
    assert leftovers(tmp_path) == []


def test_a_directory_in_the_way_and_an_uncreatable_cache_get_clear_errors(tmp_path):
    from textpipe.core.fileio import WriteError

    (tmp_path / "data.csv").mkdir()
    with pytest.raises(IsADirectoryError, match=r"data\.csv is a directory, so the download cannot be stored"):
        download_file("http://127.0.0.1:1/x", tmp_path / "data.csv", md5=BODY_MD5, progress=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(WriteError, match=r"cannot create the directory .*file/sub"):
        download_file("http://127.0.0.1:1/x", tmp_path / "file" / "sub" / "data.csv", md5=BODY_MD5, progress=False)
