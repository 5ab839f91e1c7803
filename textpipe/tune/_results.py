"""The trial table of a search: one row per trial, why it ended, the best one, saved as CSV and JSON.

Pure Python: `trial_rows` reads a Ray `ResultGrid` through its public attributes (`config`, `metrics`,
`metrics_dataframe`, `error`) without importing Ray, so the table code is tested on plain data.
"""
from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
from pathlib import Path
from typing import Any, Iterable

from textpipe.core.fileio import atomic_write_text
from textpipe.tune._space import UsageError

METRIC = "val_accuracy"  # what trials are scored on: accuracy on the validation split, never the test file
# why a trial ended, as the table and the summary spell it
COMPLETED, ASHA, BUDGET, ERROR, NOT_STARTED = ("completed", "stopped by ASHA", "stopped by the time budget", "error",
                                               "not started")
DIVERGED = "diverged"  # its loss became NaN/inf (textpipe.core.checks.DivergedError): a setting, not a bug
INTERRUPTED = "interrupted"  # running when the search was interrupted (Ctrl+C): --resume runs it again


def _num(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def trial_rows(results: Iterable, *, searched: list[str], asha_stopped: set[str],
               trials_dir: str | Path = "trials", interrupted: bool = False, bag_only=()) -> list[dict[str, Any]]:
    """One dict per trial: id, how it ended, epochs run, last and best validation accuracy, time, parameters,
    and `dir`, where the trial's fit() wrote (`trials_dir/<trial id>`).

    `interrupted`: the search was interrupted (Ctrl+C), so a trial that neither finished nor was stopped by
    ASHA did not meet the time budget: it was cut short by the interrupt (or by Ray stopping its worker).
    `bag_only`: parameters that only the bag model's trials use (tune._space.BAG_ONLY), blank in other rows."""
    from textpipe.tune._data import for_model

    rows = []
    for r in results:
        metrics, config = dict(r.metrics or {}), for_model(dict(r.config or {}), bag_only)
        history = getattr(r, "metrics_dataframe", None)
        scored = [] if history is None or METRIC not in history else map(_num, history[METRIC])
        accs = [a for a in scored if a is not None]
        # a trial that never reported has no metrics: its id is in Ray's directory name, run_trial_<id>_<n>_...
        name = str(getattr(r, "path", "") or "").rstrip("/").rsplit("/", 1)[-1]
        found = re.match(r".*?_([0-9a-f]{5,})_\d+_", name)
        trial_id = metrics.get("trial_id") or (found.group(1) if found else name or "?")
        epochs_run = int(metrics.get("epoch") or 0)
        if r.error is not None:
            end = DIVERGED if "DivergedError" in repr(r.error) or "training diverged" in str(r.error) else ERROR
        elif trial_id in asha_stopped:
            end = ASHA
        elif epochs_run == 0:
            end = NOT_STARTED
        elif epochs_run >= int(metrics.get("epochs") or config.get("epochs", epochs_run)):  # the trial's own
            end = COMPLETED
        else:
            end = BUDGET
        if interrupted and (end == BUDGET or (end == NOT_STARTED and (Path(trials_dir) / trial_id).is_dir())
                            or (end == ERROR and re.search(r"KeyboardInterrupt|TaskCancelledError",
                                                           repr(r.error)))):
            end = INTERRUPTED
        row = {"trial_id": trial_id, "end": end, "epochs_run": epochs_run, METRIC: _num(metrics.get(METRIC)),
               "best_val_accuracy": max(accs) if accs else None, "val_loss": _num(metrics.get("val_loss")),
               "train_loss": _num(metrics.get("train_loss")), "time_s": _num(metrics.get("time_total_s")),
               "dir": str(Path(trials_dir) / trial_id),
               "error": None if r.error is None else str(r.error).strip().splitlines()[-1][:200]}
        row.update({name: config.get(name) for name in searched})
        rows.append(row)
    rows.sort(key=lambda row: row["trial_id"])
    return rows


_VOLATILE = ("trial_id", "dir", "time_s")  # differ between two runs of the same trial


def rank_key(row: dict[str, Any]) -> tuple:
    """Better trials sort higher: last validation accuracy, then lower validation loss, then exact ties in a
    fixed order by their parameters and results (not Ray's random trial ids), so that a search repeated with
    `--num-samples` and the same seed picks the same trials."""
    loss = row["val_loss"] if row["val_loss"] is not None else math.inf
    rest = json.dumps({k: v for k, v in sorted(row.items()) if k not in _VOLATILE}, default=str)
    return (row[METRIC], -loss, rest)


def best_row(rows: list[dict[str, Any]], *, prefer: dict[str, Any] | None = None,
             n_val: int = 0) -> dict[str, Any] | None:
    """The trial to retrain: the best last-epoch validation accuracy among trials that ran all their epochs
    (a retrain runs all of them too); trials cut short only when none completed. Ties: see `rank_key`.

    With `prefer` (textpipe's default parameters) the one-standard-error rule: the completed trial with those
    parameters is kept when its accuracy is within one standard error, sqrt(p (1 - p) / n_val), of the best:
    on a validation split of a few hundred rows a better-looking configuration is most often noise.
    """
    scored = [r for r in rows if r[METRIC] is not None and r["end"] not in (ERROR, DIVERGED)]
    completed = [r for r in scored if r["end"] == COMPLETED]
    pool = completed or scored
    if not pool:
        return None
    best = max(pool, key=rank_key)
    if prefer and n_val > 0:
        se = math.sqrt(best[METRIC] * (1 - best[METRIC]) / n_val)
        default = [r for r in completed if all(r.get(k) == v for k, v in prefer.items())]
        if default and max(default, key=rank_key)[METRIC] >= best[METRIC] - se:
            return max(default, key=rank_key)
    return best


def counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """How many trials ended each way (all keys present)."""
    out = {k: 0 for k in (COMPLETED, ASHA, BUDGET, ERROR, DIVERGED, INTERRUPTED, NOT_STARTED)}
    for row in rows:
        out[row["end"]] += 1
    return out


def save_table(rows: list[dict[str, Any]], out_dir: str | Path) -> tuple[Path, Path]:
    """Write `trials.csv` and `trials.json` (atomically) into `out_dir`."""
    out_dir = Path(out_dir)
    columns = list(rows[0]) if rows else ["trial_id", "end"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return (atomic_write_text(out_dir / "trials.csv", buf.getvalue()),
            atomic_write_text(out_dir / "trials.json", json.dumps(rows, indent=1) + "\n"))


def format_table(rows: list[dict[str, Any]], *, searched: list[str], limit: int = 10) -> str:
    """The best `limit` trials by validation accuracy, as an aligned text table."""
    ranked = sorted(rows, key=lambda r: rank_key(r) if r[METRIC] is not None else (-1.0,), reverse=True)[:limit]
    cols = ["trial_id", "end", "epochs_run", METRIC, *searched]

    def cell(v):
        return "-" if v is None else (f"{v:.4f}" if isinstance(v, float) and abs(v) < 1 else f"{v:g}"
                                      if isinstance(v, float) else str(v))

    table = [cols] + [[cell(r.get(c)) for c in cols] for r in ranked]
    widths = [max(len(line[i]) for line in table) for i in range(len(cols))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in table)


def prepare_output(cfg, out: Path, space: dict[str, Any]) -> bool:
    """Check the output directory against --resume/--overwrite; True when a saved search is to be continued."""
    exp, saved_space = out / "ray", out / "space.json"
    holds = exp.exists() or saved_space.exists()
    if holds and not (cfg.resume or cfg.overwrite):
        raise UsageError(f"--output-dir {out} already holds a search: pass --resume to continue it or --overwrite "
                         f"to start over (or choose another --output-dir)")
    if cfg.overwrite:
        for name in ("ray", "trials", "final", "data", "rerank"):
            shutil.rmtree(out / name, ignore_errors=True)
        for name in ("space.json", "asha_stopped.json", "trials.csv", "trials.json", "best_config.json", "best.pt",
                     "summary.json"):
            (out / name).unlink(missing_ok=True)
        return False
    if not cfg.resume:
        return False
    if not holds:
        print(f"note: --resume: no search in {out} yet, starting a new one")
        return False
    if saved_space.exists() and json.loads(saved_space.read_text()) != json.loads(json.dumps(space)):
        raise UsageError(f"--resume: the search space differs from the one saved in {saved_space}; Ray resumes a "
                         f"search only unchanged: use the same --space/--param flags, or --overwrite")
    return (exp / "tuner.pkl").exists()


def read_ids(path: Path) -> set[str]:
    try:
        return set(json.loads(path.read_text()))
    except FileNotFoundError:
        return set()
