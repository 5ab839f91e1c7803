"""The `textpipe` command: `textpipe train|evaluate|predict|tune ...` (also `python -m textpipe ...`).

    textpipe train --data-dir ../shared/data/ag_news
    textpipe evaluate --checkpoint runs/ag_news/best.pt --data-dir ../shared/data/ag_news --json
    echo "Stocks fell as oil rose" | textpipe predict --checkpoint runs/ag_news/best.pt
    textpipe tune --data-dir ../shared/data/ag_news --time-budget-s 120    # needs pip install -e ".[tune]"
    textpipe tokenizer train --kind bpe --vocab-size 8000 train.csv --out bpe.json   # needs the hf extra
    textpipe export --checkpoint runs/bert/best.pt --to bert-agnews/   # an hf: model as a Hugging Face directory

Every user error is one `error: ...` line on stderr and exit status 2, found before any slow work; `--debug`
shows the traceback instead. This module only dispatches: each command owns its parser and `main`.
"""
from __future__ import annotations

import sys
from importlib import import_module

from textpipe.core.cli_args import Formatter, Parser, error_line, run_cli  # noqa: F401 - re-exported

# command -> the module whose main(argv) runs it (imported only when that command runs: tune imports Ray late)
COMMANDS = {"train": "textpipe.train", "evaluate": "textpipe.evaluate", "predict": "textpipe.predict",
            "tune": "textpipe.tune", "tokenizer": "textpipe.data.tokenizer_command", "export": "textpipe.export"}


def main(argv: list[str] | None = None) -> int:
    """`textpipe COMMAND ...` and `textpipe --version`."""
    from textpipe import __version__

    argv = list(sys.argv[1:] if argv is None else argv)
    p = Parser(prog="textpipe", description=__doc__, formatter_class=Formatter)
    p.add_argument("--version", action="version", version=f"textpipe {__version__}")
    p.add_argument("command", choices=list(COMMANDS), help="what to do; `textpipe COMMAND --help` for its flags")
    if not argv or argv[0].startswith("-"):  # --help, --version, or a flag without a command
        p.parse_args(argv)
        p.error(f"expected a command: {', '.join(COMMANDS)}")
    p.parse_args(argv[:1])
    return import_module(COMMANDS[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
