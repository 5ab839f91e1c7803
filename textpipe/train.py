"""Train a text classifier: `fit(config)` reads top to bottom: set-up -> data -> model -> epochs -> finish.

    python -m textpipe.train --data-dir ../shared/data/ag_news                  # CPU or one GPU
    python -m textpipe.train --train reviews.csv --test test.csv --text-column body --label-column stars
    python -m textpipe.train --data-dir DIR --parallel dp                        # nn.DataParallel, all GPUs
    torchrun --nproc_per_node=N -m textpipe.train --data-dir DIR --parallel ddp  # DistributedDataParallel

Multi-node: torchrun --nnodes=2 --node_rank=0|1 --master_addr=HOST --master_port=29500 --nproc_per_node=N ...
Outputs in --output-dir: best.pt, last.pt, metrics.jsonl, summary.json, confusion_matrix.png.
From Python: `fit(TrainConfig(train="reviews.csv", epochs=3), report=print)` returns the summary as a dict.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from itertools import islice
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from textpipe._fast_sgd import FlatBatches, LRSchedule, corpus_bags, hogwild_steps, sgd_step, torch_threads
from textpipe.checkpoint import (ResumeState, check_resume, checkpoint_dict, load_checkpoint, restore_rng_state,
                                 write_checkpoint)
from textpipe.distributed import DistInfo, cleanup, init_distributed, print0, unwrap, weights_digest
from textpipe.evaluate import evaluate, evaluate_model
from textpipe.fileio import BackgroundWriter, atomic_write_text
from textpipe.loader import make_dataloader
from textpipe.metrics import format_report, save_confusion_png
from textpipe.model import ModelConfig, TextClassifier
from textpipe.prepare import Data, data_key, prepare_data, resolve
from textpipe.rundir import (RunLock, check_run_dir, log_hparams, now, remove_run, run_record, write_epoch_files,
                             write_metrics)
from textpipe.train_config import (MODEL_KEYS, PAD_IDX, RESUME_KEYS, UNK_IDX, TrainConfig, check_config,
                                   config_dict, uses_bucketing, uses_fused_step, FUSED_MAX_ROWS)

__all__ = ["TrainConfig", "fit", "main", "prepare_data"]


# -- set-up ----------------------------------------------------------------------------------------------------
@dataclass
class Run:
    """The processes, devices, output directory and data sources of one `fit` call."""

    cfg: TrainConfig
    info: DistInfo
    out: Path
    ckpt: dict | None  # the checkpoint to resume from, or None for a fresh run
    sources: dict  # split -> textpipe.data.sources.Source (checked, not read yet)
    classes: list | None  # --classes, read
    lock: RunLock | None = None  # rank 0's lock on `out`
    t_start: float = field(default_factory=time.perf_counter)
    started: str = field(default_factory=now)  # wall-clock start, UTC
    writer: object = None  # TensorBoard SummaryWriter (rank 0, with --tensorboard)
    record: dict | None = None  # summary.json's "run" block (rank 0)
    writer_thread: BackgroundWriter = field(default_factory=BackgroundWriter)  # checkpoint + metrics writes

    @property
    def device(self) -> torch.device:
        return self.info.device

    @property
    def is_main(self) -> bool:
        return self.info.rank == 0


def setup(cfg: TrainConfig, *, data: Data | None) -> Run:
    """Check the data sources and the output directory (fast, before any slow work); processes and devices."""
    sources, classes = (data.sources, None) if data is not None else resolve(cfg)
    out = Path(cfg.output_dir)
    check_run_dir(out, resume=bool(cfg.resume), overwrite=cfg.overwrite)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    if cfg.parallel == "ddp":
        info = init_distributed(cfg.device)
    else:
        name = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
        info = DistInfo(0, 0, 1, torch.device(name))
    return Run(cfg, info, out, None, sources, classes)


def open_output(run: Run) -> None:
    """Lock the output directory (rank 0: a second run into it is refused while this one lives), clear it
    with --overwrite, load and check the checkpoint to resume, open TensorBoard."""
    cfg, out = run.cfg, run.out
    if run.is_main:
        run.lock = RunLock(out).acquire()
        if run.lock.previous:
            print(f"note: {out} was last locked by pid {run.lock.previous.get('pid')}, which is gone; "
                  "taking it over", flush=True)
        if cfg.overwrite and (removed := remove_run(out)):
            print(f"note: --overwrite: removed {', '.join(removed)} of the previous run in {out}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.resume:
        path = out / "last.pt" if cfg.resume == "last" else Path(cfg.resume)
        if cfg.resume == "last" and not path.exists():
            print0(f"note: --resume: no {path} yet, starting from scratch")
        else:
            run.ckpt = load_checkpoint(path, map_location="cpu")
            saved = run.ckpt["train_config"]
            check_resume({"train_config": {"tokenizer": "basic_english", **saved}}, config_dict(cfg), RESUME_KEYS,
                         path)
            # checkpoints whose train_config predates the model fields: compare with their model config
            check_resume({"train_config": run.ckpt["model_config"]}, config_dict(cfg), MODEL_KEYS, path)
    if run.is_main and cfg.tensorboard:
        from torch.utils.tensorboard import SummaryWriter
        run.writer = SummaryWriter(cfg.tensorboard)


# -- data ------------------------------------------------------------------------------------------------------
@dataclass
class Loaders:
    train: object  # this rank's shard of the training portion, bucketed
    val: object | None  # all of the validation data (every rank), or None


def load_data(run: Run, data: Data | None) -> tuple[Data, Loaders]:
    """Read and encode the data (rank 0 first: it may download), or take the prepared `data`; the loaders."""
    cfg, ws = run.cfg, run.info.world_size
    if data is None:
        if ws > 1 and not run.is_main:
            dist.barrier()
        data = prepare_data(cfg, sources=run.sources, classes=run.classes, ckpt=run.ckpt)
        if ws > 1 and run.is_main:
            dist.barrier()
    elif data.key != data_key(cfg):
        diff = [k for k in data.key if data.key[k] != data_key(cfg)[k]]
        raise ValueError(f"fit(data=...): the data was prepared with other settings ({', '.join(diff)}); "
                         "prepare it again with this config")
    if run.ckpt is not None:
        saved_rows = (run.ckpt.get("data") or {}).get("rows", {}).get("train")
        if saved_rows is not None and saved_rows != data.sizes["train"]:
            raise ValueError(f"--resume: the checkpoint trained on {saved_rows} rows, this data has "
                             f"{data.sizes['train']}; resume with the same training data")
        if run.ckpt["vocab_itos"] != data.vocab.get_itos():
            raise ValueError("--resume: the prepared vocabulary differs from the checkpoint's")
    if run.is_main:  # what summary.json records about the run (data files hashed: after the checks)
        run.record = run_record(config_dict(cfg), data.sources, device=run.device, started=run.started,
                                world_size=ws)
    rows = len(data.train)
    if cfg.fused and rows > FUSED_MAX_ROWS:
        raise ValueError(f"--fused holds every training text in memory and lists the whole epoch: the training data "
                         f"has {rows:,} rows, more than {FUSED_MAX_ROWS:,}; use --no-fused (the streaming loop)")
    if cfg.fused is None and not uses_fused_step(cfg, train_rows=rows) and uses_fused_step(cfg):
        print0(f"note: {rows:,} training rows (> {FUSED_MAX_ROWS:,}): the streaming autograd loop trains, "
               "not the fused step (which holds every text in memory)")
    pin = run.device.type == "cuda" if cfg.pin_memory is None else cfg.pin_memory
    train = make_dataloader(data.train, batch_size=cfg.batch_size, shuffle=True, seed=cfg.seed,
                            bucket=uses_bucketing(cfg, train_rows=rows), num_workers=cfg.num_workers, pin_memory=pin,
                            num_replicas=ws, rank=run.info.rank, pad_idx=PAD_IDX)
    # every rank validates on all of val: same weights, same numbers, same early-stopping decision
    val = make_dataloader(data.val, batch_size=cfg.eval_batch_size, shuffle=False, pin_memory=pin, num_replicas=1,
                          rank=0, pad_idx=PAD_IDX) if data.val is not None else None
    return data, Loaders(train, val)


# -- model -----------------------------------------------------------------------------------------------------
@dataclass
class Trainer:
    """The model (wrapped for DP/DDP), its optimizer and schedule, and where training stands."""

    model: nn.Module
    config: ModelConfig
    opt: torch.optim.Optimizer | None  # None with the fused step
    sched: torch.optim.lr_scheduler.LRScheduler  # or textpipe._fast_sgd.LRSchedule
    state: ResumeState
    total_steps: int
    best_weights: dict | None = None  # with --checkpoints end|none: the best epoch's weights, kept in memory
    flat: object = None  # the fused step's batches (textpipe._fast_sgd.FlatBatches), or None for autograd


def make_optimizer(cfg: TrainConfig, model: nn.Module, total_steps: int, *, fused: bool = False):
    """The optimizer and a per-step learning-rate schedule over `total_steps` (fused: no optimizer object)."""
    shape = {"linear": lambda s: max(0.0, 1.0 - s / total_steps),
             "cosine": lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total_steps) / total_steps)),
             "constant": lambda s: 1.0}[cfg.schedule]
    if fused:  # the fused step is the optimizer (see textpipe/_fast_sgd.py)
        return None, LRSchedule(cfg.lr, shape)
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, shape)


def build_model(run: Run, data: Data, loaders: Loaders) -> Trainer:
    """Model, optimizer and schedule: fresh (seeded), or restored from the resume checkpoint."""
    cfg, device, ws = run.cfg, run.device, run.info.world_size
    sparse = cfg.sparse if cfg.sparse is not None else (device.type == "cpu" and cfg.optimizer == "sgd")
    mcfg = ModelConfig(vocab_size=len(data.vocab), num_classes=len(data.labels), pad_idx=PAD_IDX, sparse=sparse,
                       **{k: getattr(cfg, k) for k in MODEL_KEYS})
    if run.ckpt is not None:  # the checkpoint's model; sparse follows this run's device (same math)
        mcfg = ModelConfig(**{**run.ckpt["model_config"], "sparse": sparse})
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    model = TextClassifier(mcfg).to(device)
    if cfg.vectors and run.ckpt is None:  # pretrained token rows (a resumed run restores its trained weights)
        from textpipe.vectors import init_embedding_from_file
        print0(f"--vectors {cfg.vectors}: {init_embedding_from_file(model, data.vocab, cfg.vectors)}")
    total_steps = cfg.epochs * len(loaders.train)
    total_steps = total_steps if cfg.max_steps < 0 else min(cfg.max_steps, total_steps)
    fused = uses_fused_step(cfg, train_rows=len(data.train))
    if cfg.hogwild > 1 and not (fused and device.type == "cpu"):
        raise ValueError(f"--hogwild {cfg.hogwild} needs the fused SGD step on the CPU; this run has "
                         f"{'the fused step' if fused else 'the autograd loop'} on {device} (drop --hogwild, or "
                         "use --device cpu with sgd, no weight decay, no --no-fused)")
    opt, sched = make_optimizer(cfg, model, max(total_steps, 1), fused=fused)
    state = ResumeState(num_replicas=ws)
    if run.ckpt is not None:
        ckpt = run.ckpt
        try:
            model.load_state_dict(ckpt["model"])
        except RuntimeError as e:  # shapes that do not match the checkpoint's own model_config
            raise ValueError(f"--resume: the weights in the checkpoint do not fit its model_config "
                             f"({str(e).splitlines()[-1].strip()}); the file is damaged") from e
        if opt is not None:
            opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        state = ResumeState.from_checkpoint(ckpt)
        if state.batches_done and state.num_replicas != ws:  # the epoch's shards would not line up
            raise ValueError(f"--resume: the checkpoint stopped mid-epoch with {state.num_replicas} process(es), "
                             f"this run has {ws}; resume with the same number of processes")
        state.num_replicas = ws
        restore_rng_state(ckpt["rng"])
        print0(f"resumed from step {state.step} (epoch {state.epoch + 1}, batch {state.batches_done})")
    else:
        torch.manual_seed(cfg.seed + run.info.rank)  # per-rank randomness (e.g. dropout) differs by rank
    if cfg.parallel == "dp":  # simple, single process; PyTorch recommends DDP instead
        if torch.cuda.device_count() < 2:
            print0(f"note: --parallel dp sees {torch.cuda.device_count()} GPU(s); DataParallel needs 2+ to "
                   f"split a batch, so it runs on {device} alone")
        if device.type == "cuda":  # replicas on the chosen GPU and the ones after it
            model = nn.DataParallel(model, device_ids=list(range(device.index or 0, torch.cuda.device_count())))
        elif not torch.cuda.is_available():  # PyTorch's pass-through wrapper: same code path, one device
            model = nn.DataParallel(model)
    flat = None
    if fused:
        # no DDP wrapper: the step syncs the replicas. The whole corpus at once: every core (one process); the
        # steps keep --threads (small ops: 1 is faster)
        with torch_threads(len(os.sched_getaffinity(0)) if ws == 1 and hasattr(os, "sched_getaffinity") else 0):
            flat = FlatBatches(corpus_bags(model, loaders.train.dataset), loaders.train.batch_sampler,
                               num_rows=model.embedding.num_embeddings, device=device, concurrent=cfg.hogwild)
    elif cfg.parallel == "ddp":
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    return Trainer(model, mcfg, opt, sched, state, total_steps, flat=flat)


def snapshot(run: Run, data: Data, tr: Trainer, *, weights: dict | None = None) -> dict:
    """The checkpoint of this moment (weights, optimizer, vocabulary, resume state), copied: training may go
    on while it is written. `weights`: the best weights kept in memory (--checkpoints end), no optimizer."""
    model = tr.model
    if weights is not None:
        model = TextClassifier(tr.config)
        model.load_state_dict(weights)
    return checkpoint_dict(model=model, model_config=tr.config, vocab_itos=data.vocab,
                           vocab_default_index=UNK_IDX, optimizer=tr.opt if weights is None else None,
                           scheduler=tr.sched if weights is None else None, train_config=config_dict(run.cfg),
                           class_names=data.labels.names, data=data.checkpoint_info(), snapshot=True,
                           **tr.state.checkpoint_fields())


# -- one epoch -------------------------------------------------------------------------------------------------
def train_one_epoch(run: Run, loader, tr: Trainer, save_last: Callable[[], object]) -> None:
    """Train on this rank's batches of `tr.state.epoch`, from `batches_done` on; stops at `total_steps`."""
    cfg, st, device, model = run.cfg, tr.state, run.device, tr.model
    if tr.flat is not None:
        return train_one_epoch_fused(run, tr, save_last)
    loader.batch_sampler.set_epoch(st.epoch)  # the same order on every rank, then sharded
    model.train()
    # resume mid-epoch: skip the batches the checkpoint already trained on (cheap: no model work)
    bar = tqdm(islice(loader, st.batches_done, None), total=len(loader), initial=st.batches_done, leave=False,
               desc=f"epoch {st.epoch + 1}/{cfg.epochs}", disable=not (run.is_main and cfg.progress))
    for ids, _, y in bar:
        ids, y = ids.to(device, non_blocking=True), y.to(device, non_blocking=True)  # (B, T), (B,)
        logits = model(ids)  # (B, C)
        loss = nn.functional.cross_entropy(logits, y)
        tr.opt.zero_grad(set_to_none=True)
        loss.backward()
        tr.opt.step()
        tr.sched.step()
        st.step, st.batches_done = st.step + 1, st.batches_done + 1
        # Python floats: holding loss tensors would keep their graphs alive
        st.running["loss_sum"] += loss.item() * y.numel()
        st.running["correct"] += (logits.argmax(1) == y).sum().item()
        st.running["seen"] += y.numel()
        if st.step % 10 == 0:
            bar.set_postfix(loss=f"{st.running['loss_sum'] / st.running['seen']:.4f}",
                            acc=f"{st.running['correct'] / st.running['seen']:.4f}")
        if cfg.save_every and st.step % cfg.save_every == 0 and run.is_main and st.step < tr.total_steps:
            save_last()
        if st.step >= tr.total_steps:
            break
    bar.close()


def train_one_epoch_fused(run: Run, tr: Trainer, save_last: Callable[[], object]) -> None:
    """`train_one_epoch` with the fused step: large batches, no autograd, no host sync until the epoch ends."""
    cfg, st = run.cfg, tr.state
    stats = torch.zeros(3, dtype=torch.float64, device=run.device)  # loss sum, correct, seen

    def flush():  # into the Python floats the checkpoint holds (at the same steps in a resumed run)
        for k, v in zip(("loss_sum", "correct", "seen"), stats.tolist()):
            st.running[k] += v if k == "loss_sum" else int(v)
        stats.zero_()

    batches = tr.flat.epoch(st.epoch, start=st.batches_done)
    if cfg.hogwild > 1:  # the epoch's batches shared out to threads (no progress bar, no mid-epoch saves)
        batches, step0 = list(islice(batches, tr.total_steps - st.step)), st.step
        stats += hogwild_steps(tr.model, batches, lr_at=lambda j: tr.sched.lr_at(step0 + j), threads=cfg.hogwild)
        for _ in batches:
            tr.sched.step()
        st.step, st.batches_done = st.step + len(batches), st.batches_done + len(batches)
        return flush()
    bar = tqdm(batches, total=len(tr.flat), initial=st.batches_done, leave=False,
               desc=f"epoch {st.epoch + 1}/{cfg.epochs}", disable=not (run.is_main and cfg.progress))
    for batch in bar:
        sgd_step(tr.model, *batch, lr=tr.sched.get_last_lr()[0], stats=stats)
        tr.sched.step()
        st.step, st.batches_done = st.step + 1, st.batches_done + 1
        if cfg.save_every and st.step % cfg.save_every == 0 and st.step < tr.total_steps:
            flush()  # every rank: the same running sums on all of them
            if run.is_main:
                save_last()
        if st.step >= tr.total_steps:
            break
    bar.close()
    flush()


# -- end of epoch ----------------------------------------------------------------------------------------------
def end_epoch(run: Run, data: Data, loaders: Loaders, tr: Trainer, t_loop: float) -> dict:
    """All-reduce the train stats, validate, update best/patience, checkpoint, log; returns the epoch record."""
    st, device = tr.state, run.device
    stats = torch.tensor([st.running["loss_sum"], st.running["correct"], st.running["seen"]], dtype=torch.float64,
                         device=device)
    if run.info.world_size > 1:
        dist.all_reduce(stats)
    # validation on the bare model (no DDP sync needed)
    val = evaluate_model(unwrap(tr.model), loaders.val, device=device) if loaders.val else None
    improved = val is None or val["accuracy"] > st.best
    if val is not None:
        st.best, st.bad_epochs = (val["accuracy"], 0) if improved else (st.best, st.bad_epochs + 1)
    seen = max(stats[2].item(), 1)
    record = {"epoch": st.epoch + 1, "step": st.step, "lr": tr.sched.get_last_lr()[0],
              "train_loss": stats[0].item() / seen, "train_accuracy": stats[1].item() / seen,
              "val_loss": val and val["loss"], "val_accuracy": val and val["accuracy"],
              "time_s": round(time.perf_counter() - t_loop, 3)}
    st.history.append(record)
    st.running = {"loss_sum": 0.0, "correct": 0, "seen": 0}
    if st.batches_done == len(loaders.train):  # else stopped by --max-steps: resume mid-epoch
        st.epoch, st.batches_done = st.epoch + 1, 0
    if run.is_main:
        if run.cfg.checkpoints != "epoch" and improved:
            tr.best_weights = {k: v.detach().clone() for k, v in unwrap(tr.model).state_dict().items()}
        # copied now, written on the writer thread while the next epoch trains (a write error is raised at
        # the next write or by `finish`)
        ckpt = snapshot(run, data, tr) if run.cfg.checkpoints == "epoch" else None
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
    if data.test is not None:
        if cfg.checkpoints == "none":  # the best weights, from memory
            model = TextClassifier(tr.config).to(run.device)
            model.load_state_dict(tr.best_weights)
            target = (model, data.vocab, {"class_names": data.labels.names, "model_config": asdict(tr.config),
                                          "data": data.checkpoint_info()})
        else:  # the best checkpoint, as a user would load it
            target = best_path
        report = evaluate(target, data.test, batch_size=cfg.eval_batch_size, device=run.device)
        summary["test"] = report
        if run.writer is not None:
            for k in ("accuracy", "macro_f1", "loss"):
                run.writer.add_scalar(f"test_{k}", report[k], st.step)
        print(format_report(report, data.labels.names))
        if not save_confusion_png(report["confusion"], data.labels.names, run.out / "confusion_matrix.png"):
            print("note: matplotlib is not installed: no confusion_matrix.png (pip install matplotlib)")
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
            same data settings (`textpipe.prepare.DATA_KEYS`).

    Returns:
        The summary that is written to summary.json: `best_val_accuracy`, `test` (the evaluate report of
        the best model on the test data, or None without any), `checkpoint` (best.pt; None with
        `checkpoints="none"`), `train_loop_s`, `steps`, `last` (the last epoch's record), `classes`, and more.
        Ranks other than 0 get it without `test`.

    Example:
        >>> fit(TrainConfig(data_dir="../shared/data/ag_news", epochs=1))["test"]["accuracy"]  # doctest: +SKIP
        0.845
    """
    check_config(config)
    run = setup(config, data=data)
    try:
        open_output(run)
        data, loaders = load_data(run, data)
        tr = build_model(run, data, loaders)
        print0(f"train {data.sizes['train']}, val {data.sizes['val']}, test {data.sizes['test']} | "
               f"{len(data.labels)} classes | vocab {len(data.vocab)} | "
               f"{sum(p.numel() for p in tr.model.parameters()):,} parameters | "
               f"{run.info.world_size} process(es) on {run.device}")
        t_loop = time.perf_counter()
        while tr.state.epoch < config.epochs and tr.state.step < tr.total_steps:
            train_one_epoch(run, loaders.train, tr, lambda: run.writer_thread.submit(
                partial(write_checkpoint, run.out / "last.pt", snapshot(run, data, tr))))
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
    """`python -m textpipe.train ...`: the same as `textpipe train ...` (see textpipe.cli)."""
    from textpipe.cli import train_main

    return train_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
