"""Training: `fit(TrainConfig(...))` and `textpipe train` / `python -m textpipe.train`.

`config` (TrainConfig and its checks), `plan` (the settings that follow from it, settled once), `prepare`
(read, split, build the vocabulary, encode), `loop` (set-up -> data -> model -> epochs -> finish), `fused`
(the bag model's fused SGD step), `rundir` (the output directory) and `args` (the command line).
"""
from textpipe.train.config import RESUME_KEYS, TrainConfig
from textpipe.train.loop import fit, main
from textpipe.train.prepare import DATA_KEYS, Data, prepare_data

__all__ = ["TrainConfig", "fit", "main", "prepare_data", "Data", "DATA_KEYS", "RESUME_KEYS"]
