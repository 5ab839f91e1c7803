"""Where the bag model diverges: the corners of `textpipe tune`'s default space, trained on each dataset of
benchmarks/vs_sklearn.py (its training file only, a 10% validation carve-out as the trials have), 3 seeds.

    python3 benchmarks/tune_space_scan.py --datasets trec --lr 12 16 --batch-size 128 256
    python3 benchmarks/tune_space_scan.py --lr 12 --batch-size 128                  # all four datasets

Each run varies lr x batch size x epochs {3, 10} x embedding {10, 64} x ngrams {1, 2} x schedule {linear,
cosine} x seed {0, 1, 2} over the defaults (NB weighting included) and counts the runs that raise DivergedError
(NaN/inf loss): the default space's lr range is chosen to hold none.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vs_sklearn import DATASETS, _write_csv, load_dataset  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    p.add_argument("--lr", type=float, nargs="+", default=[12.0])
    p.add_argument("--batch-size", type=int, nargs="+", default=[128])
    args = p.parse_args(argv)
    from textpipe.core.checks import DivergedError
    from textpipe.train import TrainConfig, fit

    for name in args.datasets:
        diverged, runs = Counter(), Counter()
        with tempfile.TemporaryDirectory() as tmp:
            _write_csv(Path(tmp) / "train.csv", load_dataset(name)["train"])
            grid = itertools.product(args.lr, args.batch_size, [3, 10], [10, 64], [1, 2], ["linear", "cosine"], [0, 1, 2])
            for lr, bs, epochs, dim, ngrams, schedule, seed in grid:
                runs[lr, bs] += 1
                try:
                    with contextlib.redirect_stdout(io.StringIO()):
                        fit(TrainConfig(train=f"{tmp}/train.csv", output_dir=f"{tmp}/run", overwrite=True, lr=lr,
                                        batch_size=bs, epochs=epochs, embed_dim=dim, ngrams=ngrams, schedule=schedule,
                                        val_fraction=0.1, seed=seed, checkpoints="none", progress=False))
                except DivergedError:
                    diverged[lr, bs] += 1
        for lr, bs in sorted(runs):
            print(f"{name:<11} lr {lr:<5g} batch {bs:<4} diverged {diverged[lr, bs]:>2} of {runs[lr, bs]} runs", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
