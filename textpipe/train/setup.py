"""The set-up half of `fit`: processes and devices, the output directory, the data and its loaders, the plan,
the model with its optimizer (fresh or resumed), and the checkpoint of a moment (`snapshot`)."""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from textpipe.checkpoint import (ResumeState, capture_rng_state, check_resume, checkpoint_dict, load_checkpoint,
                                 model_config_of, rank_rng_state, restore_rng_state)
from textpipe.core.distributed import DistInfo, init_distributed, pick_device, print0, unwrap
from textpipe.core.fileio import BackgroundWriter
from textpipe.core.specials import PAD_IDX, UNK_IDX
from textpipe.batches import make_dataloader
from textpipe.models import TRAIN_DEFAULTS, build_model, model_config, model_name
from textpipe.models.hf import count_parameters
from textpipe.train.config import (RESUME_KEYS, TrainConfig, class_weights, config_dict, default_output_dir,
                                   foreign_keys, is_hf_model, model_keys)
from textpipe.models.bag import nb_row_weights
from textpipe.train.fused import FlatBatches, LRSchedule, corpus_bag_chunks, corpus_bags, torch_threads
from textpipe.train.plan import FUSED_MAX_ROWS, Plan, make_plan, uses_fused_step
from textpipe.train.prepare import Data, data_key, prepare_data, resolve
from textpipe.train.rundir import RunLock, check_run_dir, now, remove_run, run_record
from textpipe.train.steps import StepOptions, find_batch_size, make_scaler, train_step

__all__ = ["Run", "Loaders", "Trainer", "setup", "open_output", "load_data", "make_trainer", "snapshot"]


# -- processes, devices, output ----------------------------------------------------------------------------------------------------
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
    plan: Plan | None = None  # settled once the training data's size is known (`load_data`)

    @property
    def device(self) -> torch.device:
        return self.info.device

    @property
    def is_main(self) -> bool:
        return self.info.rank == 0


def setup(cfg: TrainConfig, *, data: Data | None) -> Run:
    """Check the data sources and the output directory (fast, before any slow work); processes and devices."""
    sources, classes = (data.sources, None) if data is not None else resolve(cfg)
    out = Path(cfg.output_dir if cfg.output_dir is not None else default_output_dir(cfg))
    check_run_dir(out, resume=bool(cfg.resume), overwrite=cfg.overwrite)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    info = init_distributed(cfg.device) if cfg.parallel == "ddp" else DistInfo(0, 0, 1, pick_device(cfg.device))
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
            if cfg.batch_size == "auto":  # the batch size the run found
                run.cfg = cfg = replace(cfg, batch_size=saved["batch_size"])
            # (another family's fields never shape this run; checkpoints from before they defaulted to None hold
            # the bag's ngrams/buckets/minn/maxn for every model)
            keys = [k for k in RESUME_KEYS if k not in foreign_keys(cfg.model)]
            check_resume({"train_config": {"tokenizer": "basic_english", **saved}}, config_dict(cfg), keys, path)
            # checkpoints whose train_config predates the model fields: compare with their model config
            check_resume({"train_config": run.ckpt["model_config"]}, config_dict(cfg), model_keys(cfg), path)
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
    if cfg.batch_size == "auto":
        run.cfg = cfg = replace(cfg, batch_size=auto_batch_size(run, data))
    if run.is_main:  # what summary.json records about the run (data files hashed: after the checks)
        run.record = run_record(config_dict(cfg), data.sources, device=run.device, started=run.started,
                                world_size=ws)
    rows = len(data.train)
    run.plan = plan = make_plan(cfg, run.info, train_rows=rows)
    if cfg.fused is None and not plan.fused and uses_fused_step(cfg):
        print0(f"note: {rows:,} training rows (> {FUSED_MAX_ROWS:,}): the streaming autograd loop trains, "
               "not the fused step (which holds every text in memory)")
    pin = plan.pin_memory
    train = make_dataloader(data.train, batch_size=cfg.batch_size, shuffle=True, seed=cfg.seed, bucket=plan.bucket,
                            num_workers=cfg.num_workers, pin_memory=pin, num_replicas=ws, rank=run.info.rank,
                            pad_idx=PAD_IDX)
    # every rank validates on all of val: same weights, same numbers, same early-stopping decision
    val = make_dataloader(data.val, batch_size=cfg.eval_batch_size, shuffle=False, pin_memory=pin, num_replicas=1,
                          rank=0, pad_idx=PAD_IDX) if data.val is not None else None
    return data, Loaders(train, val)


def auto_batch_size(run: Run, data: Data) -> int:
    """`--batch-size auto`: the largest batch (the model's default times a power of 2, at most the training
    rows) whose forward and backward pass over the longest training text fits on the GPU; on the CPU, the
    model's default. Every DDP rank takes the smallest that any rank found."""
    cfg, device = run.cfg, run.device
    default = TRAIN_DEFAULTS[cfg.model]["batch_size"]
    if device.type != "cuda":
        print0(f"--batch-size auto: no GPU here, using {cfg.model}'s default {default}")
        return default
    mcfg = model_config(cfg.model, cfg, vocab_size=len(data.vocab), num_classes=len(data.labels), pad_idx=PAD_IDX,
                        unk_idx=UNK_IDX, sparse=False)
    model = build_model(mcfg).to(device)
    T = max(1, min(int(max(data.train.lengths, default=1)), getattr(mcfg, "max_len", 1 << 30)))
    opt = torch.optim.AdamW(model.parameters())

    def try_batch(b: int) -> None:
        ids = torch.randint(2, len(data.vocab), (b, T), device=device)  # (b, T): the worst case, no padding
        lengths, y = torch.full((b,), T, device=device), torch.zeros(b, dtype=torch.long, device=device)
        train_step(model, opt, ids, lengths, y, StepOptions(precision=cfg.precision))

    found = find_batch_size(try_batch, start=default, limit=max(default, len(data.train)))
    del model, opt
    torch.cuda.empty_cache()
    if run.info.world_size > 1:
        t = torch.tensor([found], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        found = int(t.item())
    print0(f"--batch-size auto: {found} (the largest that fits on {device} with texts of {T} tokens)")
    return found


# -- model -----------------------------------------------------------------------------------------------------
@dataclass
class Trainer:
    """The model (wrapped for DP/DDP), its optimizer and schedule, and where training stands."""

    model: nn.Module
    config: object  # the model's config (a textpipe.models config dataclass)
    opt: torch.optim.Optimizer | None  # None with the fused step
    sched: torch.optim.lr_scheduler.LRScheduler  # or textpipe.train.fused.LRSchedule
    state: ResumeState
    total_steps: int
    best_weights: dict | None = None  # with --checkpoints end|none: the best epoch's weights, kept in memory
    flat: object = None  # the fused step's batches (textpipe.train.fused.FlatBatches), or None for autograd
    loss: dict = field(default_factory=dict)  # sgd_step's class_weights / label_smoothing (autograd loop: the same)
    step_opts: StepOptions = field(default_factory=StepOptions)  # micro-batches, precision, clipping, scaler
    # a run resumed mid-epoch: the checkpoint's RNG states, restored again once the epoch's DataLoader iterator
    # exists (making one draws a seed from torch's global RNG, a draw the checkpoint's states already include)
    resume_rng: dict | None = None


def make_optimizer(cfg: TrainConfig, model: nn.Module, total_steps: int, *, fused: bool = False):
    """The optimizer and a per-step learning-rate schedule over `total_steps` (fused: no optimizer object)."""
    warm = int(cfg.warmup * total_steps)
    if warm:  # linear warmup from 0 over `warm` steps, then the schedule over the remaining steps
        total_steps -= warm
    decay = {"linear": lambda s: max(0.0, 1.0 - s / total_steps),
             "cosine": lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total_steps) / total_steps)),
             "constant": lambda s: 1.0}[cfg.schedule]
    shape = decay if not warm else (lambda s: (s + 1) / warm if s < warm else decay(s - warm))
    if fused:  # the fused step is the optimizer (see textpipe/train/fused.py)
        return None, LRSchedule(cfg.lr, shape)
    # frozen parameters (--freeze) stay out; a model with layers (hf:) groups them by depth (--layer-lr-decay)
    params = (model.param_groups(cfg.lr, cfg.layer_lr_decay) if hasattr(model, "param_groups")
              else [p for p in model.parameters() if p.requires_grad])
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, shape)


def make_trainer(run: Run, data: Data, loaders: Loaders) -> Trainer:
    """Model, optimizer and schedule: fresh (seeded), or restored from the resume checkpoint."""
    cfg, plan, device, ws = run.cfg, run.plan, run.device, run.info.world_size
    if run.ckpt is None:  # the fields that follow from the data and the devices; the rest from cfg
        mcfg = model_config(cfg.model, cfg, vocab_size=len(data.vocab), num_classes=len(data.labels),
                            pad_idx=PAD_IDX, unk_idx=UNK_IDX, sparse=plan.sparse)
    else:  # the checkpoint's model; sparse follows this run's device (same math)
        mcfg = model_config_of(run.ckpt)
        mcfg = model_config(model_name(mcfg), vars(mcfg), sparse=plan.sparse)
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    model = build_model(mcfg, data.vocab).to(device)
    trainable, total = count_parameters(model)
    if trainable < total or is_hf_model(cfg):
        print0(f"trainable parameters: {trainable:,} of {total:,}"
               + (f" (--freeze {cfg.freeze})" if is_hf_model(cfg) else ""))
    if cfg.vectors and run.ckpt is None:  # pretrained token rows (a resumed run restores its trained weights)
        from textpipe.vectors.pretrained import init_embedding_from_file
        print0(f"--vectors {cfg.vectors}: {init_embedding_from_file(model, data.vocab, cfg.vectors)}")
    if cfg.freeze_embeddings:  # the token embedding stays as initialised (Kim's CNN-static with --vectors)
        model.embedding.weight.requires_grad_(False)
    total_steps = cfg.epochs * len(loaders.train)
    total_steps = total_steps if cfg.max_steps < 0 else min(cfg.max_steps, total_steps)
    opt, sched = make_optimizer(cfg, model, max(total_steps, 1), fused=plan.fused)
    state, scaler = ResumeState(num_replicas=ws), make_scaler(cfg.precision, device)
    rng = None  # a resumed run: this rank's RNG states in the checkpoint
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
        if scaler is not None and ckpt.get("scaler"):  # (a checkpoint from before textpipe saved it: a fresh scale)
            scaler.load_state_dict(ckpt["scaler"])
        state = ResumeState.from_checkpoint(ckpt)
        if state.batches_done and state.num_replicas != ws:  # the epoch's shards would not line up
            raise ValueError(f"--resume: the checkpoint stopped mid-epoch with {state.num_replicas} process(es), "
                             f"this run has {ws}; resume with the same number of processes")
        state.num_replicas = ws
        if run.info.rank:  # the checkpoint's running sums are all ranks' (rank_states): rank 0 carries them
            state.running = {k: 0 for k in state.running}
        rng = rank_rng_state(ckpt["rng"], run.info.rank, ws)  # DDP: each rank its own (rank_states)
        restore_rng_state(rng)
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
    if cfg.compile:  # in place: the state_dict keys stay the model's own (no "_orig_mod." prefix)
        model.compile()
    flat = None
    if plan.fused:
        # no DDP wrapper: the step syncs the replicas. The whole corpus at once: every core (one process); the
        # steps keep --threads (small ops: 1 is faster)
        with torch_threads(len(os.sched_getaffinity(0)) if ws == 1 and hasattr(os, "sched_getaffinity") else 0):
            flat = FlatBatches(corpus_bags(model, loaders.train.dataset), loaders.train.batch_sampler,
                               num_rows=model.embedding.num_embeddings, device=device, concurrent=cfg.hogwild)
    if getattr(mcfg, "weighting", "mean") == "nb" and run.ckpt is None:  # (a resumed run has them in its weights)
        # from the whole training portion (on every rank: the same weights)
        bare = unwrap(model)
        chunks = ([(flat.bag_ids, flat.bag_offsets[:-1], flat.labels)] if flat is not None
                  else corpus_bag_chunks(bare, loaders.train.dataset))
        bare.row_weight.copy_(nb_row_weights(chunks, bare.embedding.num_embeddings, mcfg.num_classes))
    if cfg.parallel == "ddp" and not plan.fused:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    # (numpy: the labels may be a read-only memory map, which torch.as_tensor warns about)
    counts = np.bincount(np.asarray(loaders.train.dataset.labels, dtype=np.int64), minlength=len(data.labels))
    weights = class_weights(cfg.class_weight, counts.tolist())
    loss = {"class_weights": None if weights is None else weights.to(device), "label_smoothing": cfg.label_smoothing}
    step_opts = StepOptions(accumulate=cfg.accumulate, precision=cfg.precision, clip_grad=cfg.clip_grad,
                            scaler=scaler, **loss)
    return Trainer(model, mcfg, opt, sched, state, total_steps, flat=flat, loss=loss, step_opts=step_opts,
                   resume_rng=rng if state.batches_done else None)


def rank_states(run: Run, tr: Trainer) -> dict:
    """What a checkpoint of this moment needs from every process (under DDP a collective: every rank calls it):
    the RNG states, this process's and under DDP every rank's in `ranks` (a resumed rank draws the dropout masks
    it would have drawn), and the epoch's running train sums added over the ranks (a resumed run hands them to
    rank 0 and starts the others at 0, so the epoch's all-reduced record is the uninterrupted run's)."""
    mine = {"rng": capture_rng_state(), "running": dict(tr.state.running)}
    if run.info.world_size == 1:
        return mine
    ranks = [None] * run.info.world_size
    dist.all_gather_object(ranks, mine)
    return {"rng": {**mine["rng"], "ranks": [r["rng"] for r in ranks]},
            "running": {k: sum(r["running"][k] for r in ranks) for k in mine["running"]}}


def snapshot(run: Run, data: Data, tr: Trainer, *, weights: dict | None = None, ranks: dict | None = None) -> dict:
    """The checkpoint of this moment (weights, optimizer, vocabulary, resume state), copied: training may go
    on while it is written. `weights`: the best weights kept in memory (--checkpoints end), no optimizer.
    `ranks`: what `rank_states` gathered from every process (default: this process's alone)."""
    model = tr.model
    if weights is not None:
        model = build_model(tr.config)
        model.load_state_dict(weights)
    fields = tr.state.checkpoint_fields()  # (its running sums: this process's alone)
    if ranks is not None:
        fields["metrics"]["running"] = ranks["running"]
    return checkpoint_dict(model=model, model_config=tr.config, vocab_itos=data.vocab,
                           vocab_default_index=data.vocab.get_default_index(),
                           optimizer=tr.opt if weights is None else None,
                           scheduler=tr.sched if weights is None else None,
                           scaler=tr.step_opts.scaler if weights is None else None, train_config=config_dict(run.cfg),
                           class_names=data.labels.names, data=data.checkpoint_info(), snapshot=True,
                           rng=capture_rng_state() if ranks is None else ranks["rng"], **fields)


