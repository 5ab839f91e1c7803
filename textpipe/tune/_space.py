"""The search space of `textpipe tune`: the default space, a JSON/TOML file or `--param` flags over it, checks.

A space maps a training parameter to a constant or a distribution, written as in Ray Tune
(`tune.choice`, `tune.uniform`, `tune.loguniform`, `tune.randint`) but as plain data, so that a file can hold it:

    {"lr": {"loguniform": [2, 32]}, "embed_dim": {"choice": [16, 32, 64]}, "optimizer": "sgd"}

TOML: `lr = {loguniform = [2.0, 32.0]}`. `randint` is Ray's: the upper bound is excluded. This module is pure
Python (no Ray import): the CLI checks a space and prints it before Ray starts.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["UsageError", "PARAMS", "DEFAULT_SPACE", "training_defaults", "SpaceError", "Param", "check_space",
           "BAG_SPACE", "BAG_ONLY", "FAMILY_SPACE", "HF_SPACE", "HF_PARAMS", "is_hf", "load_space_file", "parse_param_flag", "merge_spaces", "format_space", "to_ray", "max_value", "min_value",
           "default_point"]

KINDS = ("choice", "uniform", "loguniform", "randint")


class UsageError(ValueError):
    """A bad option, file or space of `textpipe tune`: printed as one `error:` line, exit status 2."""


class SpaceError(UsageError):
    """A search space (file, flag or dict) that cannot be used; the message says where and how to fix it."""


@dataclass(frozen=True)
class Param:
    """One searchable training parameter: its type, its allowed values and what it means."""
    type: type  # int | float | str
    help: str
    minimum: float | None = None  # smallest allowed value (numbers)
    exclusive_min: bool = False  # minimum itself not allowed (lr > 0)
    values: tuple = ()  # the allowed values (strings, ngrams)
    pattern: str | None = None  # strings: also allowed when they match this regex in full (hf:DIR, all-but-N)

    def check(self, value: Any) -> str | None:
        """Why `value` is not allowed, or None when it is."""
        if self.type is str:
            if not isinstance(value, str):
                return f"expected a string, got {value!r}"
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"expected a number, got {value!r}"
        elif self.type is int and not float(value).is_integer():
            return f"expected an integer, got {value!r}"
        elif not math.isfinite(value):
            return f"expected a finite number, got {value!r}"
        if self.values and value not in self.values and not (self.pattern and re.fullmatch(self.pattern, value)):
            return f"expected one of {list(self.values)}{' or ' + self.pattern if self.pattern else ''}, got {value!r}"
        if self.minimum is not None and (value < self.minimum or (self.exclusive_min and value == self.minimum)):
            return f"expected {'>' if self.exclusive_min else '>='} {self.minimum:g}, got {value!r}"
        return None


# What a trial may vary: train's TrainConfig fields and the model's ModelConfig fields (embed_dim, ngrams, buckets).
PARAMS: dict[str, Param] = {
    "lr": Param(float, "peak learning rate", minimum=0.0, exclusive_min=True),
    "epochs": Param(int, "passes over the training portion (ASHA's time axis)", minimum=1),
    "batch_size": Param(int, "samples per step", minimum=1),
    "embed_dim": Param(int, "embedding size", minimum=1),
    "ngrams": Param(int, "1 = words, 2 = words + hashed bigrams", values=(1, 2)),
    "weighting": Param(str, "bag: mean | nb (NB-weighted mean of the rows)", values=("mean", "nb")),
    "buckets": Param(int, "bigram hash buckets", minimum=1),
    "min_freq": Param(int, "minimum token count for the vocabulary", minimum=1),
    "optimizer": Param(str, "sgd | adamw (adamw wants a much smaller lr)", values=("sgd", "adamw")),
    "schedule": Param(str, "learning-rate schedule", values=("linear", "cosine", "constant")),
    "weight_decay": Param(float, "L2 penalty", minimum=0.0),
    # the model family, and each family's own parameters (a trial ignores those of the other families)
    "model": Param(str, "model family (each trial takes its family's defaults for what is not searched)",
                   values=("bag", "cnn", "rnn", "transformer"), pattern=r"hf:.+"),
    "warmup": Param(float, "share of the steps with a rising lr", minimum=0.0),
    "clip_grad": Param(float, "gradient-norm clip (0 = off)", minimum=0.0),
    "dropout": Param(float, "cnn/rnn/transformer dropout", minimum=0.0),
    "embed_dropout": Param(float, "cnn/transformer: dropout on the token embeddings", minimum=0.0),
    "unk_dropout": Param(float, "cnn/rnn/transformer: share of training tokens read as <unk>", minimum=0.0),
    "num_filters": Param(int, "cnn: feature maps per width", minimum=1),
    "rnn_cell": Param(str, "rnn: lstm | gru", values=("lstm", "gru")),
    "hidden_dim": Param(int, "rnn: hidden size per direction", minimum=1),
    "num_layers": Param(int, "rnn/transformer: layers", minimum=1),
    "pooling": Param(str, "rnn: max | mean | last; transformer: mean | first", values=("max", "mean", "last", "first")),
    "num_heads": Param(int, "transformer: attention heads", minimum=1),
    "ff_dim": Param(int, "transformer: feed-forward width", minimum=1),
    "freeze": Param(str, "hf: models: none | embeddings | encoder (head only) | all-but-N (top N layers + head)",
                    values=("none", "embeddings", "encoder"), pattern=r"all-but-\d+"),
    "layer_lr_decay": Param(float, "hf: models: layer i from the top learns at lr * decay**i", minimum=0.0,
                            exclusive_min=True),
}
# The default space's entries that only suit the bag model: in a search over `model` they apply to the bag
# trials only (source BAG_ONLY), so that each other family trains with its own defaults
# (textpipe.models.TRAIN_DEFAULTS) unless the user searches them; a search without the bag drops them.
BAG_SPACE = ("lr", "epochs", "batch_size", "embed_dim", "optimizer")
BAG_ONLY = "default, bag trials only"
# The model families of the default space when trials get a GPU (`--gpus-per-trial` > 0). On a CPU the default
# space is the bag model's alone: a cnn/rnn/transformer trial costs 30-100x a bag trial there (TREC on 1 core:
# bag ~0.5 s, cnn ~40 s), so a time budget of minutes would go to a handful of them.
FAMILY_SPACE: dict[str, Any] = {"model": {"choice": ["bag", "cnn", "rnn", "transformer"]}}
# The default space of a fixed `model=hf:NAME_OR_DIR` (alone: every hf: trial trains from the pretrained weights,
# so no bag entry applies): around the BERT recipe of TRAIN_DEFAULTS["hf"] (AdamW, lr 3e-5, 3 epochs; Devlin et
# al. 2019 searched lr 2e-5..5e-5 and 2-4 epochs) and the --freeze choices that keep most of the accuracy
# (the head alone rarely does; all-but-2 trains about 13% of bert-base's weights).
HF_SPACE: dict[str, Any] = {
    "lr": {"loguniform": [1e-5, 1e-4]},
    "epochs": {"randint": [2, 5]},
    "freeze": {"choice": ["none", "embeddings", "all-but-2"]},
}
# What an hf: model's trials may vary: the loop's settings and its own (the other families' do not apply).
HF_PARAMS = ("model", "lr", "epochs", "batch_size", "optimizer", "schedule", "weight_decay", "warmup", "clip_grad",
             "freeze", "layer_lr_decay")


def is_hf(model: Any) -> bool:
    """Whether a space's `model` entry is (or offers) an hf:NAME_OR_DIR model."""
    if isinstance(model, dict):
        return any(is_hf(v) for v in next(iter(model.values())))
    return isinstance(model, str) and model.startswith("hf:")

# Around the bag model's defaults (textpipe.models.TRAIN_DEFAULTS["bag"]: sgd lr 8, 8 epochs, batch 256,
# embedding 10, bigrams in 2^18 buckets, NB weighting), wide enough to find better ones, and with no divergent
# region (benchmarks/tune_space_scan.py): with the NB-weighted mean, lr 16 diverged in 12 of 48 TREC runs at
# batch 128 and 2 of 48 at 256 (lr 24: 43 of 96); lr 12 in none of 288 runs over the four benchmark sets.
DEFAULT_SPACE: dict[str, Any] = {
    "lr": {"loguniform": [2.0, 12.0]},
    "epochs": {"randint": [2, 11]},
    "batch_size": {"choice": [128, 256, 512]},
    "embed_dim": {"choice": [10, 16, 32, 64]},
    "ngrams": {"choice": [1, 2]},
    "buckets": {"choice": [2**16, 2**17, 2**18, 2**19]},
    "min_freq": {"choice": [1, 2, 3]},
    "optimizer": "sgd",
    "schedule": {"choice": ["linear", "cosine"]},
}


def training_defaults(model: str = "bag") -> dict[str, Any]:
    """textpipe's training defaults (TrainConfig's, for `model`) of the searchable parameters: the first trial."""
    from textpipe.train.config import TrainConfig  # imports torch: only once a search is set up

    from textpipe.train.config import settle_defaults

    defaults = settle_defaults(TrainConfig(model=model))
    return {name: getattr(defaults, name) for name in PARAMS}


def _check_spec(name: str, spec: Any, where: str) -> Any:
    """The spec of one parameter, normalised (ints as int), or SpaceError naming `where`."""
    if name not in PARAMS:
        raise SpaceError(f"{where}: unknown parameter {name!r}; expected one of: {', '.join(PARAMS)}")
    p = PARAMS[name]

    def bad(msg):
        return SpaceError(f"{where}: parameter {name!r}: {msg}")

    def value(v, what="value"):
        why = p.check(v)
        if why:
            raise bad(f"{what}: {why} ({p.help})")
        return int(v) if p.type is int else (float(v) if p.type is float else v)

    if not isinstance(spec, dict):
        if isinstance(spec, list):
            raise bad(f"expected a constant or a one-key table such as {{\"choice\": {spec!r}}}, got a list")
        return value(spec)
    if len(spec) != 1 or next(iter(spec)) not in KINDS:
        raise bad(f"expected a constant or a table with one key of {', '.join(KINDS)}, got {spec!r}")
    kind, args = next(iter(spec.items()))
    if not isinstance(args, list) or not args:
        raise bad(f"{kind}: expected a non-empty list, got {args!r}")
    if kind == "choice":
        vals = [value(v, "choice") for v in args]
        if len(set(map(repr, vals))) != len(vals):
            raise bad(f"choice: values repeat: {args!r}")
        return {"choice": vals}
    if len(args) != 2:
        raise bad(f"{kind}: expected [low, high], got {args!r}")
    if p.type is str:
        raise bad(f"{kind} needs numbers; a string parameter takes a constant or a choice of {list(p.values)}")
    if kind == "randint" and p.type is not int:
        raise bad(f"randint needs an integer parameter; {name} is a float: use uniform or loguniform")
    if kind in ("uniform", "loguniform") and p.type is int:
        raise bad(f"{kind} gives floats; {name} is an integer: use randint [low, high) or choice")
    lo, hi = (value(v, f"{kind} bound") for v in args)
    if kind == "loguniform" and lo <= 0:
        raise bad(f"loguniform: expected low > 0, got {lo!r}")
    if kind == "randint" and hi - lo < 1:
        raise bad(f"randint [low, high) excludes high: expected high >= low + 1, got {args!r}")
    if hi <= lo:
        raise bad(f"{kind}: expected low < high, got {args!r}")
    if kind == "randint" and p.check(hi - 1):  # the largest value drawn is high - 1
        raise bad(f"randint: {hi - 1} would be drawn: {p.check(hi - 1)}")
    return {kind: [lo, hi]}


def check_space(space: dict[str, Any], *, where: str = "search space") -> dict[str, Any]:
    """A checked, normalised copy of `space`; raises SpaceError naming `where`, the parameter and the fix."""
    if not isinstance(space, dict):
        raise SpaceError(f"{where}: expected a table of parameter -> spec, got {type(space).__name__}")
    out = {name: _check_spec(name, spec, where) for name, spec in space.items()}
    if out.get("ngrams") == 1 and "buckets" in out and isinstance(out["buckets"], dict):
        raise SpaceError(f"{where}: 'buckets' is searched but ngrams is fixed to 1, which ignores it: "
                         f"drop 'buckets' or search ngrams")
    return out


def load_space_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a JSON (`.json`) or TOML (`.toml`) search-space file."""
    path = Path(path)
    where = f"search-space file {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpaceError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpaceError(f"{where}: cannot read it: {e}") from None
    suffix = path.suffix.lower()
    if suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            try:
                import tomli as tomllib
            except ImportError:
                raise SpaceError(f"{where}: TOML needs Python 3.11+ or `pip install tomli`; "
                                 f"or write the space as JSON") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise SpaceError(f"{where}: not valid TOML: {e}") from None
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpaceError(f"{where}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    else:
        raise SpaceError(f"{where}: expected a .json or .toml file, got {suffix or 'no extension'!r}")
    if not data:
        raise SpaceError(f"{where}: the file sets no parameter; expected e.g. {{\"lr\": {{\"loguniform\": [2, 32]}}}}")
    return check_space(data, where=where)


def _scalar(text: str) -> Any:
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def parse_param_flag(text: str) -> dict[str, Any]:
    """`--param NAME=SPEC` -> {name: spec}. SPEC: `8`, `16,32,64` (choice), `loguniform:2:32`, or JSON."""
    where = f"--param {text!r}"
    name, sep, spec = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name or not spec.strip():
        raise SpaceError(f"{where}: expected NAME=SPEC, e.g. lr=loguniform:2:32, embed_dim=16,32,64 or epochs=10")
    spec = spec.strip()
    if spec.startswith(("{", "[", '"')):
        try:
            value = json.loads(spec)
        except json.JSONDecodeError as e:
            raise SpaceError(f"{where}: not valid JSON: {e.msg}") from None
    elif spec.split(":", 1)[0] in KINDS and ":" in spec:
        kind, *args = spec.split(":")
        value = {kind: [_scalar(a) for a in (args[0].split(",") if kind == "choice" else args)]}
    elif "," in spec:
        value = {"choice": [_scalar(v) for v in spec.split(",")]}
    else:
        value = _scalar(spec)
    return check_space({name: value}, where=where)


def merge_spaces(*layers: dict[str, Any]) -> dict[str, Any]:
    """Later layers replace earlier ones parameter by parameter (defaults < file < flags)."""
    out: dict[str, Any] = {}
    for layer in layers:
        out.update(layer)
    out = check_space(out)
    model = out.get("model", "bag")
    if is_hf(model):
        if isinstance(model, dict):
            raise SpaceError(f"search space: model {_describe(model)}: an hf: model is not searched over (its "
                             "tokenizer encodes the data every trial shares): fix it, --param model=hf:NAME_OR_DIR")
        alien = [k for k in out if k not in HF_PARAMS]
        if alien:
            raise SpaceError(f"search space: {', '.join(alien)} do not apply to {model} (it reads its own "
                             f"tokenizer's ids): drop them; an hf: model searches {', '.join(HF_PARAMS[1:])}")
    else:
        hf_only = [k for k in ("freeze", "layer_lr_decay") if k in out]
        if hf_only:
            raise SpaceError(f"search space: {', '.join(hf_only)} apply to hf: models only, not {_describe(model)}: "
                             "add --param model=hf:NAME_OR_DIR or drop them")
    return out


def _describe(spec: Any) -> str:
    if not isinstance(spec, dict):
        return f"{spec!r}  (fixed)"
    kind, args = next(iter(spec.items()))
    if kind == "choice":
        return "choice " + " | ".join(map(str, args))
    return f"{kind} [{args[0]:g}, {args[1]:g}{')' if kind == 'randint' else ']'}"


def format_space(space: dict[str, Any], *, sources: dict[str, str] | None = None) -> str:
    """The space as an aligned table, one parameter a line (printed at the start of a search)."""
    width = max(map(len, space), default=0)
    lines = []
    for name, spec in space.items():
        src = f"   [{sources[name]}]" if sources and sources.get(name, "default") != "default" else ""
        lines.append(f"  {name:<{width}}  {_describe(spec)}{src}")
    return "\n".join(lines)


def max_value(spec: Any) -> Any:
    """The largest value a spec can produce (ASHA's max_t from the epochs spec)."""
    if not isinstance(spec, dict):
        return spec
    kind, args = next(iter(spec.items()))
    return max(args) if kind == "choice" else (args[1] - 1 if kind == "randint" else args[1])


def min_value(spec: Any) -> Any:
    """The smallest value a spec can produce (the prepared data's min_freq)."""
    if not isinstance(spec, dict):
        return spec
    kind, args = next(iter(spec.items()))
    return min(args) if kind == "choice" else args[0]


def _contains(spec: Any, value: Any) -> bool:
    if value is None:  # a parameter the default model does not have
        return False
    if not isinstance(spec, dict):
        return spec == value
    kind, args = next(iter(spec.items()))
    if kind == "choice":
        return value in args
    return args[0] <= value < args[1] if kind == "randint" else args[0] <= value <= args[1]


def default_point(space: dict[str, Any]) -> dict[str, Any] | None:
    """textpipe's defaults restricted to the searched parameters, or None when they fall outside the space."""
    model = space.get("model")
    point, defaults = {}, training_defaults(model if isinstance(model, str) else "bag")
    for name, spec in space.items():
        if not isinstance(spec, dict):
            continue
        if not _contains(spec, defaults[name]):
            return None
        point[name] = defaults[name]
    return point or None


def to_ray(space: dict[str, Any]) -> dict[str, Any]:
    """The space as Ray Tune domains (`tune.choice`, ...); constants stay constants. Imports Ray."""
    from ray import tune

    make = {"choice": lambda a: tune.choice(a), "uniform": lambda a: tune.uniform(*a),
            "loguniform": lambda a: tune.loguniform(*a), "randint": lambda a: tune.randint(*a)}
    return {name: make[next(iter(spec))](next(iter(spec.values()))) if isinstance(spec, dict) else spec
            for name, spec in space.items()}
