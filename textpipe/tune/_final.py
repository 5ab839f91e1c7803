"""The end of `textpipe tune`: the best configuration as JSON, the final model (retrained on train + validation,
or the best trial's own checkpoint), its test report, `<output-dir>/best.pt`, and the printed summary."""
from __future__ import annotations

import contextlib
import io
import json
import math
import time
from pathlib import Path
from typing import Any

from textpipe.tune import _results as results
from textpipe.core.fileio import atomic_write_text


def best_config(space: dict[str, Any], row: dict[str, Any], searched: list[str], bag_only=()) -> dict[str, Any]:
    """The full configuration of a trial: the space's constants plus the trial's drawn values (less the bag's
    ranges when the trial's model is another family)."""
    from textpipe.tune._data import for_model, native

    return for_model(native({name: (row[name] if name in searched else spec) for name, spec in space.items()}),
                     bag_only)


# carve-outs besides the search's that --rerank scores each candidate on: 6, not 3, chosen on pseudo-test carve-outs
# of the training files (benchmarks/rerank_val.py, README "--rerank K")
RERANK_FOLDS = 6
_clock = time.perf_counter  # (a test moves it on to run the time budget out mid-re-scoring)


def rerank_count(cfg, space: dict[str, Any]) -> int:
    """How many of the best trials `--rerank` re-scores (None: 5 when every trial is the bag model, else 0)."""
    if cfg.rerank is not None:
        return cfg.rerank
    return 5 if space.get("model", "bag") == "bag" else 0


def rerank(cfg, *, rows, space, searched, data, shared, out: Path, prefer,
           deadline: float | None = None) -> tuple[dict, list[dict]] | None:
    """The trial to retrain, by its mean validation accuracy over the search's carve-out and RERANK_FOLDS more
    (other seeds, the same share of train + val); None when fewer than two candidates completed.

    `deadline` (a `_clock()` time: the time budget's end): a carve-out is only started while the time left
    covers it and then the final model (estimated from the carve-out before, or before the first from the
    candidates' trial times), so a low estimate of the search's reserve costs carve-outs, not the budget;
    None when not even one fits.

    Why: on a few hundred validation rows the best of hundreds of trials is mostly the luckiest (the winner's
    curse: its accuracy there is biased up); new carve-outs score it without that bias. Candidates: the best
    `rerank_count` completed trials and the defaults' trial; the one-standard-error rule, now over
    RERANK_FOLDS + 1 times the rows, keeps the defaults."""
    from textpipe.core.checks import DivergedError
    from textpipe.train.loop import TrainConfig, fit
    from textpipe.train.prepare import prepare_data
    from textpipe.tune._data import derive, final_fields, trial_train_config
    from textpipe.tune._space import is_hf, min_value

    metric = results.METRIC
    completed = sorted((r for r in rows if r["end"] == results.COMPLETED and r[metric] is not None),
                       key=results.rank_key, reverse=True)
    cands = completed[:rerank_count(cfg, space)]
    default = next((r for r in completed if prefer and all(r.get(k) == v for k, v in prefer.items())), None)
    if default is not None and default not in cands:
        cands.append(default)
    if len(cands) < 2:
        return None
    sizes = shared["data"].sizes
    fields = shared["base"]  # the training file alone (trials never read the test file): other carve-outs of it
    if data["has_val"]:  # a validation file: joined to train, then carved as train alone would be
        fields = {**fields, **final_fields(data, shared["data"]), "test": None}
    kw = {"model": space["model"]} if is_hf(space.get("model")) else {}
    scores, t0 = {r["trial_id"]: [r[metric]] for r in cands}, _clock()
    # before the first carve-out: the candidates' trials (a Ray worker's time: an over-estimate) set the pace
    scale = (sizes["train"] + sizes["val"]) / sizes["train"]  # the final model trains on train + val
    fold_s = sum(r.get("time_s") or 0.0 for r in cands) + len(cands)
    final_s = max(r.get("time_s") or 0.0 for r in cands) * scale + 1
    print(f"\nre-scoring the best {len(cands)} trials on {RERANK_FOLDS} more validation carve-outs (--rerank):")
    folds = 0
    for k in range(1, RERANK_FOLDS + 1):
        start = _clock()
        if deadline is not None and start + fold_s + final_s > deadline:
            print(f"  time budget: {folds} of {RERANK_FOLDS} carve-outs re-scored (the next, about {fold_s:.1f} s, "
                  f"and the final model, about {final_s:.1f} s, would end past it)")
            break
        fold = {**fields, "val_fraction": sizes["val"] / (sizes["train"] + sizes["val"]), "seed": cfg.seed + k,
                "checkpoints": "none", "progress": False}
        prepared = prepare_data(TrainConfig(**fold, min_freq=int(min_value(space.get("min_freq", 1))), **kw))
        longest = 0.0
        for r in cands:
            tc = trial_train_config({"base": fold, "bag_only": shared.get("bag_only", ())},
                                    best_config(space, r, searched, shared.get("bag_only", ())),
                                    output_dir=str(out / "rerank" / f"{r['trial_id']}-{k}"))
            last: dict = {"val_accuracy": 0.0}  # a run that diverges on this carve-out scores 0
            t_fit = _clock()
            with contextlib.suppress(DivergedError), contextlib.redirect_stdout(io.StringIO()):
                fit(tc, report=last.update, data=derive(prepared, tc))
            longest = max(longest, _clock() - t_fit)
            scores[r["trial_id"]].append(last["val_accuracy"])
        folds, fold_s, final_s = k, _clock() - start, longest * scale + 1
    if not folds:
        return None
    table = [{"trial_id": r["trial_id"], "val_accuracies": scores[r["trial_id"]],
              "mean": sum(scores[r["trial_id"]]) / len(scores[r["trial_id"]]), "defaults": r is default,
              "config": best_config(space, r, searched, shared.get("bag_only", ()))} for r in cands]
    chosen = max(table, key=lambda t: (t["mean"], t["defaults"]))
    if default is not None:
        p, n = chosen["mean"], sizes["val"] * (folds + 1)
        mine = next(t for t in table if t["defaults"])
        if mine["mean"] >= p - math.sqrt(p * (1 - p) / n):
            chosen = mine
    print(f"  ({len(cands) * folds} fits in {_clock() - t0:.1f} s; trial, validation accuracy on "
          f"the search's carve-out then on each new one, mean)")
    for t in table:
        accs = " ".join(f"{a:.4f}" for a in t["val_accuracies"])
        print(f"  {t['trial_id']:<12} {accs}  mean {t['mean']:.4f}{'  (defaults)' if t['defaults'] else ''}"
              f"{'  <- chosen' if t is chosen else ''}")
    return next(r for r in cands if r["trial_id"] == chosen["trial_id"]), table


def retrain(cfg, *, config: dict[str, Any], data: dict[str, Any], shared: dict[str, Any], out: Path) -> dict:
    """`fit` with the best configuration on train + validation, tested on the test file; returns fit's result."""
    from textpipe.tune._data import final_fields, trial_train_config
    from textpipe.train.loop import fit

    base = {**shared["base"], **final_fields(data, shared["data"]), "device": "auto", "checkpoints": "end",
            "progress": False}
    return fit(trial_train_config({"base": base}, config, output_dir=str(out / "final")))


def from_checkpoint(*, trial_dir: Path, data: dict[str, Any], out: Path) -> dict:
    """The best trial's own best.pt (trained on train without validation), evaluated on the test file."""
    from textpipe.checkpoint.format import copy_checkpoint
    from textpipe.evaluate import evaluate

    src = trial_dir / "best.pt"
    if not src.exists():
        raise FileNotFoundError(f"the best trial's checkpoint {src} is missing; use --final retrain")
    copy_checkpoint(src, out / "best.pt")
    test = data["user"]["test"] or data["user"]["data_dir"]  # a directory: its test file
    report = evaluate(out / "best.pt", test) if data["test"] else None
    return {"test": report, "checkpoint": str(out / "best.pt")}


def finish(cfg, *, rows, searched, space, data, shared, out: Path, t0: float, search_s: float,
           resumed: bool) -> dict[str, Any]:
    """Pick the best trial, build the final model, print and save the summary."""
    n = results.counts(rows)
    from textpipe.tune._space import default_point

    top = results.best_row(rows)
    best = top
    prefer = default_point(space) if cfg.prefer_defaults else None
    if prefer:
        best = results.best_row(rows, prefer=prefer, n_val=shared["data"].sizes["val"])
    print(f"\ntrials by validation accuracy (all {len(rows)} in {out / 'trials.csv'}):")
    print(results.format_table(rows, searched=searched))
    deadline = None if cfg.time_budget_s is None else t0 + cfg.time_budget_s
    reranked = (rerank(cfg, rows=rows, space=space, searched=searched, data=data, shared=shared, out=out,
                       prefer=prefer, deadline=deadline) if best is not None and rerank_count(cfg, space) else None)
    if reranked:
        best, table = reranked
    summary: dict[str, Any] = {"trials": len(rows) - n[results.NOT_STARTED], "ended": n,
                               "asha_stopped": n[results.ASHA],
                               "search": cfg.search, "scheduler": cfg.scheduler, "seed": cfg.seed,
                               "search_s": round(search_s, 1), "resumed": resumed, "best": None,
                               "data": {k: data[k] for k in ("train", "val", "val_fraction", "test")}}
    if best is None:
        print("error: no trial reported a validation accuracy; see the errors in trials.csv and the trial logs "
              f"in {out / 'ray'}")
    else:
        config = best_config(space, best, searched, shared.get("bag_only", ()))
        atomic_write_text(out / "best_config.json", json.dumps(config, indent=1) + "\n")
        t_final = time.perf_counter()
        if cfg.final == "retrain":
            result = retrain(cfg, config=config, data=data, shared=shared, out=out)
            from textpipe.checkpoint.format import copy_checkpoint
            copy_checkpoint(result["checkpoint"], out / "best.pt")
        else:
            result = from_checkpoint(trial_dir=Path(best["dir"]), data=data, out=out)
        test = result.get("test")
        if reranked:
            summary["rerank"] = table
        elif best is not top:
            print(f"kept textpipe's defaults (trial {best['trial_id']}, validation accuracy "
                  f"{best[results.METRIC]:.4f}): within one standard error of the best, trial {top['trial_id']} "
                  f"({top[results.METRIC]:.4f}); --no-prefer-defaults retrains that one")
            summary["top_trial"] = {"trial_id": top["trial_id"], "val_accuracy": top[results.METRIC],
                                    "config": best_config(space, top, searched, shared.get("bag_only", ()))}
        summary.update(best={"trial_id": best["trial_id"], "val_accuracy": best[results.METRIC], "config": config},
                       final=cfg.final, final_s=round(time.perf_counter() - t_final, 1),
                       test_accuracy=test["accuracy"] if test else None, checkpoint=str(out / "best.pt"),
                       # as train's summary.json: the test report (macro-F1, per class, confusion) and class names
                       test=test, classes=result.get("classes") or (test or {}).get("class_names"))
    summary["wall_s"] = round(time.perf_counter() - t0, 1)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1) + "\n")
    print(format_summary(summary))
    return summary


def format_summary(s: dict[str, Any]) -> str:
    """The closing lines: trials and how they ended, the best configuration, the test accuracy, the wall time."""
    n = s["ended"]
    not_started = f" (and {n[results.NOT_STARTED]} queued, not started)" if n[results.NOT_STARTED] else ""
    lines = [f"{s['trials']} trials ran{not_started} ({s['search']}, scheduler {s['scheduler']}"
             f"{', resumed' if s['resumed'] else ''}): {n[results.COMPLETED]} completed, {n[results.ASHA]} stopped "
             f"early by ASHA, {n[results.BUDGET]} stopped by the time budget, {n[results.ERROR]} errors, "
             f"{n[results.DIVERGED]} diverged"]
    if s["best"]:
        b = s["best"]
        lines.append(f"best trial {b['trial_id']}: validation accuracy {b['val_accuracy']:.4f}, "
                     f"config {json.dumps(b['config'])}")
        how = "retrained on train + validation" if s["final"] == "retrain" else "the best trial's checkpoint"
        test = f"test accuracy {s['test_accuracy']:.4f}" if s["test_accuracy"] is not None else "no test file"
        lines.append(f"final model ({how}): {test} -> {s['checkpoint']}")
    final = f", final model {s['final_s']:.1f} s" if s.get("final_s") is not None else ""
    lines.append(f"wall time {s['wall_s']:.1f} s (search {s['search_s']:.1f} s{final})")
    return "\n".join(lines)
