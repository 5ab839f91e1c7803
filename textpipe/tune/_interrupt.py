"""Ctrl+C during `textpipe tune`: the first one asks Ray Tune to stop and save the search (so that `--resume`
continues it), the second stops at once; either way the command ends with `SearchInterrupted` (exit status 130)
and never goes on to the final model.

Ray Tune's own SIGINT handler is switched off (`TUNE_DISABLE_SIGINT_HANDLER`): it ends `Tuner.fit()` as if the
search had finished, leaving no trace of the interrupt, and its message points at `Tuner.restore`. Instead the
handler here records the interrupt and calls the handler Tune keeps on SIGUSR1, which saves the experiment state
and ends the tuning loop the same way. No Ray import: Tune's handler is found with `signal.getsignal`.
"""
from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import threading

_ENV = "TUNE_DISABLE_SIGINT_HANDLER"


class SearchInterrupted(KeyboardInterrupt):
    """The search was interrupted (Ctrl+C): its state is saved in `output_dir`, `--resume` continues it."""

    def __init__(self, output_dir: str | os.PathLike = "") -> None:
        super().__init__(str(output_dir))
        self.output_dir = str(output_dir)


class InterruptGuard:
    """Installs the SIGINT handler for the duration of a search (main thread only; elsewhere it does nothing).

    >>> with InterruptGuard() as guard:           # doctest: +SKIP
    ...     with guard.tuning():
    ...         grid = tuner.fit()
    ...     if guard.hit: raise SearchInterrupted(out)
    """

    def __init__(self) -> None:
        self.hit = False  # a SIGINT arrived
        self._tuning = False
        self._installed = False

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            self._env = os.environ.get(_ENV)
            os.environ[_ENV] = "1"
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            if self._env is None:
                os.environ.pop(_ENV, None)
            else:
                os.environ[_ENV] = self._env
            self._installed = False

    @contextlib.contextmanager
    def tuning(self):
        """Around `Tuner.fit()`: a first SIGINT in here lets Tune save the search and return."""
        self._tuning = True
        try:
            yield self
        finally:
            self._tuning = False

    def _handle(self, signum, frame) -> None:
        first, self.hit = not self.hit, True
        tune_stop = signal.getsignal(signal.SIGUSR1) if hasattr(signal, "SIGUSR1") else None
        if first and self._tuning and callable(tune_stop):
            print("\ninterrupted (Ctrl+C): stopping the search and saving its state; Ctrl+C again stops at once "
                  "(--resume continues it either way)", file=sys.stderr, flush=True)
            tune_stop(signal.SIGUSR1, frame)
            signal.signal(signal.SIGINT, self._handle)  # Tune's handler puts back what it found: keep ours
            return
        raise KeyboardInterrupt


def resume_command(argv: list[str]) -> str:
    """The command line that continues an interrupted search: the same flags, `--resume` instead of
    `--overwrite`."""
    args = [a for a in argv if a != "--overwrite"]
    if "--resume" not in args:
        args.append("--resume")
    return shlex.join(["textpipe", "tune", *args])
