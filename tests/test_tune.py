"""`textpipe tune`: the search space (defaults, JSON/TOML files, --param flags, their errors), the trial table,
the budget stopper, and end to end on a tiny AG_NEWS-format fixture with a local 2-CPU Ray: the search runs,
ASHA stops a trial, the best configuration is retrained and tested, an interrupted search resumes.

Run: python -m pytest -q tests/test_tune.py     (the Ray tests skip without `pip install -e ".[tune]"`)
"""
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from textpipe.tune import _results as results
from textpipe.tune._final import RERANK_FOLDS
from textpipe.tune._space import (DEFAULT_SPACE, SpaceError, default_point, format_space, load_space_file,
                                  merge_spaces, parse_param_flag)
from textpipe.tune import SearchConfig, UsageError, main, search

ROOT = Path(__file__).resolve().parents[1]
HAVE_RAY = all(importlib.util.find_spec(m) is not None for m in ("ray", "hyperopt"))
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason='needs the tune extra: pip install -e ".[tune]"')
# lr 0.05/0.1 learn nothing in an epoch, lr 8 learns the fixture: ASHA has clear losers to stop
TINY_SPACE = {"lr": {"choice": [0.05, 0.1, 8.0]}, "epochs": 2, "embed_dim": 8, "buckets": 512, "batch_size": 8,
              "ngrams": 2, "min_freq": 1, "schedule": "linear", "optimizer": "sgd"}


def write_csv(path: Path, n: int, seed: int) -> Path:
    """An AG_NEWS-format CSV whose class shows in its keywords (the same generator as test_train's)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from test_train import write_csv as write
    return write(path, n, seed)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("ag_news")
    write_csv(d / "train.csv", 400, seed=0)
    write_csv(d / "test.csv", 80, seed=1)
    return d


# -- the search space ----------------------------------------------------------------------------------------
def test_param_flags_and_layers():
    assert parse_param_flag("lr=loguniform:1:16") == {"lr": {"loguniform": [1.0, 16.0]}}
    assert parse_param_flag("embed-dim=16,32") == {"embed_dim": {"choice": [16, 32]}}
    assert parse_param_flag("epochs=10") == {"epochs": 10}
    assert parse_param_flag('schedule={"choice": ["linear", "constant"]}') == {
        "schedule": {"choice": ["linear", "constant"]}}
    space = merge_spaces(DEFAULT_SPACE, {"lr": 4}, parse_param_flag("lr=uniform:2:6"))
    assert space["lr"] == {"uniform": [2.0, 6.0]}  # later layers win
    assert default_point(space) is None  # textpipe's lr 8 lies outside this space
    from textpipe.train import TrainConfig
    from textpipe.train.config import settle_defaults
    defaults = settle_defaults(TrainConfig())  # the first trial of the default space is textpipe's defaults
    assert default_point(DEFAULT_SPACE) == {k: getattr(defaults, k) for k in DEFAULT_SPACE if k != "optimizer"}
    text = format_space(space, sources={"lr": "--param"})
    assert "lr          uniform [2, 6]   [--param]" in text and "epochs      randint [2, 11)" in text


@pytest.mark.parametrize("name, text, match", [
    ("bad.json", '{"lr": {"loguniform": [0, 1]}}', r"bad\.json: parameter 'lr': loguniform bound: expected > 0"),
    ("bad.json", '{"lr": ', r"not valid JSON: .* line 1 column 8"),
    ("bad.json", '{"learning_rate": 0.1}', r"unknown parameter 'learning_rate'; expected one of: lr, epochs"),
    ("bad.json", '{"epochs": {"uniform": [1, 5]}}', r"uniform gives floats; epochs is an integer: use randint"),
    ("bad.json", '{"epochs": {"randint": [5, 5]}}', r"randint \[low, high\) excludes high"),
    ("bad.json", '{"optimizer": {"choice": ["sgd", "adam"]}}', r"expected one of \['sgd', 'adamw'\], got 'adam'"),
    ("bad.json", '{"batch_size": [8, 16]}', r"got a list"),
    ("bad.json", '{"lr": {"normal": [0, 1]}}', r"one key of choice, uniform, loguniform, randint"),
    ("bad.json", '{}', r"sets no parameter"),
    ("bad.toml", 'lr = {loguniform = [2.0, 32.0]}\nepochs = "ten"', r"'epochs': value: expected a number, got 'ten'"),
    ("bad.toml", 'lr = {loguniform = [2.0', r"not valid TOML"),
    ("bad.yaml", 'lr: 1', r"expected a \.json or \.toml file, got '\.yaml'"),
])
def test_bad_space_files_say_what_is_wrong(tmp_path, name, text, match):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SpaceError, match=match):
        load_space_file(path)


def test_good_toml_file(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text('lr = {loguniform = [2.0, 32.0]}\nembed_dim = {choice = [16, 32]}\noptimizer = "sgd"\n')
    assert load_space_file(path) == {"lr": {"loguniform": [2.0, 32.0]}, "embed_dim": {"choice": [16, 32]},
                                     "optimizer": "sgd"}


def test_readme_space_file_and_error_are_real(tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Hyperparameter search", 1)[1]
    (tmp_path / "space.toml").write_text(section.split("```toml\n", 1)[1].split("```", 1)[0])
    assert load_space_file(tmp_path / "space.toml")["epochs"] == {"randint": [5, 13]}
    (tmp_path / "space.toml").write_text("epochs = {uniform = [5, 13]}\n")
    with pytest.raises(SpaceError) as e:
        load_space_file(tmp_path / "space.toml")
    quoted = " ".join(section.split("`error: search-space file ", 1)[1].split("`", 1)[0].split())
    assert str(e.value).endswith(quoted)


def test_cli_bad_space_is_one_error_line(tmp_path, data_dir, capsys):
    (tmp_path / "s.json").write_text('{"ngrams": {"choice": [1, 3]}}')
    assert main(["--data-dir", str(data_dir), "--space", str(tmp_path / "s.json"),
                 "--output-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "'ngrams'" in err[0] and "[1, 2]" in err[0]
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_textpipe_tune_subcommand(tmp_path, capsys):
    from textpipe.cli import main as textpipe_main

    assert textpipe_main(["tune", "--data-dir", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.strip() == f"error: --data-dir {tmp_path / 'missing'}: no such directory"


def test_bad_options_are_refused_before_work(tmp_path, data_dir):
    def run(**kw):
        return search(SearchConfig(data_dir=str(data_dir), output_dir=str(tmp_path / "o"), **kw))

    with pytest.raises(UsageError, match=r"validation data given \(.*test\.csv\) and --val-fraction 0\.2"):
        run(val=str(data_dir / "test.csv"), val_fraction=0.2)
    with pytest.raises(UsageError, match=r"--val-fraction must be in \(0, 1\)"):
        run(val_fraction=0.0)
    with pytest.raises(UsageError, match="needs --time-budget-s"):
        run(num_samples=-1)
    with pytest.raises(UsageError, match="holds no train file"):
        search(data_dir=str(tmp_path), output_dir=str(tmp_path / "o"))
    with pytest.raises(UsageError, match="fixes every parameter"):
        run(space={"lr": 8.0, "epochs": 2, "batch_size": 8, "embed_dim": 8, "ngrams": 2, "buckets": 512,
                   "min_freq": 1, "schedule": "linear"})
    assert not (tmp_path / "o").exists()


def test_without_ray_tune_says_what_to_install(tmp_path, data_dir, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "optuna", None)  # find_spec("optuna") is None: as if not installed
    args = ["--data-dir", str(data_dir), "--output-dir", str(tmp_path / "o")]
    assert main([*args, "--search", "optuna"]) == 2
    assert "needs optuna, not installed here: pip install optuna (or" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ['error: textpipe tune needs ray, not installed here: pip install "ray[tune]>=2.41" (or, in the '
                   'textpipe checkout, pip install -e ".[tune]" for Ray Tune, HyperOpt and Optuna)']


def test_nothing_else_in_textpipe_imports_ray():
    code = ("import pkgutil, importlib, sys, textpipe\n"
            "for m in pkgutil.walk_packages(textpipe.__path__, 'textpipe.'):\n"
            "    if m.name not in ('textpipe.tune._ray', 'textpipe.__main__'):\n"
            "        importlib.import_module(m.name)\n"
            "print(sorted(n for n in sys.modules if n == 'ray' or n.startswith('ray.')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# -- the shared data ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("min_freq", [2, 3, 7])
def test_derived_min_freq_data_equals_preparing_it_again(tmp_path, min_freq):
    import random

    import numpy as np

    from textpipe.tune._data import derive
    from textpipe.train.prepare import prepare_data
    from textpipe.train import TrainConfig

    rng = random.Random(0)  # words with Zipf-like counts: many seen once or twice, ties at every count
    lines = ["label,text"] + [f"{'ab'[i % 2]},{' '.join(f'w{int(rng.paretovariate(1.2))}' for _ in range(8))}"
                              for i in range(300)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")

    def cfg(k):
        return TrainConfig(train=str(tmp_path / "t.csv"), val_fraction=0.1, seed=3, min_freq=k)

    shared = prepare_data(cfg(1))
    got, want = derive(shared, cfg(min_freq)), prepare_data(cfg(min_freq))
    assert len(want.vocab) < len(shared.vocab)  # the fixture has rare words: the cut is real
    assert got.vocab.get_itos() == want.vocab.get_itos() and got.key == want.key
    for a, b in ((got.train, want.train), (got.val, want.val)):
        assert np.array_equal(a.ids, b.ids) and np.array_equal(a.offsets, b.offsets)
        assert np.array_equal(a.labels, b.labels)


def test_trial_config_holds_python_numbers_not_numpy(data_dir):
    import numpy as np
    import torch

    from textpipe.tune._data import trial_train_config

    cfg = trial_train_config({"base": {"train": str(data_dir / "train.csv")}},
                             {"lr": np.float64(4.5), "epochs": np.int64(3)}, output_dir="x")
    assert type(cfg.lr) is float and type(cfg.epochs) is int  # HyperOpt draws numpy scalars
    torch.save({"train_config": vars(cfg)}, data_dir / "cfg.pt")
    assert torch.load(data_dir / "cfg.pt", weights_only=True)["train_config"]["epochs"] == 3


def test_default_space_searches_the_families_with_gpu_trials_and_the_bag_ranges_apply_to_bag_trials(data_dir):
    from textpipe.tune._data import trial_train_config
    from textpipe.tune._final import best_config
    from textpipe.tune._space import BAG_ONLY, BAG_SPACE, FAMILY_SPACE
    from textpipe.tune.command import build_space

    cpu, _ = build_space(SearchConfig())
    assert "model" not in cpu and cpu == DEFAULT_SPACE  # on a CPU: the bag's space alone
    gpu, sources = build_space(SearchConfig(gpus_per_trial=1))
    assert gpu == {**DEFAULT_SPACE, **FAMILY_SPACE}
    assert {k for k, v in sources.items() if v == BAG_ONLY} == set(BAG_SPACE)
    assert default_point(gpu)["model"] == "bag"  # the first trial: textpipe's defaults
    # a --param over a bag range makes it apply to every family
    _, sources = build_space(SearchConfig(gpus_per_trial=1, params=["lr=loguniform:1e-4:1e-2"]))
    assert sources["lr"] == "--param" and sources["epochs"] == BAG_ONLY
    # --rerank: on by default (5) when every trial is the bag model, off for the other families
    from textpipe.tune._final import rerank_count
    assert rerank_count(SearchConfig(), cpu) == 5 and rerank_count(SearchConfig(), gpu) == 0
    assert rerank_count(SearchConfig(rerank=2), gpu) == 2 and rerank_count(SearchConfig(rerank=0), cpu) == 0
    with pytest.raises(UsageError, match="--rerank must be >= 0"):
        search(rerank=-1)
    # a search without the bag drops the bag's ranges, as before
    assert "lr" not in build_space(SearchConfig(params=["model=cnn,rnn"]))[0]

    shared = {"base": {"train": str(data_dir / "train.csv")}, "bag_only": list(BAG_SPACE)}
    drawn = {"model": "cnn", "lr": 12.0, "epochs": 3, "batch_size": 512, "embed_dim": 10, "optimizer": "sgd",
             "ngrams": 2, "weighting": "mean", "dropout": 0.3}
    cnn = trial_train_config(shared, drawn, output_dir="x")
    assert (cnn.lr, cnn.epochs, cnn.batch_size, cnn.embed_dim, cnn.optimizer, cnn.weighting, cnn.dropout) == (
        None, None, None, None, None, None, 0.3)  # None: the cnn's own defaults (adamw, lr 2e-3, ...)
    bag = trial_train_config(shared, {**drawn, "model": "bag"}, output_dir="x")
    assert (bag.lr, bag.epochs, bag.optimizer, bag.weighting, bag.dropout) == (12.0, 3, "sgd", "mean", None)
    space = {**DEFAULT_SPACE, **FAMILY_SPACE}
    searched = [k for k in space if k in drawn]
    assert "lr" not in best_config(space, drawn, searched, BAG_SPACE)  # best_config.json: what the trial used
    assert best_config(space, {**drawn, "model": "bag"}, searched, BAG_SPACE)["lr"] == 12.0
    # the trial table: a cnn trial's epochs are its own (8, reported), not the bag range's draw (3)
    cut = SimpleNamespace(metrics={"trial_id": "c", "epoch": 4, "epochs": 8, "val_accuracy": 0.8},
                          config=drawn, metrics_dataframe={"val_accuracy": [0.7, 0.8]}, error=None, path="/x/c")
    row, = results.trial_rows([cut], searched=["model", "lr", "epochs"], asha_stopped=set(), bag_only=BAG_SPACE)
    assert (row["end"], row["lr"], row["epochs"]) == (results.BUDGET, None, None)


def test_cosine_schedule_checkpoint_loads_weights_only(data_dir, tmp_path):
    # a search picks schedule=cosine: its lr was a numpy float in the checkpoint's history (train.py, fixed)
    import torch

    from textpipe.train import TrainConfig, fit

    fit(TrainConfig(data_dir=str(data_dir), output_dir=str(tmp_path), schedule="cosine", epochs=1, embed_dim=8,
                    buckets=64, progress=False))
    ckpt = torch.load(tmp_path / "best.pt", weights_only=True)
    assert type(ckpt["metrics"]["history"][0]["lr"]) is float


# -- the trial table -----------------------------------------------------------------------------------------
def _result(trial_id, epochs, accs, *, error=None):
    history = {"val_accuracy": accs}
    metrics = {"trial_id": trial_id, "epoch": len(accs), "val_accuracy": accs[-1] if accs else None,
               "val_loss": 1 - accs[-1] if accs else None, "time_total_s": 1.5} if accs else {}
    return SimpleNamespace(metrics=metrics, config={"epochs": epochs, "lr": 1.0}, metrics_dataframe=history,
                           error=error, path=f"/x/{trial_id}")


def test_trial_rows_say_how_each_trial_ended_and_pick_a_completed_best(tmp_path):
    grid = [_result("a", 3, [0.5, 0.6, 0.7]), _result("b", 3, [0.4]), _result("c", 5, [0.6, 0.9]),
            _result("d", 3, [], error=RuntimeError("boom\nValueError: bad")), _result("e", 3, [])]
    rows = results.trial_rows(grid, searched=["lr"], asha_stopped={"b"})
    assert [(r["trial_id"], r["end"]) for r in rows] == [
        ("a", results.COMPLETED), ("b", results.ASHA), ("c", results.BUDGET), ("d", results.ERROR),
        ("e", results.NOT_STARTED)]
    assert rows[3]["error"] == "ValueError: bad" and rows[0]["best_val_accuracy"] == 0.7
    # c has the higher accuracy but was cut short by the budget: a retrain runs all epochs, so a wins
    assert results.best_row(rows)["trial_id"] == "a"
    assert results.counts(rows)[results.ASHA] == 1
    # the one-standard-error rule: with 100 validation rows, a's 0.7 is within sqrt(.7 * .3 / 100) = 0.046 of
    # a better completed trial's 0.74, so a (the defaults, lr 1.0) is kept; with 10,000 rows it is not
    rows.append({**rows[0], "trial_id": "f", "val_accuracy": 0.74, "lr": 2.0})
    assert results.best_row(rows)["trial_id"] == "f"
    assert results.best_row(rows, prefer={"lr": 1.0}, n_val=100)["trial_id"] == "a"
    assert results.best_row(rows, prefer={"lr": 1.0}, n_val=10_000)["trial_id"] == "f"
    csv_path, json_path = results.save_table(rows, tmp_path)
    assert csv_path.read_text().splitlines()[0].startswith("trial_id,end,epochs_run,val_accuracy")
    # an exact tie (accuracy and loss) goes the same way whatever Ray's random trial ids are
    tied = [{**rows[0], "trial_id": "g", "lr": 3.0}, {**rows[0], "trial_id": "h", "lr": 2.5}]
    for ids in (("g", "h"), ("h", "g")):
        again = [{**r, "trial_id": i} for r, i in zip(tied, ids)]
        assert results.best_row(again)["lr"] == results.best_row(again[::-1])["lr"] == 3.0
    assert json.loads(json_path.read_text()) == rows


@needs_ray
def test_budget_stopper_keeps_time_for_the_final_model():
    from textpipe.tune._ray import BudgetStopper

    stopper = BudgetStopper(30.0, final_scale=1.1, final_extra_s=5.0)
    assert not stopper("t1", {"epoch": 1, "epochs": 3, "val_accuracy": 0.9, "time_total_s": 2.0})
    assert stopper.reserve_s == 0.0 and not stopper.stop_all()  # an unfinished trial sets no reserve
    stopper("t2", {"epoch": 3, "epochs": 3, "val_accuracy": 0.8, "time_total_s": 40.0, "loop_s": 30.0})
    assert stopper.reserve_s == pytest.approx(38.0) and stopper.stop_all()  # 30 s left < 38 s needed


# -- end to end on Ray ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local_ray():
    if not HAVE_RAY:
        pytest.skip('needs the tune extra: pip install -e ".[tune]"')
    from textpipe.tune import _ray as _tune_ray  # noqa: F401  (sets RAY_AIR_NEW_OUTPUT before Ray's import)
    import ray
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield
    ray.shutdown()


def _cfg(data_dir, out, **kw):
    kw = {"space": dict(TINY_SPACE), "num_samples": 4, "max_concurrent": 1, "seed": 0, "progress": False,
          "grace_period": 1, **kw}
    return SearchConfig(data_dir=str(data_dir), output_dir=str(out), **kw)


@needs_ray
def test_search_stops_bad_trials_and_retrains_the_best(local_ray, data_dir, tmp_path, capsys):
    from textpipe.checkpoint import load_model

    summary = search(_cfg(data_dir, tmp_path / "s"))
    printed = capsys.readouterr().out
    assert "search space (1 searched" in printed and "lr          choice 0.05 | 0.1 | 8.0" in printed
    out = tmp_path / "s"
    rows = json.loads((out / "trials.json").read_text())
    assert len(rows) == 4 and summary["trials"] == 4
    assert summary["asha_stopped"] >= 1 and sum(r["end"] == results.ASHA for r in rows) == summary["asha_stopped"]
    assert all(r["end"] in (results.COMPLETED, results.ASHA) for r in rows)
    # the best configuration, retrained on train + validation and tested
    assert summary["best"]["config"] == {**TINY_SPACE, "lr": 8.0}
    assert json.loads((out / "best_config.json").read_text()) == summary["best"]["config"]
    assert summary["test_accuracy"] > 0.9 and json.loads((out / "summary.json").read_text()) == summary
    final = json.loads((out / "final" / "summary.json").read_text())
    assert final["test"]["accuracy"] == summary["test_accuracy"] and final["steps"] == 2 * 400 // 8
    model = load_model(out / "best.pt")
    assert model is not None
    assert (out / "trials.csv").read_text().count("\n") == 5
    # trials never saw the test file: their data directory holds the training file alone
    assert sorted(p.name for p in (out / "data").iterdir()) == ["train.csv"]
    assert all(json.loads(Path(r["dir"], "metrics.jsonl").read_text().splitlines()[0])["val_accuracy"]
               is not None for r in rows)
    # the same directory again: refused unless --resume or --overwrite
    with pytest.raises(UsageError, match="already holds a search: pass --resume"):
        search(_cfg(data_dir, out))
    with pytest.raises(UsageError, match="search space differs"):
        search(_cfg(data_dir, out, resume=True, params=["lr=1,2"]))


@needs_ray
def test_interrupted_search_resumes(local_ray, data_dir, tmp_path):
    out = tmp_path / "r"
    space = tmp_path / "space.json"
    space.write_text(json.dumps(TINY_SPACE))
    import ray
    # the command joins the test's Ray (--address, as on a cluster) instead of starting its own
    address = ray.get_runtime_context().gcs_address
    cmd = [sys.executable, "-m", "textpipe.tune", "--data-dir", str(data_dir), "--space", str(space),
           "--num-samples", "40", "--max-concurrent", "1", "--output-dir", str(out), "--no-progress",
           "--grace-period", "1",
           "--address", address]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        # with one trial at a time, a second trial directory means the first trial has finished
        while len(list((out / "trials").glob("*"))) < 2:
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "no second trial within 240 s"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)  # Ctrl+C
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, output
    assert output.rstrip().endswith(" ".join(["textpipe", "tune", *cmd[3:], "--resume"])), output
    assert "Tuner.restore" not in output and not (out / "best.pt").exists()
    before = {r["trial_id"]: r for r in json.loads((out / "trials.json").read_text())}
    # one trial at a time: the newest trial directory may have reported its last epoch without Ray having
    # marked it finished; --resume may rerun that one, so only the trials before it are checked
    in_flight = max((out / "trials").iterdir(), key=lambda p: p.stat().st_mtime_ns).name
    done = {t: r for t, r in before.items() if r["end"] in (results.COMPLETED, results.ASHA) and t != in_flight}
    assert done and len(before) < 40  # 40 trials take long enough (a few seconds) for Ctrl+C to land
    mtimes = {t: Path(r["dir"], "metrics.jsonl").stat().st_mtime_ns for t, r in done.items()}

    summary = search(_cfg(data_dir, out, resume=True, space=str(space), num_samples=40))
    after = {r["trial_id"]: r for r in json.loads((out / "trials.json").read_text())}
    assert summary["resumed"] and len(after) == 40 and summary["best"] is not None
    for t, r in done.items():  # finished trials are kept as they were, not run again
        assert after[t]["val_accuracy"] == r["val_accuracy"] and after[t]["end"] == r["end"]
        assert Path(r["dir"], "metrics.jsonl").stat().st_mtime_ns == mtimes[t]
    assert (out / "best.pt").exists()


@needs_ray
def test_optuna_no_scheduler_val_file_retrains_on_train_and_val(local_ray, data_dir, tmp_path):
    summary = search(train=str(data_dir / "train.csv"), val=str(data_dir / "test.csv"), test=str(data_dir / "test.csv"),
                     space={**TINY_SPACE, "lr": {"loguniform": [4.0, 8.0]}}, search="optuna", scheduler="none",
                     num_samples=2, max_concurrent=1, output_dir=str(tmp_path / "o"), progress=False)
    assert summary["trials"] == 2 and summary["asha_stopped"] == 0 and summary["ended"]["completed"] == 2
    assert summary["data"]["val"].endswith("test.csv") and summary["data"]["val_fraction"] == 0
    final = json.loads((tmp_path / "o" / "final" / "summary.json").read_text())
    assert final["steps"] == 2 * (400 + 80) // 8  # the final model trained on train + the validation file
    assert summary["test_accuracy"] == final["test"]["accuracy"]
    # --rerank (on by default for the bag): both completed trials re-scored on RERANK_FOLDS more carve-outs of train
    # + val; the chosen one has the best mean (or is the defaults' within one standard error)
    table = summary["rerank"]
    assert len(table) == 2 and all(len(t["val_accuracies"]) == RERANK_FOLDS + 1 for t in table)
    assert {t["trial_id"] for t in table} == {r["trial_id"] for r in json.loads((tmp_path / "o" / "trials.json").read_text())}
    chosen = next(t for t in table if t["trial_id"] == summary["best"]["trial_id"])
    assert chosen["mean"] == max(t["mean"] for t in table) or chosen["defaults"]
    assert chosen["config"] == summary["best"]["config"]  # each candidate's configuration is in the table
    fold = json.loads(next((tmp_path / "o" / "rerank").glob("*-1/summary.json")).read_text())
    assert fold["test"] is None and fold["rows"] == {"train": 400, "val": 80, "test": 0}  # train + val, carved


@needs_ray
def test_the_time_budget_cuts_the_re_scoring_to_the_carve_outs_that_fit(local_ray, data_dir, tmp_path, monkeypatch,
                                                                         capsys):
    from textpipe.tune import _final

    out = tmp_path / "o"
    # the clock runs the budget out once both candidates have been scored on the first new carve-out
    monkeypatch.setattr(_final, "_clock", lambda: time.perf_counter() + (
        1e6 if len(list(out.glob("rerank/*-1/summary.json"))) >= 2 else 0.0))
    summary = search(data_dir=str(data_dir), space={**TINY_SPACE, "lr": {"choice": [4.0, 8.0]}}, search="random",
                     num_samples=2, max_concurrent=1, time_budget_s=3600, output_dir=str(out), progress=False)
    assert f"time budget: 1 of {RERANK_FOLDS} carve-outs re-scored" in capsys.readouterr().out
    table = summary["rerank"]
    assert len(table) == 2 and all(len(t["val_accuracies"]) == 2 for t in table)  # the search's + 1 new one
    assert not list(out.glob("rerank/*-2")) and (out / "best.pt").exists()
    assert summary["best"]["trial_id"] in {t["trial_id"] for t in table}


@needs_ray
def test_final_checkpoint_keeps_the_best_trials_model(local_ray, data_dir, tmp_path):
    from textpipe.checkpoint import load_checkpoint

    summary = search(data_dir=str(data_dir), space={**TINY_SPACE, "lr": {"choice": [4.0, 8.0]}, "epochs": 1},
                     search="random", num_samples=2, max_concurrent=1, final="checkpoint",
                     output_dir=str(tmp_path / "c"), progress=False)
    best = summary["best"]["trial_id"]
    assert not (tmp_path / "c" / "final").exists() and summary["final"] == "checkpoint"
    ckpt = load_checkpoint(tmp_path / "c" / "best.pt")
    assert ckpt["train_config"]["lr"] == summary["best"]["config"]["lr"]
    assert ckpt["train_config"]["output_dir"].endswith(f"trials/{best}") and summary["test_accuracy"] > 0.5


@needs_ray
def test_more_gpus_per_trial_than_the_cluster_has_is_an_error_before_the_search_issue20(local_ray, data_dir,
                                                                                         tmp_path):
    """Issue 20 #10: --gpus-per-trial 1 without a GPU waited forever with 0 trials started."""
    import ray

    if ray.cluster_resources().get("GPU", 0) >= 1:
        pytest.skip("this cluster has a GPU")
    with pytest.raises(ValueError, match=r"--gpus-per-trial 1: the Ray cluster has 0 GPU\(s\), so no trial could"):
        search(_cfg(data_dir, tmp_path / "g", gpus_per_trial=1.0))
    assert not (tmp_path / "g" / "trials.json").exists()


def test_diverged_trials_are_reported_as_diverged_issue20():
    from textpipe.core.checks import DivergedError

    grid = [_result("a", 2, [0.5, 0.6]),
            _result("b", 2, [], error=RuntimeError("ray.exceptions.RayTaskError(DivergedError): training diverged: "
                                                   "the loss is nan at step 3")),
            _result("c", 2, [], error=DivergedError("training diverged: the loss is inf at step 1"))]
    rows = results.trial_rows(grid, searched=["lr"], asha_stopped=set())
    assert [r["end"] for r in rows] == [results.COMPLETED, results.DIVERGED, results.DIVERGED]
    assert results.counts(rows)[results.DIVERGED] == 2 and results.best_row(rows)["trial_id"] == "a"


# -- hf: models (issue 19) -----------------------------------------------------------------------------------
def test_hf_model_space_defaults_and_errors(tmp_path):
    from textpipe.tune._space import HF_SPACE
    from textpipe.tune.command import build_space

    (tmp_path / "enc").mkdir()
    space, sources = build_space(SearchConfig(model=str(f"hf:{tmp_path / 'enc'}"), params=["epochs=1"]))
    assert space == {**HF_SPACE, "epochs": 1, "model": f"hf:{tmp_path / 'enc'}"}
    assert sources["freeze"] == "default" and sources["model"] == "--model"
    assert default_point(space) == {"lr": 3e-5, "freeze": "none"}  # the first trial: textpipe's hf defaults
    assert parse_param_flag("freeze=none,all-but-3") == {"freeze": {"choice": ["none", "all-but-3"]}}
    with pytest.raises(SpaceError, match=r"an hf: model is not searched over"):
        merge_spaces(parse_param_flag("model=cnn,hf:x"))
    with pytest.raises(SpaceError, match=r"embed_dim do not apply to hf:x"):
        merge_spaces({"model": "hf:x", "embed_dim": {"choice": [8, 16]}})
    with pytest.raises(SpaceError, match=r"freeze apply to hf: models only"):
        merge_spaces(DEFAULT_SPACE, parse_param_flag("freeze=none,encoder"))
    with pytest.raises(SpaceError, match=r"expected one of \['none', 'embeddings', 'encoder'\] or all-but-"):
        parse_param_flag("freeze=top")


@needs_ray
@pytest.mark.slow  # its Ray worker imports transformers: 15 s in a whole-module run here, 65 s alone under load
def test_hf_model_search_of_lr_and_freeze(local_ray, tmp_path):
    pytest.importorskip("transformers", reason="the hf extra (transformers) is not installed")
    sys.path.insert(0, str(Path(__file__).parent))
    from test_hf import _save_tiny

    d = tmp_path / "data"
    d.mkdir()
    write_csv(d / "train.csv", 48, seed=0)
    write_csv(d / "test.csv", 16, seed=1)
    bert = _save_tiny(tmp_path / "bert", "bert", d)
    summary = search(data_dir=str(d), model=f"hf:{bert}", params=["epochs=1", "batch_size=16"], search="random",
                     scheduler="none", num_samples=2, max_concurrent=1, final="checkpoint",
                     output_dir=str(tmp_path / "o"), progress=False)
    assert summary["trials"] == 2 and summary["ended"]["completed"] == 2
    rows = json.loads((tmp_path / "o" / "trials.json").read_text())
    assert rows[0]["lr"] == 3e-5 and rows[0]["freeze"] == "none"  # the first trial: the hf defaults
    assert all(1e-5 <= r["lr"] <= 1e-4 and r["freeze"] in ("none", "embeddings", "all-but-2") for r in rows)
    from textpipe.checkpoint import load_checkpoint
    ckpt = load_checkpoint(tmp_path / "o" / "best.pt")
    assert ckpt["model_name"] == "hf" and ckpt["train_config"]["freeze"] == summary["best"]["config"]["freeze"]
    assert summary["test_accuracy"] is not None
