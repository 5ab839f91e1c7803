"""textpipe's `fit()` vs fastText 0.9.2 on the same files: wall and CPU seconds of the training call, accuracy.

    python3 benchmarks/vs_fasttext.py                              # stand-in at 1x, 4x, 16x; seeds 0 1 2
    python3 benchmarks/vs_fasttext.py --cycles 1 --seeds 0         # one quick round

The peer is fastText 0.9.2: `pip install fasttext-wheel==0.9.2` (not `fasttext` 0.9.3, which leaves most of its
input matrix uninitialised and trains to NaN). This script installs nothing.

Every trial is a fresh interpreter (this file with `--worker`), interleaved: for each seed, fastText then textpipe
(textpipe first on odd seeds). A trial reports its interpreter start-up, its imports (`fasttext`; `torch` +
`textpipe.train`), the training call's wall and CPU seconds, and the test accuracy (predicting is not timed):
  fastText: `fasttext.train_supervised(input=train.txt, dim=10, epoch=5, lr=1.0, wordNgrams=2, thread=2,
            seed=s)`: reads the file, builds its dictionary, trains. Its input is `__label__k` + the text's
            `basic_english` tokens joined by spaces, written once before the trials (so fastText sees the same
            tokens; the tokenizing is inside textpipe's timed call, outside fastText's).
  textpipe: `fit(TrainConfig(data_dir=D, output_dir=tmp, seed=s, progress=False))` with its defaults, D holding
            only train.csv (fit's own test pass is left out, as fastText's predict is); reads the CSV,
            tokenizes, builds the vocabulary, encodes (in memory: files under 32 MiB are not streamed into the
            corpus cache; were it used, a fresh one per trial: never warm), trains, writes its checkpoints
            (one per epoch). Then `evaluate(best.pt)`. `--hogwild N`: the same with `hogwild=N` (N threads,
            as fastText's `thread=2`; not deterministic).
`--cycles 4 16` repeat the training rows 4x / 16x (the same test file). time_ratio = median textpipe train wall
/ median fastText train wall. The last line is one JSON object (the 1x figures at the top level).
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import gzip
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "ag_news"
FASTTEXT = dict(dim=10, epoch=5, lr=1.0, wordNgrams=2, thread=2)  # the settings
INSTALL = "pip install fasttext-wheel==0.9.2"


def _read_csv(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    return list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))


def _find(data_dir: Path, split: str) -> Path:
    for name in (f"{split}.csv", f"{split}.csv.gz"):
        if (data_dir / name).exists():
            return data_dir / name
    raise SystemExit(f"error: no {split}.csv[.gz] in {data_dir}")


def prepare(data_dir: Path, work: Path, cycles: list[int]) -> dict:
    """Per cycle: a directory with train.csv (rows repeated) and the fastText file; one test pair for all."""
    from textpipe.tokenizer import basic_english_batch  # no torch

    train, test = _read_csv(_find(data_dir, "train")), _read_csv(_find(data_dir, "test"))

    def fasttext_lines(rows):
        tokens = basic_english_batch([f"{r[1]} {r[2]}" for r in rows])
        return "".join(f"__label__{r[0]} {' '.join(t)}\n" for r, t in zip(rows, tokens))

    work.mkdir(parents=True, exist_ok=True)
    (work / "test.txt").write_text(fasttext_lines(test))
    with open(work / "test.csv", "w", newline="") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL).writerows(test)
    ft_train = fasttext_lines(train)
    out = {}
    for c in cycles:
        d = work / f"x{c}"
        d.mkdir(exist_ok=True)
        with open(d / "train.csv", "w", newline="") as f:
            csv.writer(f, quoting=csv.QUOTE_ALL).writerows(train * c)
        (d / "train.txt").write_text(ft_train * c)
        out[c] = {"dir": d, "rows": len(train) * c}
    return out


# -- workers: one trial each, in a fresh interpreter -----------------------------------------------------------
def worker_fasttext(args, t_started: float) -> dict:
    t0 = time.perf_counter()
    try:
        import fasttext
    except ImportError:
        raise SystemExit(f"error: fastText is not installed; {INSTALL}") from None
    imports = time.perf_counter() - t0
    w0, c0 = time.perf_counter(), time.process_time()
    model = fasttext.train_supervised(input=str(Path(args.dir) / "train.txt"), seed=args.seed, verbose=0, **FASTTEXT)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    test = [line.split(" ", 1) for line in (Path(args.work) / "test.txt").read_text().splitlines()]
    labels, _ = model.predict([t for _, t in test])
    acc = sum(p[0] == y for p, (y, _) in zip(labels, test)) / len(test)
    return {"imports_s": imports, "train_s": wall, "train_cpu_s": cpu, "acc": acc}


def fit_textpipe(data_dir: str, output_dir: str, seed: int, checkpoints: str | None = None, *,
                 cache_dir: str | None = None, hogwild: int = 1) -> dict:
    """textpipe's training call: the library's `fit()` with its defaults (and `--checkpoints`, `--hogwild`).

    `cache_dir`: where its corpus cache goes; the trials give each a fresh one (a cold cache: every trial
    reads, counts and encodes the CSV, as fastText reads its file), and nothing is left in ~/.cache."""
    from textpipe.train import TrainConfig, fit

    extra = {"checkpoints": checkpoints} if checkpoints else {}
    extra |= {"hogwild": hogwild} if hogwild > 1 else {}
    extra |= {"cache_dir": cache_dir} if cache_dir else {}
    return fit(TrainConfig(data_dir=data_dir, output_dir=output_dir, seed=seed, progress=False, **extra))


def worker_textpipe(args, t_started: float) -> dict:
    t0 = time.perf_counter()
    import torch  # noqa: F401
    import textpipe.train  # noqa: F401
    from textpipe.evaluate import evaluate
    imports = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        w0, c0 = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(io.StringIO()):
            summary = fit_textpipe(args.dir, str(Path(tmp) / "run"), args.seed, args.checkpoints,
                                   cache_dir=str(Path(tmp) / "corpus-cache"), hogwild=args.hogwild)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        from textpipe.data.ag_news import read_ag_news_csv
        report = evaluate(summary["checkpoint"], read_ag_news_csv(Path(args.work) / "test.csv"))
    return {"imports_s": imports, "train_s": wall, "train_cpu_s": cpu, "acc": report["accuracy"],
            "train_loop_s": summary["train_loop_s"], "steps": summary["steps"]}


def run_trial(name: str, d: Path, work: Path, seed: int, checkpoints: str | None, hogwild: int) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                          os.environ.get("PYTHONPATH", "")])}
    load = open("/proc/loadavg").read().split()[0] if os.path.exists("/proc/loadavg") else "n/a"
    t = time.time()
    proc = subprocess.run([sys.executable, __file__, "--worker", name, "--dir", str(d), "--work", str(work),
                           "--seed", str(seed), "--spawned", repr(t), "--hogwild", str(hogwild)]
                          + (["--checkpoints", checkpoints] if checkpoints else []),
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"error: the {name} trial failed:\n{proc.stderr.strip()[-2000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["process_s"] = time.time() - t
    res["loadavg"] = load
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(DEFAULT_DIR), help="directory with train.csv[.gz] and test.csv[.gz]")
    p.add_argument("--cycles", type=int, nargs="+", default=[1, 4, 16], help="training rows repeated N times")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--checkpoints", choices=["epoch", "end", "none"], default=None,
                   help="textpipe's TrainConfig.checkpoints (default: its default, a checkpoint every epoch)")
    p.add_argument("--hogwild", type=int, default=1, help="textpipe's TrainConfig.hogwild (default 1: off)")
    p.add_argument("--worker", choices=["fasttext", "textpipe"], help=argparse.SUPPRESS)
    p.add_argument("--dir", help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--spawned", type=float, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        t_started = time.time()
        res = (worker_fasttext if args.worker == "fasttext" else worker_textpipe)(args, t_started)
        res["startup_s"] = t_started - args.spawned if args.spawned else None
        print(json.dumps(res))
        return 0
    try:
        import fasttext  # noqa: F401
    except ImportError:
        print(f"error: fastText is not installed here; {INSTALL}", file=sys.stderr)
        return 2
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sets = prepare(Path(args.data_dir), work, args.cycles)
        print(f"fastText 0.9.2 {FASTTEXT} vs textpipe fit() defaults (checkpoints: {args.checkpoints or 'default'}, "
              f"hogwild {args.hogwild}); "
              f"cores {os.cpu_count()}, "
              f"loadavg {open('/proc/loadavg').read().split()[:3]}")
        for c in args.cycles:
            trials = {"fasttext": [], "textpipe": []}
            for seed in args.seeds:
                order = ("fasttext", "textpipe") if seed % 2 == 0 else ("textpipe", "fasttext")
                for name in order:
                    trials[name].append(run_trial(name, sets[c]["dir"], work, seed, args.checkpoints, args.hogwild))
            med = {n: {k: statistics.median(t[k] for t in ts) for k in ("startup_s", "imports_s", "train_s",
                                                                          "train_cpu_s", "acc")}
                   for n, ts in trials.items()}
            row = {"cycles": c, "rows": sets[c]["rows"],
                   "fasttext_train_s": round(med["fasttext"]["train_s"], 3),
                   "textpipe_train_s": round(med["textpipe"]["train_s"], 3),
                   "time_ratio": round(med["textpipe"]["train_s"] / med["fasttext"]["train_s"], 2),
                   "fasttext_cpu_s": round(med["fasttext"]["train_cpu_s"], 3),
                   "textpipe_cpu_s": round(med["textpipe"]["train_cpu_s"], 3),
                   "cpu_ratio": round(med["textpipe"]["train_cpu_s"] / med["fasttext"]["train_cpu_s"], 2),
                   "fasttext_acc": round(med["fasttext"]["acc"], 4), "textpipe_acc": round(med["textpipe"]["acc"], 4),
                   "startup_s": {n: round(m["startup_s"], 3) for n, m in med.items()},
                   "imports_s": {n: round(m["imports_s"], 3) for n, m in med.items()},
                   "textpipe_train_loop_s": round(statistics.median(t["train_loop_s"] for t in trials["textpipe"]), 3),
                   "per_seed": {n: [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in t.items()}
                                    for t in ts] for n, ts in trials.items()}}
            results.append(row)
            print(f"{c:>3}x {row['rows']:>7,} rows | train call wall: fastText {row['fasttext_train_s']:.3f} s, "
                  f"textpipe {row['textpipe_train_s']:.3f} s, ratio {row['time_ratio']:.2f} | CPU: "
                  f"{row['fasttext_cpu_s']:.3f} vs {row['textpipe_cpu_s']:.3f} s ({row['cpu_ratio']:.2f}) | test acc "
                  f"{row['fasttext_acc']:.4f} vs {row['textpipe_acc']:.4f} | start-up {row['startup_s']} "
                  f"imports {row['imports_s']} | loadavg {[t['loadavg'] for ts in trials.values() for t in ts]}",
                  flush=True)
    first = {k: v for k, v in results[0].items() if k != "per_seed"}
    print(json.dumps({**first, "seeds": args.seeds, "checkpoints": args.checkpoints or "default", "hogwild": args.hogwild,
                      "by_cycles": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
