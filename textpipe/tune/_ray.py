"""The Ray side of `textpipe tune`: start Ray, the trial function around `textpipe.train.fit`, ASHA that
records which trials it stopped early, the search algorithms, and the Tuner (new or restored).

The only textpipe module that imports Ray (`textpipe.tune.command` imports it only after checking Ray is installed).
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # use the CLIReporter table (Ray's new output ignores it)
# a trial the time budget stopped before it started has no results: Ray warns about each; the table says it
logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)


def _not_tunes_resume_hint(record: logging.LogRecord) -> bool:
    """Drop Tune's Ctrl+C messages: `textpipe tune` says what it does, and the command that continues a search
    is `--resume`, not `Tuner.restore(...)`."""
    text = str(record.msg)
    return "Tuner.restore" not in text and "Stop signal received" not in text


logging.getLogger("ray.tune.tune").addFilter(_not_tunes_resume_hint)

import ray  # noqa: E402
from ray import tune  # noqa: E402
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler  # noqa: E402
from ray.tune.stopper import Stopper  # noqa: E402

from textpipe.tune._results import METRIC  # noqa: E402
from textpipe.tune._space import to_ray  # noqa: E402
from textpipe.core.fileio import atomic_write_text  # noqa: E402

EXPERIMENT = "ray"  # <output-dir>/ray holds Ray's experiment state and one directory per trial


class RecordingASHA(ASHAScheduler):
    """ASHA that writes the ids of the trials it stops *early* to a JSON file (the summary counts them).

    ASHA also "stops" a trial at its last epoch (max_t); that is not an early stop and is not recorded.
    The file lives in the output directory, so a resumed search keeps counting.
    """

    def __init__(self, *, record_path: str | os.PathLike, **kwargs):
        super().__init__(**kwargs)
        self._record_path = str(record_path)

    def stopped(self) -> set[str]:
        try:
            return set(json.loads(Path(self._record_path).read_text()))
        except FileNotFoundError:
            return set()

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        action = super().on_trial_result(tune_controller, trial, result)
        if action == self.STOP and result.get("epoch", 0) < result.get("epochs", float("inf")):
            atomic_write_text(self._record_path, json.dumps(sorted(self.stopped() | {trial.trial_id})) + "\n")
        return action


class BudgetStopper(Stopper):
    """Ray's TimeoutStopper, but it also keeps back the time the final model will need.

    The budget counts down in wall-clock time from construction (and, after a resume, from the restart: the
    time between a kill and `--resume` is not counted). The reserve is the training-loop time (`loop_s`, not
    the trial's start-up in a fresh Ray worker) of the best trial so far that ran all its epochs, scaled by
    `final_scale` (the retrain sees train + validation), plus `final_extra_s` for reading the data, the test
    and Ray's shutdown: the search stops once the budget left would no longer cover the final model.
    """

    def __init__(self, budget_s: float, *, final_scale: float, final_extra_s: float = 8.0):
        self._budget, self._scale, self._extra = float(budget_s), final_scale, final_extra_s
        self._best, self.reserve_s = -1.0, 0.0
        self._last_check = time.time()

    def __call__(self, trial_id: str, result: dict) -> bool:
        acc = result.get(METRIC)
        if acc is not None and result.get("epoch", 0) >= result.get("epochs", float("inf")) and acc > self._best:
            loop_s = result.get("loop_s", result.get("time_total_s", 0.0))
            self._best, self.reserve_s = acc, loop_s * self._scale + self._extra
        return False

    def stop_all(self) -> bool:
        now = time.time()
        if self._last_check is not None:
            self._budget -= now - self._last_check
        self._last_check = now
        return self._budget <= self.reserve_s

    def __setstate__(self, state: dict) -> None:
        state["_last_check"] = None  # restored: count from the first check of the resumed search
        self.__dict__.update(state)


def start(address: str | None, *, num_cpus: int | None, num_gpus: int | None) -> bool:
    """Connect to the cluster at `address` or start a local Ray; False when Ray was already running here."""
    if ray.is_initialized():
        return False
    common = {"log_to_driver": False, "logging_level": "WARNING", "configure_logging": True}
    if address:
        ray.init(address=address, **common)
    else:  # a local Ray with this machine's cores (or what the caller gave)
        ray.init(num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False, **common)
    return True


def check_resources(*, cpus_per_trial: float, gpus_per_trial: float) -> None:
    """Refuse, before the search starts, a trial that asks for more than the whole cluster has (Ray would
    wait for it forever, with 0 trials started)."""
    have = ray.cluster_resources()
    for flag, kind, want in (("--gpus-per-trial", "GPU", gpus_per_trial), ("--cpus-per-trial", "CPU", cpus_per_trial)):
        if want and want > have.get(kind, 0):
            raise ValueError(f"{flag} {want:g}: the Ray cluster has {have.get(kind, 0):g} {kind}(s), so no trial "
                             f"could ever start; ask for at most {have.get(kind, 0):g}"
                             + (" (0 trains on the CPU)" if kind == "GPU" else ""))


def stop() -> None:
    ray.shutdown()


def run_trial(params: dict[str, Any], *, shared: dict[str, Any]) -> None:
    """One trial: `textpipe.train.fit` with the trial's parameters; every epoch's record goes to Tune (ASHA)."""
    from textpipe.tune._data import derive, trial_train_config
    from textpipe.train.config import settle_defaults
    from textpipe.train.loop import fit

    # subtle: not tune.get_context().get_trial_dir(): that is a staging directory under /tmp/ray that a reused
    # actor does not sync back; each trial's fit() writes to <output-dir>/trials/<trial id> instead
    trial_dir = Path(shared["trials_dir"]) / tune.get_context().get_trial_id()
    cfg = trial_train_config(shared, params, output_dir=str(trial_dir))
    epochs = settle_defaults(cfg).epochs  # the trial's, or its model's default

    def report(record: dict) -> None:
        metrics = {"epoch": record["epoch"], "epochs": epochs, METRIC: record["val_accuracy"],
                   "val_loss": record["val_loss"], "train_loss": record["train_loss"],
                   "train_accuracy": record["train_accuracy"], "loop_s": record["time_s"]}
        # only finite numbers: Ray's TensorBoard logger prints "NaN or Inf found in input tensor" for others (a
        # diverged trial raises DivergedError and its table row says "diverged")
        tune.report({k: v for k, v in metrics.items() if v is not None and math.isfinite(v)})

    # the data was read and encoded once, in the driver; this trial gets it from the object store
    with _isatty_shim():
        fit(cfg, report=report, data=derive(shared["data"], cfg))


@contextlib.contextmanager
def _isatty_shim():
    """sys.stdout/sys.stderr with an `isatty()` while a trial runs: Ray's captured-output `Tee` has none, and
    transformers' from_pretrained calls it (its load report: AttributeError, every hf: trial failed)."""
    saved = sys.stdout, sys.stderr
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not hasattr(stream, "isatty"):
            setattr(sys, name, _TTYLess(stream))
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


class _TTYLess:
    """A stream as it is, plus `isatty() -> False`."""

    def __init__(self, stream):
        self._stream = stream

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name):
        return getattr(self._stream, name)


def make_searcher(kind: str, *, seed: int, points: list[dict] | None):
    """hyperopt (TPE), optuna (TPE) or random: all seeded, all starting with `points` (textpipe's defaults)."""
    if kind == "hyperopt":
        from ray.tune.search.hyperopt import HyperOptSearch
        # a handful of random points before TPE models the space: searches here run tens of trials, not hundreds
        return HyperOptSearch(metric=METRIC, mode="max", points_to_evaluate=points, random_state_seed=seed,
                              n_initial_points=8)
    if kind == "optuna":
        from ray.tune.search.optuna import OptunaSearch
        return OptunaSearch(metric=METRIC, mode="max", points_to_evaluate=points, seed=seed)
    from ray.tune.search.basic_variant import BasicVariantGenerator
    return BasicVariantGenerator(points_to_evaluate=points, random_state=seed)


def make_tuner(*, shared: dict[str, Any], space: dict[str, Any], searched: list[str], search: str,
               scheduler: str, max_epochs: int, grace_period: int, reduction_factor: float, num_samples: int,
               time_budget_s: float | None, max_concurrent: int | None, cpus_per_trial: float,
               gpus_per_trial: float, seed: int, output_dir: Path, resume: bool, progress: bool,
               final_scale: float = 1.0, final_extra_s: float = 8.0) -> tune.Tuner:
    """A new Tuner, or the one saved in `<output_dir>/ray` when `resume` (Tuner.restore)."""
    trainable = tune.with_resources(tune.with_parameters(run_trial, shared=shared),
                                    {"cpu": cpus_per_trial, "gpu": gpus_per_trial})
    path = output_dir / EXPERIMENT
    if resume:
        # the trial function is passed again: its shared data now lives in this Ray's object store
        return tune.Tuner.restore(str(path), trainable, resume_unfinished=True, resume_errored=True)
    if scheduler == "asha":
        sched = RecordingASHA(record_path=output_dir / "asha_stopped.json", time_attr="epoch", max_t=max_epochs,
                              grace_period=grace_period, reduction_factor=reduction_factor,
                              stop_last_trials=False)  # a trial at max_t ends by itself, fit() finishing
    else:
        sched = FIFOScheduler()
    from textpipe.tune._space import default_point
    point = default_point(space)
    stopper = None if time_budget_s is None else BudgetStopper(time_budget_s, final_scale=final_scale,
                                                                 final_extra_s=final_extra_s)
    reporter = tune.CLIReporter(parameter_columns=searched, metric_columns=["epoch", "train_loss", "val_loss", METRIC],
                                max_report_frequency=10)  # no sort_by_metric: it fails on unscored trials
    return tune.Tuner(
        trainable, param_space=to_ray(space),
        tune_config=tune.TuneConfig(metric=METRIC, mode="max", search_alg=make_searcher(search, seed=seed,
                                    points=[point] if point else None), scheduler=sched,
                                    num_samples=num_samples,
                                    max_concurrent_trials=max_concurrent, reuse_actors=True),
        run_config=tune.RunConfig(name=EXPERIMENT, storage_path=str(output_dir), log_to_file=True, stop=stopper,
                                  progress_reporter=reporter, verbose=1 if progress else 0,
                                  failure_config=tune.FailureConfig(max_failures=0)))
