"""The data side of `textpipe tune`: absolute data paths and the validation split from the flags, and the
TrainConfig of a trial or of the final model (trials never get the test file)."""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from textpipe._tune_space import UsageError


def _find(directory: Path, stem: str) -> Path | None:
    for name in (f"{stem}.csv", f"{stem}.csv.gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def resolve_data(cfg) -> dict[str, Any]:
    """Absolute data paths (trials run in their own directories) and the validation split; UsageError if bad."""
    train, test = cfg.train, cfg.test
    if cfg.data_dir is not None:
        d = Path(cfg.data_dir)
        if not d.is_dir():
            raise UsageError(f"--data-dir {d}: no such directory")
        train = train or _find(d, "train")
        test = test or _find(d, "test")
        if train is None:
            raise UsageError(f"--data-dir {d} holds no train.csv or train.csv.gz; pass --train FILE")
    if train is None:
        raise UsageError("no training data: pass --data-dir DIR or --train FILE")
    paths = {}
    for flag, value in (("--train", train), ("--val", cfg.val), ("--test", test)):
        if value is not None:
            path = Path(value).expanduser().resolve()
            if not path.exists():
                raise UsageError(f"{flag} {value}: no such file")
            paths[flag[2:]] = str(path)
    if cfg.val is not None and cfg.val_fraction not in (None, 0):
        raise UsageError("--val and --val-fraction both given: trials are scored on one validation split; drop one")
    frac = 0.0 if cfg.val is not None else (0.1 if cfg.val_fraction is None else cfg.val_fraction)
    if cfg.val is None and not 0.0 < frac < 1.0:
        raise UsageError(f"--val-fraction must be in (0, 1): trials need a validation split, got {frac}")
    return {"train": paths["train"], "val": paths.get("val"), "test": paths.get("test"), "val_fraction": frac,
            "text_columns": cfg.text_columns, "label_column": cfg.label_column}


def _data_fields(data: dict[str, Any], *, out: Path, trials: bool) -> dict[str, Any]:
    """The TrainConfig data fields for the trials (train + validation only) or the final model (+ test)."""
    from textpipe.train import TrainConfig

    names = {f.name for f in fields(TrainConfig)}
    if "train" in names:  # the table reader's fields: any file, columns by name
        return {"train": data["train"], "val": data["val"], "test": None if trials else data["test"],
                "text_columns": data["text_columns"], "label_column": data["label_column"],
                "val_fraction": data["val_fraction"] if trials else 0.0}
    # a TrainConfig with only data_dir: trials get a directory holding just the training file, so the test
    # file is not even seen by them; the final model reads the original directory (train + test)
    if data["val"] or data["text_columns"] or data["label_column"] or Path(data["train"]).name not in (
            "train.csv", "train.csv.gz"):
        raise UsageError("this textpipe's train takes only --data-dir (AG_NEWS layout): --train FILE, --val, "
                         "--text-column and --label-column need the table reader")
    src = Path(data["train"])
    if not trials:
        return {"data_dir": str(src.parent), "val_fraction": 0.0}
    trial_dir = out / "data"
    trial_dir.mkdir(exist_ok=True)
    link = trial_dir / src.name
    if not link.exists():
        link.symlink_to(src)
    return {"data_dir": str(trial_dir), "val_fraction": data["val_fraction"]}


def prepare_shared(cfg, data: dict[str, Any], out: Path) -> dict[str, Any]:
    """What every trial gets (once, through Ray's object store): the data settings and fixed training options;
    and the same for the final model under "final"."""
    device = "cuda" if cfg.gpus_per_trial > 0 else "cpu"
    fixed = {"seed": cfg.seed, "device": device, "threads": max(1, int(cfg.cpus_per_trial)), "progress": False}
    # resume="last": a trial restarted by --resume continues from the last.pt in its own directory
    return {"trials_dir": str(out / "trials"),
            "base": {**_data_fields(data, out=out, trials=True), **fixed, "resume": "last"},
            "final": {**_data_fields(data, out=out, trials=False), **fixed, "device": "auto"}}


def trial_train_config(shared: dict[str, Any], params: dict[str, Any], *, output_dir: str):
    """The TrainConfig of one run: the data and fixed settings in `shared`, the trial's parameters over them."""
    from textpipe.train import TrainConfig

    names = {f.name for f in fields(TrainConfig)}
    values = {**shared["base"], **params, "output_dir": str(output_dir)}
    unknown = sorted(set(values) - names)
    if unknown:  # a parameter this textpipe's TrainConfig does not have: say so instead of dropping it
        raise ValueError(f"TrainConfig has no field(s) {unknown}; this textpipe cannot search them")
    return TrainConfig(**values)
