"""TrainConfig, the settings of one training run (`textpipe train` flags map 1:1 to its fields), and their checks.

Fields left at None take the model's defaults (`textpipe.models.TRAIN_DEFAULTS`, then the model config's own
defaults) in `settle_defaults`, which `fit` calls first; checkpoints and summary.json record the settled values.

    >>> settle_defaults(TrainConfig(epochs=3)).batch_size, settle_defaults(TrainConfig(model="cnn")).optimizer
    (256, 'adamw')
"""
from __future__ import annotations

import os
from dataclasses import MISSING, dataclass, fields, replace

import torch

from textpipe.core.distributed import TORCHRUN_VARS
from textpipe.data.formats import FILE_FORMATS, QUOTINGS
from textpipe.models import DERIVED, MODELS, TRAIN_DEFAULTS, config_class, hyperparameters, split_name
from textpipe.models.hf import check_freeze

__all__ = ["TrainConfig", "check_config", "config_dict", "default_output_dir", "model_keys", "settle_defaults",
           "data_tokenizer", "is_hf_model", "foreign_keys", "RESUME_KEYS", "PRECISIONS", "class_weights",
           "CLASS_WEIGHT_AUTO"]

# Flags that shape the training trajectory: a resumed run must use the same values as the checkpoint.
RESUME_KEYS = ("epochs", "batch_size", "lr", "optimizer", "schedule", "weight_decay", "class_weight",
               "label_smoothing", "min_freq", "max_tokens", "val_fraction", "seed", "bucket", "max_steps",
               "embed_dim", "ngrams", "buckets", "minn", "maxn", "weighting", "tokenizer", "fused", "model", "format", "quoting",
               "warmup", "clip_grad", "kernel_sizes", "num_filters", "rnn_cell", "hidden_dim", "num_layers",
               "pooling", "num_heads", "ff_dim", "max_len", "dropout", "embed_dropout", "unk_dropout",
               "freeze_embeddings", "precision", "layer_lr_decay")  # --freeze: a model config field, checked as one
PRECISIONS = ("fp32", "bf16", "fp16")
FUSED_MODELS = ("bag",)  # the models the fused SGD step (textpipe.train.fused) can train
CLASS_WEIGHTS = ("auto", "none", "balanced", "sqrt")
# --class-weight auto: the `sqrt` weights when the largest class has at least this many times the rows of the
# smallest, else none (chosen on validation carve-outs: benchmarks/defaults_val.py, README "Default model")
CLASS_WEIGHT_AUTO = ("sqrt", 3.0)


@dataclass
class TrainConfig:
    # -- data (see textpipe.data.sources)
    data_dir: str | None = None  # directory with train/val/test files; None (and no train) = AG_NEWS cache/download
    train: object = None  # training data: a csv/tsv/jsonl/json(.gz)/parquet file, a save_to_disk dir, a datasets object
    val: object = None  # validation data (instead of --val-fraction), same kinds
    test: object = None  # test data, same kinds (the best model is tested on it at the end)
    format: str | None = None  # csv | tsv | jsonl | parquet | fasttext, of every file given; None = by extension
    quoting: str | None = None  # csv | none: quoted fields in CSV/TSV; None = csv for CSV, none for TSV
    text_columns: list | None = None  # column names (or 0-based indexes, headerless CSV/TSV) joined into the text
    label_column: str | int | None = None  # label column; None = "label" (headerless 3 columns: AG_NEWS layout)
    classes: list | str | None = None  # class order: label values or names, or a classes.txt; None = sorted
    tokenizer: str = "basic_english"  # basic_english | split | a name given to textpipe.text.tokenizer.register_tokenizer
    on_bad_rows: str = "raise"  # raise | skip (malformed rows, with a warning that counts them)
    # -- model
    model: str = "bag"  # bag | cnn | rnn | transformer | hf:NAME_OR_DIR (textpipe.models.MODELS); its config takes
    # the fields below of the same names. None = the model's default (TRAIN_DEFAULTS, else its config's default)
    embed_dim: int | None = None  # embedding size (bag 10: fastText's, docs/training-speed.md; cnn 300: Kim's; others 128)
    ngrams: int | None = None  # bag: 1 = words, 2 = words + hashed bigrams (2)
    buckets: int | None = None  # bag: hash buckets of bigrams and subwords (2**18)
    minn: int | None = None  # bag: character n-grams of each word from minn to maxn characters
    maxn: int | None = None  # (bag: 0, 0 = no subword features; fastText's -minn/-maxn)
    weighting: str | None = None  # bag: mean | nb (NB-weighted mean, textpipe.models.bag.nb_row_weights); None = nb
    vectors: str | None = None  # pretrained word vectors (.txt/.vec/.gz/.zip) for the token embeddings; needs embed_dim = their dim
    freeze_embeddings: bool = False  # keep the token embeddings fixed (with --vectors: static vectors, Kim's CNN-static)
    kernel_sizes: list | None = None  # cnn: convolution widths (3 4 5)
    num_filters: int | None = None  # cnn: feature maps per width (100)
    rnn_cell: str | None = None  # rnn: lstm | gru (lstm)
    hidden_dim: int | None = None  # rnn: hidden size per direction (128)
    num_layers: int | None = None  # rnn (1) | transformer (2): stacked layers
    pooling: str | None = None  # rnn: max | mean | last (max); transformer: mean | first (mean)
    num_heads: int | None = None  # transformer: attention heads (4)
    ff_dim: int | None = None  # transformer: feed-forward width (256)
    max_len: int | None = None  # transformer: texts are truncated to this many tokens (256)
    dropout: float | None = None  # cnn 0.5, rnn 0.5, transformer 0.3
    embed_dropout: float | None = None  # cnn, transformer: dropout on the token embeddings (0.0)
    unk_dropout: float | None = None  # cnn, rnn, transformer: share of training tokens read as <unk> (0.0)
    freeze: str = "none"  # hf: models: none | embeddings | encoder (head only) | all-but-N (top N layers + head)
    layer_lr_decay: float = 1.0  # hf: models: layer i from the top learns at lr * decay**i (1.0 = one rate)
    min_freq: int = 1  # keep tokens seen at least this often in the training portion
    max_tokens: int | None = None  # cap on the vocabulary size, specials included; None = no cap
    # -- optimisation
    # (None below = the model's default, textpipe.models.TRAIN_DEFAULTS: bag sgd lr 8, 8 epochs, batch 256; the
    # neural models adamw lr 2e-3 (transformer 1e-3), weight decay 0.01, warmup 0.1, clip 1.0, batch 64, 8 epochs
    # (transformer 6), class weights none)
    epochs: int | None = None  # passes over the training portion
    batch_size: int | str | None = None  # samples per optimizer step per process (DataParallel: split over the
    # GPUs); "auto" = the largest that fits on the GPU, found by trial (CPU: the model's default)
    lr: float | None = None  # peak learning rate
    optimizer: str | None = None  # sgd | adamw (adamw needs dense gradients)
    schedule: str = "linear"  # linear (decay to 0) | cosine | constant, after the warmup
    weight_decay: float | None = None  # L2 penalty (adamw: decoupled)
    class_weight: str | None = None  # none | balanced (n / (C n_c)) | sqrt (its square root) | auto: see
    # CLASS_WEIGHT_AUTO; None = the model's default (bag and hf auto; cnn, rnn, transformer none)
    label_smoothing: float = 0.0  # target 1 - s on the label, s / C on every class
    warmup: float | None = None  # share of all steps over which the lr rises linearly from 0, in [0, 1)
    clip_grad: float | None = None  # clip the gradient norm to this (0 = off)
    accumulate: int = 1  # micro-batches per step: each batch is split in N (gradient accumulation, 1/N memory)
    precision: str = "fp32"  # fp32 | bf16 | fp16 (CUDA autocast; fp16 with a gradient scaler; CPU: fp32, bf16)
    compile: bool = False  # torch.compile the model (opt-in: compiling costs time up front)
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
    output_dir: str | None = None  # checkpoints, metrics.jsonl, summary.json; None = runs/<training data's name>
    resume: str | None = None  # "last" = <output-dir>/last.pt, or a checkpoint path
    overwrite: bool = False  # replace the run already in output_dir (else it is refused, unless resuming)
    save_every: int = 0  # also write last.pt every N steps (0 = at the end of each epoch only)
    checkpoints: str = "epoch"  # epoch: last.pt/best.pt each epoch | end: once, at the end | none: never
    tensorboard: str | None = None  # also log scalars to this TensorBoard directory
    progress: bool = True  # tqdm progress bars (rank 0 only)
    cache_dir: str | None = None  # where a training file's encoded corpus is cached; None = <textpipe cache>/corpora
    cache: bool | None = None  # stream the training file into the memory-mapped corpus cache; False = read it into
    # memory; None = stream files of corpus_cache.STREAM_MIN_BYTES (32 MiB) and more, read smaller ones
    rebuild_cache: bool = False  # build the corpus cache entry again even if a complete one exists


def check_config(cfg: TrainConfig) -> None:
    """Raise ValueError naming the first field (and its flag) whose value cannot work; no slow work."""
    def bad(name: str, expected: str) -> ValueError:
        return ValueError(f"{name} (--{name.replace('_', '-')}) must be {expected}, got {getattr(cfg, name)!r}")

    config_class(cfg.model)  # ValueError naming the models
    if not is_hf_model(cfg):  # (an hf: model's config is read from its directory when the data is prepared)
        try:  # the model's own checks of its fields (rnn_cell, pooling, num_heads | embed_dim, ...)
            config_class(cfg.model)(**{k: getattr(settle_defaults(cfg), k) for k in model_keys(cfg)}, vocab_size=2,
                                    num_classes=2)
        except (TypeError, ValueError) as e:
            raise ValueError(f"--model {cfg.model}: {e}") from None
    for name in foreign_keys(cfg.model):  # (unset, they are None: settle_defaults leaves them so)
        if getattr(cfg, name) is not None:
            users = [family for family in MODELS if name in hyperparameters(family)]
            raise ValueError(f"--{name.replace('_', '-')} applies to --model {' | '.join(users)}, not "
                             f"{cfg.model!r}: drop it (or choose one of those models)")

    cfg = settle_defaults(cfg)
    if not (cfg.batch_size == "auto" or (type(cfg.batch_size) is int and cfg.batch_size >= 1)):
        raise bad("batch_size", '>= 1 or "auto"')
    for name in ("epochs", "eval_batch_size", "embed_dim", "accumulate", "num_filters", "hidden_dim", "num_layers",
                 "num_heads", "ff_dim", "max_len"):
        if getattr(cfg, name) is not None and getattr(cfg, name) < 1:
            raise bad(name, ">= 1")
    if cfg.optimizer not in ("sgd", "adamw"):
        raise bad("optimizer", "one of ('sgd', 'adamw')")
    if cfg.precision not in PRECISIONS:
        raise bad("precision", f"one of {PRECISIONS}")
    if not 0.0 <= cfg.warmup < 1.0:
        raise bad("warmup", "in [0, 1)")
    if cfg.clip_grad < 0:
        raise bad("clip_grad", ">= 0 (0 = off)")
    for name in ("dropout", "embed_dropout", "unk_dropout"):
        if getattr(cfg, name) is not None and not 0.0 <= getattr(cfg, name) < 1.0:
            raise bad(name, "in [0, 1)")
    if cfg.freeze_embeddings and cfg.fused:
        raise ValueError("--freeze-embeddings trains through autograd: use --no-fused (or leave --fused unset)")
    for name in ("min_freq", "num_workers", "threads", "save_every", "patience"):
        if getattr(cfg, name) < 0:
            raise bad(name, ">= 0")
    if cfg.max_tokens is not None and cfg.max_tokens < 3:
        raise bad("max_tokens", ">= 3 (the 2 specials and one token) or None")
    if not 0.0 <= cfg.val_fraction < 1.0:
        raise bad("val_fraction", "in [0, 1)")
    if not 0.0 <= cfg.label_smoothing < 1.0:
        raise bad("label_smoothing", "in [0, 1)")
    if cfg.lr < 0 or cfg.weight_decay < 0:
        raise bad("lr" if cfg.lr < 0 else "weight_decay", ">= 0")
    for name, choices in (("optimizer", ("sgd", "adamw")), ("class_weight", CLASS_WEIGHTS),
                          ("schedule", ("linear", "cosine", "constant")),
                          ("parallel", ("none", "dp", "ddp")), ("on_bad_rows", ("raise", "skip")),
                          ("checkpoints", ("epoch", "end", "none")),
                          ("format", (None, *FILE_FORMATS)), ("quoting", (None, *QUOTINGS))):
        if getattr(cfg, name) not in choices:
            raise bad(name, f"one of {choices}")
    for name in ("rebuild_cache", "cache", "bucket", "sparse", "fused", "pin_memory", "overwrite", "progress"):
        if type(getattr(cfg, name)) not in (bool, type(None)):  # "False" would be true
            raise bad(name, "True, False" + ("" if name in ("overwrite", "progress") else " or None"))
    if cfg.hogwild < 1:
        raise bad("hogwild", ">= 1 (1 = off)")
    if cfg.hogwild > 1 and (cfg.parallel != "none" or cfg.save_every):
        raise ValueError(f"--hogwild {cfg.hogwild} trains with threads in one process, so it needs --parallel none "
                         f"(got {cfg.parallel!r}) and checkpoints at epoch ends only (--save-every 0, got "
                         f"{cfg.save_every})")
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


def default_output_dir(cfg: TrainConfig) -> str:
    """`runs/<name of the training data>`: the training file's name without its extensions (`train.csv.gz` ->
    `train`, then its directory's name too: `runs/sms-train`), the --data-dir's name, or `ag_news`."""
    from pathlib import Path

    def stem(p: Path) -> str:
        name = p.name
        while Path(name).suffix and len(Path(name).suffix) <= 8 and Path(name).stem:
            name = Path(name).stem
        return name

    if isinstance(cfg.train, (str, os.PathLike)):
        path = Path(cfg.train).expanduser()
        name = stem(path) if path.is_file() or not path.exists() else path.name
        if name.lower() in ("train", "training", "data") and path.resolve().parent.name:
            name = f"{path.resolve().parent.name}-{name}"  # `data/sms/train.tsv` -> sms-train, not train
    elif cfg.train is not None:  # a datasets object
        name = "dataset"
    elif cfg.data_dir is not None:
        name = Path(cfg.data_dir).expanduser().resolve().name or "data"
    else:
        name = "ag_news"
    return str(Path("runs") / ("".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "data"))


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


def foreign_keys(model: str) -> list[str]:
    """The TrainConfig fields of the other model families that `model` does not have (`--num-heads` for the cnn):
    None unless set, and then an error (check_config) rather than silently ignored."""
    own = set(hyperparameters(model))
    return sorted(k for family in MODELS for k in hyperparameters(family) if k not in own
                  and k in TrainConfig.__dataclass_fields__ and TrainConfig.__dataclass_fields__[k].default is None)


def model_keys(cfg: TrainConfig) -> tuple[str, ...]:
    """The fields of `cfg` that go into its model's config (the rest of that config follows from the data)."""
    return tuple(k for k in hyperparameters(cfg.model) if k in TrainConfig.__dataclass_fields__)


def class_weights(kind: str, counts) -> torch.Tensor | None:
    """The loss weight of each class for `--class-weight kind` and the training rows per class, or None.

    balanced: `n / (C n_c)` (scikit-learn's "balanced"); sqrt: its square root, renormalised so that the
    average weight over the training rows is 1, as balanced's is.

        >>> class_weights("balanced", [90, 10])
        tensor([0.5556, 5.0000])
        >>> class_weights("auto", [60, 40]) is None
        True
    """
    counts = torch.as_tensor(list(counts), dtype=torch.float32).clamp(min=1)
    if kind == "auto":
        auto, ratio = CLASS_WEIGHT_AUTO
        kind = auto if counts.max() >= ratio * counts.min() else "none"
    if kind == "none":
        return None
    w = counts.sum() / (counts.numel() * counts)
    if kind == "sqrt":
        w = w.sqrt()
        w = w * counts.sum() / (w * counts).sum()
    return w


def _model_default(name: str, field_name: str):
    """The default of `field_name` in model `name`'s config dataclass, or None when it has no such field."""
    for f in fields(config_class(name)):
        if f.name == field_name:
            return f.default_factory() if f.default is MISSING else f.default
    return None


def settle_defaults(cfg: TrainConfig) -> TrainConfig:
    """`cfg` with every field left at None that its model has a default for filled in (`TRAIN_DEFAULTS`, then
    the model config's defaults); fields the model does not use stay None. Unknown models are left for
    `check_config` to name."""
    try:
        config_class(cfg.model)
    except ValueError:
        return cfg
    defaults = dict(TRAIN_DEFAULTS.get(split_name(cfg.model)[0], {}))
    values = {}
    for f in fields(cfg):
        if getattr(cfg, f.name) is None and f.name not in DERIVED:  # sparse=None stays: the plan settles it
            value = defaults[f.name] if f.name in defaults else _model_default(cfg.model, f.name)
            if value is not None:
                values[f.name] = value
    return replace(cfg, **values) if values else cfg
