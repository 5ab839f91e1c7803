"""The end of `textpipe tune`: the best configuration as JSON, the final model (retrained on train + validation,
or the best trial's own checkpoint), its test report, `<output-dir>/best.pt`, and the printed summary."""
from __future__ import annotations

import json
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
    top = results.best_row(rows)
    best = top
    if cfg.prefer_defaults:
        from textpipe.tune._space import default_point
        best = results.best_row(rows, prefer=default_point(space), n_val=shared["data"].sizes["val"])
    print(f"\ntrials by validation accuracy (all {len(rows)} in {out / 'trials.csv'}):")
    print(results.format_table(rows, searched=searched))
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
        if best is not top:
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
