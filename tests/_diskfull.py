"""A simulated full disk for the writers' tests: files opened by `textpipe.core.fileio` fail with ENOSPC."""
import builtins
import errno

import textpipe.core.fileio as fileio


class _FullFile:
    """A file that takes `room` bytes, then fails as a full disk does."""

    def __init__(self, f, room: int):
        self.f, self.room = f, room

    def write(self, data):
        self.room -= len(data)
        if self.room < 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def fill_disk(monkeypatch, *, room: int = 0) -> None:
    """Every file `textpipe.core.fileio` opens from now on has `room` bytes left."""
    real_open = builtins.open
    monkeypatch.setattr(fileio, "open", lambda *a, **k: _FullFile(real_open(*a, **k), room), raising=False)
