"""The `textpipe` command: `textpipe train|evaluate|predict|tune ...` (also `python -m textpipe ...`).

    textpipe train --data-dir ../shared/data/ag_news
    textpipe evaluate --checkpoint runs/ag_news/best.pt --data-dir ../shared/data/ag_news --json
    echo "Stocks fell as oil rose" | textpipe predict --checkpoint runs/ag_news/best.pt
    textpipe tune --data-dir ../shared/data/ag_news --time-budget-s 120    # needs pip install -e ".[tune]"

Every user error is one `error: ...` line on stderr and exit status 2, found before any slow work; `--debug`
shows the traceback instead.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from textpipe.fileio import WriteError, describe_os_error


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Module docstrings verbatim, and every option's default shown."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one `error: ...` line (exit 2), not usage + error."""

    def error(self, message: str):  # noqa: D401 - argparse's hook
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def error_line(err: BaseException) -> str:
    """One line that says what went wrong: the message of a user error, the exception type otherwise."""
    if isinstance(err, WriteError):  # already says what failed on which path, and the fix
        text = err.strerror or str(err)
    elif isinstance(err, OSError) and err.filename is not None and not isinstance(err, FileNotFoundError):
        text = describe_os_error(err, err.filename, action="read")
    elif isinstance(err, (ValueError, TypeError, OSError, LookupError)):
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
        return 2


# -- train -----------------------------------------------------------------------------------------------------
def train_parser(prog: str = "textpipe train") -> argparse.ArgumentParser:
    """The parser of `textpipe train`; its defaults come from `TrainConfig`."""
    from textpipe.train import TrainConfig
    from textpipe.train import __doc__ as doc

    t = TrainConfig()
    p = _Parser(prog=prog, description=doc, formatter_class=_Formatter)
    g = p.add_argument_group("data", "files: .csv .tsv .jsonl .json (each optionally .gz), .parquet, or a "
                             "datasets save_to_disk directory")
    g.add_argument("--data-dir", default=t.data_dir, help="directory with train.*, optionally val.* and test.* "
                   "(and classes.txt), or a DatasetDict save_to_disk directory (None and no --train: AG_NEWS "
                   "from the textpipe cache, downloaded once)")
    g.add_argument("--train", metavar="FILE", default=t.train, help="training data (overrides --data-dir's)")
    g.add_argument("--val", metavar="FILE", default=t.val, help="validation data, for best-model selection and "
                   "early stopping (or --val-fraction)")
    g.add_argument("--test", metavar="FILE", default=t.test, help="test data, for the final report")
    _add_column_flags(g, t.text_columns, t.label_column)
    g.add_argument("--classes", nargs="+", metavar="NAME", default=t.classes,
                   help="class order: the label values (or, for int labels 1..C / 0..C-1, their names), or one "
                   "classes.txt (None: <data-dir>/classes.txt, else the sorted labels)")
    g.add_argument("--tokenizer", default=t.tokenizer, help="basic_english | split | a registered name")
    g.add_argument("--on-bad-rows", choices=["raise", "skip"], default=t.on_bad_rows,
                   help="malformed rows: stop with an error, or skip them with a warning that counts them")
    g = p.add_argument_group("model")
    g.add_argument("--embed-dim", type=int, default=t.embed_dim, help="embedding size")
    g.add_argument("--ngrams", type=int, choices=[1, 2], default=t.ngrams, help="1 = words, 2 = words + hashed bigrams")
    g.add_argument("--buckets", type=int, default=t.buckets, help="bigram hash buckets")
    g.add_argument("--vectors", metavar="FILE", default=t.vectors, help="initialise the token embeddings from pretrained "
                   "vectors (GloVe .txt, fastText .vec, .gz/.zip); set --embed-dim to their dimension")
    g.add_argument("--min-freq", type=int, default=t.min_freq, help="minimum token count for the vocabulary")
    g.add_argument("--max-tokens", type=int, default=t.max_tokens, help="maximum vocabulary size (None: no cap)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=t.epochs, help="passes over the training portion")
    g.add_argument("--batch-size", type=int, default=t.batch_size, help="samples per step per process")
    g.add_argument("--lr", type=float, default=t.lr, help="peak learning rate")
    g.add_argument("--optimizer", choices=["sgd", "adamw"], default=t.optimizer, help="optimizer")
    g.add_argument("--schedule", choices=["linear", "cosine", "constant"], default=t.schedule,
                   help="learning-rate schedule over all steps")
    g.add_argument("--weight-decay", type=float, default=t.weight_decay, help="L2 penalty (adamw: decoupled)")
    g.add_argument("--val-fraction", type=float, default=t.val_fraction,
                   help="share of train held out for validation, best-model selection and early stopping, in "
                   "[0, 1) (0: train on all rows; the defaults were tuned with 0.1)")
    g.add_argument("--seed", type=int, default=t.seed, help="model init, split and sampler order")
    g.add_argument("--max-steps", type=int, default=t.max_steps, help="stop after N steps (-1 = all epochs)")
    g.add_argument("--patience", type=int, default=t.patience,
                   help="early stop after N epochs without a better validation accuracy (0 = never)")
    g.add_argument("--eval-batch-size", type=int, default=t.eval_batch_size, help="texts per forward pass in "
                   "validation and test")
    g = p.add_argument_group("devices")
    g.add_argument("--device", default=t.device, help="auto | cpu | cuda | cuda:N")
    g.add_argument("--parallel", choices=["none", "dp", "ddp"], default=t.parallel,
                   help="dp = nn.DataParallel over all GPUs; ddp = DistributedDataParallel, start with torchrun")
    g.add_argument("--num-workers", type=int, default=t.num_workers, help="DataLoader worker processes")
    g.add_argument("--pin-memory", action=argparse.BooleanOptionalAction, default=t.pin_memory,
                   help="pin batches in page-locked memory (None: on with CUDA)")
    g.add_argument("--bucket", action=argparse.BooleanOptionalAction, default=t.bucket,
                   help="batch texts of similar length (None: on, off with the fused step)")
    g.add_argument("--sparse", action=argparse.BooleanOptionalAction, default=t.sparse,
                   help="sparse embedding gradients (None: on for CPU with SGD)")
    g.add_argument("--fused", action=argparse.BooleanOptionalAction, default=t.fused,
                   help="the fused SGD step, see docs/training-speed.md (None: on for sgd without weight decay or dp)")
    g.add_argument("--hogwild", type=int, default=t.hogwild, metavar="N",
                   help="N threads train the shared model without locks, as fastText's -thread (CPU, fused step; "
                   "not deterministic); 1 = off")
    g.add_argument("--threads", type=int, default=t.threads, help="torch CPU threads per process, 0 = torch's "
                   "default (this small model is fastest single-threaded)")
    g = p.add_argument_group("output")
    g.add_argument("--output-dir", default=t.output_dir, help="where checkpoints and metrics go")
    g.add_argument("--resume", nargs="?", const="last", default=t.resume,
                   help="resume from <output-dir>/last.pt (no value), or from the given checkpoint")
    g.add_argument("--overwrite", action="store_true", default=t.overwrite,
                   help="replace the run already in --output-dir (without it, or --resume, it is refused)")
    g.add_argument("--save-every", type=int, default=t.save_every, help="also write last.pt every N steps "
                   "(0 = at each epoch's end only)")
    g.add_argument("--checkpoints", choices=["epoch", "end", "none"], default=t.checkpoints,
                   help="write last.pt/best.pt at every epoch's end, once at the end, or never (keep the best "
                   "weights in memory for the test)")
    g.add_argument("--tensorboard", metavar="DIR", default=t.tensorboard, help="also log to TensorBoard in DIR")
    g.add_argument("--progress", action=argparse.BooleanOptionalAction, default=t.progress, help="tqdm bars")
    g.add_argument("--cache-dir", default=t.cache_dir, help="where the encoded, memory-mapped training corpus "
                   "is cached (None: <textpipe cache>/corpora)")
    g.add_argument("--cache", action=argparse.BooleanOptionalAction, default=t.cache,
                   help="stream the training file into the memory-mapped corpus cache and reuse it (--no-cache: "
                   "read the data into memory; default: stream files of 32 MiB and more, read smaller ones)")
    g.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return p


def parse_train_args(argv: list[str] | None = None):
    """Command line -> (TrainConfig, debug flag). Unparsable flags exit 2; values are checked by `fit`."""
    from textpipe.train import TrainConfig

    args = vars(train_parser().parse_args(argv))
    debug = args.pop("debug")
    return TrainConfig(**args), debug


def train_main(argv: list[str] | None = None) -> int:
    """`textpipe train`: parse, then `fit`; errors are one line (see `run_cli`)."""
    from textpipe.train import fit

    cfg, debug = parse_train_args(argv)

    def run() -> int:
        fit(cfg)
        return 0

    return run_cli(run, debug=debug)


def _column(value: str) -> str | int:
    """A column name, or a 0-based index (digits) for files without a header row."""
    return int(value) if value.isdigit() else value


def _add_column_flags(g, text_default=None, label_default=None) -> None:
    g.add_argument("--text-column", dest="text_columns", action="append", type=_column, metavar="NAME",
                   default=text_default, help="column holding the text; repeat to join several with a space, "
                   "in order; 0-based index for files without a header row (None: 'text'; headerless 3 "
                   "columns: AG_NEWS layout, 1 and 2)")
    g.add_argument("--label-column", type=_column, metavar="NAME", default=label_default,
                   help="column holding the label (None: 'label'; headerless 3 columns: 0)")


# -- evaluate --------------------------------------------------------------------------------------------------
def evaluate_parser(prog: str = "textpipe evaluate") -> argparse.ArgumentParser:
    from textpipe.evaluate import __doc__ as doc

    p = _Parser(prog=prog, description=doc, formatter_class=_Formatter)
    p.add_argument("--checkpoint", required=True, help="checkpoint file written by textpipe train")
    g = p.add_argument_group("data", "columns and tokenizer default to the checkpoint's")
    g.add_argument("--data", "--test", dest="data", metavar="PATH", default=None,
                   help="labelled data: a table file, a datasets directory, or a directory holding test.*")
    g.add_argument("--data-dir", default=None, help="directory whose test.* file to evaluate on")
    g.add_argument("--split", default=None, help="split of a DatasetDict (None: test)")
    _add_column_flags(g)
    g.add_argument("--tokenizer", default=None, help="override the checkpoint's tokenizer (None: the checkpoint's)")
    g.add_argument("--on-bad-rows", choices=["raise", "skip"], default="raise", help="malformed rows")
    g = p.add_argument_group("devices")
    g.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    g.add_argument("--batch-size", type=int, default=512, help="texts per forward pass")
    g = p.add_argument_group("output")
    g.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    g.add_argument("--confusion-png", default=None, help="also draw the confusion matrix to this PNG")
    g.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return p


def evaluate_main(argv: list[str] | None = None) -> int:
    """`textpipe evaluate`: metrics of a checkpoint on labelled data."""
    import json

    p = evaluate_parser()
    args = p.parse_args(argv)
    if (args.data is None) == (args.data_dir is None):
        p.error("give the data to evaluate on: --data PATH or --data-dir DIR (one of them)")
    if args.batch_size < 1:
        p.error(f"--batch-size must be >= 1, got {args.batch_size}")

    def run() -> int:
        from textpipe.evaluate import evaluate
        from textpipe.metrics import format_report, save_confusion_png

        report = evaluate(args.checkpoint, args.data or args.data_dir, batch_size=args.batch_size,
                          device=args.device, text_columns=args.text_columns, label_column=args.label_column,
                          split=args.split, tokenizer=args.tokenizer, on_bad_rows=args.on_bad_rows)
        if args.confusion_png and not save_confusion_png(report["confusion"], report["class_names"],
                                                         args.confusion_png):
            print("note: matplotlib is not installed, no PNG drawn (pip install matplotlib)", file=sys.stderr)
        print(json.dumps(report) if args.json else format_report(report, report["class_names"]))
        return 0

    return run_cli(run, debug=args.debug)


# -- predict ---------------------------------------------------------------------------------------------------
def predict_parser(prog: str = "textpipe predict") -> argparse.ArgumentParser:
    from textpipe.predict import __doc__ as doc

    p = _Parser(prog=prog, description=doc, formatter_class=_Formatter)
    p.add_argument("--checkpoint", required=True, help="checkpoint file written by textpipe train")
    p.add_argument("texts", nargs="*", help="texts to classify (None: --data, else one per line from stdin)")
    g = p.add_argument_group("data", "columns and tokenizer default to the checkpoint's")
    g.add_argument("--data", metavar="FILE", default=None, help="classify the texts of this table file")
    g.add_argument("--split", default=None, help="split of a DatasetDict (None: test)")
    g.add_argument("--text-column", dest="text_columns", action="append", type=_column, metavar="NAME",
                   default=None, help="column(s) holding the text, as for train")
    g.add_argument("--tokenizer", default=None, help="override the checkpoint's tokenizer")
    g = p.add_argument_group("devices")
    g.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    g.add_argument("--batch-size", type=int, default=512, help="texts per forward pass")
    g = p.add_argument_group("output")
    g.add_argument("--json", action="store_true", help="one JSON object per text")
    g.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return p


def predict_main(argv: list[str] | None = None) -> int:
    """`textpipe predict`: the class of each text."""
    import json

    p = predict_parser()
    args = p.parse_args(argv)
    if args.texts and args.data:
        p.error("give texts or --data FILE, not both")
    if args.batch_size < 1:
        p.error(f"--batch-size must be >= 1, got {args.batch_size}")

    def run() -> int:
        from textpipe.checkpoint import data_info, load_checkpoint
        from textpipe.data.table import read_table
        from textpipe.predict import predict

        if args.data:
            columns = args.text_columns
            if columns is None:  # the checkpoint's text columns (its labels are not needed)
                columns = data_info(load_checkpoint(args.checkpoint))["text_columns"]
            split = args.split or ("test" if os.path.isfile(os.path.join(args.data, "dataset_dict.json")) else None)
            _, texts = read_table(args.data, text_columns=columns, split=split, need_label=False)
        else:
            texts = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
        results = predict(args.checkpoint, texts, device=args.device, batch_size=args.batch_size,
                          tokenizer=args.tokenizer)
        for text, r in zip(texts, results):
            if args.json:
                print(json.dumps({"text": text, **r}))
            else:
                probs = " ".join(f"{name}={p:.3f}" for name, p in r["probs"].items())
                print(f"{r['label_name']}\t{probs}\t{text[:80]}")
        return 0

    return run_cli(run, debug=args.debug)


# -- the console script ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """`textpipe {train,evaluate,predict} ...` and `textpipe --version`."""
    from textpipe import __version__

    commands = {"train": train_main, "evaluate": evaluate_main, "predict": predict_main, "tune": _tune_main}
    argv = list(sys.argv[1:] if argv is None else argv)
    p = _Parser(prog="textpipe", description=__doc__, formatter_class=_Formatter)
    p.add_argument("--version", action="version", version=f"textpipe {__version__}")
    p.add_argument("command", choices=list(commands), help="what to do; `textpipe COMMAND --help` for its flags")
    if not argv or argv[0].startswith("-"):  # --help, --version, or a flag without a command
        p.parse_args(argv)
        p.error("expected a command: train, evaluate, predict or tune")
    p.parse_args(argv[:1])
    return commands[argv[0]](argv[1:])


def _tune_main(argv):
    from textpipe.tune import main as tune_main  # imports Ray only once a search starts

    return tune_main(argv)
