"""Train a text classifier: `fit(config)` reads top to bottom: set-up -> data -> model -> epochs -> finish.

    python -m textpipe.train --data-dir ../shared/data/ag_news                  # CPU or one GPU
    python -m textpipe.train --data-dir DIR --parallel dp                        # nn.DataParallel, all GPUs
    torchrun --nproc_per_node=N -m textpipe.train --data-dir DIR --parallel ddp  # DistributedDataParallel

Multi-node: torchrun --nnodes=2 --node_rank=0|1 --master_addr=HOST --master_port=29500 --nproc_per_node=N ...
Outputs in --output-dir: best.pt, last.pt, metrics.jsonl, summary.json, confusion_matrix.png.
From Python: `fit(TrainConfig(data_dir="...", epochs=3), report=print)` returns the summary as a dict.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from textpipe.checkpoint import (ResumeState, check_resume, copy_checkpoint, load_checkpoint, restore_rng_state,
                                 save_checkpoint)
from textpipe.distributed import TORCHRUN_VARS, DistInfo, cleanup, init_distributed, print0, unwrap, weights_digest
from textpipe.evaluate import evaluate, evaluate_model
from textpipe.fileio import atomic_write_text
from textpipe.metrics import format_report, save_confusion_png
from textpipe.model import ModelConfig, TextClassifier

PAD_IDX, UNK_IDX = 0, 1
# Flags that shape the training trajectory: a resumed run must use the same values as the checkpoint.
RESUME_KEYS = ("epochs", "batch_size", "lr", "optimizer", "schedule", "weight_decay", "min_freq", "max_tokens",
               "val_fraction", "seed", "bucket", "max_steps", "embed_dim", "ngrams", "buckets")
MODEL_KEYS = ("embed_dim", "ngrams", "buckets")  # the TrainConfig fields that go to ModelConfig
_MODEL_DEFAULTS = ModelConfig.__dataclass_fields__


@dataclass
class TrainConfig:
    # -- data
    data_dir: str | None = None  # directory with train.csv[.gz] (+ test.csv[.gz]); None = cache/download
    # -- model
    embed_dim: int = _MODEL_DEFAULTS["embed_dim"].default  # embedding size
    ngrams: int = _MODEL_DEFAULTS["ngrams"].default  # 1 = words, 2 = words + hashed bigrams
    buckets: int = _MODEL_DEFAULTS["buckets"].default  # bigram hash buckets
    min_freq: int = 1  # keep tokens seen at least this often in the training portion
    max_tokens: int | None = None  # cap on the vocabulary size, specials included; None = no cap
    # -- optimisation
    epochs: int = 10  # passes over the training portion
    batch_size: int = 16  # samples per step per process (DataParallel: split over the GPUs)
    lr: float = 8.0  # peak learning rate (SGD on a mean loss wants a large one, as fastText's)
    optimizer: str = "sgd"  # sgd | adamw (adamw needs dense gradients)
    schedule: str = "linear"  # linear (decay to 0) | cosine | constant
    weight_decay: float = 0.0  # L2 penalty (adamw: decoupled)
    val_fraction: float = 0.0  # share of train held out for validation (0 = train on all; see docs)
    seed: int = 0  # model init, split and sampler order
    max_steps: int = -1  # stop after this many optimizer steps (-1 = run all epochs)
    patience: int = 0  # stop after N epochs without a better validation accuracy (0 = never)
    eval_batch_size: int = 512  # texts per forward pass in validation and test
    # -- devices
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    parallel: str = "none"  # none | dp (nn.DataParallel) | ddp (DistributedDataParallel under torchrun)
    num_workers: int = 0  # DataLoader worker processes (0 is fastest for the pre-encoded corpus)
    pin_memory: bool | None = None  # page-locked batches for async host-to-GPU copies; None = on CUDA only
    bucket: bool = True  # batch texts of similar length (less padding)
    sparse: bool | None = None  # sparse embedding gradients; None = on for CPU + SGD, off otherwise
    threads: int = 1  # torch CPU threads per process; 0 = torch's default (see examples/train_ag_news.md)
    # -- output
    output_dir: str = "runs/ag_news"  # checkpoints, metrics.jsonl, summary.json
    resume: str | None = None  # "last" = <output-dir>/last.pt, or a checkpoint path
    save_every: int = 0  # also write last.pt every N steps (0 = at the end of each epoch only)
    tensorboard: str | None = None  # also log scalars to this TensorBoard directory
    progress: bool = True  # tqdm progress bars (rank 0 only)
    cache_dir: str | None = None  # corpus cache for --data-dir's train file; None = <textpipe cache>/corpora
    cache: bool = True  # reuse a cached corpus; False (--no-cache) rebuilds it


def check_config(cfg: TrainConfig) -> None:
    """Raise ValueError naming the first field (and its flag) whose value cannot work; no slow work."""
    def bad(name: str, expected: str) -> ValueError:
        return ValueError(f"{name} (--{name.replace('_', '-')}) must be {expected}, got {getattr(cfg, name)!r}")

    for name in ("epochs", "batch_size", "eval_batch_size", "embed_dim"):
        if getattr(cfg, name) < 1:
            raise bad(name, ">= 1")
    for name in ("min_freq", "num_workers", "threads", "save_every", "patience"):
        if getattr(cfg, name) < 0:
            raise bad(name, ">= 0")
    if cfg.max_tokens is not None and cfg.max_tokens < 3:
        raise bad("max_tokens", ">= 3 (the 2 specials and one token) or None")
    if not 0.0 <= cfg.val_fraction < 1.0:
        raise bad("val_fraction", "in [0, 1)")
    if cfg.lr < 0 or cfg.weight_decay < 0:
        raise bad("lr" if cfg.lr < 0 else "weight_decay", ">= 0")
    for name, choices in (("optimizer", ("sgd", "adamw")), ("schedule", ("linear", "cosine", "constant")),
                          ("parallel", ("none", "dp", "ddp")), ("ngrams", (1, 2))):
        if getattr(cfg, name) not in choices:
            raise bad(name, f"one of {choices}")
    if cfg.ngrams == 2 and cfg.buckets < 1:
        raise bad("buckets", ">= 1 with --ngrams 2")
    if cfg.parallel == "ddp" and not all(v in os.environ for v in TORCHRUN_VARS):
        raise ValueError("--parallel ddp must be started by torchrun, which sets RANK/LOCAL_RANK/WORLD_SIZE "
                         "(not set here): torchrun --nproc_per_node=N -m textpipe.train --parallel ddp ...")
    if cfg.sparse and cfg.optimizer == "adamw":
        raise ValueError("--sparse needs --optimizer sgd (AdamW cannot take sparse gradients); use --no-sparse")
    if not (cfg.device in ("auto", "cpu", "cuda") or cfg.device.startswith("cuda:")):
        raise bad("device", "auto, cpu, cuda or cuda:N")
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {cfg.device}: no CUDA GPU is visible here; use --device cpu (or auto)")
    if cfg.tensorboard:
        try:
            import torch.utils.tensorboard  # noqa: F401
        except ImportError:
            raise ValueError("--tensorboard needs the tensorboard package: pip install tensorboard") from None


# -- set-up ----------------------------------------------------------------------------------------------------
@dataclass
class Run:
    """The processes, devices and output directory of one `fit` call."""

    cfg: TrainConfig
    info: DistInfo
    out: Path
    ckpt: dict | None  # the checkpoint to resume from, or None for a fresh run
    t_start: float = field(default_factory=time.perf_counter)
    writer: object = None  # TensorBoard SummaryWriter (rank 0, with --tensorboard)

    @property
    def device(self) -> torch.device:
        return self.info.device

    @property
    def is_main(self) -> bool:
        return self.info.rank == 0


def setup(cfg: TrainConfig) -> Run:
    """Threads, processes and devices; the output directory; the checkpoint to resume from (checked)."""
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    if cfg.parallel == "ddp":
        info = init_distributed(cfg.device)
    else:
        name = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
        info = DistInfo(0, 0, 1, torch.device(name))
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = None
    if cfg.resume:
        path = out / "last.pt" if cfg.resume == "last" else Path(cfg.resume)
        if cfg.resume == "last" and not path.exists():
            print0(f"note: --resume: no {path} yet, starting from scratch")
        else:
            ckpt = load_checkpoint(path, map_location="cpu")
            check_resume(ckpt, asdict(cfg), RESUME_KEYS, path)
            # checkpoints whose train_config predates the model fields: compare with their model config
            check_resume({"train_config": ckpt["model_config"]}, asdict(cfg), MODEL_KEYS, path)
    run = Run(cfg, info, out, ckpt)
    if run.is_main and cfg.tensorboard:
        from torch.utils.tensorboard import SummaryWriter
        run.writer = SummaryWriter(cfg.tensorboard)
    return run


# -- data ------------------------------------------------------------------------------------------------------
@dataclass
class Data:
    vocab: object  # textpipe.Vocab of the training portion
    class_names: list[str]  # label id -> name
    train_loader: object  # this rank's shard of the training portion, bucketed
    val_loader: object | None  # all of the validation carve-out (every rank), or None without one
    test_rows: list | None  # (label, text) rows to test the best model on, or None
    sizes: dict  # rows per split


def load_data(run: Run) -> Data:
    """Rows (rank 0 first: it may download), validation carve-out, vocabulary, encoded corpora, loaders."""
    from textpipe import corpus_cache
    from textpipe.corpus import EncodedCorpus
    from textpipe.data.ag_news import AG_NEWS_CLASSES, load_ag_news
    from textpipe.loader import make_dataloader
    from textpipe.tokenizer import basic_english_batch
    from textpipe.vocab import Vocab, build_vocab_from_iterator

    cfg, ws = run.cfg, run.info.world_size

    def rows(split):
        try:
            return load_ag_news(split, root=cfg.data_dir, download=cfg.data_dir is None, progress=cfg.progress)
        except FileNotFoundError:
            if split == "test" and cfg.data_dir is not None:
                return None  # a --data-dir without a test split
            raise

    # --data-dir's train file streams into a memory-mapped corpus cache (rank 0 builds, the others map it)
    cached = corpus_cache.training_corpora(cfg, run.info, ckpt=run.ckpt) if cfg.data_dir is not None else None
    if ws > 1 and not run.is_main:
        dist.barrier()
    train_rows, test_rows = rows("train") if cached is None else None, rows("test")
    if ws > 1 and run.is_main:
        dist.barrier()
    if cached is not None:
        vocab, train_corpus, val_corpus = cached.vocab, cached.fit, cached.val
    else:
        # The validation carve-out comes from train, with its own seed-fixed permutation.
        perm = np.random.default_rng(cfg.seed).permutation(len(train_rows))
        n_val = int(round(len(train_rows) * cfg.val_fraction))
        val_rows = [train_rows[i] for i in perm[:n_val]]
        fit_rows = [train_rows[i] for i in np.sort(perm[n_val:])]
        if run.ckpt is not None:
            vocab = Vocab(run.ckpt["vocab_itos"], default_index=run.ckpt["vocab_default_index"])
        else:  # subtle: built from the training portion only, so validation and test words stay unseen
            vocab = build_vocab_from_iterator(basic_english_batch([t for _, t in fit_rows]), min_freq=cfg.min_freq,
                                              specials=["<pad>", "<unk>"], max_tokens=cfg.max_tokens)
            vocab.set_default_index(UNK_IDX)

        def encode(rows):  # tokenize + encode once; the epochs reuse the arrays
            return EncodedCorpus.from_texts([t for _, t in rows], [y for y, _ in rows], vocab) if rows else None

        train_corpus, val_corpus = encode(fit_rows), encode(val_rows)
    pin = run.device.type == "cuda" if cfg.pin_memory is None else cfg.pin_memory
    train_loader = make_dataloader(train_corpus, batch_size=cfg.batch_size, shuffle=True, seed=cfg.seed,
                                   bucket=cfg.bucket, num_workers=cfg.num_workers, pin_memory=pin,
                                   num_replicas=ws, rank=run.info.rank, pad_idx=PAD_IDX,
                                   window=corpus_cache.SAMPLER_WINDOW)
    # every rank validates on all of val: same weights, same numbers, same early-stopping decision
    val_loader = make_dataloader(val_corpus, batch_size=cfg.eval_batch_size, shuffle=False, pin_memory=pin,
                                 num_replicas=1, rank=0, pad_idx=PAD_IDX) if val_corpus is not None else None
    return Data(vocab, list(AG_NEWS_CLASSES), train_loader, val_loader, test_rows,
                {"train": len(train_corpus), "val": len(val_corpus or []), "test": len(test_rows or [])})


# -- model -----------------------------------------------------------------------------------------------------
@dataclass
class Trainer:
    """The model (wrapped for DP/DDP), its optimizer and schedule, and where training stands."""

    model: nn.Module
    config: ModelConfig
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    state: ResumeState
    total_steps: int


def make_optimizer(cfg: TrainConfig, model: nn.Module, total_steps: int):
    """The optimizer and a per-step learning-rate schedule over `total_steps`."""
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    shape = {"linear": lambda s: max(0.0, 1.0 - s / total_steps),
             "cosine": lambda s: 0.5 * (1.0 + np.cos(np.pi * min(s, total_steps) / total_steps)),
             "constant": lambda s: 1.0}[cfg.schedule]
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, shape)


def build_model(run: Run, data: Data) -> Trainer:
    """Model, optimizer and schedule: fresh (seeded), or restored from the resume checkpoint."""
    cfg, device, ws = run.cfg, run.device, run.info.world_size
    sparse = cfg.sparse if cfg.sparse is not None else (device.type == "cpu" and cfg.optimizer == "sgd")
    mcfg = ModelConfig(vocab_size=len(data.vocab), num_classes=len(data.class_names), pad_idx=PAD_IDX,
                       sparse=sparse, **{k: getattr(cfg, k) for k in MODEL_KEYS})
    if run.ckpt is not None:  # the checkpoint's model; sparse follows this run's device (same math)
        mcfg = ModelConfig(**{**run.ckpt["model_config"], "sparse": sparse})
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    model = TextClassifier(mcfg).to(device)
    steps_per_epoch = len(data.train_loader)
    total_steps = cfg.epochs * steps_per_epoch
    total_steps = total_steps if cfg.max_steps < 0 else min(cfg.max_steps, total_steps)
    opt, sched = make_optimizer(cfg, model, max(total_steps, 1))
    state = ResumeState(num_replicas=ws)
    if run.ckpt is not None:
        ckpt = run.ckpt
        try:
            model.load_state_dict(ckpt["model"])
        except RuntimeError as e:  # shapes that do not match the checkpoint's own model_config
            raise ValueError(f"--resume: the weights in the checkpoint do not fit its model_config "
                             f"({str(e).splitlines()[-1].strip()}); the file is damaged") from e
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
    elif cfg.parallel == "ddp":
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    return Trainer(model, mcfg, opt, sched, state, total_steps)


def save(run: Run, data: Data, tr: Trainer, name: str) -> Path:
    """Write `name` (last.pt / best.pt) in the output directory: weights, optimizer, vocabulary, resume state."""
    return save_checkpoint(run.out / name, model=tr.model, model_config=tr.config, vocab_itos=data.vocab.get_itos(),
                           vocab_default_index=UNK_IDX, optimizer=tr.opt, scheduler=tr.sched,
                           train_config=asdict(run.cfg), class_names=data.class_names,
                           **tr.state.checkpoint_fields())


# -- one epoch -------------------------------------------------------------------------------------------------
def train_one_epoch(run: Run, data: Data, tr: Trainer) -> None:
    """Train on this rank's batches of `tr.state.epoch`, from `batches_done` on; stops at `total_steps`."""
    cfg, st, device = run.cfg, tr.state, run.device
    loader, model = data.train_loader, tr.model
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
            save(run, data, tr, "last.pt")
        if st.step >= tr.total_steps:
            break
    bar.close()


# -- end of epoch ----------------------------------------------------------------------------------------------
def end_epoch(run: Run, data: Data, tr: Trainer, t_loop: float) -> dict:
    """All-reduce the train stats, validate, update best/patience, checkpoint, log; returns the epoch record."""
    st, device = tr.state, run.device
    stats = torch.tensor([st.running["loss_sum"], st.running["correct"], st.running["seen"]], dtype=torch.float64,
                         device=device)
    if run.info.world_size > 1:
        dist.all_reduce(stats)
    # validation on the bare model (no DDP sync needed)
    val = evaluate_model(unwrap(tr.model), data.val_loader, device=device) if data.val_loader else None
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
    if st.batches_done == len(data.train_loader):  # else stopped by --max-steps: resume mid-epoch
        st.epoch, st.batches_done = st.epoch + 1, 0
    if run.is_main:
        # subtle: checkpoint (with the history) first, metrics.jsonl second: a kill in between loses nothing,
        # since the resumed run rewrites metrics.jsonl from the checkpoint's history
        if improved:  # best.pt first: a kill before last.pt is linked to it replays this epoch
            save(run, data, tr, "best.pt")
            copy_checkpoint(run.out / "best.pt", run.out / "last.pt")
        else:
            save(run, data, tr, "last.pt")
        write_metrics(run.out / "metrics.jsonl", st.history)
        if run.writer is not None:
            for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"):
                if record[k] is not None:
                    run.writer.add_scalar(k, record[k], st.step)
        val_msg = f" | val loss {val['loss']:.4f} acc {val['accuracy']:.4f}" if val else ""
        print(f"epoch {record['epoch']} step {st.step} | train loss {record['train_loss']:.4f} "
              f"acc {record['train_accuracy']:.4f}{val_msg}{' *' if improved and val else ''}", flush=True)
    return record


def write_metrics(path: Path, records: list[dict]) -> None:
    """Replace metrics.jsonl atomically with one JSON line per record (the old file stays until then)."""
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))


# -- finish ----------------------------------------------------------------------------------------------------
def finish(run: Run, data: Data, tr: Trainer, loop_s: float) -> dict:
    """Check the replicas agree, test the best checkpoint, write summary.json; returns the summary."""
    st = tr.state
    mine = {"rank": run.info.rank, "step": st.step, "weights": weights_digest(tr.model)}
    ranks = [mine]
    if run.info.world_size > 1:
        ranks = [None] * run.info.world_size
        dist.all_gather_object(ranks, mine)
    best_path = run.out / "best.pt"
    summary = {"steps": st.step, "last": st.history[-1] if st.history else None,
               "best_val_accuracy": st.best if data.val_loader else None, "checkpoint": str(best_path),
               "train_loop_s": round(loop_s, 3), "ranks": ranks,
               "replicas_in_sync": len({(r["step"], r["weights"]) for r in ranks}) == 1, "test": None}
    if not run.is_main:
        return summary
    if not summary["replicas_in_sync"]:
        print(f"warning: replicas diverged: {ranks}", flush=True)
    if data.test_rows is not None:  # the best checkpoint, as a user would load it
        report = evaluate(best_path, data.test_rows, batch_size=run.cfg.eval_batch_size, device=run.device)
        summary["test"] = report
        print(format_report(report, data.class_names))
        if not save_confusion_png(report["confusion"], data.class_names, run.out / "confusion_matrix.png"):
            print("note: matplotlib is not installed: no confusion_matrix.png (pip install matplotlib)")
    summary["command_s"] = round(time.perf_counter() - run.t_start, 3)
    # the caller gets exactly what the file holds (JSON turns tuples into lists)
    summary = json.loads(json.dumps(summary))
    atomic_write_text(run.out / "summary.json", json.dumps(summary, indent=1) + "\n")
    test_msg = f"test accuracy {summary['test']['accuracy']:.4f} | " if summary["test"] else ""
    print(f"{test_msg}training loop {loop_s:.2f} s | whole command {summary['command_s']:.2f} s | "
          f"best model: {best_path}", flush=True)
    return summary


def fit(config: TrainConfig, *, report: Callable[[dict], object] | None = None) -> dict:
    """Train (or resume) as `python -m textpipe.train` does, and return the run's summary.

    Args:
        config: the run's settings; checked first (ValueError) before any slow work.
        report: called on rank 0 after every epoch with that epoch's record (`epoch`, `step`, `lr`,
            `train_loss`, `train_accuracy`, `val_loss`, `val_accuracy`, `time_s`; val_* are None without
            a validation carve-out). A hyperparameter search stops a trial early by raising from it: the
            exception propagates, and the last checkpoint and metrics.jsonl stay consistent.

    Returns:
        The summary that is written to summary.json: `best_val_accuracy`, `test` (the evaluate report of
        best.pt on the test split, or None without one), `checkpoint` (best.pt), `train_loop_s`, `steps`,
        `last` (the last epoch's record) and more. Ranks other than 0 get it without `test`.

    Example:
        >>> fit(TrainConfig(data_dir="../shared/data/ag_news", epochs=1))["test"]["accuracy"]  # doctest: +SKIP
        0.845
    """
    check_config(config)
    run = setup(config)
    try:
        data = load_data(run)
        tr = build_model(run, data)
        print0(f"train {data.sizes['train']}, val {data.sizes['val']}, test {data.sizes['test']} | "
               f"vocab {len(data.vocab)} | {sum(p.numel() for p in tr.model.parameters()):,} parameters | "
               f"{run.info.world_size} process(es) on {run.device}")
        t_loop = time.perf_counter()
        while tr.state.epoch < config.epochs and tr.state.step < tr.total_steps:
            train_one_epoch(run, data, tr)
            record = end_epoch(run, data, tr, t_loop)
            if report is not None and run.is_main:
                report(dict(record))
            if config.patience and tr.state.bad_epochs >= config.patience:
                print0(f"early stop: no better validation accuracy for {tr.state.bad_epochs} epochs")
                break
        return finish(run, data, tr, time.perf_counter() - t_loop)
    finally:
        if run.writer is not None:
            run.writer.close()
        cleanup()


def main(argv: list[str] | None = None) -> int:
    """`python -m textpipe.train ...`: the same as `textpipe train ...` (see textpipe.cli)."""
    from textpipe.cli import train_main

    return train_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
