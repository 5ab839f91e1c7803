"""Hyperparameter search for the textpipe classifier on Ray Tune: HyperOpt, Optuna or random search, ASHA
early stopping over epochs, on this machine or an existing Ray cluster.

    textpipe tune --data-dir ../shared/data/ag_news --time-budget-s 120     # or python -m textpipe.tune ...
    textpipe tune --train train.csv --val val.csv --test test.csv --search optuna --num-samples 40
    textpipe tune --data-dir DIR --address auto        # on a running Ray cluster (`ray start --head`)
    textpipe tune --data-dir DIR --resume              # continue a killed search

Trials are scored on the validation split (--val FILE, or --val-fraction of train): the test file is read only
at the end, by the best configuration retrained on train + validation. Everything goes to --output-dir:
space.json, ray/ (Ray's experiment state and results), trials/ (each trial's fit() output), trials.csv,
trials.json, best_config.json, rerank/ (--rerank's fits), final/, best.pt, summary.json.
Needs the tune extra: pip install -e ".[tune]" (Ray Tune, HyperOpt, Optuna).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from textpipe.data.formats import DESCRIPTION

from textpipe.tune import _results as results
from textpipe.tune._data import prepare_shared, resolve_data, trial_train_config
from textpipe.tune._final import RERANK_FOLDS, rerank_count
from textpipe.tune._interrupt import InterruptGuard, SearchInterrupted, resume_command
from textpipe.tune._reaper import reap_stale, watch
from textpipe.tune._space import (BAG_ONLY, BAG_SPACE, DEFAULT_SPACE, FAMILY_SPACE, HF_SPACE, is_hf, SpaceError, UsageError, check_space, format_space, load_space_file,
                                  max_value, merge_spaces, min_value, parse_param_flag)
from textpipe.core.cli_args import Formatter, Parser, run_cli
from textpipe.core.fileio import atomic_write_text

_T_IMPORT = time.perf_counter()  # the CLI counts its time budget from here (Python's start-up is before it)

__all__ = ["SearchConfig", "search", "parse_args", "main", "UsageError", "SearchInterrupted", "trial_train_config"]

# what each --search needs besides Ray Tune, and the pip requirement of each (pyproject's [tune] extra)
_NEEDS = {"hyperopt": ["hyperopt"], "optuna": ["optuna"], "random": []}
_PIP = {"ray": '"ray[tune]>=2.41"', "ray[tune]": '"ray[tune]>=2.41"', "hyperopt": "hyperopt", "optuna": "optuna"}


@dataclass
class SearchConfig:
    # -- data (the same flags as train) --
    data_dir: str | None = None  # directory with train.csv[.gz] (+ test.csv[.gz])
    train: str | None = None  # training table (overrides the one in data_dir)
    val: str | None = None  # validation table; without it --val-fraction of train is held out
    test: str | None = None  # test table, read only by the final model (default: data_dir's test.csv[.gz])
    text_columns: list[str] | None = None  # text column(s), joined with a space; None = the table's default
    label_column: str | None = None  # label column; None = the table's default
    val_fraction: float | None = None  # share of train held out for scoring trials; None = 0.1 (0 with --val)
    # -- the space --
    model: str | None = None  # the model of every trial (--param model=NAME); hf:NAME_OR_DIR: HF_SPACE by default
    space: str | dict | None = None  # JSON/TOML file (or a dict) over the default space
    params: list[str] = field(default_factory=list)  # NAME=SPEC overrides, applied after the file
    # -- the search --
    search: str = "hyperopt"  # hyperopt | optuna | random
    scheduler: str = "asha"  # asha | none
    num_samples: int | None = None  # trials; None = 20, or unlimited with a time budget; -1 = unlimited
    time_budget_s: float | None = None  # wall-clock seconds for the whole command, final model included
    max_concurrent: int | None = None  # trials at once; None = as many as the resources allow
    cpus_per_trial: float = 1.0  # CPU cores per trial (also its torch threads)
    gpus_per_trial: float = 0.0  # GPUs per trial (0 = train on CPU)
    # ASHA: epochs before a trial can be stopped. 2, not the usual 1: after one epoch at SGD's large learning rate
    # most configurations were still near chance on AG_NEWS (validation accuracy 0.23-0.42, measured with the
    # earlier defaults, batch 16 and lr 8), so a first rung at epoch 1 stopped trials at random
    grace_period: int = 2
    reduction_factor: float = 2.0  # ASHA: keep the best 1/reduction_factor at each rung
    seed: int = 0  # search algorithm, validation carve-out and every trial's training seed
    output_dir: str = "runs/tune"
    address: str | None = None  # auto | HOST:PORT of a running Ray cluster; None = start Ray here
    resume: bool = False  # continue the search saved in output_dir
    overwrite: bool = False  # replace a search already in output_dir
    final: str = "retrain"  # retrain (on train + val) | checkpoint (the best trial's own best.pt)
    prefer_defaults: bool = True  # keep textpipe's defaults when within one standard error of the best trial
    # re-score the best `rerank` completed trials (and the defaults) on RERANK_FOLDS more carve-outs before
    # choosing; None = 5 when every trial is the bag model (a second each), 0 (off) otherwise
    rerank: int | None = None
    progress: bool = True  # Ray's progress table


def parse_args(argv: list[str] | None = None) -> tuple[SearchConfig, bool]:
    """Command line -> (SearchConfig, debug flag); defaults from the dataclass, bad flags exit 2."""

    d = SearchConfig()
    p = Parser(prog="textpipe tune", description=__doc__, formatter_class=Formatter)
    g = p.add_argument_group("data")
    g.add_argument("--data-dir", default=d.data_dir, help="directory with train.csv[.gz] and test.csv[.gz]")
    g.add_argument("--train", default=d.train, help=f"training table ({DESCRIPTION}); overrides --data-dir's")
    g.add_argument("--val", default=d.val, help="validation table the trials are scored on "
                   "(None: --val-fraction of train)")
    g.add_argument("--test", default=d.test, help="test table, read only by the final model (None: --data-dir's)")
    g.add_argument("--text-column", dest="text_columns", action="append", default=d.text_columns,
                   help="text column, repeatable (joined with a space in order); None: the table's")
    g.add_argument("--label-column", default=d.label_column, help="label column (None: the table's)")
    g.add_argument("--val-fraction", type=float, default=d.val_fraction,
                   help="share of train held out to score trials, in (0, 1) (None: 0.1; not with --val)")
    g = p.add_argument_group("search space (printed at the start)")
    g.add_argument("--space", default=d.space, metavar="FILE",
                   help="JSON or TOML file: parameter -> constant or {choice|uniform|loguniform|randint: [...]}")
    g.add_argument("--model", default=d.model, help="the model of every trial, as --param model=NAME; "
                   "hf:NAME_OR_DIR searches lr, epochs and --freeze by default")
    g.add_argument("--param", dest="params", action="append", default=[], metavar="NAME=SPEC",
                   help="override one parameter: lr=loguniform:2:32, embed_dim=16,32,64 (choice), epochs=10")
    g = p.add_argument_group("search")
    g.add_argument("--search", choices=list(_NEEDS), default=d.search, help="search algorithm")
    g.add_argument("--scheduler", choices=["asha", "none"], default=d.scheduler,
                   help="asha = stop bad trials early, by epoch")
    g.add_argument("--num-samples", type=int, default=d.num_samples,
                   help="trials (None: 20, or unlimited with --time-budget-s; -1 = unlimited)")
    g.add_argument("--time-budget-s", type=float, default=d.time_budget_s,
                   help="wall-clock seconds for the whole command: the search stops in time to leave the final "
                   "model the time its best trial's training loop took")
    g.add_argument("--max-concurrent", type=int, default=d.max_concurrent,
                   help="trials at once (None: one at a time without --time-budget-s, which makes --num-samples "
                        "reproducible for a --seed; as many as the CPUs/GPUs allow with a budget)")
    g.add_argument("--grace-period", type=int, default=d.grace_period,
                   help="ASHA: epochs before a trial can be stopped")
    g.add_argument("--reduction-factor", type=float, default=d.reduction_factor,
                   help="ASHA: keep the best 1/N at each rung")
    g.add_argument("--seed", type=int, default=d.seed, help="search algorithm, validation carve-out, trial seeds")
    g = p.add_argument_group("resources and cluster")
    g.add_argument("--cpus-per-trial", type=float, default=d.cpus_per_trial,
                   help="CPU cores per trial (its torch threads)")
    g.add_argument("--gpus-per-trial", type=float, default=d.gpus_per_trial, help="GPUs per trial (0: CPU)")
    g.add_argument("--address", default=d.address, help="auto | HOST:PORT: run on that Ray cluster "
                   "(None: start Ray here with this machine's cores)")
    g = p.add_argument_group("output")
    g.add_argument("--output-dir", default=d.output_dir, help="everything the search writes")
    g.add_argument("--resume", action="store_true", help="continue the search saved in --output-dir (after "
                   "Ctrl+C or a kill); Ray unpickles ray/tuner.pkl from it, which runs code: resume only "
                   "directories you wrote")
    g.add_argument("--overwrite", action="store_true", help="replace a search already in --output-dir")
    g.add_argument("--final", choices=["retrain", "checkpoint"], default=d.final,
                   help="retrain the best configuration on train + val, or keep the best trial's model")
    g.add_argument("--prefer-defaults", action=argparse.BooleanOptionalAction, default=d.prefer_defaults,
                   help="one-standard-error rule: keep textpipe's defaults (the first trial) when their validation "
                   "accuracy is within one standard error of the best trial's")
    g.add_argument("--rerank", type=int, default=d.rerank, metavar="K",
                   help=f"re-score the best K completed trials and the defaults on {RERANK_FOLDS} more validation "
                   "carve-outs of train + val and pick by the mean (None: 5 when every trial is the bag model, "
                   "else 0 = off)")
    g.add_argument("--progress", action=argparse.BooleanOptionalAction, default=d.progress,
                   help="Ray's progress table")
    g.add_argument("--debug", action="store_true", help="show the traceback of an error")
    args = vars(p.parse_args(argv))
    return SearchConfig(**{k: v for k, v in args.items() if k != "debug"}), args["debug"]


def _check_options(cfg: SearchConfig) -> None:
    """UsageError for the first option that cannot work (no file or Ray is touched)."""
    if cfg.cpus_per_trial <= 0:
        raise UsageError(f"--cpus-per-trial must be > 0, got {cfg.cpus_per_trial}")
    if cfg.gpus_per_trial < 0:
        raise UsageError(f"--gpus-per-trial must be >= 0, got {cfg.gpus_per_trial}")
    if cfg.num_samples is not None and (cfg.num_samples == 0 or cfg.num_samples < -1):
        raise UsageError(f"--num-samples must be >= 1 (or -1 = unlimited), got {cfg.num_samples}")
    if cfg.num_samples == -1 and cfg.time_budget_s is None:
        raise UsageError("--num-samples -1 (unlimited) needs --time-budget-s, or the search never ends")
    if cfg.time_budget_s is not None and cfg.time_budget_s <= 0:
        raise UsageError(f"--time-budget-s must be > 0, got {cfg.time_budget_s}")
    if cfg.max_concurrent is not None and cfg.max_concurrent < 1:
        raise UsageError(f"--max-concurrent must be >= 1, got {cfg.max_concurrent}")
    if cfg.grace_period < 1:
        raise UsageError(f"--grace-period must be >= 1 epoch, got {cfg.grace_period}")
    if cfg.reduction_factor <= 1:
        raise UsageError(f"--reduction-factor must be > 1, got {cfg.reduction_factor}")
    if cfg.resume and cfg.overwrite:
        raise UsageError("--resume and --overwrite both given: continue the saved search, or replace it; pick one")
    if cfg.search not in _NEEDS:
        raise UsageError(f"--search must be one of {', '.join(_NEEDS)}, got {cfg.search!r}")
    if cfg.rerank is not None and cfg.rerank < 0:
        raise UsageError(f"--rerank must be >= 0 (0 = off), got {cfg.rerank}")
    if cfg.final not in ("retrain", "checkpoint"):
        raise UsageError(f"--final must be retrain or checkpoint, got {cfg.final!r}")


def _check_installed(search_alg: str) -> None:
    """UsageError naming what to install when Ray Tune or the chosen search library is missing."""
    missing = [m for m in ["ray", *_NEEDS[search_alg]] if importlib.util.find_spec(m) is None]
    if not missing and importlib.util.find_spec("ray.tune") is None:
        missing = ["ray[tune]"]
    if missing:
        raise UsageError(f"textpipe tune needs {' and '.join(missing)}, not installed here: pip install "
                         f"{' '.join(_PIP[m] for m in missing)} (or, in the textpipe checkout, pip install -e "
                         f"\".[tune]\" for Ray Tune, HyperOpt and Optuna)")


def build_space(cfg: SearchConfig) -> tuple[dict[str, Any], dict[str, str]]:
    """The default space, then the --space file, then --param flags; and where each parameter came from."""
    layers, sources = [(DEFAULT_SPACE, "default")], {}
    searched = {}
    if isinstance(cfg.space, dict):
        searched.update(cfg.space)
    elif cfg.space is not None:
        searched.update(load_space_file(cfg.space))
    for text in cfg.params:
        searched.update(parse_param_flag(text))
    if cfg.model is not None:
        searched["model"] = cfg.model
    if "model" not in searched and cfg.gpus_per_trial > 0:  # GPU trials: every family (see FAMILY_SPACE)
        layers.append((FAMILY_SPACE, "default with --gpus-per-trial"))
        searched["model"] = FAMILY_SPACE["model"]
    model = searched.get("model", "bag")
    if is_hf(model):  # a pretrained encoder: its own ranges (lr 1e-5..1e-4, epochs, --freeze)
        layers = [(HF_SPACE, "default")]
    elif isinstance(model, dict) and "bag" in next(iter(model.values())):  # the bag and other families
        layers = [({k: v for k, v in DEFAULT_SPACE.items() if k not in BAG_SPACE}, "default"),
                  ({k: v for k, v in DEFAULT_SPACE.items() if k in BAG_SPACE}, BAG_ONLY), *layers[1:]]
    elif model != "bag":  # other families only: the bag's tuned ranges do not apply to them
        layers = [({k: v for k, v in DEFAULT_SPACE.items() if k not in BAG_SPACE}, "default"), *layers[1:]]
    if isinstance(cfg.space, dict):
        layers.append((check_space(cfg.space, where="space="), "space="))
    elif cfg.space is not None:
        layers.append((load_space_file(cfg.space), Path(cfg.space).name))
    for text in cfg.params:
        layers.append((parse_param_flag(text), "--param"))
    if cfg.model is not None:
        layers.append((parse_param_flag(f"model={cfg.model}"), "--model"))
    for layer, source in layers:
        sources.update({name: source for name in layer})
    space = merge_spaces(*(layer for layer, _ in layers))
    model = space.get("model")
    if is_hf(model) and Path(model[3:]).expanduser().is_dir():  # trials run elsewhere: an absolute directory
        space["model"] = f"hf:{Path(model[3:]).expanduser().resolve()}"
    return space, sources


def search(config: SearchConfig | None = None, /, **options) -> dict[str, Any]:
    """Run a search, then build the final model; returns the summary (also `<output_dir>/summary.json`).

    Args:
        config: a SearchConfig; or give its fields as keyword options, e.g.
            `search(data_dir="data/ag_news", time_budget_s=120)`.

    Raises:
        UsageError: for bad options, data paths or search spaces, before anything slow starts.
        SearchInterrupted: Ctrl+C (SIGINT): the search so far is saved, `resume=True` continues it; no final
            model is built.
    """
    t0 = options.pop("_t0", None) or time.perf_counter()
    cfg = config if config is not None else SearchConfig()
    if options:
        cfg = SearchConfig(**{**asdict(cfg), **options})
    _check_options(cfg)
    try:
        space, sources = build_space(cfg)
    except SpaceError as e:
        raise UsageError(str(e)) from None
    searched = [name for name, spec in space.items() if isinstance(spec, dict)]
    if not searched:
        raise UsageError("the search space fixes every parameter: nothing to search (give a choice or a range)")
    _check_installed(cfg.search)
    data = resolve_data(cfg)
    out = Path(cfg.output_dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock, Timeout
    lock = FileLock(str(out / ".tune.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise UsageError(f"--output-dir {out} is in use by another running search; wait for it or choose "
                         f"another --output-dir") from None
    try:
        reap_stale(out)  # Ray processes of an earlier search here whose command and watcher were both killed
        with InterruptGuard() as guard:
            return _search_locked(cfg, t0=t0, data=data, space=space, sources=sources, searched=searched, out=out,
                                  guard=guard)
    except KeyboardInterrupt as e:
        raise e if isinstance(e, SearchInterrupted) else SearchInterrupted(out) from None
    finally:
        lock.release()


def _search_locked(cfg, *, t0, data, space, sources, searched, out, guard) -> dict[str, Any]:
    restore = results.prepare_output(cfg, out, space)
    max_epochs = int(max_value(space.get("epochs", 10)))
    grace = min(cfg.grace_period, max_epochs)  # ASHA refuses a grace period beyond max_t
    num_samples = cfg.num_samples if cfg.num_samples is not None else (-1 if cfg.time_budget_s else 20)
    print(f"search space ({len(searched)} searched; --space FILE / --param NAME=SPEC change it):")
    print(format_space(space, sources=sources))
    asha = (f" (max_t {max_epochs} epochs, grace {grace}, reduction {cfg.reduction_factor:g})"
            if cfg.scheduler == "asha" else "")
    budget = f", time budget {cfg.time_budget_s:g} s" if cfg.time_budget_s else ""
    scored_on = data["val"] if data["val"] else f"{data['val_fraction']:g} of {data['train']}"
    print(f"{cfg.search} search, scheduler {cfg.scheduler}{asha}, {'unlimited' if num_samples == -1 else num_samples} "
          f"trials{budget}; scored on {scored_on} (the test file is not read)")
    atomic_write_text(out / "space.json", json.dumps(space, indent=1) + "\n")
    t_data = time.perf_counter()
    shared = prepare_shared(cfg, data, out, min_freq=int(min_value(space.get("min_freq", 1))),
                            model=space["model"] if is_hf(space.get("model")) else None)
    shared["bag_only"] = [name for name in space if sources.get(name) == BAG_ONLY]
    sizes = shared["data"].sizes
    prep_s = time.perf_counter() - t_data
    print(f"data read and encoded once for all trials in {prep_s:.1f} s: train "
          f"{sizes['train']}, val {sizes['val']} rows, vocabulary {len(shared['data'].vocab)}")
    # the time budget keeps back the final model's training and, with --rerank, the re-scoring fits (each about
    # a trial's training loop plus 1 s of set-up, and one data preparation per carve-out)
    reranks = rerank_count(cfg, space)
    fits = (reranks + 1) * RERANK_FOLDS if reranks else 0

    from textpipe.tune import _ray as tray  # Ray is imported from here on
    started = tray.start(cfg.address, num_cpus=None, num_gpus=None)
    # the Ray processes this command started end with it, even when it is killed (see _reaper)
    watcher = watch(out) if started and not cfg.address else None
    try:
        if watcher:
            watcher.scan()
        tray.check_resources(cpus_per_trial=cfg.cpus_per_trial, gpus_per_trial=cfg.gpus_per_trial)
        elapsed = time.perf_counter() - t0
        budget = None if cfg.time_budget_s is None else max(cfg.time_budget_s - elapsed, 1.0)
        tuner = tray.make_tuner(shared=shared, space=space, searched=searched, search=cfg.search,
                                scheduler=cfg.scheduler, max_epochs=max_epochs, grace_period=grace,
                                reduction_factor=cfg.reduction_factor, num_samples=num_samples, time_budget_s=budget,
                                max_concurrent=max_concurrent(cfg), cpus_per_trial=cfg.cpus_per_trial,
                                gpus_per_trial=cfg.gpus_per_trial, seed=cfg.seed, output_dir=out, resume=restore,
                                progress=cfg.progress, final_scale=(sizes["train"] + sizes["val"]) / sizes["train"] + fits,
                                final_extra_s=8.0 + fits + (RERANK_FOLDS * prep_s if fits else 0.0))
        t_search = time.perf_counter()
        with guard.tuning():  # Ctrl+C in here: Tune saves the search and returns; guard.hit says so
            grid = tuner.fit()
        search_s = time.perf_counter() - t_search
    finally:
        if started:
            tray.stop()
        if watcher:
            watcher.close()
    # an interrupted search (Ctrl+C, or Ray stopped under it) leaves trials unfinished (or, without a time
    # budget, fewer than asked for): no final model then, --resume continues it
    unfinished = len(grid) - grid.num_terminated - grid.num_errors
    interrupted = guard.hit or unfinished > 0 or (cfg.time_budget_s is None and num_samples != -1
                                                  and len(grid) < num_samples)
    asha = results.read_ids(out / "asha_stopped.json")
    rows = results.trial_rows(grid, searched=searched, asha_stopped=asha, trials_dir=out / "trials",
                              interrupted=interrupted, bag_only=shared["bag_only"])
    results.save_table(rows, out)
    if interrupted:
        raise SearchInterrupted(out)
    from textpipe.tune._final import finish
    return finish(cfg, rows=rows, searched=searched, space=space, data=data, shared=shared, out=out, t0=t0,
                  search_s=search_s, resumed=restore)


def max_concurrent(cfg) -> int | None:
    """Trials at once: `--max-concurrent`, or when not given one at a time without a time budget.

    Why: TPE (hyperopt, optuna) draws the next trial from the results so far and ASHA stops trials against the
    ones that reported before, so with trials running side by side the search depends on which finishes
    first (machine load). One at a time, `--num-samples N --seed S` gives the same trials and the same final
    model on every run; a time budget never does (how many trials fit in it depends on the load)."""
    if cfg.max_concurrent is not None:
        return cfg.max_concurrent
    return 1 if cfg.time_budget_s is None else None


def main(argv: list[str] | None = None) -> int:
    """`textpipe tune ...` / `python -m textpipe.tune ...`: errors are one `error:` line, exit status 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    cfg, debug = parse_args(argv)

    def run() -> int:
        try:
            summary = search(cfg, _t0=_T_IMPORT)
        except KeyboardInterrupt:  # no final model, no summary: the search is saved as far as it went
            print(f"interrupted: the search so far is saved in {cfg.output_dir} (no final model was built); "
                  f"continue it with\n  {resume_command(argv)}", file=sys.stderr, flush=True)
            return 130
        return 0 if summary.get("best") else 1

    return run_cli(run, debug=debug)


