"""The `textpipe` command: `textpipe train|evaluate|predict ...` (also `python -m textpipe ...`).

    textpipe train --data-dir ../shared/data/ag_news
    textpipe evaluate --checkpoint runs/ag_news/best.pt --data-dir ../shared/data/ag_news --json
    echo "Stocks fell as oil rose" | textpipe predict --checkpoint runs/ag_news/best.pt

Every user error is one `error: ...` line on stderr and exit status 2, found before any slow work; `--debug`
shows the traceback instead.
"""
from __future__ import annotations

import argparse
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
    g = p.add_argument_group("data")
    g.add_argument("--data-dir", default=t.data_dir, help="directory with train.csv[.gz] and optionally "
                   "test.csv[.gz] (None: the textpipe cache, downloading AG_NEWS once)")
    g = p.add_argument_group("model")
    g.add_argument("--embed-dim", type=int, default=t.embed_dim, help="embedding size")
    g.add_argument("--ngrams", type=int, choices=[1, 2], default=t.ngrams, help="1 = words, 2 = words + hashed bigrams")
    g.add_argument("--buckets", type=int, default=t.buckets, help="bigram hash buckets")
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
                   help="batch texts of similar length")
    g.add_argument("--sparse", action=argparse.BooleanOptionalAction, default=t.sparse,
                   help="sparse embedding gradients (None: on for CPU with SGD)")
    g.add_argument("--threads", type=int, default=t.threads, help="torch CPU threads per process, 0 = torch's "
                   "default (this small model is fastest single-threaded)")
    g = p.add_argument_group("output")
    g.add_argument("--output-dir", default=t.output_dir, help="where checkpoints and metrics go")
    g.add_argument("--resume", nargs="?", const="last", default=t.resume,
                   help="resume from <output-dir>/last.pt (no value), or from the given checkpoint")
    g.add_argument("--save-every", type=int, default=t.save_every, help="also write last.pt every N steps "
                   "(0 = at each epoch's end only)")
    g.add_argument("--tensorboard", metavar="DIR", default=t.tensorboard, help="also log to TensorBoard in DIR")
    g.add_argument("--progress", action=argparse.BooleanOptionalAction, default=t.progress, help="tqdm bars")
    g.add_argument("--cache-dir", default=t.cache_dir, help="where the encoded, memory-mapped training corpus "
                   "is cached (None: <textpipe cache>/corpora)")
    g.add_argument("--cache", action=argparse.BooleanOptionalAction, default=t.cache,
                   help="reuse the cached corpus (--no-cache: rebuild it)")
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


# -- the console script ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """`textpipe {train,evaluate,predict} ...` and `textpipe --version`."""
    from textpipe import __version__

    commands = {"train": train_main, "evaluate": _evaluate_main, "predict": _predict_main}
    argv = list(sys.argv[1:] if argv is None else argv)
    p = _Parser(prog="textpipe", description=__doc__, formatter_class=_Formatter)
    p.add_argument("--version", action="version", version=f"textpipe {__version__}")
    p.add_argument("command", choices=list(commands), help="what to do; `textpipe COMMAND --help` for its flags")
    if not argv or argv[0].startswith("-"):  # --help, --version, or a flag without a command
        p.parse_args(argv)
        p.error("expected a command: train, evaluate or predict")
    p.parse_args(argv[:1])
    return commands[argv[0]](argv[1:])


def _evaluate_main(argv):
    from textpipe.evaluate import main as evaluate_main

    return evaluate_main(argv)


def _predict_main(argv):
    from textpipe.predict import main as predict_main

    return predict_main(argv)
