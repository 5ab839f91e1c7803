"""The TREC validation carve-out the neural models' defaults were chosen on (never TREC's test file): a seeded 10%
(seed 18, 544 rows) of train_5500.label is the carve-out, the other 90% (4,900 rows) trains; each setting runs
with seeds 0, 1, 2 and prints its carve-out accuracy per seed and the mean.

    cd benchmarks && python models_val.py --model cnn --set class_weight=none embed_dim=300
    python models_val.py --model rnn --set rnn_cell=gru

Settings are TrainConfig fields (Python literals: `kernel_sizes=[2,3,4]`); the rest are the model's defaults.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import csv
import io
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from textpipe.train import TrainConfig, fit  # noqa: E402

TREC = Path(__file__).resolve().parents[2] / "shared" / "data" / "trec" / "train_5500.label"


def carve_out(out: Path, seed: int = 18, share: float = 0.1) -> Path:
    """train.csv (90%) and test.csv (the carve-out) in `out`, label = the coarse class."""
    rows = []
    for line in open(TREC, encoding="latin-1"):
        if line.strip():
            label, text = line.rstrip("\n").split(" ", 1)
            rows.append((label.split(":")[0], text))
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    held = set(order[:int(len(rows) * share)])
    out.mkdir(parents=True, exist_ok=True)
    for name, keep in (("train.csv", False), ("test.csv", True)):
        with open(out / name, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["label", "text"])
            w.writerows(r for i, r in enumerate(rows) if (i in held) == keep)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="cnn")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args = p.parse_args(argv)
    settings = {}
    for item in args.set:
        k, v = item.split("=", 1)
        with contextlib.suppress(ValueError, SyntaxError):
            v = ast.literal_eval(v)
        settings[k] = v
    with tempfile.TemporaryDirectory() as tmp:
        data = carve_out(Path(tmp) / "trec")
        accs = []
        for seed in args.seeds:
            cfg = TrainConfig(data_dir=str(data), model=args.model, seed=seed, output_dir=str(Path(tmp) / "run"),
                              overwrite=True, progress=False, checkpoints="none", threads=1, **settings)
            with contextlib.redirect_stdout(io.StringIO()):
                accs.append(fit(cfg)["test"]["accuracy"])
    print(f"{args.model} {settings or 'defaults'}: carve-out accuracy {' / '.join(f'{a:.4f}' for a in accs)}, "
          f"mean {sum(accs) / len(accs):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
