"""Where one default `fit()` spends its time: wall / CPU milliseconds per phase, in a fresh interpreter.

    python3 benchmarks/fit_phases.py                      # the AG_NEWS stand-in's train.csv.gz, seed 0
    python3 benchmarks/fit_phases.py --data-dir DIR --repeat 5

Each repeat is a fresh interpreter (imports, first-use costs and all) training `fit(TrainConfig(...))` with
its defaults on a directory holding only the training file (no test pass), as `benchmarks/vs_fasttext.py`
times it. The phases are `fit`'s own steps (`textpipe.train.setup`, `load_data`, `build_model`,
`train_one_epoch`, `end_epoch`, `finish`), inside `end_epoch` the checkpoint `snapshot`, and the
`write_epoch_files` jobs (best.pt/last.pt with their SHA-256 (`entry_digests`) and `torch.save`, then
metrics.jsonl), which run on the writer thread while the next epoch trains: their wall time overlaps the
others. CPU times are per thread (`time.thread_time`); `fit` CPU is the whole process's.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "ag_news"
PHASES = ("setup", "load_data", "build_model", "train_one_epoch", "end_epoch", "snapshot", "write_epoch_files", "finish")


def worker(train_dir: str) -> dict:
    t0 = time.perf_counter()
    import textpipe.checkpoint as ckpt
    import textpipe.train as train
    imports = time.perf_counter() - t0
    acc = collections.defaultdict(lambda: [0.0, 0.0])

    def timed(mod, name, label):
        f = getattr(mod, name)

        def g(*a, **k):
            w, c = time.perf_counter(), time.thread_time()
            try:
                return f(*a, **k)
            finally:
                acc[label][0] += time.perf_counter() - w
                acc[label][1] += time.thread_time() - c
        setattr(mod, name, g)

    for name in PHASES:
        timed(train, name, name)
    timed(ckpt, "entry_digests", "save: sha256")
    timed(ckpt, "torch_save", "save: torch.save")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = train.TrainConfig(data_dir=train_dir, output_dir=f"{tmp}/run", cache_dir=f"{tmp}/cache", progress=False)
        w, c = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(io.StringIO()):
            train.fit(cfg)
        w, c = time.perf_counter() - w, time.process_time() - c
    return {"imports_s": round(imports, 3), "fit_wall_s": round(w, 3), "fit_cpu_s": round(c, 3),
            "phases_ms": {k: [round(v[0] * 1e3), round(v[1] * 1e3)] for k, v in acc.items()}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(DEFAULT_DIR), help="directory with train.csv[.gz]")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker)))
        return 0
    src = next((Path(args.data_dir) / n for n in ("train.csv", "train.csv.gz") if (Path(args.data_dir) / n).exists()),
               None)
    if src is None:
        raise SystemExit(f"error: no train.csv[.gz] in {args.data_dir}")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(src, Path(tmp) / src.name)  # only the training file: fit() does no test pass
        for _ in range(args.repeat):
            proc = subprocess.run([sys.executable, "-W", "ignore", __file__, "--worker", tmp], capture_output=True,
                                  text=True, check=True)
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            r = runs[-1]
            print(f"fit wall {r['fit_wall_s']:.3f} s, CPU {r['fit_cpu_s']:.3f} s | " +
                  " | ".join(f"{k} {w}/{c}" for k, (w, c) in r["phases_ms"].items()) + " (ms wall/CPU)", flush=True)
    print(json.dumps({"loadavg": open("/proc/loadavg").read().split()[:3], "runs": runs}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
