"""No Ray process outlives `textpipe tune`, even when the command is killed (SIGKILL, the OOM killer).

Ray shares the fate of the processes `ray.init()` starts (GCS, raylet) with the driver, but not reliably that of
the raylet's own children: after a SIGKILL of the driver, Ray 2.x leaves its dashboard agent and runtime-env
agent running (they notice the raylet is gone and hang on exit; ray-project/ray#59162, #52385).

So the command starts a small watcher in its own session (Ctrl+C in the terminal does not reach it) with a pipe
to it. The watcher records the command's descendants (every Ray process it started) with their start times in
`<output-dir>/.ray-pids.json`, refreshed each second and when told to. When the pipe closes (the command ended,
however it ended) it stops those still running: SIGTERM, then SIGKILL. A start time that no longer matches
means the pid was reused: that process is left alone. `reap_stale` does the same for a record whose watcher
is gone too (`kill -9` of both), on the next `tune` in that directory. Linux only (it reads /proc); elsewhere
nothing is started.

    python textpipe/tune/_reaper.py PARENT_PID RECORD      # started by `watch`, not by hand
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

RECORD = ".ray-pids.json"
_PROC = Path("/proc")


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of a live process, None when gone (or a zombie)."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except (OSError, ValueError):
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "; comm may hold spaces and ')'
    if fields[0] == "Z":
        return None
    return int(fields[1]), int(fields[19])


def descendants(pid: int) -> dict[int, int]:
    """{pid: start time} of every live descendant of `pid`."""
    children: dict[int, list[int]] = {}
    start: dict[int, int] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None:
                children.setdefault(st[0], []).append(int(entry.name))
                start[int(entry.name)] = st[1]
    found, todo = {}, list(children.get(pid, []))
    while todo:
        p = todo.pop()
        if p not in found and p in start:
            found[p] = start[p]
            todo.extend(children.get(p, []))
    return found


def running(procs: dict[int, int]) -> list[int]:
    """The pids of `procs` ({pid: start time}) still running as recorded (not gone, not reused)."""
    return [p for p, t in procs.items() if (st := _stat(p)) is not None and st[1] == t]


def stop_processes(procs: dict[int, int], *, grace_s: float = 3.0) -> list[int]:
    """SIGTERM the processes of `procs` ({pid: start time}) still running as recorded, SIGKILL those left after
    `grace_s`; returns the pids signalled."""
    def alive():
        return running(procs)

    hit = alive()
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 1.0)):
        for p in alive():
            try:
                os.kill(p, sig)
            except OSError:
                pass
        deadline = time.monotonic() + wait
        while alive() and time.monotonic() < deadline:
            time.sleep(0.05)
    return hit


def _write(record: Path, owner: int, procs: dict[int, int]) -> None:
    tmp = record.with_name(record.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"watcher": owner, "watcher_start": (_stat(owner) or (0, 0))[1],
                               "pids": {str(p): t for p, t in sorted(procs.items())}}) + "\n")
    os.replace(tmp, record)


def reap_stale(out: Path) -> list[int]:
    """Stop the Ray processes an earlier `tune` in `out` recorded, when its watcher is gone as well."""
    record = Path(out) / RECORD
    try:
        saved = json.loads(record.read_text())
        watcher, procs = int(saved["watcher"]), {int(p): int(t) for p, t in saved["pids"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []
    st = _stat(watcher)
    if st is not None and st[1] == saved.get("watcher_start"):
        return []  # its watcher still runs and will stop them
    hit = stop_processes(procs)
    if hit:
        print(f"note: stopped {len(hit)} Ray process(es) left running by an earlier search in {out} (pids "
              f"{', '.join(map(str, hit))})", file=sys.stderr)
    record.unlink(missing_ok=True)
    return hit


class Watcher:
    """The parent's end: `scan()` after starting Ray, `close()` at the end (or the process dies: same)."""

    def __init__(self, proc: subprocess.Popen | None) -> None:
        self.proc = proc

    def scan(self) -> None:
        if self.proc is not None:
            try:
                self.proc.stdin.write(b"scan\n")
                self.proc.stdin.flush()
            except OSError:
                pass

    def close(self, timeout: float = 10.0) -> None:
        """Ray has been shut down: let the watcher stop what is left and wait for it (a few seconds at most)."""
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None


def watch(out: Path) -> Watcher:
    """Start the watcher of this process's Ray processes (recorded in `out/.ray-pids.json`)."""
    if not sys.platform.startswith("linux") or not _PROC.is_dir():
        return Watcher(None)
    # by file name: the watcher imports nothing of textpipe's (and starts in a few milliseconds)
    proc = subprocess.Popen([sys.executable, "-I", __file__, str(os.getpid()), str(Path(out) / RECORD)],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, close_fds=True)
    return Watcher(proc)


def _main(parent: int, record: Path) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    procs: dict[int, int] = {}
    fd = sys.stdin.fileno()
    while True:
        readable, _, _ = select.select([fd], [], [], 1.0)
        if readable and not os.read(fd, 4096):
            break  # the pipe closed: the command has ended
        if _stat(parent) is None:
            break
        found = descendants(parent)
        found.pop(os.getpid(), None)
        if set(found.items()) - set(procs.items()):
            procs.update(found)
            _write(record, os.getpid(), procs)
    time.sleep(0.5)  # the raylet and GCS share the driver's fate: give them a moment to go by themselves
    stop_processes(procs)
    record.unlink(missing_ok=True)


if __name__ == "__main__":
    _main(int(sys.argv[1]), Path(sys.argv[2]))
