"""TrainConfig, the settings of one training run (`textpipe train` flags map 1:1 to its fields), and their checks.

    >>> TrainConfig(epochs=3, lr=4.0).batch_size
    256
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from textpipe.core.distributed import TORCHRUN_VARS
from textpipe.models import ModelConfig, config_class, hyperparameters, split_name
from textpipe.models.hf import check_freeze

__all__ = ["TrainConfig", "check_config", "config_dict", "model_keys", "data_tokenizer", "is_hf_model", "RESUME_KEYS"]

# Flags that shape the training trajectory: a resumed run must use the same values as the checkpoint.
RESUME_KEYS = ("epochs", "batch_size", "lr", "optimizer", "schedule", "weight_decay", "min_freq", "max_tokens",
               "val_fraction", "seed", "bucket", "max_steps", "embed_dim", "ngrams", "buckets", "tokenizer",
               "fused", "model", "layer_lr_decay")  # --freeze: a model config field, checked as one
FUSED_MODELS = ("bag",)  # the models the fused SGD step (textpipe.train.fused) can train
_MODEL_DEFAULTS = ModelConfig.__dataclass_fields__


@dataclass
class TrainConfig:
    # -- data (see textpipe.data.sources)
    data_dir: str | None = None  # directory with train/val/test files; None (and no train) = AG_NEWS cache/download
    train: object = None  # training data: a csv/tsv/jsonl/json(.gz)/parquet file, a save_to_disk dir, a datasets object
    val: object = None  # validation data (instead of --val-fraction), same kinds
    test: object = None  # test data, same kinds (the best model is tested on it at the end)
    text_columns: list | None = None  # column names (or 0-based indexes, headerless CSV/TSV) joined into the text
    label_column: str | int | None = None  # label column; None = "label" (headerless 3 columns: AG_NEWS layout)
    classes: list | str | None = None  # class order: label values or names, or a classes.txt; None = sorted
    tokenizer: str = "basic_english"  # basic_english | split | a name given to textpipe.text.tokenizer.register_tokenizer
    on_bad_rows: str = "raise"  # raise | skip (malformed rows, with a warning that counts them)
    # -- model
    model: str = "bag"  # a name of textpipe.models.MODELS (hf:NAME_OR_DIR: a pretrained Hugging Face encoder); its
    # config takes the fields below of the same names
    embed_dim: int = 10  # embedding size (fastText's; tuned with --val-fraction 0.1, docs/training-speed.md)
    ngrams: int = _MODEL_DEFAULTS["ngrams"].default  # 1 = words, 2 = words + hashed bigrams
    buckets: int = _MODEL_DEFAULTS["buckets"].default  # bigram hash buckets
    vectors: str | None = None  # pretrained word vectors (.txt/.vec/.gz/.zip) for the token embeddings; needs embed_dim = their dim
    freeze: str = "none"  # hf: models: none | embeddings | encoder (head only) | all-but-N (top N layers + head)
    layer_lr_decay: float = 1.0  # hf: models: layer i from the top learns at lr * decay**i (1.0 = one rate)
    min_freq: int = 1  # keep tokens seen at least this often in the training portion
    max_tokens: int | None = None  # cap on the vocabulary size, specials included; None = no cap
    # -- optimisation
    epochs: int = 4  # passes over the training portion
    batch_size: int = 256  # samples per step per process (DataParallel: split over the GPUs)
    lr: float = 16.0  # peak learning rate (the fused step's rule: docs/training-speed.md)
    optimizer: str = "sgd"  # sgd | adamw (adamw needs dense gradients)
    schedule: str = "linear"  # linear (decay to 0) | cosine | constant
    weight_decay: float = 0.0  # L2 penalty (adamw: decoupled)
    fused: bool | None = None  # the fused SGD step (textpipe.train.fused); None = on for sgd without weight decay or dp
    val_fraction: float = 0.0  # share of train held out for validation (0 = train on all; see docs)
    seed: int = 0  # model init, split and sampler order
    max_steps: int = -1  # stop after this many optimizer steps (-1 = run all epochs)
    patience: int = 0  # stop after N epochs without a better validation accuracy (0 = never)
    eval_batch_size: int = 512  # texts per forward pass in validation and test
    # -- devices
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    parallel: str = "none"  # none | dp (nn.DataParallel) | ddp (DistributedDataParallel under torchrun)
    num_workers: int = 0  # DataLoader worker processes (0 is fastest for the pre-encoded corpus)
    pin_memory: bool | None = None  # page-locked batches for async host-to-GPU copies; None = on CUDA only
    bucket: bool | None = None  # batch texts of similar length (less padding); None = on, off with the fused step
    sparse: bool | None = None  # sparse embedding gradients; None = on for CPU + SGD, off otherwise
    threads: int = 1  # torch CPU threads per process; 0 = torch's default (see examples/train_ag_news.md)
    hogwild: int = 1  # training threads that update the model without locks (fastText's -thread; fused step,
    # CPU, one process); 1 = off: deterministic, and a resumed run equals an uninterrupted one
    # -- output
    output_dir: str = "runs/ag_news"  # checkpoints, metrics.jsonl, summary.json
    resume: str | None = None  # "last" = <output-dir>/last.pt, or a checkpoint path
    overwrite: bool = False  # replace the run already in output_dir (else it is refused, unless resuming)
    save_every: int = 0  # also write last.pt every N steps (0 = at the end of each epoch only)
    checkpoints: str = "epoch"  # epoch: last.pt/best.pt each epoch | end: once, at the end | none: never
    tensorboard: str | None = None  # also log scalars to this TensorBoard directory
    progress: bool = True  # tqdm progress bars (rank 0 only)
    cache_dir: str | None = None  # where a training file's encoded corpus is cached; None = <textpipe cache>/corpora
    cache: bool | None = None  # stream the training file into the memory-mapped corpus cache; False = read it into
    # memory; None = stream files of corpus_cache.STREAM_MIN_BYTES (32 MiB) and more, read smaller ones


def check_config(cfg: TrainConfig) -> None:
    """Raise ValueError naming the first field (and its flag) whose value cannot work; no slow work."""
    def bad(name: str, expected: str) -> ValueError:
        return ValueError(f"{name} (--{name.replace('_', '-')}) must be {expected}, got {getattr(cfg, name)!r}")

    for name in ("epochs", "batch_size", "eval_batch_size", "embed_dim"):
        if getattr(cfg, name) < 1:
            raise bad(name, ">= 1")
    for name in ("min_freq", "num_workers", "threads", "save_every", "patience"):
        if getattr(cfg, name) < 0:
            raise bad(name, ">= 0")
    if cfg.max_tokens is not None and cfg.max_tokens < 3:
        raise bad("max_tokens", ">= 3 (the 2 specials and one token) or None")
    if not 0.0 <= cfg.val_fraction < 1.0:
        raise bad("val_fraction", "in [0, 1)")
    if cfg.lr < 0 or cfg.weight_decay < 0:
        raise bad("lr" if cfg.lr < 0 else "weight_decay", ">= 0")
    for name, choices in (("optimizer", ("sgd", "adamw")), ("schedule", ("linear", "cosine", "constant")),
                          ("parallel", ("none", "dp", "ddp")), ("ngrams", (1, 2)), ("on_bad_rows", ("raise", "skip")),
                          ("checkpoints", ("epoch", "end", "none"))):
        if getattr(cfg, name) not in choices:
            raise bad(name, f"one of {choices}")
    for name in ("cache", "bucket", "sparse", "fused", "pin_memory", "overwrite", "progress"):
        if type(getattr(cfg, name)) not in (bool, type(None)):  # "False" would be true
            raise bad(name, "True, False" + ("" if name in ("overwrite", "progress") else " or None"))
    if cfg.hogwild < 1:
        raise bad("hogwild", ">= 1 (1 = off)")
    if cfg.hogwild > 1 and (cfg.parallel != "none" or cfg.save_every):
        raise ValueError(f"--hogwild {cfg.hogwild} trains with threads in one process, so it needs --parallel none "
                         f"(got {cfg.parallel!r}) and checkpoints at epoch ends only (--save-every 0, got "
                         f"{cfg.save_every})")
    config_class(cfg.model)  # ValueError naming the models
    family, source = split_name(cfg.model)
    if family == "hf":
        if not source:
            raise bad("model", "hf:NAME_OR_DIR (a model directory or a model name in the Hugging Face cache)")
        if cfg.tokenizer not in ("basic_english", f"hf:{source}"):
            raise ValueError(f"--model {cfg.model} reads the ids of its own tokenizer (hf:{source}); drop "
                             f"--tokenizer {cfg.tokenizer}")
    elif cfg.freeze != "none" or cfg.layer_lr_decay != 1.0:
        raise ValueError(f"--freeze and --layer-lr-decay apply to hf: models, not {cfg.model!r}")
    check_freeze(cfg.freeze)
    if not 0.0 < cfg.layer_lr_decay <= 1.0:
        raise bad("layer_lr_decay", "in (0, 1]")
    if cfg.ngrams == 2 and cfg.buckets < 1:
        raise bad("buckets", ">= 1 with --ngrams 2")
    if cfg.parallel == "ddp" and not all(v in os.environ for v in TORCHRUN_VARS):
        raise ValueError("--parallel ddp must be started by torchrun, which sets RANK/LOCAL_RANK/WORLD_SIZE "
                         "(not set here): torchrun --nproc_per_node=N -m textpipe.train --parallel ddp ...")
    if cfg.resume and cfg.overwrite:
        raise ValueError("--resume continues the run in --output-dir and --overwrite replaces it: give one")
    if cfg.resume and cfg.checkpoints == "none":
        raise ValueError("--resume needs checkpoints to resume from: leave --checkpoints at epoch")
    if cfg.save_every and cfg.checkpoints != "epoch":
        raise ValueError(f"--save-every writes last.pt during training: it needs --checkpoints epoch, got "
                         f"{cfg.checkpoints!r}")
    if cfg.fused and cfg.model not in FUSED_MODELS:
        raise ValueError(f"--fused trains only the {' and '.join(FUSED_MODELS)} model(s), not {cfg.model!r}; use "
                         "--no-fused")
    if cfg.fused and (cfg.optimizer != "sgd" or cfg.weight_decay or cfg.parallel == "dp"):
        raise ValueError("--fused needs --optimizer sgd, --weight-decay 0 and no --parallel dp; use --no-fused")
    if cfg.sparse and cfg.optimizer == "adamw":
        raise ValueError("--sparse needs --optimizer sgd (AdamW cannot take sparse gradients); use --no-sparse")
    if not (cfg.device in ("auto", "cpu", "cuda") or cfg.device.startswith("cuda:")):
        raise bad("device", "auto, cpu, cuda or cuda:N")
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {cfg.device}: no CUDA GPU is visible here; use --device cpu (or auto)")
    if cfg.tensorboard:
        try:
            import torch.utils.tensorboard  # noqa: F401
        except ImportError:
            raise ValueError("--tensorboard needs the tensorboard package: pip install tensorboard") from None


def config_dict(cfg: TrainConfig) -> dict:
    """The config as JSON/checkpoint-safe values: a datasets object becomes a short description."""
    def safe(v):
        if v is None or isinstance(v, (str, int, float, bool)):
            return v
        if isinstance(v, (list, tuple)):
            return [safe(x) for x in v]
        if isinstance(v, os.PathLike):
            return os.fspath(v)
        fingerprint = getattr(v, "_fingerprint", None)
        return f"<{type(v).__name__}{f' {fingerprint}' if fingerprint else ''}>"

    return {k: safe(getattr(cfg, k)) for k in cfg.__dataclass_fields__}


def is_hf_model(cfg: TrainConfig) -> bool:
    """Whether `cfg.model` is `hf:NAME_OR_DIR` (a pretrained encoder that reads its own tokenizer's ids)."""
    return split_name(cfg.model)[0] == "hf"


def data_tokenizer(cfg: TrainConfig) -> str:
    """The tokenizer the data is encoded with: an hf: model's own (`hf:SOURCE`), else `--tokenizer`."""
    family, source = split_name(cfg.model)
    return f"hf:{source}" if family == "hf" else cfg.tokenizer


def model_keys(cfg: TrainConfig) -> tuple[str, ...]:
    """The fields of `cfg` that go into its model's config (the rest of that config follows from the data)."""
    return tuple(k for k in hyperparameters(cfg.model) if k in TrainConfig.__dataclass_fields__)
