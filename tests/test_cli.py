"""The `textpipe` command: subcommands, --version, grouped --help with defaults, one-line errors.

Run: python -m pytest -q tests/test_cli.py
"""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from textpipe import __version__
from textpipe.cli import error_line, main, run_cli
from textpipe.core.fileio import WriteError

ROOT = Path(__file__).resolve().parents[1]


def test_version_and_subcommands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"textpipe {__version__}"
    with pytest.raises(SystemExit) as e:
        main(["fly"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: textpipe: argument command: invalid choice: 'fly'")


@pytest.mark.parametrize("command, groups", [("train", ["data", "model", "optimisation", "devices", "output"]),
                                             ("evaluate", ["data", "devices", "output"]),
                                             ("predict", ["data", "devices", "output"])])
def test_help_is_grouped_and_shows_every_default(command, groups, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    for g in groups:
        assert f"\n{g}:" in out, g
    if command == "train":
        flat = " ".join(out.split())  # argparse wraps to the terminal's width
        assert "--lr LR peak learning rate (None: the model's, bag 8.0, cnn/rnn 2e-3, transformer 1e-3) " \
            "(default: None)" in flat
        assert "\nmodel: cnn:" in out and "\nmodel: rnn:" in out and "\nmodel: transformer:" in out
        assert "runs/<name of the training data>" in flat and "(default: basic_english)" in flat
    # every option's help ends with its default (argparse wraps lines: join each option's block first)
    blocks = re.split(r"\n  (?=-)", out.split("options:", 1)[1])
    undescribed = [b.split()[0] for b in blocks[1:] if "(default:" not in " ".join(b.split())
                   and not b.startswith("-h")]
    assert undescribed == [], undescribed


def test_python_dash_m_textpipe_runs_the_same_command():
    proc = subprocess.run([sys.executable, "-m", "textpipe", "--version"], capture_output=True, text=True,
                          cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert proc.returncode == 0 and proc.stdout.strip() == f"textpipe {__version__}"


def test_errors_become_one_line_and_exit_2(capsys):
    def boom():
        raise ValueError("bad value\nover two lines")

    assert run_cli(boom) == 2
    assert capsys.readouterr().err == "error: bad value over two lines\n"

    def disk_full():
        raise WriteError(28, "no space left on the device while trying to write x: free some space")

    assert run_cli(disk_full) == 2
    assert capsys.readouterr().err == "error: no space left on the device while trying to write x: free some space\n"
    assert "permission denied: cannot read /x/y" in error_line(PermissionError(13, "Permission denied", "/x/y"))
    assert "it is a directory" in error_line(IsADirectoryError(21, "Is a directory", "/tmp"))
    assert error_line(ZeroDivisionError("division by zero")) == ("ZeroDivisionError: division by zero (rerun with "
                                                                 "--debug for the traceback)")
    with pytest.raises(ValueError):
        run_cli(boom, debug=True)  # --debug: the traceback
