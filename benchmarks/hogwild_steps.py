"""`textpipe.train.fused.hogwild_steps` with 1 thread vs N threads on the same batches, interleaved.

    python3 benchmarks/hogwild_steps.py                  # 350 synthetic batches of 256 texts, 2 threads, 3 rounds
    python3 benchmarks/hogwild_steps.py --threads 2 --batches 350 --rounds 3

The batches are the shape of the AG_NEWS stand-in cycled 16x (40-140 rows per text: words + bigrams, a
60,000-word vocabulary plus 2^18 bigram buckets, `embed_dim` 10), from a seeded generator; each round trains
a fresh model on them with one thread, then with `--threads`. torch runs 1 intra-op thread (the training
default). The docstring of `hogwild_steps` and docs/training-speed.md quote this script. Last line: JSON.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from textpipe.train.fused import hogwild_steps
from textpipe.models.bag import ModelConfig, TextClassifier


def make_batches(n: int, *, batch: int = 256, vocab: int = 60000, seed: int = 0) -> list[tuple]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        lengths = torch.randint(40, 140, (batch,), generator=g)
        m = int(lengths.sum())
        ids = torch.randint(2, vocab + 2**18, (m,), generator=g)
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)[:-1]])
        out.append((ids, torch.full((m,), 0.5), offsets, torch.randint(0, 4, (batch,), generator=g)))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batches", type=int, default=350)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    batches = make_batches(args.batches)
    times = {1: [], args.threads: []}
    for _ in range(args.rounds):
        for threads in times:
            model = TextClassifier(ModelConfig(vocab_size=60000, num_classes=4, embed_dim=10, sparse=True))
            t = time.perf_counter()
            hogwild_steps(model, batches, lr_at=lambda j: 1.0, threads=threads)
            times[threads].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{args.batches} batches of 256: 1 thread {med[1]:.3f} s, {args.threads} threads {med[args.threads]:.3f} s, "
          f"speed-up {med[1] / med[args.threads]:.2f}x (medians of {args.rounds} rounds; loadavg "
          f"{open('/proc/loadavg').read().split()[:3]})")
    print(json.dumps({"batches": args.batches, "threads": args.threads, "one_thread_s": round(med[1], 3),
                      "threads_s": round(med[args.threads], 3), "speedup": round(med[1] / med[args.threads], 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
