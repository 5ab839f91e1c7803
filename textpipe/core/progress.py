"""Progress bars that suit where they go: tqdm on a terminal; elsewhere (a log file, a pipe, a CI job) one plain
line per `step` percent, so a log holds `epoch 1/4: 10% (25/250)` lines instead of carriage-return debris.

    >>> import io
    >>> out = io.StringIO()
    >>> for _ in progress(range(4), desc="read", step=50, file=out):
    ...     pass
    >>> print(out.getvalue(), end="")
    read: 50% (2/4)
    read: 100% (4/4)
"""
from __future__ import annotations

import sys
from collections.abc import Iterable

__all__ = ["progress", "LineProgress"]


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", disable: bool = False,
             step: int = 10, file=None, **tqdm_args):
    """A tqdm bar when `file` (default stderr) is a terminal, else a `LineProgress`; the same calls work on both
    (iteration, `update`, `set_postfix`, `close`, `with`). `tqdm_args` go to tqdm (`initial` to both)."""
    file = sys.stderr if file is None else file
    if disable or _is_terminal(file):
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=desc, disable=disable, file=file, **tqdm_args)
    return LineProgress(iterable, total=total, desc=desc, step=step, file=file, initial=tqdm_args.get("initial", 0))


def _is_terminal(file) -> bool:
    try:
        return file.isatty()
    except (AttributeError, ValueError):
        return False


class LineProgress:
    """One line each time the count passes another `step` percent of `total` (nothing without a total)."""

    def __init__(self, iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
                 step: int = 10, file=None, initial: int = 0) -> None:
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.iterable, self.total, self.desc, self.n = iterable, total, desc, initial
        self.step, self.file, self.postfix = max(1, int(step)), file or sys.stderr, ""
        self._shown = self._percent()  # resumed at 40%: the next line is 50%

    def _percent(self) -> int:
        return 100 * self.n // self.total // self.step * self.step if self.total else 0

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)

    def update(self, n: int = 1) -> None:
        self.n += n
        percent = self._percent()
        if self.total and percent > self._shown:
            self._shown = percent
            unit = f" {self.postfix}" if self.postfix else ""
            print(f"{self.desc + ': ' if self.desc else ''}{percent}% ({self.n}/{self.total}){unit}", file=self.file,
                  flush=True)

    def set_postfix(self, **values) -> None:
        self.postfix = " ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        pass

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
