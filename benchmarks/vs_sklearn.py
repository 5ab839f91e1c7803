"""textpipe's default `train` vs the baselines a practitioner tries first, on the same splits, in one run:
scikit-learn's TF-IDF (1-2 grams, sublinear tf) + LinearSVC, fastText 0.9.2 with its defaults (and, with
`--autotune S`, fastText's autotune for S seconds on a validation carve-out), and textpipe; 3 seeds each.

    python3 benchmarks/vs_sklearn.py                        # 4 datasets x 3 seeds, table at the end (~2 min)
    python3 benchmarks/vs_sklearn.py --autotune 60          # + fastText autotune, 60 s per trial
    python3 benchmarks/vs_sklearn.py --autotune 60 --tune 180 --methods tfidf+svc ft-autotune textpipe tp-tune
    python3 benchmarks/vs_sklearn.py --datasets trec --seeds 0 --json out.json

Peers (installs nothing: `pip install scikit-learn "fasttext-wheel==0.9.2"`; not `fasttext` 0.9.3, which
trains to NaN):
  tfidf+svc   `make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LinearSVC(random_state=s))`
              on the raw texts (scikit-learn's own lower-casing and token pattern), every other setting default.
  fastText    `fasttext.train_supervised(input=train.txt, seed=s, thread=T, verbose=0)`: its defaults (dim 100,
              lr 0.1, epoch 5, wordNgrams 1) except `thread` = the cores here (T; its default 12 oversubscribes
              a small machine). Its input: `__label__k` + the text's basic_english tokens (lower-cased,
              punctuation split off, as textpipe's default tokenizer), written before the timed call.
  ft-autotune (`--autotune S`) `train_supervised(input=fit.txt, autotuneValidationFile=val.txt,
              autotuneDuration=S, ...)`: tuned on a 10% validation carve-out of the training file (seeded by s,
              stratified: every class keeps 10% of its rows); the final model trains on the other 90%.
  textpipe    `textpipe.train.fit(TrainConfig(train=train.csv, output_dir=tmp, seed=s, progress=False))`: the
              defaults of `textpipe train --train train.csv` (checkpoints every epoch included); predictions
              from its best.pt with `textpipe.predict.predict`.
  tp-sklearn  `textpipe.sklearn.TextClassifier(seed=s).fit(texts, labels)`: the same defaults through the
              scikit-learn estimator (a cross-check: it should score as textpipe does).
  tp-tune     (`--tune S`) `textpipe.tune.search(train=train.csv, time_budget_s=S, seed=s)`: `textpipe tune`
              with its defaults (default space, HyperOpt + ASHA, trials scored on its own seeded 10% carve-out
              of train, the final model retrained on all of train) within S seconds of wall time for the whole
              call; predictions from its best.pt. A time budget is not reproducible: how many trials fit
              depends on the machine's load (the trial count is printed).
Nothing is tuned on a test file: the tuning (fastText's autotune, textpipe tune) sees carve-outs of train only.

Datasets (`--datasets`, all by default):
  ag_news     the AG_NEWS stand-in (../shared/data/ag_news: 5,600 train / 2,000 test, 4 balanced classes);
              text = title + " " + description, as textpipe's AG_NEWS reader joins them.
  trec        TREC coarse question classes (../shared/data/trec: train_5500.label 5,444 / TREC_10.label 499,
              6 classes; label = text before the first ':', text = after the first space).
  binary      two-class table from AG_NEWS: its Business and Sci/Tech rows only (2,800 / 1,000, balanced; the
              pair a bag of words confuses most).
  imbalanced  World vs rest from AG_NEWS with the World rows thinned to 1 in 3 (in file order, the rows whose
              position among the World rows is a multiple of 3), in train and in test alike: 467 World of
              4,667 train rows, 167 of 1,667 test rows (10.0% minority). Labels "World" and "rest".
Metrics on the test file: accuracy, macro-F1 and the minority class's F1 (the class with the fewest training
rows; on the balanced sets no class is a minority, and that column shows the worst class's F1 instead, marked
"worst"); train wall seconds = the training call only (files written beforehand; TF-IDF's vectorizing and
textpipe's reading, tokenizing and checkpoint writing are inside it; predicting is not timed). Every figure is
the median over the seeds with its range [min-max]. All trials run in this one process, one after the other,
after the imports; textpipe trains with its default `threads=1`, fastText with T threads, LinearSVC in one.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA  # noqa: E402  (the AG_NEWS stand-in's train file)

SHARED = DEFAULT_DATA.parents[1]  # ../shared/data: ag_news/ and trec/
DATASETS = ("ag_news", "trec", "binary", "imbalanced")
METHODS = ("tfidf+svc", "fastText", "ft-autotune", "textpipe", "tp-sklearn", "tp-tune")
INSTALL = 'pip install scikit-learn "fasttext-wheel==0.9.2"'


# -- data --------------------------------------------------------------------------------------------------------
def _ag_news(shared: Path, split: str) -> tuple[list[str], list[str]]:
    from textpipe import AG_NEWS_CLASSES, read_ag_news_csv

    rows = read_ag_news_csv(shared / "ag_news" / f"{split}.csv.gz")  # (class 0..3, title + " " + description)
    return [AG_NEWS_CLASSES[y] for y, _ in rows], [t for _, t in rows]


def _trec(shared: Path, name: str) -> tuple[list[str], list[str]]:
    labels, texts = [], []
    for line in (shared / "trec" / name).read_text(encoding="latin-1").splitlines():
        if line.strip():
            label, text = line.split(" ", 1)
            labels.append(label.split(":", 1)[0])
            texts.append(text)
    return labels, texts


def _thin_world(labels: list[str], texts: list[str]) -> tuple[list[str], list[str]]:
    """World vs rest, keeping the World rows whose position among the World rows is a multiple of 3."""
    out_y, out_x, seen = [], [], 0
    for y, x in zip(labels, texts):
        if y == "World":
            seen += 1
            if (seen - 1) % 3:
                continue
        out_y.append("World" if y == "World" else "rest")
        out_x.append(x)
    return out_y, out_x


def load_dataset(name: str, shared: Path = SHARED) -> dict:
    """{"train": (labels, texts), "test": (labels, texts), "about": str}."""
    if name == "trec":
        return {"train": _trec(shared, "train_5500.label"), "test": _trec(shared, "TREC_10.label"),
                "about": "TREC coarse classes"}
    train, test = _ag_news(shared, "train"), _ag_news(shared, "test")
    if name == "ag_news":
        return {"train": train, "test": test, "about": "AG_NEWS stand-in"}
    if name == "binary":
        keep = {"Business", "Sci/Tech"}

        def pick(split):
            rows = [(y, x) for y, x in zip(*split) if y in keep]
            return [y for y, _ in rows], [x for _, x in rows]
        return {"train": pick(train), "test": pick(test), "about": "AG_NEWS Business vs Sci/Tech"}
    if name == "imbalanced":
        return {"train": _thin_world(*train), "test": _thin_world(*test),
                "about": "AG_NEWS World (1 in 3 kept) vs rest"}
    raise ValueError(f"unknown dataset {name!r}; choose from {DATASETS}")


def carve_validation(labels: list[str], seed: int, fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, validation rows): `fraction` of each class's rows, picked by a seeded permutation."""
    rng = np.random.default_rng(seed)
    y = np.asarray(labels)
    val = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:max(1, round(fraction * (y == c).sum()))]
                          for c in sorted(set(labels))])
    fit = np.setdiff1d(np.arange(len(labels)), val)
    return fit, np.sort(val)


# -- the methods: each returns (train wall seconds, predicted labels of the test texts) ---------------------------
def run_tfidf_svc(train, test, seed, work, args):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LinearSVC(random_state=seed))
    t0 = time.perf_counter()
    model.fit(train[1], train[0])
    wall = time.perf_counter() - t0
    return wall, list(model.predict(test[1]))


def _fasttext_file(path: Path, labels, tokens, classes) -> None:
    index = {c: k for k, c in enumerate(classes)}
    path.write_text("".join(f"__label__{index[y]} {' '.join(t)}\n" for y, t in zip(labels, tokens)))


def _fasttext_predict(model, tokens, classes) -> list[str]:
    predicted, _ = model.predict([" ".join(t) for t in tokens])
    return [classes[int(p[0][len("__label__"):])] for p in predicted]


@contextlib.contextmanager
def _os_quiet():
    """File descriptors 1 and 2 to /dev/null (output written by C++ code, which redirect_stdout cannot catch)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


def run_fasttext(train, test, seed, work, args, *, autotune: int = 0):
    import fasttext

    classes = sorted(set(train[0]))
    tokens = args.tokens[id(train)]
    kw = dict(seed=seed, thread=args.threads, verbose=0)
    if autotune:
        fit_rows, val_rows = carve_validation(train[0], seed)
        _fasttext_file(work / "fit.txt", [train[0][i] for i in fit_rows], [tokens[i] for i in fit_rows], classes)
        _fasttext_file(work / "val.txt", [train[0][i] for i in val_rows], [tokens[i] for i in val_rows], classes)
        kw |= dict(input=str(work / "fit.txt"), autotuneValidationFile=str(work / "val.txt"),
                   autotuneDuration=autotune)
    else:
        _fasttext_file(work / "train.txt", train[0], tokens, classes)
        kw |= dict(input=str(work / "train.txt"))
    t0 = time.perf_counter()
    with _os_quiet():  # autotune prints its progress from C++ whatever `verbose` says
        model = fasttext.train_supervised(**kw)
    wall = time.perf_counter() - t0
    return wall, _fasttext_predict(model, args.tokens[id(test)], classes)


def _write_csv(path: Path, rows) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, quoting=csv.QUOTE_ALL)
        w.writerow(["label", "text"])
        w.writerows(zip(*rows))
    return path


def run_textpipe(train, test, seed, work, args):
    from textpipe.predict import predict
    from textpipe.train import TrainConfig, fit

    path = _write_csv(work / "train.csv", train)
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        summary = fit(TrainConfig(train=str(path), output_dir=str(work / "run"), seed=seed, progress=False))
    wall = time.perf_counter() - t0
    return wall, [r["label_name"] for r in predict(summary["checkpoint"], test[1])]


def run_tp_sklearn(train, test, seed, work, args):
    from textpipe.sklearn import TextClassifier

    t0 = time.perf_counter()
    clf = TextClassifier(seed=seed).fit(train[1], train[0])
    wall = time.perf_counter() - t0
    return wall, [str(y) for y in clf.predict(test[1])]


def _tune_choice(summary: dict) -> str:
    """Which trial `textpipe tune` retrained: the defaults' or another, and by which rule."""
    if summary.get("rerank"):
        chosen = next(t for t in summary["rerank"] if t["trial_id"] == summary["best"]["trial_id"])
        return f"{'the defaults' if chosen['defaults'] else 'a trial'} (--rerank: mean {chosen['mean']:.4f})"
    return "the defaults (one standard error)" if "top_trial" in summary else "the best trial"


def run_tp_tune(train, test, seed, work, args):
    from textpipe.predict import predict
    from textpipe.tune import search

    path = _write_csv(work / "train.csv", train)
    t0 = time.perf_counter()
    with _os_quiet():  # Ray's workers print to the inherited descriptors
        summary = search(train=str(path), time_budget_s=args.tune, seed=seed, output_dir=str(work / "tune"),
                         progress=False)
    wall = time.perf_counter() - t0
    print(f"    tune seed {seed}: {summary['trials']} trials ({summary['asha_stopped']} stopped by ASHA, "
          f"ended {json.dumps(summary['ended'])}), retrained {_tune_choice(summary)} "
          f"{json.dumps(summary['best']['config'])}", flush=True)
    return wall, [r["label_name"] for r in predict(work / "tune" / "best.pt", test[1])]


RUNNERS = {"tfidf+svc": run_tfidf_svc, "fastText": run_fasttext,
           "ft-autotune": lambda *a: run_fasttext(*a, autotune=a[-1].autotune),
           "textpipe": run_textpipe, "tp-sklearn": run_tp_sklearn, "tp-tune": run_tp_tune}


# -- metrics and the table -----------------------------------------------------------------------------------------
def scores(y_true, y_pred, classes, minority: str | None) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    per_class = f1_score(y_true, y_pred, labels=classes, average=None, zero_division=0)
    return {"accuracy": accuracy_score(y_true, y_pred),
            "macro_f1": f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0),
            "minority_f1": per_class[classes.index(minority)] if minority else per_class.min()}


def minority_class(labels: list[str]) -> str | None:
    """The class with the fewest rows, or None when every class has as many (a balanced set)."""
    counts = {c: labels.count(c) for c in sorted(set(labels))}
    return None if len(set(counts.values())) == 1 else min(counts, key=counts.get)


def med_range(values: list[float], fmt: str) -> str:
    med = statistics.median(values)
    if len(values) == 1:
        return format(med, fmt)
    return f"{med:{fmt}} [{min(values):{fmt}}-{max(values):{fmt}}]"


def table(results: dict, sets: dict, methods: list[str]) -> str:
    lines = []
    head = f"{'dataset':<12} {'method':<12} {'accuracy':>24} {'macro-F1':>24} {'minority F1':>30} {'train s':>22}"
    lines += [head, "-" * len(head)]
    for name, by_method in results.items():
        info = sets[name]
        mino = f"({info['minority']})" if info["minority"] else "(worst)"
        for m in methods:
            trials = by_method.get(m)
            if not trials:
                continue
            lines.append(f"{name if m == methods[0] else '':<12} {m:<12} "
                         f"{med_range([t['accuracy'] for t in trials], '.4f'):>24} "
                         f"{med_range([t['macro_f1'] for t in trials], '.4f'):>24} "
                         f"{mino + ' ' + med_range([t['minority_f1'] for t in trials], '.4f'):>30} "
                         f"{med_range([t['train_s'] for t in trials], '.2f'):>22}")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    p.add_argument("--shared", type=Path, default=SHARED, help=f"directory with ag_news/ and trec/ (default {SHARED})")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--autotune", type=int, default=0, metavar="S",
                   help="also fastText autotune, S seconds per trial on a 10%% validation carve-out (default 0: off)")
    p.add_argument("--tune", type=int, default=0, metavar="S",
                   help="also textpipe tune with a time budget of S seconds (default 0: off)")
    p.add_argument("--methods", nargs="+", choices=METHODS, help="only these methods (default: all that are on)")
    p.add_argument("--no-estimator", action="store_true", help="leave out the textpipe.sklearn estimator rows")
    p.add_argument("--threads", type=int, default=min(os.cpu_count() or 1, 12), help="fastText's thread")
    p.add_argument("--json", type=Path, help="also write every trial's figures to this JSON file")
    args = p.parse_args(argv)
    try:
        import fasttext  # noqa: F401
        import sklearn
    except ImportError as e:
        print(f"error: {e.name} is not installed here; {INSTALL}", file=sys.stderr)
        return 2
    import torch

    import textpipe
    import textpipe.predict  # noqa: F401  (imports before any timing)
    import textpipe.sklearn  # noqa: F401
    import textpipe.train  # noqa: F401
    from textpipe import basic_english_batch

    methods = [m for m in METHODS if not (m == "ft-autotune" and not args.autotune)
               and not (m == "tp-tune" and not args.tune) and not (m == "tp-sklearn" and args.no_estimator)
               and (not args.methods or m in args.methods)]
    if args.methods and set(args.methods) - set(methods):
        p.error(f"{', '.join(sorted(set(args.methods) - set(methods)))}: off (ft-autotune needs --autotune S, "
                "tp-tune --tune S; tp-sklearn is left out by --no-estimator)")
    load = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else "n/a"
    print(f"vs_sklearn: textpipe {textpipe.__version__} (torch {torch.__version__}), scikit-learn "
          f"{sklearn.__version__}, fastText {_fasttext_version()} (thread={args.threads}); cores {os.cpu_count()}, "
          f"loadavg {load}; seeds {args.seeds}; methods {methods}", flush=True)
    sets, results, trials_out = {}, {}, []
    for name in args.datasets:
        data = load_dataset(name, args.shared)
        train, test = data["train"], data["test"]
        args.tokens = {id(train): basic_english_batch(train[1]), id(test): basic_english_batch(test[1])}
        classes = sorted(set(train[0]))
        minority = minority_class(train[0])
        sets[name] = {"minority": minority, "classes": classes}
        counts = ", ".join(f"{c} {train[0].count(c)}/{test[0].count(c)}" for c in classes)
        print(f"\n{name}: {data['about']}: {len(train[0])} train / {len(test[0])} test rows; per class (train/test): "
              f"{counts}; minority: {minority or 'none (balanced: the worst class F1 is shown)'}", flush=True)
        results[name] = {m: [] for m in methods}
        for seed in args.seeds:
            for m in methods:
                with tempfile.TemporaryDirectory(prefix="vs_sklearn-") as tmp:
                    wall, pred = RUNNERS[m](train, test, seed, Path(tmp), args)
                r = {"train_s": wall, **scores(test[0], pred, classes, minority)}
                results[name][m].append(r)
                trials_out.append({"dataset": name, "method": m, "seed": seed, **r})
                print(f"  seed {seed} {m:<12} acc {r['accuracy']:.4f} macro-F1 {r['macro_f1']:.4f} "
                      f"{'minority' if minority else 'worst'} F1 {r['minority_f1']:.4f} train {wall:.2f} s",
                      flush=True)
    if args.json:
        args.json.write_text(json.dumps({"seeds": args.seeds, "autotune": args.autotune, "tune": args.tune, "datasets": sets,
                                         "trials": trials_out}, indent=1) + "\n")
    load = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else "n/a"
    print(f"\nmedian [min-max] over seeds {args.seeds}; test files only for these figures; minority F1: the "
          f"class named, or (worst) the lowest per-class F1 on a balanced set; loadavg at the end {load} (train "
          "seconds are wall time: other work on the machine inflates them)\n")
    print(table(results, sets, methods))
    return 0


def _fasttext_version() -> str:
    import importlib.metadata

    for dist in ("fasttext-wheel", "fasttext"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "?"


if __name__ == "__main__":
    raise SystemExit(main())
