"""The output directory of a training run: refuse to mix two runs, lock it while a run writes, record how the
run was made (summary.json's `run` block: config, data files with sizes and SHA-256, versions, device, git).

    >>> check_run_dir(Path("runs/new"), resume=False, overwrite=False)   # doctest: +SKIP
    >>> with RunLock(Path("runs/new")):                                  # doctest: +SKIP
    ...     ...  # a second run into runs/new is refused meanwhile, naming this process

The lock is an OS file lock (`filelock`): the kernel drops it when its process dies, so a run killed by
SIGKILL never leaves the directory locked, and `--resume` takes it over (saying whose it was).
"""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import math
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

from textpipe.core.fileio import WriteError, atomic_write_text, describe_os_error, sweep_stale_temps

RUN_FILES = ("last.pt", "best.pt", "metrics.jsonl", "summary.json", "confusion_matrix.png")
LOCK_NAME, OWNER_NAME = ".textpipe-run.lock", ".textpipe-run.owner.json"


class RunDirError(ValueError):
    """The output directory cannot take this run (holds another run, or is locked by one)."""


def existing_run(out: Path) -> list[str]:
    """The run files already in `out` (empty for a new or empty directory)."""
    return [name for name in RUN_FILES if (out / name).exists()]


def check_run_dir(out: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse a directory that holds a run unless resuming or overwriting it (no side effects).

    Raises:
        RunDirError: `out` holds a run, and neither `resume` nor `overwrite`; or `out` is a file.
    """
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--output-dir {out} is a file, expected a directory; choose another --output-dir")
    found = existing_run(out)
    if found and not resume and not overwrite:
        raise RunDirError(f"--output-dir {out} already holds a run ({', '.join(found)}): pass --resume to "
                          "continue it, --overwrite to replace it, or choose another --output-dir")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """An exclusive lock on a run directory, held from `acquire` to `release` (or a `with` block)."""

    def __init__(self, out: Path) -> None:
        from filelock import FileLock

        self.out = Path(out)
        self._lock = FileLock(str(self.out / LOCK_NAME), timeout=0)
        self.previous: dict | None = None  # the owner record found when the lock was taken (a dead holder's)

    def _owner(self) -> dict | None:
        with contextlib.suppress(OSError, ValueError):
            return json.loads((self.out / OWNER_NAME).read_text())
        return None

    def acquire(self) -> RunLock:
        """Take the lock, or raise RunDirError naming the process that holds it."""
        from filelock import Timeout

        if self.out.is_symlink() and not self.out.exists():
            raise RunDirError(f"--output-dir {self.out} is a symbolic link to {os.readlink(self.out)}, which does "
                              f"not exist: create its target, remove the link, or choose another --output-dir")
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            self._lock.acquire(timeout=0)
        except Timeout:
            who = self._owner() or {}
            raise RunDirError(f"--output-dir {self.out} is in use by another run (pid {who.get('pid', '?')} on "
                              f"{who.get('host', '?')}, started {who.get('started', '?')}): wait for it to finish, "
                              "stop it, or choose another --output-dir") from None
        except OSError as e:  # permission denied, read-only filesystem, disk full, a file in the way, ...
            raise WriteError(e.errno, describe_os_error(e, self.out / LOCK_NAME)) from e
        self.previous = self._owner()  # left by a holder that died (a clean release removes it)
        atomic_write_text(self.out / OWNER_NAME, json.dumps(
            {"pid": os.getpid(), "host": socket.gethostname(), "started": now(), "argv": sys.argv}) + "\n",
            fsync=False)
        for name in RUN_FILES:  # temp files of writers killed in an earlier run
            sweep_stale_temps(self.out / name)
        return self

    def release(self) -> None:
        if self._lock.is_locked:
            with contextlib.suppress(OSError):
                (self.out / OWNER_NAME).unlink()
            self._lock.release()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def remove_run(out: Path) -> list[str]:
    """--overwrite: delete the previous run's checkpoints, summary and plot (metrics.jsonl is replaced, not
    deleted, when this run writes its first record). Returns what was removed."""
    removed = []
    for name in RUN_FILES:
        if name != "metrics.jsonl" and (out / name).exists():
            (out / name).unlink()
            removed.append(name)
    return removed


def now() -> str:
    """The current UTC time, ISO 8601 (seconds)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def file_digest(path: Path) -> dict:
    """`{"path", "bytes", "sha256"}` of a file, or of a directory's files (their names and contents, sorted)."""
    h, size = hashlib.sha256(), 0
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
                size += len(block)
    return {"path": str(path), "bytes": size, "sha256": h.hexdigest()}


def git_commit(directory: Path) -> dict | None:
    """`{"commit", "dirty"}` of the git checkout holding `directory`, or None outside one (or without git)."""
    def git(*args):
        return subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def run_record(cfg_dict: dict, sources: dict, *, device, started: str, world_size: int) -> dict:
    """summary.json's `run` block: how this run was made, enough to repeat it."""
    import numpy as np
    import torch

    import textpipe

    data = []
    for split, source in sources.items():
        if source is None:
            continue
        entry = {"split": split, "source": source.describe()}
        path = source.path
        if path is None and source.ag_news:  # AG_NEWS from the cache: the file the reader used
            from textpipe.data.download import default_cache_dir

            path = next((p for p in (default_cache_dir() / "ag_news" / f"{split}.csv",
                                     default_cache_dir() / "ag_news" / f"{split}.csv.gz") if p.is_file()), None)
        if path is not None and path.exists():
            entry.update(file_digest(path))
        elif source.data is not None:  # an in-memory datasets object
            ds = source.data[source.split] if source.split else source.data
            entry["fingerprint"] = getattr(ds, "_fingerprint", None)
        data.append(entry)
    info = {"type": device.type, "name": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return {"started": started, "argv": sys.argv, "config": cfg_dict, "seed": cfg_dict.get("seed"), "data": data,
            "versions": {"python": platform.python_version(), "torch": torch.__version__,
                         "textpipe": textpipe.__version__, "numpy": np.__version__},
            "device": info, "world_size": world_size, "host": socket.gethostname(),
            "git": _textpipe_checkout()}


def _textpipe_checkout() -> dict | None:
    """The git commit of the textpipe source, when it runs from a checkout (not from an installed wheel)."""
    import textpipe

    root = Path(textpipe.__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file() or not (root / ".git").exists():
        return None
    return git_commit(root)


def write_metrics(path: Path, records: list[dict], *, fsync: bool = True) -> None:
    """Replace metrics.jsonl atomically with one JSON line per record (the old file stays until then);
    `fsync=False` skips flushing it to the disk (atomic still, not durable across a power cut)."""
    atomic_write_text(path, "".join(json.dumps(strict_json(r), allow_nan=False) + "\n" for r in records),
                      fsync=fsync)


def strict_json(value):
    """`value` with NaN and infinities as None, so that `json.dumps` writes JSON that every parser reads."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


def log_hparams(writer, summary: dict) -> None:
    """TensorBoard's HPARAMS tab: this run's settings and its final metrics."""
    def value(v):
        return v if isinstance(v, (int, float, str, bool)) else str(v)

    hparams = {k: value(v) for k, v in summary["run"]["config"].items()}
    metrics = {"hparam/best_val_accuracy": summary["best_val_accuracy"],
               "hparam/test_accuracy": summary["test"] and summary["test"]["accuracy"],
               "hparam/test_macro_f1": summary["test"] and summary["test"]["macro_f1"],
               "hparam/train_loss": summary["last"] and summary["last"]["train_loss"]}
    writer.add_hparams(hparams, {k: v for k, v in metrics.items() if v is not None}, run_name="hparams")


def write_epoch_files(out: Path, ckpt: dict | None, history: list[dict], *, improved: bool) -> None:
    """The end-of-epoch files, in this order: best.pt (if `improved`), last.pt (from `ckpt`, the entries of
    `textpipe.checkpoint.checkpoint_dict`; None: no checkpoints), metrics.jsonl (`history`)."""
    from textpipe.checkpoint.format import copy_checkpoint, write_checkpoint  # imports torch; the rest here does not

    if ckpt is not None and improved:  # best.pt first: a kill before last.pt is linked to it replays this epoch
        write_checkpoint(out / "best.pt", ckpt)
        copy_checkpoint(out / "best.pt", out / "last.pt")
    elif ckpt is not None:
        write_checkpoint(out / "last.pt", ckpt)
    # subtle: checkpoint (with the history) first, metrics.jsonl second: a kill in between loses nothing,
    # since the resumed run rewrites metrics.jsonl from the checkpoint's history. So the (fsynced)
    # checkpoint is the durable copy during the run and metrics.jsonl is fsynced once, by `finish`.
    write_metrics(out / "metrics.jsonl", history, fsync=False)
