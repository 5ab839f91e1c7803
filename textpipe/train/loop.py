"""Train a text classifier: `fit(config)` reads top to bottom: set-up -> data -> model -> epochs -> finish
(the set-up half is `textpipe.train.setup`; the command line's usage is in `textpipe.train.args`)."""
from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from itertools import islice

import torch
import torch.distributed as dist

from textpipe.checkpoint import restore_rng_state, write_checkpoint
from textpipe.core.checks import DivergedError
from textpipe.core.cli_args import run_cli
from textpipe.core.fileio import atomic_write_text
from textpipe.core.progress import progress
from textpipe.core.distributed import cleanup, print0, unwrap, weights_digest
from textpipe.evaluate import evaluate, evaluate_model, load_for_inference, positive_class, val_threshold
from textpipe.metrics import format_report, save_confusion_png, save_pr_png
from textpipe.models import build_model
from textpipe.train.args import parse_train_args
from textpipe.train.config import TrainConfig, check_config, settle_defaults
from textpipe.train.fused import hogwild_steps, sgd_step
from textpipe.train.prepare import Data
from textpipe.train.rundir import log_hparams, write_epoch_files, write_metrics
from textpipe.train.steps import peak_gpu_mb, step_with_backoff
from textpipe.train.setup import (Loaders, Run, Trainer, load_data, make_trainer, open_output, rank_states, setup,
                                  snapshot)

__all__ = ["fit", "main"]


# -- one epoch -------------------------------------------------------------------------------------------------
def train_one_epoch(run: Run, loader, tr: Trainer, save_last: Callable[[], object]) -> None:
    """Train on this rank's batches of `tr.state.epoch`, from `batches_done` on; stops at `total_steps`."""
    cfg, st, device, model = run.cfg, tr.state, run.device, tr.model
    if tr.flat is not None:
        return train_one_epoch_fused(run, tr, save_last)
    loader.batch_sampler.set_epoch(st.epoch)  # the same order on every rank, then sharded
    model.train()
    batches = iter(loader)  # (draws a seed from torch's global RNG)
    if tr.resume_rng is not None:  # resumed mid-epoch: dropout goes on with the masks of the run it continues
        restore_rng_state(tr.resume_rng)
        tr.resume_rng = None
    # resume mid-epoch: skip the batches the checkpoint already trained on (cheap: no model work)
    bar = progress(islice(batches, st.batches_done, None), total=len(loader), initial=st.batches_done, leave=False,
               desc=f"epoch {st.epoch + 1}/{cfg.epochs}", disable=not (run.is_main and cfg.progress))
    for ids, lengths, y in bar:
        # (B, T), (B,), (B,); lengths is a tensor argument: DataParallel splits it along B with ids
        ids, lengths, y = (t.to(device, non_blocking=True) for t in (ids, lengths, y))
        loss_sum, correct = step_with_backoff(model, tr.opt, ids, lengths, y, tr.step_opts, step=st.step,
                                              say=lambda msg: print(msg, flush=True))
        tr.sched.step()
        st.step, st.batches_done = st.step + 1, st.batches_done + 1
        if not math.isfinite(loss_sum) and run.info.world_size == 1:  # DDP ranks check together, in end_epoch
            raise diverged(run, tr, f"the loss is {loss_sum / y.numel()} at step {st.step}")
        st.running["loss_sum"] += loss_sum
        st.running["correct"] += correct
        st.running["seen"] += y.numel()
        if st.step % 10 == 0:
            mem = peak_gpu_mb(device, reset=False)
            bar.set_postfix(loss=f"{st.running['loss_sum'] / st.running['seen']:.4f}",
                            acc=f"{st.running['correct'] / st.running['seen']:.4f}",
                            **({"gpu_mb": f"{mem:.0f}"} if mem is not None else {}))
        if cfg.save_every and st.step % cfg.save_every == 0 and st.step < tr.total_steps:
            save_last()  # every rank: it gathers their states; rank 0 writes
        if st.step >= tr.total_steps:
            break
    bar.close()


def train_one_epoch_fused(run: Run, tr: Trainer, save_last: Callable[[], object]) -> None:
    """`train_one_epoch` with the fused step: large batches, no autograd, no host sync until the epoch ends."""
    cfg, st = run.cfg, tr.state
    stats = torch.zeros(3, dtype=torch.float64, device=run.device)  # loss sum, correct, seen

    def flush():  # into the Python floats the checkpoint holds (at the same steps in a resumed run)
        if not math.isfinite(stats[0].item()) and run.info.world_size == 1:
            raise diverged(run, tr, f"the loss became {stats[0].item()} by step {st.step} (the fused step checks "
                           f"at epoch ends and --save-every steps)")
        for k, v in zip(("loss_sum", "correct", "seen"), stats.tolist()):
            st.running[k] += v if k == "loss_sum" else int(v)
        stats.zero_()

    batches = tr.flat.epoch(st.epoch, start=st.batches_done)
    if cfg.hogwild > 1:  # the epoch's batches shared out to threads (no progress bar, no mid-epoch saves)
        batches, step0 = list(islice(batches, tr.total_steps - st.step)), st.step
        stats += hogwild_steps(tr.model, batches, lr_at=lambda j: tr.sched.lr_at(step0 + j), threads=cfg.hogwild,
                               **tr.loss)
        for _ in batches:
            tr.sched.step()
        st.step, st.batches_done = st.step + len(batches), st.batches_done + len(batches)
        return flush()
    bar = progress(batches, total=len(tr.flat), initial=st.batches_done, leave=False,
               desc=f"epoch {st.epoch + 1}/{cfg.epochs}", disable=not (run.is_main and cfg.progress))
    for batch in bar:
        sgd_step(tr.model, *batch, lr=tr.sched.get_last_lr()[0], stats=stats, **tr.loss)
        tr.sched.step()
        st.step, st.batches_done = st.step + 1, st.batches_done + 1
        if cfg.save_every and st.step % cfg.save_every == 0 and st.step < tr.total_steps:
            flush()  # the Python sums the checkpoint holds
            save_last()  # every rank: it gathers their states; rank 0 writes
        if st.step >= tr.total_steps:
            break
    bar.close()
    flush()


def save_last(run: Run, data: Data, tr: Trainer) -> None:
    """Queue `last.pt` of this moment on the writer thread. Every rank calls it: it gathers their RNG states and
    running sums (`rank_states`); rank 0 writes."""
    ranks = rank_states(run, tr)
    if run.is_main:
        run.writer_thread.submit(partial(write_checkpoint, run.out / "last.pt", snapshot(run, data, tr, ranks=ranks)))


# -- end of epoch ----------------------------------------------------------------------------------------------
def end_epoch(run: Run, data: Data, loaders: Loaders, tr: Trainer, t_loop: float) -> dict:
    """All-reduce the train stats, validate, update best/patience, checkpoint, log; returns the epoch record."""
    st, device = tr.state, run.device
    stats = torch.tensor([st.running["loss_sum"], st.running["correct"], st.running["seen"]], dtype=torch.float64,
                         device=device)
    if run.info.world_size > 1:
        dist.all_reduce(stats)
    if not math.isfinite(stats[0].item()):
        raise diverged(run, tr, f"the training loss of epoch {st.epoch + 1} is {stats[0].item()} (step {st.step})")
    if not all(torch.isfinite(p).all() for p in unwrap(tr.model).parameters()):
        raise diverged(run, tr, f"the weights hold NaN/inf after step {st.step}")
    # validation on the bare model (no DDP sync needed)
    val = evaluate_model(unwrap(tr.model), loaders.val, device=device) if loaders.val else None
    if val is not None and not math.isfinite(val["loss"]):
        raise diverged(run, tr, f"the validation loss is {val['loss']} after step {st.step}")
    improved = val is None or val["accuracy"] > st.best
    if val is not None:
        st.best, st.bad_epochs = (val["accuracy"], 0) if improved else (st.best, st.bad_epochs + 1)
    seen = max(stats[2].item(), 1)
    record = {"epoch": st.epoch + 1, "step": st.step, "lr": tr.sched.get_last_lr()[0],
              "train_loss": stats[0].item() / seen, "train_accuracy": stats[1].item() / seen,
              "val_loss": val and val["loss"], "val_accuracy": val and val["accuracy"],
              "time_s": round(time.perf_counter() - t_loop, 3), "peak_gpu_mb": peak_gpu_mb(device)}
    st.history.append(record)
    st.running = {"loss_sum": 0.0, "correct": 0, "seen": 0}
    if st.batches_done == len(loaders.train):  # else stopped by --max-steps: resume mid-epoch
        st.epoch, st.batches_done = st.epoch + 1, 0
    ranks = rank_states(run, tr) if run.cfg.checkpoints == "epoch" else None  # every rank: a collective
    if run.is_main:
        if run.cfg.checkpoints != "epoch" and improved:
            tr.best_weights = {k: v.detach().clone() for k, v in unwrap(tr.model).state_dict().items()}
        # copied now, written on the writer thread while the next epoch trains (a write error is raised at
        # the next write or by `finish`)
        ckpt = snapshot(run, data, tr, ranks=ranks) if ranks is not None else None
        history = [dict(r) for r in st.history]
        run.writer_thread.submit(lambda: write_epoch_files(run.out, ckpt, history, improved=improved))
        if run.writer is not None:
            for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"):
                if record[k] is not None:
                    run.writer.add_scalar(k, record[k], st.step)
        val_msg = f" | val loss {val['loss']:.4f} acc {val['accuracy']:.4f}" if val else ""
        print(f"epoch {record['epoch']} step {st.step} | train loss {record['train_loss']:.4f} "
              f"acc {record['train_accuracy']:.4f}{val_msg}{' *' if improved and val else ''}", flush=True)
    return record


def diverged(run: Run, tr: Trainer, what: str) -> DivergedError:
    """The error that stops a run whose loss or weights are no longer finite (nothing is written from them)."""
    cfg = run.cfg
    causes = f"the learning rate (--lr {cfg.lr:g}) is likely too high"
    if getattr(cfg, "vectors", None):
        causes += f", or the --vectors file {cfg.vectors} holds NaN/inf values"
    run.writer_thread.wait()  # the good checkpoint in flight lands first
    last = run.out / "last.pt"
    kept = (f"the last good checkpoint is {last}" if cfg.checkpoints == "epoch" and last.exists() else
            "no checkpoint was written")
    return DivergedError(f"training diverged: {what}; {causes}. Stopped at once; {kept}, and nothing (best.pt "
                         f"included) was written from the diverged model")


# -- finish ----------------------------------------------------------------------------------------------------
def finish(run: Run, data: Data, loaders: Loaders, tr: Trainer, loop_s: float) -> dict:
    """Check the replicas agree, test the best model, write summary.json; returns the summary."""
    st, cfg = tr.state, run.cfg
    run.writer_thread.wait()  # the last epoch's files are on disk (or their write error is raised here)
    # one process: no replicas to compare, and hashing the weights again costs ~20-30 ms (None)
    mine = {"rank": run.info.rank, "step": st.step,
            "weights": weights_digest(tr.model) if run.info.world_size > 1 else None}
    ranks = [mine]
    if run.info.world_size > 1:
        ranks = [None] * run.info.world_size
        dist.all_gather_object(ranks, mine)
    best_path = run.out / "best.pt"
    summary = {"steps": st.step, "last": st.history[-1] if st.history else None,
               "best_val_accuracy": st.best if loaders.val else None,
               "checkpoint": None if cfg.checkpoints == "none" else str(best_path),
               "train_loop_s": round(loop_s, 3), "ranks": ranks,
               "replicas_in_sync": len({(r["step"], r["weights"]) for r in ranks}) == 1, "test": None,
               "classes": data.labels.names, "rows": data.sizes}
    if not run.is_main:
        return summary
    if not summary["replicas_in_sync"]:
        print(f"warning: replicas diverged: {ranks}", flush=True)
    if st.history:  # durable now (end_epoch wrote it without fsync; the checkpoints held the history)
        write_metrics(run.out / "metrics.jsonl", st.history)
    if cfg.checkpoints == "end":
        write_checkpoint(run.out / "last.pt", snapshot(run, data, tr))
        write_checkpoint(run.out / "best.pt", snapshot(run, data, tr, weights=tr.best_weights))
    if data.test is not None or (loaders.val is not None and len(data.labels) == 2):
        if cfg.checkpoints == "none":  # the best weights, from memory
            model = build_model(tr.config, data.vocab).to(run.device)
            model.load_state_dict(tr.best_weights)
            target = (model, data.vocab, {"class_names": data.labels.names, "model_config": asdict(tr.config),
                                          "model_name": cfg.model, "data": data.checkpoint_info()})
        else:  # the best checkpoint, as a user would load it
            target = best_path
    if loaders.val is not None and len(data.labels) == 2:  # the decision threshold `predict --threshold` takes
        best_model = load_for_inference(target, device=run.device)[0].to(run.device)
        summary["val_threshold"] = t = val_threshold(best_model, loaders.val, data.labels.names, device=run.device)
        print(f"best validation threshold: predict {t['positive']} at probability >= {t['threshold']:.4g} "
              f"(F1 {t['f1']:.4f}; at 0.5: {t['f1_at_0.5']:.4f})", flush=True)
    if data.test is not None:
        report = evaluate(target, data.test, batch_size=cfg.eval_batch_size, device=run.device, details=True)
        probs, labels = report.pop("probs"), report.pop("labels")
        summary["test"] = report
        if run.writer is not None:
            for k in ("accuracy", "macro_f1", "loss"):
                run.writer.add_scalar(f"test_{k}", report[k], st.step)
        print(format_report(report, data.labels.names))
        if not save_confusion_png(report["confusion"], data.labels.names, run.out / "confusion_matrix.png"):
            print("note: matplotlib is not installed: no confusion_matrix.png (pip install matplotlib)")
        elif report.get("thresholds"):
            pos = positive_class(data.labels.names, None)
            save_pr_png(probs[:, pos].tolist(), [y == pos for y in labels], data.labels.names[pos],
                        run.out / "precision_recall.png", best=report["thresholds"]["best"])
    summary["command_s"] = round(time.perf_counter() - run.t_start, 3)
    summary["run"] = run.record
    if run.writer is not None:
        log_hparams(run.writer, summary)
    # the caller gets exactly what the file holds (JSON turns tuples into lists)
    summary = json.loads(json.dumps(summary))
    atomic_write_text(run.out / "summary.json", json.dumps(summary, indent=1) + "\n")
    test_msg = f"test accuracy {summary['test']['accuracy']:.4f} | " if summary["test"] else ""
    print(f"{test_msg}training loop {loop_s:.2f} s | whole command {summary['command_s']:.2f} s | "
          f"best model: {summary['checkpoint']}", flush=True)
    return summary


def fit(config: TrainConfig, *, report: Callable[[dict], object] | None = None, data: Data | None = None) -> dict:
    """Train (or resume) as `textpipe train` does, and return the run's summary.

    Args:
        config: the run's settings; checked first (ValueError), with the data files and columns, before any
            slow work.
        report: called on rank 0 after every epoch with that epoch's record (`epoch`, `step`, `lr`,
            `train_loss`, `train_accuracy`, `val_loss`, `val_accuracy`, `time_s`; val_* are None without
            validation data). A hyperparameter search stops a trial early by raising from it: the exception
            propagates, and the last checkpoint and metrics.jsonl stay consistent.
        data: what `prepare_data(config)` returned, to reuse one read-and-encode over several runs with the
            same data settings (`textpipe.train.prepare.DATA_KEYS`).

    Returns:
        The summary that is written to summary.json: `best_val_accuracy`, `test` (the evaluate report of
        the best model on the test data, or None without any), `checkpoint` (best.pt; None with
        `checkpoints="none"`), `train_loop_s`, `steps`, `last` (the last epoch's record), `classes`, and more.
        Ranks other than 0 get it without `test`.

    Example:
        >>> fit(TrainConfig(data_dir="../shared/data/ag_news", epochs=1))["test"]["accuracy"]  # doctest: +SKIP
        0.845
    """
    config = settle_defaults(config)  # None = the model's default (textpipe.models.TRAIN_DEFAULTS)
    check_config(config)
    run = setup(config, data=data)
    try:
        open_output(run)
        data, loaders = load_data(run, data)
        tr = make_trainer(run, data, loaders)
        print0(f"train {data.sizes['train']}, val {data.sizes['val']}, test {data.sizes['test']} | "
               f"{len(data.labels)} classes | vocab {len(data.vocab)} | "
               f"{sum(p.numel() for p in tr.model.parameters()):,} parameters | "
               f"{run.info.world_size} process(es) on {run.device}")
        t_loop = time.perf_counter()
        while tr.state.epoch < config.epochs and tr.state.step < tr.total_steps:
            train_one_epoch(run, loaders.train, tr, partial(save_last, run, data, tr))
            record = end_epoch(run, data, loaders, tr, t_loop)
            if report is not None and run.is_main:
                report(dict(record))
            if config.patience and tr.state.bad_epochs >= config.patience:
                print0(f"early stop: no better validation accuracy for {tr.state.bad_epochs} epochs")
                break
        return finish(run, data, loaders, tr, time.perf_counter() - t_loop)
    except BaseException:  # the checkpoint in flight lands whole; its own failure must not hide this error
        try:
            run.writer_thread.close()
        except Exception as e:  # noqa: BLE001 - reported, then the first error propagates
            print(f"warning: the checkpoint being written failed too: {getattr(e, 'strerror', None) or e}",
                  file=sys.stderr, flush=True)
        raise
    finally:
        run.writer_thread.close()
        if run.writer is not None:
            run.writer.close()
        if run.lock is not None:
            run.lock.release()
        cleanup()


def main(argv: list[str] | None = None) -> int:
    """`textpipe train ...` / `python -m textpipe.train ...`: parse, then `fit`; errors are one line."""
    cfg, debug = parse_train_args(argv)

    def run() -> int:
        fit(cfg)
        return 0

    return run_cli(run, debug=debug)


