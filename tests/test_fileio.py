"""Tests for textpipe.core.fileio: atomic writes, stale-temp sweeping, clear write errors.

Run: python3 -m pytest -q tests/test_fileio.py
"""
import os
import subprocess
import sys

import pytest

from textpipe.core.fileio import WriteError, atomic_write, atomic_write_text, sweep_stale_temps, temp_path_for


def test_replaces_target_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_error_in_body_keeps_previous_file(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "good")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(target, mode="w") as f:
            f.write("half")
            raise RuntimeError("boom")
    assert target.read_text() == "good"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_directory_target_is_a_clear_error(tmp_path):
    with pytest.raises(WriteError, match="is a directory"):
        atomic_write_text(tmp_path, "x")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_permission_denied_names_the_path(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(WriteError, match="permission denied"):
            atomic_write_text(ro / "x.txt", "x")
    finally:
        ro.chmod(0o700)


def test_sweeps_temps_of_dead_writers_only(tmp_path):
    target = tmp_path / "a.bin"
    # a writer killed with SIGKILL: its temp file stays behind
    code = ("import os, sys; from textpipe.core.fileio import temp_path_for; "
            "p = temp_path_for(sys.argv[1]); p.write_bytes(b'partial'); print(p)")
    dead = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True,
                          check=True).stdout.strip()
    mine = temp_path_for(target)
    mine.write_bytes(b"live")  # this process is alive: never swept
    other = tmp_path / ".a.bin.tmp-otherhost-1-abcdef12"
    other.write_bytes(b"x")
    removed = sweep_stale_temps(target)
    assert [str(p) for p in removed] == [dead]
    assert mine.exists() and other.exists()
    atomic_write_text(target, "ok")  # a write sweeps too, and leaves only what it did not own
    assert target.read_text() == "ok"


def test_library_oserror_subclasses_pass_through(tmp_path):
    class DownloadFailed(OSError):
        pass

    with pytest.raises(DownloadFailed):
        with atomic_write(tmp_path / "x.bin") as f:
            f.write(b"x")
            raise DownloadFailed("server went away")
    assert list(tmp_path.iterdir()) == []


def test_plain_oserror_in_body_becomes_write_error(tmp_path):
    import errno as _errno
    with pytest.raises(WriteError, match="no space left"):
        with atomic_write(tmp_path / "x.bin"):
            raise OSError(_errno.ENOSPC, "No space left on device")


def test_missing_file_message_names_what_is_missing(tmp_path):
    import errno as _errno

    from textpipe.core.fileio import describe_os_error
    err = FileNotFoundError(_errno.ENOENT, "No such file or directory")
    assert describe_os_error(err, tmp_path / "a.txt", action="read").endswith(f"{tmp_path / 'a.txt'} does not exist")
    assert describe_os_error(err, tmp_path / "no" / "a.txt").endswith(f"{tmp_path / 'no'} does not exist")


def test_background_writer_runs_jobs_in_order_and_raises_a_failed_job_at_the_next_call():
    import threading

    from textpipe.core.fileio import BackgroundWriter

    done, threads = [], set()

    def job(i):
        def run():
            threads.add(threading.current_thread().name)
            done.append(i)
        return run

    def fail():
        raise WriteError(28, "no space left on the device while trying to write last.pt")

    w = BackgroundWriter()
    for i in range(5):
        w.submit(job(i))
    w.wait()
    assert done == [0, 1, 2, 3, 4] and threads and all(n.startswith("textpipe-writer") for n in threads)
    w.submit(fail)
    with pytest.raises(WriteError, match="no space left"):
        w.submit(job(5))  # the next call reports the failure; the job after it is not started
    assert done == [0, 1, 2, 3, 4]
    w.submit(fail)
    with pytest.raises(WriteError):
        w.close()
    with pytest.raises(RuntimeError):  # closed: no more jobs
        w.submit(job(6))
