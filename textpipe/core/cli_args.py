"""The command line's shared argparse pieces: one-line errors, shown defaults, the column flags, and `run_cli`,
which turns any exception into one `error: ...` line and exit status 2 (`--debug`: the traceback)."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from textpipe.core.fileio import WriteError, describe_os_error

__all__ = ["Formatter", "Parser", "error_line", "run_cli", "column", "add_column_flags"]


class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Module docstrings verbatim, and every option's default shown."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one `error: ...` line (exit 2), not usage + error."""

    def error(self, message: str):  # noqa: D401 - argparse's hook
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def error_line(err: BaseException) -> str:
    """One line that says what went wrong: the message of a user error, the exception type otherwise."""
    if isinstance(err, WriteError):  # already says what failed on which path, and the fix
        text = err.strerror or str(err)
    elif isinstance(err, OSError) and err.filename is not None and not isinstance(err, FileNotFoundError):
        text = describe_os_error(err, err.filename, action="read")
    elif isinstance(err, (ValueError, TypeError, OSError, LookupError, FloatingPointError)):
        text = str(err)
    else:
        text = f"{type(err).__name__}: {err} (rerun with --debug for the traceback)"
    if isinstance(err, KeyError) and text.startswith(("'", '"')):
        text = text[1:-1]  # KeyError quotes its message
    return " ".join(text.split()) or type(err).__name__


def run_cli(fn: Callable[[], int | None], *, debug: bool = False) -> int:
    """Call `fn`; an exception becomes one `error:` line and exit status 2 (re-raised with `debug`)."""
    try:
        return fn() or 0
    except BrokenPipeError:  # `textpipe predict ... | head`: the reader is gone, nothing to report
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        if debug:
            raise
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the CLI's one place that turns errors into messages
        if debug:
            raise
        print(f"error: {error_line(e)}", file=sys.stderr, flush=True)
        return getattr(e, "exit_status", 2)  # 1: the run failed (diverged), 2: it could not start


def column(value: str) -> str | int:
    """A column name, or a 0-based index (digits) for files without a header row."""
    return int(value) if value.isdigit() else value


def add_column_flags(g, text_default=None, label_default=None) -> None:
    g.add_argument("--text-column", dest="text_columns", action="append", type=column, metavar="NAME",
                   default=text_default, help="column holding the text; repeat to join several with a space, "
                   "in order; 0-based index for files without a header row (None: 'text'; headerless 3 "
                   "columns: AG_NEWS layout, 1 and 2)")
    g.add_argument("--label-column", type=column, metavar="NAME", default=label_default,
                   help="column holding the label (None: 'label'; headerless 3 columns: 0)")
