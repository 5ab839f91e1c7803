"""Where a training step's time goes: the autograd loop (textpipe <= 0.x defaults) vs the fused step.

    python3 benchmarks/step_profile.py                     # AG_NEWS stand-in, 1 thread
    python3 benchmarks/step_profile.py --batch-size 16 --epochs 10 --fused-batch-size 256 --fused-epochs 4

Part 1 runs the autograd training loop of `textpipe.train` before the fused step (padded batches from
`make_dataloader`, `TextClassifier` forward, cross-entropy, `zero_grad`, `backward`, sparse `torch.optim.SGD`,
`LambdaLR`, `.item()` metrics, tqdm) and times each phase with `perf_counter` (CPU ops are synchronous).
Part 2 runs the fused loop (`textpipe.train.fused`) and lists its ops from `torch.profiler`. Setup (read,
vocabulary, encoding, model init, the optimizer's first construction) is timed once. docs/training-speed.md
quotes this script's output.
"""
from __future__ import annotations

import argparse
import collections
import io
import json
import time

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from textpipe.train.fused import FlatBatches, corpus_bags, sgd_step
from textpipe.corpus import EncodedCorpus
from textpipe.data.ag_news import load_ag_news
from textpipe.batches.loader import make_dataloader
from textpipe.models.bag import ModelConfig, TextClassifier
from textpipe.batches.sampler import BucketBatchSampler
from textpipe.tokenizer import basic_english_batch
from textpipe.vocab import build_vocab_from_iterator

from _common import DEFAULT_DATA


def autograd_loop(corpus, vocab_size, *, batch_size, epochs, lr, embed_dim, setup) -> dict:
    """Part 1: today's loop, phase by phase. Returns seconds per phase and the step count."""
    T = collections.defaultdict(float)

    def tick(name, t0):
        t = time.perf_counter()
        T[name] += t - t0
        return t

    t0 = time.perf_counter()
    loader = make_dataloader(corpus, batch_size=batch_size, shuffle=True, seed=0)
    torch.manual_seed(0)
    model = TextClassifier(ModelConfig(vocab_size=vocab_size, embed_dim=embed_dim, sparse=True))
    t0 = tick("model init", t0)
    setup["model init (autograd config)"] = T.pop("model init")
    opt = torch.optim.SGD(model.parameters(), lr=lr)  # the first optimizer of the process imports torch._dynamo
    setup["first torch.optim.SGD()"] = time.perf_counter() - t0
    total = epochs * len(loader)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1.0 - s / total))
    running, steps = {"loss_sum": 0.0, "correct": 0, "seen": 0}, 0
    t_loop = time.perf_counter()
    for epoch in range(epochs):
        loader.batch_sampler.set_epoch(epoch)
        bar = tqdm(loader, total=len(loader), leave=False, file=io.StringIO())  # drawn, but not to the terminal
        it = iter(bar)
        while True:
            t0 = time.perf_counter()
            try:
                ids, _, y = next(it)
            except StopIteration:
                break
            t0 = tick("batch (sampler + collate + tqdm)", t0)
            logits = model(ids)
            t0 = tick("forward (bigram hashing + bag + fc)", t0)
            loss = nn.functional.cross_entropy(logits, y)
            t0 = tick("loss", t0)
            opt.zero_grad(set_to_none=True)
            t0 = tick("zero_grad", t0)
            loss.backward()
            t0 = tick("backward", t0)
            opt.step()
            t0 = tick("optimizer step (sparse SGD: coalesce + add)", t0)
            sched.step()
            t0 = tick("scheduler step", t0)
            running["loss_sum"] += loss.item() * y.numel()
            running["correct"] += (logits.argmax(1) == y).sum().item()
            running["seen"] += y.numel()
            t0 = tick(".item() metrics (host syncs)", t0)
            steps += 1
            if steps % 10 == 0:
                bar.set_postfix(loss=f"{running['loss_sum'] / running['seen']:.4f}")
            tick("tqdm postfix", t0)
        bar.close()
    return {"loop_s": time.perf_counter() - t_loop, "steps": steps, "phases": dict(T)}


def fused_loop(corpus, vocab_size, *, batch_size, epochs, lr, embed_dim, setup) -> dict:
    """Part 2: the fused loop, timed whole, then one more epoch under torch.profiler (ops by self CPU time)."""
    torch.manual_seed(0)
    t0 = time.perf_counter()
    model = TextClassifier(ModelConfig(vocab_size=vocab_size, embed_dim=embed_dim))
    setup["model init (fused config)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sampler = BucketBatchSampler(corpus.lengths, batch_size, seed=0, bucket_size_multiplier=1)  # random batches
    flat = FlatBatches(corpus_bags(model, corpus), sampler, num_rows=model.embedding.num_embeddings)
    setup["corpus bags + row scale"] = time.perf_counter() - t0
    stats, total, steps = torch.zeros(3, dtype=torch.float64), epochs * len(flat), 0
    t_loop = time.perf_counter()
    for epoch in range(epochs):
        for batch in flat.epoch(epoch):
            sgd_step(model, *batch, lr=lr * (1 - steps / total), stats=stats)
            steps += 1
    loop_s = time.perf_counter() - t_loop
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for batch in flat.epoch(epochs):
            sgd_step(model, *batch, lr=0.0, stats=stats)
    ops = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total_us = sum(e.self_cpu_time_total for e in ops)
    table = [(e.key, e.count, e.self_cpu_time_total / 1e3, 100 * e.self_cpu_time_total / total_us) for e in ops[:10]]
    return {"loop_s": loop_s, "steps": steps, "profiled_epoch_ms": total_us / 1e3, "ops": table}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(DEFAULT_DATA.parent))
    p.add_argument("--batch-size", type=int, default=16, help="autograd loop (the old default: 16)")
    p.add_argument("--epochs", type=int, default=10, help="autograd loop (the old default: 10)")
    p.add_argument("--lr", type=float, default=8.0)
    p.add_argument("--embed-dim", type=int, default=32, help="autograd loop (the old default: 32)")
    p.add_argument("--fused-batch-size", type=int, default=256)
    p.add_argument("--fused-epochs", type=int, default=4)
    p.add_argument("--fused-lr", type=float, default=16.0)
    p.add_argument("--fused-embed-dim", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    setup = {}
    t0 = time.perf_counter()
    rows = load_ag_news("train", root=args.data_dir, download=False)
    texts, labels = [t for _, t in rows], [y for y, _ in rows]
    t1 = time.perf_counter()
    vocab = build_vocab_from_iterator(basic_english_batch(texts), specials=["<pad>", "<unk>"])
    vocab.set_default_index(1)
    t2 = time.perf_counter()
    corpus = EncodedCorpus.from_texts(texts, labels, vocab)
    setup.update({"read csv": t1 - t0, "tokenize + vocabulary": t2 - t1,
                  "encode (first call: imports pyarrow)": time.perf_counter() - t2})
    a = autograd_loop(corpus, len(vocab), batch_size=args.batch_size, epochs=args.epochs, lr=args.lr,
                      embed_dim=args.embed_dim, setup=setup)
    f = fused_loop(corpus, len(vocab), batch_size=args.fused_batch_size, epochs=args.fused_epochs,
                   lr=args.fused_lr, embed_dim=args.fused_embed_dim, setup=setup)
    load = open("/proc/loadavg").read().split()[:3]
    print(f"{len(texts):,} texts, {args.threads} thread(s), loadavg {load}")
    print(f"\nautograd loop: batch {args.batch_size}, dim {args.embed_dim}, {args.epochs} epochs: {a['steps']} steps, "
          f"{a['loop_s']:.3f} s, {1e3 * a['loop_s'] / a['steps']:.3f} ms/step")
    print("| phase | s | us/step | share |\n|---|---|---|---|")
    for k, v in a["phases"].items():
        print(f"| {k} | {v:.3f} | {1e6 * v / a['steps']:.1f} | {100 * v / a['loop_s']:.1f}% |")
    print(f"\nfused loop: batch {args.fused_batch_size}, dim {args.fused_embed_dim}, {args.fused_epochs} epochs: "
          f"{f['steps']} steps, {f['loop_s']:.3f} s, {1e3 * f['loop_s'] / f['steps']:.3f} ms/step "
          f"({a['loop_s'] / f['loop_s']:.1f}x less loop time); one profiled epoch {f['profiled_epoch_ms']:.1f} ms:")
    print("| op | calls | ms | share |\n|---|---|---|---|")
    for name, count, ms, share in f["ops"]:
        print(f"| {name} | {count} | {ms:.2f} | {share:.1f}% |")
    print("\nsetup, once per run:\n| part | s |\n|---|---|")
    for k, v in setup.items():
        print(f"| {k} | {v:.3f} |")
    print(json.dumps({"autograd_ms_per_step": round(1e3 * a["loop_s"] / a["steps"], 3), "autograd_loop_s":
                      round(a["loop_s"], 3), "fused_ms_per_step": round(1e3 * f["loop_s"] / f["steps"], 3),
                      "fused_loop_s": round(f["loop_s"], 3), "loadavg": load}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
