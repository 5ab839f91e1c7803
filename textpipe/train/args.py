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

from textpipe.core.cli_args import Formatter, Parser, add_column_flags, add_format_flags
from textpipe.data.formats import DESCRIPTION, FILE_FORMATS, QUOTINGS
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
    add_format_flags(g, FILE_FORMATS, QUOTINGS, t.format, t.quoting)
    add_column_flags(g, t.text_columns, t.label_column)
    g.add_argument("--classes", nargs="+", metavar="NAME", default=t.classes,
                   help="class order: the label values (or, for int labels 1..C / 0..C-1, their names), or one "
                   "classes.txt (None: <data-dir>/classes.txt, else the sorted labels)")
    g.add_argument("--tokenizer", default=t.tokenizer, help="basic_english | split | hf:tokenizer.json (a "
                   "Hugging Face tokenizers file, e.g. from `textpipe tokenizer train`) | a registered name")
    g.add_argument("--on-bad-rows", choices=["raise", "skip"], default=t.on_bad_rows,
                   help="malformed rows: stop with an error, or skip them with a warning that counts them")
    g = p.add_argument_group("model")
    g.add_argument("--model", default=t.model, metavar="NAME", help="the model family (textpipe.models): bag = "
                   "fastText-style mean of word and bigram embeddings, cnn = Kim (2014), rnn = bidirectional LSTM/GRU, "
                   "transformer = small pre-norm encoder, hf:NAME_OR_DIR = a pretrained Hugging Face encoder + "
                   "classification head with its own tokenizer (the hf extra). Flags left unset take the model's "
                   "defaults")
    g.add_argument("--freeze", default=t.freeze, help="hf: models: none | embeddings | encoder (train the head "
                   "only) | all-but-N (train the top N layers and the head)")
    g.add_argument("--layer-lr-decay", type=float, default=t.layer_lr_decay, help="hf: models: layer i from "
                   "the top learns at lr * decay**i, the embeddings at lr * decay**(layers + 1); 1.0 = one rate")
    g.add_argument("--embed-dim", type=int, default=t.embed_dim, help="embedding size (None: bag 10, cnn 300, others 128)")
    g.add_argument("--vectors", metavar="FILE", default=t.vectors, help="initialise the token embeddings from pretrained "
                   "vectors (GloVe .txt, fastText .vec, .gz/.zip); set --embed-dim to their dimension")
    g.add_argument("--freeze-embeddings", action="store_true", default=t.freeze_embeddings,
                   help="keep the token embeddings fixed (with --vectors: static pretrained vectors)")
    g = p.add_argument_group("model: bag", "the default model (fastText-style)")
    g.add_argument("--ngrams", type=int, choices=[1, 2], default=t.ngrams,
                   help="1 = words, 2 = words + hashed bigrams (None: 2)")
    g.add_argument("--buckets", type=int, default=t.buckets, help="hash buckets of bigrams and subwords (None: 2**18)")
    g.add_argument("--minn", type=int, default=t.minn,
                   help="shortest character n-gram of a word (0 = none; fastText's) (None: 0)")
    g.add_argument("--maxn", type=int, default=t.maxn,
                   help="longest character n-gram of a word (0 = none; fastText's) (None: 0)")
    g.add_argument("--weighting", choices=["mean", "nb"], default=t.weighting, help="a text's vector: the mean of its "
                   "rows, or nb = their mean weighted by naive Bayes log-count ratios of the training texts (Wang & "
                   "Manning 2012; None: nb)")
    g = p.add_argument_group("model: cnn", "Kim (2014): convolutions, max over time")
    g.add_argument("--kernel-sizes", type=int, nargs="+", metavar="W", default=t.kernel_sizes,
                   help="convolution widths in tokens (None: 3 4 5)")
    g.add_argument("--num-filters", type=int, default=t.num_filters, help="feature maps per width (None: 100)")
    g = p.add_argument_group("model: rnn", "bidirectional LSTM/GRU over packed sequences")
    g.add_argument("--rnn-cell", choices=["lstm", "gru"], default=t.rnn_cell, help="recurrent cell (None: lstm)")
    g.add_argument("--hidden-dim", type=int, default=t.hidden_dim, help="hidden size per direction (None: 128)")
    g.add_argument("--pooling", choices=["max", "mean", "last", "first"], default=t.pooling,
                   help="rnn: max | mean over time, or last = final states (None: max); transformer: mean | first "
                   "token (None: mean)")
    g = p.add_argument_group("model: transformer", "small pre-norm encoder, learned positions, padding mask")
    g.add_argument("--num-heads", type=int, default=t.num_heads, help="attention heads (None: 4)")
    g.add_argument("--ff-dim", type=int, default=t.ff_dim, help="feed-forward width (None: 256)")
    g.add_argument("--max-len", type=int, default=t.max_len, help="truncate texts to N tokens (None: 256)")
    g = p.add_argument_group("model: rnn and transformer")
    g.add_argument("--num-layers", type=int, default=t.num_layers, help="stacked layers (None: rnn 1, transformer 2)")
    g.add_argument("--dropout", type=float, default=t.dropout, help="dropout (None: cnn 0.5, rnn 0.5, "
                   "transformer 0.3; also cnn's)")
    g.add_argument("--embed-dropout", type=float, default=t.embed_dropout, help="cnn and transformer: dropout on "
                   "the token embeddings (transformer: on their sum with the positions) (None: 0.0)")
    g.add_argument("--unk-dropout", type=float, default=t.unk_dropout, metavar="P", help="cnn, rnn and "
                   "transformer: in training, each token becomes <unk> with probability P, so <unk> (every word "
                   "the training data lacks) gets trained (None: transformer 0.02, cnn and rnn 0.0)")
    g = p.add_argument_group("vocabulary")
    g.add_argument("--min-freq", type=int, default=t.min_freq, help="minimum token count for the vocabulary")
    g.add_argument("--max-tokens", type=int, default=t.max_tokens, help="maximum vocabulary size (None: no cap)")
    g = p.add_argument_group("optimisation", "None = the model's default: bag sgd, lr 8, 8 epochs, batch 256, no "
                             "warmup or clipping; cnn/rnn adamw, lr 2e-3, weight decay 0.01 (cnn 0.3), warmup 0.1, "
                             "clip 1.0, batch 64, 8 epochs, no class weights; transformer as rnn with lr 1e-3, batch "
                             "16 and 3 epochs")
    g.add_argument("--epochs", type=int, default=t.epochs, help="passes over the training portion")
    g.add_argument("--batch-size", type=batch_size, default=t.batch_size, help="samples per optimizer step per "
                   "process, or auto = the largest that fits on the GPU, found by trial (CPU: the model's default)")
    g.add_argument("--accumulate", type=int, default=t.accumulate, metavar="N", help="split each batch into N "
                   "micro-batches (gradient accumulation: the same step in 1/N of the memory)")
    g.add_argument("--lr", type=float, default=t.lr, help="peak learning rate (None: the model's, "
                   "bag 8.0, cnn/rnn 2e-3, transformer 1e-3)")
    g.add_argument("--optimizer", choices=["sgd", "adamw"], default=t.optimizer, help="optimizer")
    g.add_argument("--schedule", choices=["linear", "cosine", "constant"], default=t.schedule,
                   help="learning-rate schedule over all steps")
    g.add_argument("--weight-decay", type=float, default=t.weight_decay, help="L2 penalty (adamw: decoupled)")
    g.add_argument("--class-weight", default=t.class_weight, choices=("auto", "none", "balanced", "sqrt"),
                   help="loss weight per class: balanced = n / (C n_c), sqrt = its square root; auto = sqrt when the "
                        "largest class has 3x the rows of the smallest or more, else none (None: the model's, bag "
                        "and hf auto, cnn/rnn/transformer none)")
    g.add_argument("--label-smoothing", type=float, default=t.label_smoothing,
                   help="target 1 - S on the label and S / C on every class")
    g.add_argument("--warmup", type=float, default=t.warmup, help="share of the steps over which the lr rises "
                   "from 0 to --lr, in [0, 1)")
    g.add_argument("--clip-grad", type=float, default=t.clip_grad, help="clip the gradient norm (0 = off)")
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
    g.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default=t.precision,
                   help="autocast precision: bf16 or fp16 (with a gradient scaler) on CUDA; the CPU takes bf16 too")
    g.add_argument("--compile", action="store_true", default=t.compile, help="torch.compile the model (opt-in)")
    g.add_argument("--threads", type=int, default=t.threads, help="torch CPU threads per process, 0 = torch's "
                   "default (this small model is fastest single-threaded)")
    g = p.add_argument_group("output")
    g.add_argument("--output-dir", default=t.output_dir, help="where checkpoints and metrics go (None: "
                   "runs/<name of the training data>, e.g. runs/ag_news, runs/SMSSpamCollection)")
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
    g.add_argument("--rebuild-cache", action="store_true", default=t.rebuild_cache,
                   help="build the training file's corpus cache entry again, even if a complete one exists (a "
                   "reused entry is announced in one line; a damaged one is rebuilt on its own)")
    g.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return p


def batch_size(text: str) -> int | str:
    """`--batch-size` values: a positive int or "auto"."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or auto, got {text!r}") from None


def parse_train_args(argv: list[str] | None = None):
    """Command line -> (TrainConfig, debug flag). Unparsable flags exit 2; values are checked by `fit`."""
    args = vars(train_parser().parse_args(argv))
    debug = args.pop("debug")
    return TrainConfig(**args), debug
