"""How `textpipe tune` should pick its final trial, judged on carve-outs of the training files only (never a test
file). For each dataset of `vs_sklearn.py` and seed s: a stratified 20% of train (`carve_validation(seed=300 + s)`)
is held out as a pseudo-test; `textpipe tune --num-samples N --seed s` searches the other 80% (its `--rerank`
candidates: the best 5 completed trials and the defaults' trial, with their scores on the search's carve-out and
3 more); then each candidate is trained on `--extra` further carve-outs of that 80% (seeds s + 4, s + 5, ...) and
once on all of it, tested on the pseudo-test. The choice rules below are then scored offline on the same fits:
the pseudo-test accuracy of the trial each rule picks, next to the defaults'.

    cd benchmarks && python rerank_val.py --num-samples 200 --seeds 0 1 2 --save fits.json   # about 30 min
    python rerank_val.py --report fits.json                  # the rules' table again, from the saved fits

Rules (n: validation rows of one carve-out; SE: sqrt(p(1 - p) / rows) of the best mean p):
  search     the search's best trial (no re-scoring)
  rerank3    best mean over the search's carve-out + 3 more, defaults kept within one SE (--rerank before)
  rerank6    the same over the search's carve-out + 6 more: seeds s+1 to s+6, as --rerank now
  rerank6b   the same with the other 3 extra carve-outs (seeds s+1 to s+3, s+7 to s+9)
  rerank9    the same over the search's carve-out + 9 more
  confirm    rerank3's pick, kept only if it also beats the defaults on the next 3 carve-outs (mean, strictly)
  confirm1se rerank3's pick, kept only if it beats the defaults there by one SE of those rows
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from vs_sklearn import DATASETS, _write_csv, carve_validation, load_dataset  # noqa: E402


def _fit(config: dict, **fields) -> dict:
    from textpipe.train import TrainConfig, fit

    with contextlib.redirect_stdout(io.StringIO()):
        return fit(TrainConfig(**config, **fields, progress=False, checkpoints="none", overwrite=True, threads=1))


def one_case(name: str, seed: int, work: Path, args) -> dict:
    from textpipe.tune import search

    labels, texts = load_dataset(name)["train"]
    keep, held = carve_validation(labels, seed=300 + seed, fraction=0.2)
    train = _write_csv(work / "train.csv", ([labels[i] for i in keep], [texts[i] for i in keep]))
    test = _write_csv(work / "holdout.csv", ([labels[i] for i in held], [texts[i] for i in held]))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        summary = search(train=str(train), num_samples=args.num_samples, seed=seed, output_dir=str(work / "tune"),
                         progress=False, rerank=5, final="checkpoint")
    cands = summary["rerank"]
    for c in cands:  # the search's carve-out and its first 3 re-scoring ones (seeds s+1..s+3), whatever RERANK_FOLDS
        c["val_accuracies"] = c["val_accuracies"][:4]
        c["extra"] = [_fit(c["config"], train=str(train), val_fraction=0.1, seed=seed + 4 + k,
                           output_dir=str(work / "run"))["last"]["val_accuracy"] for k in range(args.extra)]
        c["holdout"] = _fit(c["config"], train=str(train), test=str(test), seed=seed,
                            output_dir=str(work / "run"))["test"]["accuracy"]
    # the candidates come sorted by the search's validation accuracy (the defaults' trial last when not among them)
    return {"dataset": name, "seed": seed, "n_val": round(0.1 * len(keep)), "candidates": cands,
            "search_best": cands[0]["trial_id"]}


def _mean(xs):
    return sum(xs) / len(xs)


def _se(p: float, rows: int) -> float:
    return math.sqrt(p * (1 - p) / rows)


EXTRA = {"rerank3": [], "rerank6": [0, 1, 2], "rerank6b": [3, 4, 5], "rerank9": [0, 1, 2, 3, 4, 5]}


def choose(case: dict, rule: str) -> dict:
    """The candidate `rule` picks (see the module docstring)."""
    cands, n = case["candidates"], case["n_val"]
    default = next(c for c in cands if c["defaults"])
    if rule == "search":
        return next(c for c in cands if c["trial_id"] == case["search_best"])

    def scores(c):
        return c["val_accuracies"] + [c["extra"][i] for i in EXTRA.get(rule, [])]
    best = max(cands, key=lambda c: (_mean(scores(c)), c["defaults"]))
    p = _mean(scores(best))
    if _mean(scores(default)) >= p - _se(p, n * len(scores(best))):
        return default
    if rule in EXTRA:
        return best
    b, d = _mean(best["extra"][:3]), _mean(default["extra"][:3])
    margin = _se(b, 3 * n) if rule == "confirm1se" else 0.0
    return best if b > d + margin else default


RULES = ("search", "rerank3", "rerank6", "rerank6b", "rerank9", "confirm", "confirm1se")


def report(cases: list[dict]) -> str:
    lines = [f"{'rule':<11} " + " ".join(f"{c['dataset'][:7]}/{c['seed']}" for c in cases)
             + "   mean vs defaults, worse/better"]
    extra = min(len(c["extra"]) for case in cases for c in case["candidates"])
    needs = {rule: max(EXTRA[rule], default=-1) + 1 if rule in EXTRA else 3 * rule.startswith("confirm")
             for rule in RULES}
    for rule in ("defaults",) + tuple(r for r in RULES if needs[r] <= extra):  # the rules --extra has fits for
        picks = [next(c for c in case["candidates"] if c["defaults"]) if rule == "defaults" else choose(case, rule)
                 for case in cases]
        deltas = [p["holdout"] - next(c for c in case["candidates"] if c["defaults"])["holdout"]
                  for p, case in zip(picks, cases)]
        lines.append(f"{rule:<11} " + " ".join(f"{p['holdout']:>9.4f}" for p in picks)
                     + f"   {_mean(deltas):+.4f}, {sum(d < 0 for d in deltas)}/{sum(d > 0 for d in deltas)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--num-samples", type=int, default=200)
    p.add_argument("--extra", type=int, default=6, help="carve-outs beyond --rerank's (default 6)")
    p.add_argument("--save", type=Path, help="write the fits as JSON here")
    p.add_argument("--report", type=Path, metavar="JSON", help="only score the rules on the fits --save wrote")
    args = p.parse_args(argv)
    if args.report:
        print(report(json.loads(args.report.read_text())))
        return 0
    cases = []
    for name in args.datasets:
        for seed in args.seeds:
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                cases.append(one_case(name, seed, Path(tmp), args))
            print(f"{name} seed {seed}: {time.perf_counter() - t0:.0f} s; candidates (folds 0-3 | extra | holdout): "
                  + "; ".join(f"{'D ' if c['defaults'] else ''}{_mean(c['val_accuracies']):.4f} | "
                              f"{_mean(c['extra']):.4f} | {c['holdout']:.4f}" for c in cases[-1]["candidates"]),
                  flush=True)
            if args.save:
                args.save.write_text(json.dumps(cases, indent=1))
    print("\npseudo-test accuracy of each rule's pick (a 20% carve-out of train; test files are never read):")
    print(report(cases))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
