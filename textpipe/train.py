"""Train the AG_NEWS text classifier. A flat loop: data -> vocab -> model -> epochs -> checkpoints -> test.

    python -m textpipe.train --data-dir ../shared/data/ag_news                  # CPU or one GPU
    python -m textpipe.train --data-dir DIR --parallel dp                        # nn.DataParallel, all GPUs
    torchrun --nproc_per_node=N -m textpipe.train --data-dir DIR --parallel ddp  # DistributedDataParallel

Multi-node: torchrun --nnodes=2 --node_rank=0|1 --master_addr=HOST --master_port=29500 --nproc_per_node=N ...
Outputs in --output-dir: best.pt, last.pt, metrics.jsonl, summary.json, confusion_matrix.png.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from textpipe.checkpoint import (capture_rng_state, check_resume, copy_checkpoint, load_checkpoint,
                                 restore_rng_state, save_checkpoint)
from textpipe.distributed import TORCHRUN_VARS, DistInfo, cleanup, init_distributed, print0, unwrap, weights_digest
from textpipe.evaluate import evaluate, evaluate_model
from textpipe.metrics import format_report, save_confusion_png
from textpipe.model import ModelConfig, TextClassifier

PAD_IDX, UNK_IDX = 0, 1
# Flags that shape the training trajectory: a resumed run must use the same values as the checkpoint.
RESUME_KEYS = ("epochs", "batch_size", "lr", "optimizer", "schedule", "weight_decay", "min_freq", "max_tokens",
               "val_fraction", "seed", "bucket", "max_steps")
MODEL_RESUME_KEYS = ("embed_dim", "ngrams", "buckets")


@dataclass
class TrainConfig:
    data_dir: str | None = None  # directory with train.csv[.gz] (+ test.csv[.gz]); None = cache/download
    output_dir: str = "runs/ag_news"  # checkpoints, metrics.jsonl, summary.json
    epochs: int = 10  # passes over the training portion
    batch_size: int = 16  # samples per step per process (DataParallel: split over the GPUs)
    lr: float = 8.0  # peak learning rate (SGD on a mean loss wants a large one, as fastText's)
    optimizer: str = "sgd"  # sgd | adamw (adamw needs dense gradients)
    schedule: str = "linear"  # linear (decay to 0) | cosine | constant
    weight_decay: float = 0.0  # L2 penalty (adamw: decoupled)
    min_freq: int = 1  # keep tokens seen at least this often in the training portion
    max_tokens: int | None = None  # cap on the vocabulary size, specials included; None = no cap
    val_fraction: float = 0.0  # share of train held out for validation (0 = train on all; see docs)
    seed: int = 0  # model init, split and sampler order
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    parallel: str = "none"  # none | dp (nn.DataParallel) | ddp (DistributedDataParallel under torchrun)
    num_workers: int = 0  # DataLoader worker processes (0 is fastest for the pre-encoded corpus)
    pin_memory: bool | None = None  # page-locked batches for async host-to-GPU copies; None = on CUDA only
    bucket: bool = True  # batch texts of similar length (less padding)
    sparse: bool | None = None  # sparse embedding gradients; None = on for CPU + SGD, off otherwise
    threads: int = 1  # torch CPU threads per process; 0 = torch's default (see examples/train_ag_news.md)
    resume: str | None = None  # "last" = <output-dir>/last.pt, or a checkpoint path
    save_every: int = 0  # also write last.pt every N steps (0 = at the end of each epoch only)
    max_steps: int = -1  # stop after this many optimizer steps (-1 = run all epochs)
    patience: int = 0  # stop after N epochs without a better validation accuracy (0 = never)
    eval_batch_size: int = 512  # texts per forward pass in validation and test
    tensorboard: str | None = None  # also log scalars to this TensorBoard directory
    progress: bool = True  # tqdm progress bars (rank 0 only)


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, ModelConfig]:
    """Command line -> (TrainConfig, ModelConfig); defaults come from the dataclasses."""
    t, m = TrainConfig(), ModelConfig.__dataclass_fields__
    p = argparse.ArgumentParser(prog="python -m textpipe.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add = p.add_argument
    add("--data-dir", default=t.data_dir, help="directory with train.csv[.gz] and optionally test.csv[.gz] "
        "(default: the textpipe cache, downloading AG_NEWS once)")
    add("--output-dir", default=t.output_dir, help="where checkpoints and metrics go (default %(default)s)")
    add("--epochs", type=int, default=t.epochs, help="epochs (default %(default)s)")
    add("--batch-size", type=int, default=t.batch_size, help="samples per step per process (default %(default)s)")
    add("--lr", type=float, default=t.lr, help="peak learning rate (default %(default)s)")
    add("--optimizer", choices=["sgd", "adamw"], default=t.optimizer, help="default %(default)s")
    add("--schedule", choices=["linear", "cosine", "constant"], default=t.schedule,
        help="learning-rate schedule over all steps (default %(default)s)")
    add("--weight-decay", type=float, default=t.weight_decay, help="default %(default)s")
    add("--embed-dim", type=int, default=m["embed_dim"].default, help="embedding size (default %(default)s)")
    add("--ngrams", type=int, choices=[1, 2], default=m["ngrams"].default,
        help="1 = words, 2 = words + hashed bigrams (default %(default)s)")
    add("--buckets", type=int, default=m["buckets"].default, help="bigram hash buckets (default %(default)s)")
    add("--min-freq", type=int, default=t.min_freq, help="minimum token count for the vocabulary")
    add("--max-tokens", type=int, default=t.max_tokens, help="maximum vocabulary size (default: no cap)")
    add("--val-fraction", type=float, default=t.val_fraction,
        help="share of train held out for validation, best-model selection and early stopping, in [0, 1) "
        "(default %(default)s: train on all rows; the defaults were tuned with 0.1)")
    add("--seed", type=int, default=t.seed, help="default %(default)s")
    add("--device", default=t.device, help="auto | cpu | cuda | cuda:N (default %(default)s)")
    add("--parallel", choices=["none", "dp", "ddp"], default=t.parallel,
        help="dp = nn.DataParallel over all GPUs; ddp = DistributedDataParallel, start with torchrun")
    add("--num-workers", type=int, default=t.num_workers, help="DataLoader workers (default %(default)s)")
    add("--pin-memory", action=argparse.BooleanOptionalAction, default=t.pin_memory,
        help="pin batches in page-locked memory (default: on with CUDA)")
    add("--bucket", action=argparse.BooleanOptionalAction, default=t.bucket,
        help="batch texts of similar length (default on)")
    add("--sparse", action=argparse.BooleanOptionalAction, default=t.sparse,
        help="sparse embedding gradients (default: on for CPU with SGD)")
    add("--threads", type=int, default=t.threads, help="torch CPU threads per process, 0 = torch default "
        "(default %(default)s: this small model is fastest single-threaded)")
    add("--resume", nargs="?", const="last", default=t.resume,
        help="resume from <output-dir>/last.pt, or from the given checkpoint")
    add("--save-every", type=int, default=t.save_every, help="write last.pt every N steps (0 = per epoch)")
    add("--max-steps", type=int, default=t.max_steps, help="stop after N steps (-1 = all epochs)")
    add("--patience", type=int, default=t.patience, help="early stop after N epochs without a better "
        "validation accuracy (0 = never)")
    add("--eval-batch-size", type=int, default=t.eval_batch_size, help="default %(default)s")
    add("--tensorboard", metavar="DIR", default=t.tensorboard, help="also log to TensorBoard in DIR")
    add("--progress", action=argparse.BooleanOptionalAction, default=t.progress, help="tqdm bars (default on)")
    args = vars(p.parse_args(argv))
    model_keys = {"embed_dim", "ngrams", "buckets"}
    cfg = TrainConfig(**{k: v for k, v in args.items() if k not in model_keys})
    # vocab_size is known only after the vocabulary is built; 2 is a placeholder that passes validation.
    try:
        mcfg = ModelConfig(vocab_size=2, **{k: args[k] for k in model_keys})
    except ValueError as e:
        p.error(str(e).replace("embed_dim", "--embed-dim").replace("buckets", "--buckets"))
    for name in ("epochs", "batch_size", "eval_batch_size"):
        if getattr(cfg, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(cfg, name)}")
    if not 0.0 <= cfg.val_fraction < 1.0:
        p.error(f"--val-fraction must be in [0, 1), got {cfg.val_fraction}")
    if cfg.sparse and cfg.optimizer == "adamw":
        p.error("--sparse needs --optimizer sgd (AdamW cannot take sparse gradients); use --no-sparse")
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        p.error(f"--device {cfg.device}: no CUDA GPU is visible here; use --device cpu (or auto)")
    if cfg.tensorboard:
        try:
            import torch.utils.tensorboard  # noqa: F401
        except ImportError:
            p.error("--tensorboard needs the tensorboard package: pip install tensorboard")
    return cfg, mcfg


def load_rows(cfg: TrainConfig, split: str) -> list[tuple[int, str]] | None:
    """(label, text) rows of a split; None for a missing test split in --data-dir."""
    from textpipe.data.ag_news import load_ag_news

    try:
        return load_ag_news(split, root=cfg.data_dir, download=cfg.data_dir is None, progress=cfg.progress)
    except FileNotFoundError:
        if split == "test" and cfg.data_dir is not None:
            return None
        raise


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


def main(argv: list[str] | None = None) -> int:
    cfg, mcfg = parse_args(argv)
    if cfg.parallel == "ddp" and not all(v in os.environ for v in TORCHRUN_VARS):
        print("error: --parallel ddp must be started by torchrun, which sets RANK/LOCAL_RANK/WORLD_SIZE "
              "(not set here): torchrun --nproc_per_node=N -m textpipe.train --parallel ddp ...", file=sys.stderr)
        return 2
    from textpipe.corpus import EncodedCorpus
    from textpipe.data.ag_news import AG_NEWS_CLASSES
    from textpipe.loader import make_dataloader
    from textpipe.tokenizer import basic_english_batch
    from textpipe.vocab import Vocab, build_vocab_from_iterator

    t_start = time.perf_counter()
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    try:
        # -- processes and devices ----------------------------------------------------------------------
        if cfg.parallel == "ddp":
            info = init_distributed(cfg.device)
        else:
            name = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
            info = DistInfo(0, 0, 1, torch.device(name))
        device, is_main, ws = info.device, info.rank == 0, info.world_size
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
                # the model's shape flags too: the checkpoint's model config would silently win otherwise
                check_resume({"train_config": ckpt["model_config"]}, asdict(mcfg), MODEL_RESUME_KEYS, path)

        # -- data: rank 0 first (it may download), then the others --------------------------------------
        if ws > 1 and not is_main:
            dist.barrier()
        train_rows, test_rows = load_rows(cfg, "train"), load_rows(cfg, "test")
        if ws > 1 and is_main:
            dist.barrier()
        # The validation carve-out comes from train, with its own seed-fixed permutation.
        perm = np.random.default_rng(cfg.seed).permutation(len(train_rows))
        n_val = int(round(len(train_rows) * cfg.val_fraction))
        val_rows = [train_rows[i] for i in perm[:n_val]]
        fit_rows = [train_rows[i] for i in np.sort(perm[n_val:])]
        if ckpt is not None:
            vocab = Vocab(ckpt["vocab_itos"], default_index=ckpt["vocab_default_index"])
        else:  # subtle: built from the training portion only, so validation and test words stay unseen
            vocab = build_vocab_from_iterator(basic_english_batch([t for _, t in fit_rows]), min_freq=cfg.min_freq,
                                              specials=["<pad>", "<unk>"], max_tokens=cfg.max_tokens)
            vocab.set_default_index(UNK_IDX)

        def encode(rows):  # tokenize + encode once; the epochs reuse the arrays
            return EncodedCorpus.from_texts([t for _, t in rows], [y for y, _ in rows], vocab) if rows else None

        train_corpus, val_corpus = encode(fit_rows), encode(val_rows)
        pin = device.type == "cuda" if cfg.pin_memory is None else cfg.pin_memory
        train_loader = make_dataloader(train_corpus, batch_size=cfg.batch_size, shuffle=True, seed=cfg.seed,
                                       bucket=cfg.bucket, num_workers=cfg.num_workers, pin_memory=pin,
                                       num_replicas=ws, rank=info.rank, pad_idx=PAD_IDX)

        # every rank validates on all of val: same weights, same numbers, same early-stopping decision
        val_loader = make_dataloader(val_corpus, batch_size=cfg.eval_batch_size, shuffle=False, pin_memory=pin,
                                     num_replicas=1, rank=0, pad_idx=PAD_IDX) if val_corpus is not None else None

        # -- model, optimizer, schedule --------------------------------------------------------------------
        sparse = cfg.sparse if cfg.sparse is not None else (device.type == "cpu" and cfg.optimizer == "sgd")
        mcfg = ModelConfig(**{**asdict(mcfg), "vocab_size": len(vocab), "num_classes": len(AG_NEWS_CLASSES),
                              "pad_idx": PAD_IDX, "sparse": sparse})
        if ckpt is not None:  # the checkpoint's model; sparse follows this run's device (same math)
            mcfg = ModelConfig(**{**ckpt["model_config"], "sparse": sparse})
        torch.manual_seed(cfg.seed)  # the same initial weights on every rank
        model = TextClassifier(mcfg).to(device)
        steps_per_epoch = len(train_loader)
        total_steps = cfg.epochs * steps_per_epoch
        total_steps = total_steps if cfg.max_steps < 0 else min(cfg.max_steps, total_steps)
        opt, sched = make_optimizer(cfg, model, max(total_steps, 1))
        start_epoch, skip, step, best, bad_epochs = 0, 0, 0, -1.0, 0
        running = {"loss_sum": 0.0, "correct": 0, "seen": 0}  # this epoch's training stats so far
        if ckpt is not None:
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
            start_epoch, skip = ckpt["sampler"]["epoch"], ckpt["sampler"]["batches_done"]
            if skip and ckpt["sampler"].get("num_replicas", 1) != ws:  # the epoch's shards would not line up
                raise ValueError(f"--resume: the checkpoint stopped mid-epoch with {ckpt['sampler']['num_replicas']} "
                                 f"process(es), this run has {ws}; resume with the same number of processes")
            step, best, bad_epochs = ckpt["step"], ckpt["metrics"]["best"], ckpt["metrics"]["bad_epochs"]
            running = ckpt["metrics"]["running"]
            restore_rng_state(ckpt["rng"])
            print0(f"resumed from step {step} (epoch {start_epoch + 1}, batch {skip})")
        else:
            torch.manual_seed(cfg.seed + info.rank)  # per-rank randomness (e.g. dropout) differs by rank
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

        def save(name, epoch, batches_done):  # rank 0 only; resume state included
            return save_checkpoint(out / name, model=model, model_config=mcfg, vocab_itos=vocab.get_itos(),
                                   vocab_default_index=UNK_IDX, epoch=epoch, step=step, optimizer=opt,
                                   scheduler=sched, train_config=asdict(cfg), class_names=list(AG_NEWS_CLASSES),
                                   sampler={"epoch": epoch, "batches_done": batches_done, "num_replicas": ws},
                                   rng=capture_rng_state(),
                                   metrics={"best": best, "bad_epochs": bad_epochs, "running": dict(running)})

        writer = None
        metrics_path = out / "metrics.jsonl"
        if is_main:
            # keep only the records up to the resumed step (a killed run may have written more)
            old = metrics_path.read_text().splitlines() if ckpt is not None and metrics_path.exists() else []
            metrics_path.write_text("".join(f"{r}\n" for r in old if json.loads(r)["step"] <= step))
            if cfg.tensorboard:
                from torch.utils.tensorboard import SummaryWriter
                writer = SummaryWriter(cfg.tensorboard)
        print0(f"train {len(fit_rows)}, val {len(val_rows)}, test {len(test_rows or [])} | vocab {len(vocab)} | "
               f"{sum(p.numel() for p in model.parameters()):,} parameters | {ws} process(es) on {device}")

        # -- training -----------------------------------------------------------------------------------------
        t_loop, stop, record = time.perf_counter(), step >= total_steps, None
        for epoch in range(start_epoch, cfg.epochs):
            if stop:
                break
            train_loader.batch_sampler.set_epoch(epoch)  # the same order on every rank, then sharded
            model.train()
            batches_done = skip
            # resume mid-epoch: skip the batches the checkpoint already trained on (cheap: no model work)
            bar = tqdm(islice(train_loader, skip, None), total=steps_per_epoch, initial=skip, leave=False,
                       desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not (is_main and cfg.progress))
            skip = 0
            for ids, _, y in bar:
                ids, y = ids.to(device, non_blocking=True), y.to(device, non_blocking=True)  # (B, T), (B,)
                logits = model(ids)  # (B, C)
                loss = nn.functional.cross_entropy(logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                step, batches_done = step + 1, batches_done + 1
                # Python floats: holding loss tensors would keep their graphs alive
                running["loss_sum"] += loss.item() * y.numel()
                running["correct"] += (logits.argmax(1) == y).sum().item()
                running["seen"] += y.numel()
                if step % 10 == 0:
                    bar.set_postfix(loss=f"{running['loss_sum'] / running['seen']:.4f}",
                                    acc=f"{running['correct'] / running['seen']:.4f}")
                if cfg.save_every and step % cfg.save_every == 0 and is_main and step < total_steps:
                    save("last.pt", epoch, batches_done)
                if step >= total_steps:
                    stop = True
                    break
            bar.close()
            # training stats over all ranks; validation on the bare model (no DDP sync needed)
            stats = torch.tensor([running["loss_sum"], running["correct"], running["seen"]], dtype=torch.float64,
                                 device=device)
            if ws > 1:
                dist.all_reduce(stats)
            running = {"loss_sum": 0.0, "correct": 0, "seen": 0}
            val = evaluate_model(unwrap(model), val_loader, device=device) if val_loader else None
            improved = val is None or val["accuracy"] > best
            if val is not None:
                best, bad_epochs = (val["accuracy"], 0) if improved else (best, bad_epochs + 1)
            epoch_done = batches_done == steps_per_epoch
            record = {"epoch": epoch + 1, "step": step, "lr": sched.get_last_lr()[0],
                      "train_loss": stats[0].item() / max(stats[2].item(), 1),
                      "train_accuracy": stats[1].item() / max(stats[2].item(), 1),
                      "val_loss": val and val["loss"], "val_accuracy": val and val["accuracy"],
                      "time_s": round(time.perf_counter() - t_loop, 3)}
            if is_main:
                save("last.pt", epoch + 1 if epoch_done else epoch, 0 if epoch_done else batches_done)
                if improved:
                    copy_checkpoint(out / "last.pt", out / "best.pt")
                with open(metrics_path, "a") as f:
                    f.write(json.dumps(record) + "\n")
                if writer is not None:
                    for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"):
                        if record[k] is not None:
                            writer.add_scalar(k, record[k], step)
                val_msg = f" | val loss {val['loss']:.4f} acc {val['accuracy']:.4f}" if val else ""
                print(f"epoch {epoch + 1} step {step} | train loss {record['train_loss']:.4f} "
                      f"acc {record['train_accuracy']:.4f}{val_msg}{' *' if improved and val else ''}", flush=True)
            if cfg.patience and bad_epochs >= cfg.patience:
                print0(f"early stop: no better validation accuracy for {bad_epochs} epochs")
                break
        loop_s = time.perf_counter() - t_loop

        # -- wrap up: replicas in sync?, test with the best model, summary ------------------------------------
        mine = {"rank": info.rank, "step": step, "weights": weights_digest(model)}
        ranks = [mine]
        if ws > 1:
            ranks = [None] * ws
            dist.all_gather_object(ranks, mine)
        if writer is not None:
            writer.close()
        if not is_main:
            return 0
        in_sync = len({(r["step"], r["weights"]) for r in ranks}) == 1
        if not in_sync:
            print(f"warning: replicas diverged: {ranks}", file=sys.stderr)
        summary = {"steps": step, "last": record, "best_val_accuracy": best if val_loader else None,
                   "train_loop_s": round(loop_s, 3), "ranks": ranks, "replicas_in_sync": in_sync}
        if test_rows is not None:  # the best checkpoint, as a user would load it
            report = evaluate(out / "best.pt", test_rows, batch_size=cfg.eval_batch_size, device=device)
            summary["test"] = report
            print(format_report(report, AG_NEWS_CLASSES))
            if not save_confusion_png(report["confusion"], AG_NEWS_CLASSES, out / "confusion_matrix.png"):
                print("note: matplotlib is not installed: no confusion_matrix.png (pip install matplotlib)")
        summary["command_s"] = round(time.perf_counter() - t_start, 3)
        (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        test_msg = f"test accuracy {summary['test']['accuracy']:.4f} | " if "test" in summary else ""
        print(f"{test_msg}training loop {loop_s:.2f} s | whole command {summary['command_s']:.2f} s | "
              f"best model: {out / 'best.pt'}")
        return 0
    finally:
        cleanup()


if __name__ == "__main__":
    raise SystemExit(main())
