"""`textpipe tokenizer train`: train a subword tokenizer (BPE, WordPiece, Unigram) on your texts.

    textpipe tokenizer train --kind bpe --vocab-size 8000 ../shared/data/ag_news/train.csv.gz --out bpe.json
    textpipe train --data-dir ../shared/data/ag_news --tokenizer hf:bpe.json      # any model, via its Vocab

FILES are table files (the text columns are read, as `textpipe train` reads them) or plain .txt files (one
text a line, optionally .gz). Hugging Face `tokenizers` does the work (the `hf` extra). The result is a
standard `tokenizer.json` (`tokenizers.Tokenizer.from_file` and `PreTrainedTokenizerFast` read it).
"""
from __future__ import annotations

import argparse
import gzip
import time
from collections.abc import Iterator
from pathlib import Path

from textpipe.core.cli_args import Formatter, Parser, add_column_flags, run_cli
from textpipe.data.formats import DESCRIPTION
from textpipe.data.table import iter_table
from textpipe.text.subword import KINDS, train_tokenizer

__all__ = ["parser", "main", "iter_texts"]


def iter_texts(files: list[str], *, text_columns=None) -> Iterator[str]:
    """The texts of `files`: a .txt/.txt.gz file line by line, any table file by its text columns."""
    for f in files:
        name = f.lower()
        if name.endswith((".txt", ".txt.gz")):
            with (gzip.open(f, "rt", encoding="utf-8") if name.endswith(".gz") else open(f, encoding="utf-8")) as fh:
                yield from (line.rstrip("\n") for line in fh)
        else:
            for _, texts in iter_table(f, text_columns=text_columns, need_label=False):
                yield from texts


def parser(prog: str = "textpipe tokenizer") -> argparse.ArgumentParser:
    p = Parser(prog=prog, description=__doc__, formatter_class=Formatter)
    sub = p.add_subparsers(dest="action", required=True, parser_class=Parser)
    t = sub.add_parser("train", help="train a tokenizer on FILES", formatter_class=Formatter)
    t.add_argument("files", nargs="+", metavar="FILE", help=f"texts: .txt (one a line) or {DESCRIPTION}")
    t.add_argument("--kind", choices=KINDS, default="bpe", help="bpe (byte-level), wordpiece (BERT's) or unigram")
    t.add_argument("--vocab-size", type=int, default=8000, help="tokens, specials included")
    t.add_argument("--min-frequency", type=int, default=2, help="merge only pairs seen this often (bpe, wordpiece)")
    t.add_argument("--lowercase", action=argparse.BooleanOptionalAction, default=True, help="lower-case first")
    t.add_argument("--out", default="tokenizer.json", help="where to write the tokenizer (JSON)")
    add_column_flags(t)
    t.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return p


def main(argv: list[str] | None = None) -> int:
    """`textpipe tokenizer train ...`; prints the size and where it went, then how to use it."""
    args = parser().parse_args(argv)

    def run() -> int:
        for f in args.files:
            if not Path(f).is_file():
                raise FileNotFoundError(f"{f}: no such file")
        t0 = time.perf_counter()
        tok = train_tokenizer(iter_texts(args.files, text_columns=args.text_columns), kind=args.kind,
                              vocab_size=args.vocab_size, min_frequency=args.min_frequency, lowercase=args.lowercase)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        tok.save(args.out)
        print(f"{args.kind} tokenizer, {tok.get_vocab_size()} tokens, trained in {time.perf_counter() - t0:.1f} s: "
              f"{args.out}\nuse it: textpipe train ... --tokenizer hf:{args.out}")
        return 0

    return run_cli(run, debug=args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
