"""The validation carve-outs the neural models' defaults were chosen on (never a test file): a seeded 10% (seed 18)
of the training file is the carve-out, the other 90% trains; each setting runs with seeds 0, 1, 2 and prints its
carve-out accuracy per seed and the mean. `--dataset trec` (default): 544 of train_5500.label's 5,444 rows held
out, 4,900 train; `--dataset ag_news`: 560 of the AG_NEWS stand-in's 5,600 training rows held out (its lines
unchanged, read as the AG_NEWS layout like the full file), 5,040 train.

    cd benchmarks && python models_val.py --model cnn --set class_weight=none embed_dim=300
    python models_val.py --model rnn --set rnn_cell=gru
    python models_val.py --model transformer --dataset ag_news --set dropout=0.2

`--folds K` cross-validates instead (a seeded shuffle of the training file cut in K parts, each held out in turn;
every seed runs on every fold): less noise than one carve-out, whose 3-seed mean moves by ~0.01 with the random
stream alone (README, issue 18f).

    python models_val.py --model cnn --folds 5 --seeds 0 1 > base.txt
    python models_val.py --model cnn --folds 5 --seeds 0 1 --set kernel_sizes=[2,3,4] --paired-with base.txt

`--paired-with FILE` (the saved output of another `--folds` run) compares run by run on the same folds and seeds
(their difficulty cancels): the mean difference, its standard error, and how many runs were ahead / behind.

Settings are TrainConfig fields (Python literals: `kernel_sizes=[2,3,4]`); the rest are the model's defaults.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import gzip
import random
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parse_settings  # noqa: E402
from textpipe.train import TrainConfig, fit  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TREC = DATA / "trec" / "train_5500.label"
AG_NEWS = DATA / "ag_news"


def _held(n: int, seed: int, share: float, fold: tuple[int, int] | None = None) -> set[int]:
    """The held-out row numbers: the first `share` of a seeded shuffle, or with `fold` = (i, k) its i-th of k parts."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    if fold is None:
        return set(order[:int(n * share)])
    i, k = fold
    return set(order[i * n // k:(i + 1) * n // k])


def carve_out_ag_news(out: Path, seed: int = 18, share: float = 0.1, fold: tuple[int, int] | None = None) -> Path:
    """train.csv (90%) and test.csv (the carve-out) in `out`: the stand-in's lines as they are, and its classes.txt."""
    with gzip.open(AG_NEWS / "train.csv.gz", "rt", encoding="utf-8", newline="") as f:
        lines = f.read().splitlines(keepends=True)  # one row a line (newlines in text are escaped: SOURCE.md)
    held = _held(len(lines), seed, share, fold)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(AG_NEWS / "classes.txt", out / "classes.txt")
    for name, keep in (("train.csv", False), ("test.csv", True)):
        with open(out / name, "w", encoding="utf-8", newline="") as f:
            f.writelines(line for i, line in enumerate(lines) if (i in held) == keep)
    return out


def carve_out(out: Path, seed: int = 18, share: float = 0.1, fold: tuple[int, int] | None = None) -> Path:
    """train.csv (90%) and test.csv (the carve-out) in `out`, label = the coarse class."""
    rows = []
    for line in open(TREC, encoding="latin-1"):
        if line.strip():
            label, text = line.rstrip("\n").split(" ", 1)
            rows.append((label.split(":")[0], text))
    held = _held(len(rows), seed, share, fold)
    out.mkdir(parents=True, exist_ok=True)
    for name, keep in (("train.csv", False), ("test.csv", True)):
        with open(out / name, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["label", "text"])
            w.writerows(r for i, r in enumerate(rows) if (i in held) == keep)
    return out


def fold_runs(text: str) -> dict[tuple[int, int], float]:
    """{(fold, seed): accuracy} from the output of a `--folds` run."""
    return {(int(f), int(s)): float(a) for f, s, a in re.findall(r"^fold (\d+) seed (\d+): ([\d.]+)$", text, re.M)}


def paired(runs: dict, base: dict) -> str:
    """The run-by-run comparison of `runs` with `base` on the (fold, seed) pairs both have."""
    diffs = [runs[k] - base[k] for k in sorted(set(runs) & set(base))]
    if len(diffs) < 2:
        return "paired: fewer than 2 runs in common"
    se = statistics.stdev(diffs) / len(diffs) ** 0.5
    return (f"paired with the baseline over {len(diffs)} runs: difference {statistics.mean(diffs):+.4f} "
            f"(standard error {se:.4f}), ahead in {sum(d > 0 for d in diffs)}, behind in {sum(d < 0 for d in diffs)}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="cnn")
    p.add_argument("--dataset", choices=["trec", "ag_news"], default="trec")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--folds", type=int, metavar="K", help="K-fold cross-validation instead of the one 10%% "
                   "carve-out: each of K parts of the training file is held out in turn (every seed on every fold)")
    p.add_argument("--only-folds", type=int, nargs="+", metavar="I", help="with --folds: just these folds (0-based)")
    p.add_argument("--paired-with", type=Path, metavar="FILE", help="with --folds: the saved output of the baseline's "
                   "--folds run, compared run by run")
    args = p.parse_args(argv)
    if args.folds is not None and args.folds < 2:
        p.error("--folds must be 2 or more")
    if args.only_folds and (args.folds is None or not all(0 <= i < args.folds for i in args.only_folds)):
        p.error("--only-folds takes fold numbers from 0 to K-1 of --folds K")
    if args.paired_with is not None and (args.folds is None or not args.paired_with.is_file()):
        p.error("--paired-with needs --folds and an existing file (the saved output of a --folds run)")
    settings = parse_settings(args.set)
    make = carve_out if args.dataset == "trec" else carve_out_ag_news
    folds = [None] if args.folds is None else [(i, args.folds) for i in (args.only_folds or range(args.folds))]
    accs, runs = [], {}  # runs: {(fold, seed): accuracy as printed}, what --paired-with compares
    with tempfile.TemporaryDirectory() as tmp:
        for fold in folds:
            data = make(Path(tmp) / (args.dataset if fold is None else f"{args.dataset}-fold{fold[0]}"), fold=fold)
            for seed in args.seeds:
                cfg = TrainConfig(data_dir=str(data), model=args.model, seed=seed, output_dir=str(Path(tmp) / "run"),
                                  overwrite=True, progress=False, checkpoints="none", threads=1, **settings)
                with contextlib.redirect_stdout(io.StringIO()):
                    accs.append(fit(cfg)["test"]["accuracy"])
                if fold is not None:
                    runs[fold[0], seed] = round(accs[-1], 4)  # rounded as printed: a baseline is read back from it
                    print(f"fold {fold[0]} seed {seed}: {accs[-1]:.4f}", flush=True)
    print(f"{args.model} {args.dataset} {settings or 'defaults'}"
          f"{'' if args.folds is None else f' ({len(folds)} of {args.folds} folds x {len(args.seeds)} seeds)'}: "
          f"carve-out accuracy {' / '.join(f'{a:.4f}' for a in accs)}, mean {sum(accs) / len(accs):.4f}")
    if args.paired_with is not None:
        print(paired(runs, fold_runs(args.paired_with.read_text(encoding="utf-8"))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
