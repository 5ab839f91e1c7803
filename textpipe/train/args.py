"""Train a text classifier (`textpipe train`, `python -m textpipe.train`; from Python: `textpipe.train.fit`).

    python -m textpipe.train --data-dir ../shared/data/ag_news                  # CPU or one GPU
    python -m textpipe.train --train reviews.csv --test test.csv --text-column body --label-column stars
    python -m textpipe.train --data-dir DIR --parallel dp                        # nn.DataParallel, all GPUs
    torchrun --nproc_per_node=N -m textpipe.train --data-dir DIR --parallel ddp  # DistributedDataParallel

Multi-node: torchrun --nnodes=2 --node_rank=0|1 --master_addr=HOST --master_port=29500 --nproc_per_node=N ...
Outputs in --output-dir: best.pt, last.pt, metrics.jsonl, summary.json, confusion_matrix.png.
From Python: `fit(TrainConfig(train="reviews.csv", epochs=3), report=print)` returns the summary as a dict.
"""
from __future__ import annotations

import argparse

from textpipe.core.cli_args import Formatter, Parser, add_column_flags
from textpipe.data.formats import DESCRIPTION
from textpipe.models import MODELS
from textpipe.train.config import TrainConfig

__all__ = ["train_parser", "parse_train_args"]


def train_parser(prog: str = "textpipe train") -> argparse.ArgumentParser:
    """The parser of `textpipe train`; its defaults come from `TrainConfig`."""
    t = TrainConfig()
    p = Parser(prog=prog, description=__doc__, formatter_class=Formatter)
    g = p.add_argument_group("data", f"files: {DESCRIPTION}, or a "
                             "datasets save_to_disk directory")
    g.add_argument("--data-dir", default=t.data_dir, help="directory with train.*, optionally val.* and test.* "
                   "(and classes.txt), or a DatasetDict save_to_disk directory (None and no --train: AG_NEWS "
                   "from the textpipe cache, downloaded once)")
    g.add_argument("--train", metavar="FILE", default=t.train, help="training data (overrides --data-dir's)")
    g.add_argument("--val", metavar="FILE", default=t.val, help="validation data, for best-model selection and "
                   "early stopping (or --val-fraction)")
    g.add_argument("--test", metavar="FILE", default=t.test, help="test data, for the final report")
    add_column_flags(g, t.text_columns, t.label_column)
    g.add_argument("--classes", nargs="+", metavar="NAME", default=t.classes,
                   help="class order: the label values (or, for int labels 1..C / 0..C-1, their names), or one "
                   "classes.txt (None: <data-dir>/classes.txt, else the sorted labels)")
    g.add_argument("--tokenizer", default=t.tokenizer, help="basic_english | split | hf:tokenizer.json (a "
                   "Hugging Face tokenizers file, e.g. from `textpipe tokenizer train`) | a registered name")
    g.add_argument("--on-bad-rows", choices=["raise", "skip"], default=t.on_bad_rows,
                   help="malformed rows: stop with an error, or skip them with a warning that counts them")
    g = p.add_argument_group("model")
    g.add_argument("--model", default=t.model, metavar="NAME", help=f"the model family (textpipe.models): "
                   f"{' | '.join(m for m in MODELS if m != 'hf')} | hf:NAME_OR_DIR (a pretrained Hugging Face "
                   "encoder + classification head, with its own tokenizer; the hf extra)")
    g.add_argument("--freeze", default=t.freeze, help="hf: models: none | embeddings | encoder (train the head "
                   "only) | all-but-N (train the top N layers and the head)")
    g.add_argument("--layer-lr-decay", type=float, default=t.layer_lr_decay, help="hf: models: layer i from "
                   "the top learns at lr * decay**i, the embeddings at lr * decay**(layers + 1); 1.0 = one rate")
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
    args = vars(train_parser().parse_args(argv))
    debug = args.pop("debug")
    return TrainConfig(**args), debug
