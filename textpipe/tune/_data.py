"""The data side of `textpipe tune`: the data flags checked up front, the trials' data prepared once (read,
tokenized, encoded: `textpipe.train.prepare.prepare_data`) and shared through Ray's object store, and the TrainConfig
of a trial or of the final model. Trials never see the test file: it is not even read until the final model.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from textpipe.core.specials import SPECIALS, UNK_IDX
from textpipe.tune._space import UsageError



def _absolute(path) -> str | None:
    return None if path is None else str(Path(path).expanduser().resolve())


def resolve_data(cfg) -> dict[str, Any]:
    """The data flags as absolute paths (trials run elsewhere), their sources checked without reading them,
    and the validation split the trials are scored on; UsageError for what cannot work."""
    from textpipe.train.prepare import resolve
    from textpipe.train.loop import TrainConfig

    if cfg.data_dir is None and cfg.train is None:
        raise UsageError("no training data: pass --data-dir DIR or --train FILE")
    user = {"data_dir": _absolute(cfg.data_dir), "train": _absolute(cfg.train), "val": _absolute(cfg.val),
            "test": _absolute(cfg.test), "text_columns": cfg.text_columns, "label_column": cfg.label_column}
    try:
        sources, _ = resolve(TrainConfig(**user))
    except (ValueError, OSError) as e:
        raise UsageError(str(e)) from None
    has_val = sources["val"] is not None  # --val, or a val file in --data-dir
    if has_val and cfg.val_fraction not in (None, 0):
        raise UsageError(f"validation data given ({sources['val'].describe()}) and --val-fraction "
                         f"{cfg.val_fraction}: trials are scored on one validation split; drop one")
    frac = 0.0 if has_val else (0.1 if cfg.val_fraction is None else cfg.val_fraction)
    if not has_val and not 0.0 < frac < 1.0:
        raise UsageError(f"--val-fraction must be in (0, 1): trials need a validation split, got {frac}")
    return {"user": user, "sources": sources, "val_fraction": frac, "has_val": has_val,
            "train": sources["train"].describe(), "val": sources["val"].describe() if has_val else None,
            "test": sources["test"].describe() if sources["test"] is not None else None}


def _trial_fields(data: dict[str, Any], out: Path) -> dict[str, Any]:
    """The trials' data fields: the user's, without the test split. A --data-dir is replaced by a directory
    holding links to its train/val files (and classes.txt) alone, so that its test file is never read."""
    user, sources = data["user"], data["sources"]
    fields = {**user, "test": None, "val_fraction": data["val_fraction"]}
    if user["data_dir"] is not None:
        links = out / "data"
        links.mkdir(exist_ok=True)
        wanted = [sources[s].path for s in ("train", "val") if sources[s] is not None and user[s] is None]
        classes = Path(user["data_dir"]) / "classes.txt"
        for src in [p for p in wanted if p is not None] + ([classes] if classes.is_file() else []):
            link = links / src.name
            link.unlink(missing_ok=True)
            link.symlink_to(src)
        fields["data_dir"] = str(links)
    return fields


def prepare_shared(cfg, data: dict[str, Any], out: Path, *, min_freq: int, model: str | None = None) -> dict[str, Any]:
    """What every trial gets through Ray's object store: its fixed TrainConfig fields and the prepared data
    (built once here, with the smallest `min_freq` of the space; see `derive`; `model`: an hf: model whose
    tokenizer encodes the data)."""
    from textpipe.train.prepare import prepare_data
    from textpipe.train.loop import TrainConfig

    device = "cuda" if cfg.gpus_per_trial > 0 else "cpu"
    base = {**_trial_fields(data, out), "seed": cfg.seed, "device": device, "progress": False,
            "threads": max(1, int(cfg.cpus_per_trial)),
            # a trial restarted by --resume (after Ctrl+C or a kill) starts over in its directory, as does the
            # final model in final/: the partial run there is theirs, replaced rather than refused
            "overwrite": True,
            # trials write metrics.jsonl and summary.json; best.pt only when --final checkpoint needs it
            "checkpoints": "end" if cfg.final == "checkpoint" else "none"}
    try:
        prepared = prepare_data(TrainConfig(**base, min_freq=min_freq, **({"model": model} if model else {})))
    except (ValueError, OSError) as e:
        raise UsageError(str(e)) from None
    return {"base": base, "data": prepared, "trials_dir": str(out / "trials")}


def derive(prepared, cfg):
    """The prepared data for `cfg`: the same, or with a larger `min_freq` made from it without re-reading.

    subtle: the vocabulary is sorted by count (then token), so the one of a larger min_freq is a prefix of
    this one; ids past the prefix become <unk>. The counts come from the encoded training portion itself.
    """
    from textpipe.corpus.encoded import EncodedCorpus
    from textpipe.train.prepare import data_key
    from textpipe.text.vocabulary import Vocab

    key = data_key(cfg)
    if cfg.min_freq == prepared.key["min_freq"]:
        return dataclasses.replace(prepared, key=key)
    if cfg.min_freq < prepared.key["min_freq"]:
        raise ValueError(f"min_freq {cfg.min_freq} < the prepared data's {prepared.key['min_freq']}")
    itos = prepared.vocab.get_itos()
    counts = np.bincount(prepared.train.ids, minlength=len(itos))[len(SPECIALS):]
    n = len(SPECIALS) + int((counts >= cfg.min_freq).sum())
    vocab = Vocab(itos[:n], default_index=UNK_IDX, tokenizer=prepared.vocab.tokenizer_name)

    def cut(corpus):
        if corpus is None:
            return None
        return EncodedCorpus(np.where(corpus.ids >= n, UNK_IDX, corpus.ids), corpus.offsets, corpus.labels)

    return dataclasses.replace(prepared, vocab=vocab, train=cut(prepared.train), val=cut(prepared.val), key=key)


def final_fields(data: dict[str, Any], prepared) -> dict[str, Any]:
    """The final model's data fields: train + validation, and the test split. A validation file is joined
    to the training rows in one `datasets.Dataset` (text, label), so that its words reach the vocabulary."""
    user, sources = data["user"], data["sources"]
    if not data["has_val"]:  # --val-fraction: the whole training file, no carve-out
        return {**user, "val_fraction": 0.0}
    import datasets
    from textpipe.data.sources import read_source

    def rows(split):
        return read_source(sources[split], split=split, progress=False)

    (train_y, train_x), (val_y, val_x) = rows("train"), rows("val")
    joined = datasets.Dataset.from_dict({"text": train_x + val_x, "label": train_y + val_y})
    fields = {"data_dir": None, "train": joined, "val": None, "test": None, "text_columns": ["text"],
              "label_column": "label", "classes": list(prepared.labels.names), "val_fraction": 0.0}
    if sources["test"] is not None:
        test_y, test_x = rows("test")
        fields["test"] = datasets.Dataset.from_dict({"text": test_x, "label": test_y})
    return fields


def native(params: dict[str, Any]) -> dict[str, Any]:
    """Python ints/floats for the numpy scalars that HyperOpt draws: a checkpoint's train_config must load
    with `torch.load(weights_only=True)`, which refuses numpy objects."""
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in params.items()}


def for_model(params: dict[str, Any], bag_only=()) -> dict[str, Any]:
    """A trial's parameters without the `bag_only` ones when its model is not the bag (they are the default
    space's bag ranges, which the other families replace by their own defaults: see tune._space.BAG_ONLY)."""
    if params.get("model", "bag") == "bag":
        return params
    return {k: v for k, v in params.items() if k not in bag_only}


def trial_train_config(shared: dict[str, Any], params: dict[str, Any], *, output_dir: str):
    """The TrainConfig of one run: the fixed fields in `shared`, the trial's parameters over them."""
    from textpipe.models import MODELS, hyperparameters
    from textpipe.train.loop import TrainConfig

    names = {f.name for f in dataclasses.fields(TrainConfig)}
    params = for_model(params, shared.get("bag_only", ()))
    values = {**shared["base"], **native(params), "output_dir": str(output_dir)}
    unknown = sorted(set(values) - names)
    if unknown:  # a parameter this textpipe's TrainConfig does not have: say so instead of dropping it
        raise ValueError(f"TrainConfig has no field(s) {unknown}; this textpipe cannot search them")
    model = values.get("model") or "bag"
    if model in MODELS:  # a search across families: this trial's model ignores the other families' parameters
        others = {k for name in MODELS for k in hyperparameters(name)} - set(hyperparameters(model))
        for k in others & set(params):  # TrainConfig's own default (None would fail its checks: ngrams)
            values.pop(k, None)
    return TrainConfig(**values)
