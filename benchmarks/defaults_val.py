"""Choose textpipe's defaults on VALIDATION carve-outs of the training files only (never the test files).

For each dataset of benchmarks/vs_sklearn.py and each seed s, a stratified 10% carve-out of the training
file (vs_sklearn.carve_validation(labels, seed=100 + s): other carve-outs than ft-autotune's) is the
validation set; each candidate trains on the other 90% and is scored on it, as TF-IDF + LinearSVC is.

    python3 benchmarks/defaults_val.py --variant base 'epochs=8' 'lr=8,epochs=8'   # key=value,... over the defaults
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vs_sklearn import DATASETS, SHARED, carve_validation, load_dataset, minority_class, scores  # noqa: E402


def parse_variant(text: str) -> dict:
    out = {}
    if text in ("", "base"):
        return out
    for kv in text.split(","):
        k, v = kv.split("=", 1)
        for cast in (int, float):
            try:
                v = cast(v)
                break
            except ValueError:
                continue
        if v in ("True", "False", "None"):
            v = {"True": True, "False": False, "None": None}[v]
        out[k] = v
    return out


def write_csv(path, labels, texts):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, quoting=csv.QUOTE_ALL)
        w.writerow(["label", "text"])
        w.writerows(zip(labels, texts))


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--variant", nargs="+", default=["base"])
    p.add_argument("--datasets", nargs="+", default=list(DATASETS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--svc", action="store_true", help="also TF-IDF + LinearSVC on the same carve-outs")
    args = p.parse_args(argv)
    from textpipe.predict import predict
    from textpipe.train import TrainConfig, fit

    rows = {}
    for name in args.datasets:
        y, x = load_dataset(name, SHARED)["train"]
        classes, mino = sorted(set(y)), minority_class(y)
        for seed in args.seeds:
            fit_rows, val_rows = carve_validation(y, 100 + seed)
            fy, fx = [y[i] for i in fit_rows], [x[i] for i in fit_rows]
            vy, vx = [y[i] for i in val_rows], [x[i] for i in val_rows]
            if args.svc:
                from sklearn.feature_extraction.text import TfidfVectorizer
                from sklearn.pipeline import make_pipeline
                from sklearn.svm import LinearSVC
                m = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LinearSVC(random_state=seed))
                rows.setdefault((name, "svc"), []).append(scores(vy, list(m.fit(fx, fy).predict(vx)), classes, mino))
            with tempfile.TemporaryDirectory() as tmp:
                write_csv(Path(tmp) / "fit.csv", fy, fx)
                for v in args.variant:
                    kw = parse_variant(v)
                    t0 = time.process_time()
                    with contextlib.redirect_stdout(io.StringIO()):
                        s = fit(TrainConfig(train=str(Path(tmp) / "fit.csv"), output_dir=str(Path(tmp) / "run"),
                                            overwrite=True, seed=seed, progress=False, **kw))
                    cpu = time.process_time() - t0
                    pred = [r["label_name"] for r in predict(s["checkpoint"], vx)]
                    r = scores(vy, pred, classes, mino)
                    r["cpu"] = cpu
                    rows.setdefault((name, v), []).append(r)
        for (n, v), rs in rows.items():
            if n == name:
                print(f"{n:<11} {v:<40} acc {statistics.median(r['accuracy'] for r in rs):.4f} "
                      f"mean {statistics.mean(r['accuracy'] for r in rs):.4f} "
                      f"mF1 {statistics.mean(r['macro_f1'] for r in rs):.4f} "
                      f"minF1 {statistics.mean(r['minority_f1'] for r in rs):.4f} "
                      f"cpu {statistics.mean(r.get('cpu', 0) for r in rs):.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
