"""Training throughput on CPU: textpipe vs the torchtext tutorial pipeline, in one run (samples/s).

    python3 benchmarks/train_throughput.py                     # AG_NEWS stand-in cycled to 120,000 texts
    python3 benchmarks/train_throughput.py --data FILE --rows N --steps 300 --repeats 3 --threads 1

Contenders, each as its recipe trains (a shuffled epoch order, SGD):
  tutorial: the torchtext tutorial: batch 64, EmbeddingBag(64) over unigrams; the tutorial's collate from raw
            text each batch (regex basic_english, dict lookup, a tensor per sample, cat, cumsum offsets) +
            SGD(lr=5) + clip_grad_norm_(0.1).
  textpipe: `python -m textpipe.train`'s default model and step: words + hashed bigrams, embed_dim and
            batch size from TrainConfig (10, 256), the corpus encoded once, the fused SGD step
            (textpipe.train.fused: bags computed once, each batch gathered from them).
  textpipe_autograd: the same model and batch through the autograd loop (make_dataloader's padded batches,
            TextClassifier forward, backward, sparse torch.optim.SGD), to show what the fused step contributes.
Each timing is --steps steps after --warmup steps, median over --repeats interleaved rounds; throughput is
texts per second (batches differ in size between contenders). The last line is one JSON object;
train_samples_per_s_x = textpipe / tutorial.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA, DEFAULT_ROWS, load_texts, reference_tokenize  # noqa: E402

from textpipe.train.fused import FlatBatches, corpus_bags, sgd_step  # noqa: E402
from textpipe.corpus import EncodedCorpus  # noqa: E402
from textpipe.batches.loader import make_dataloader  # noqa: E402
from textpipe.models.bag import ModelConfig, TextClassifier  # noqa: E402
from textpipe.batches.sampler import BucketBatchSampler  # noqa: E402
from textpipe.tokenizer import basic_english_batch  # noqa: E402
from textpipe.train import TrainConfig  # noqa: E402
from textpipe.train.config import settle_defaults  # noqa: E402
from textpipe.vocab import build_vocab_from_iterator  # noqa: E402

DEFAULTS = settle_defaults(TrainConfig())  # the bag model's defaults (embed 10, batch 256, lr, bigrams)


class TutorialModel(nn.Module):
    """The tutorial's TextClassificationModel: EmbeddingBag (mean) over flat ids + offsets, then a linear layer."""

    def __init__(self, vocab_size: int, embed_dim: int, num_class: int):
        super().__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, embed_dim, sparse=False)
        self.fc = nn.Linear(embed_dim, num_class)
        for w in (self.embedding.weight, self.fc.weight):
            w.data.uniform_(-0.5, 0.5)
        self.fc.bias.data.zero_()

    def forward(self, text, offsets):
        return self.fc(self.embedding(text, offsets))


def tutorial_loader(labels, texts, stoi, batch_size):
    unk = stoi["<unk>"]

    def collate_batch(batch):  # the tutorial's collate, per sample, from raw text
        label_list, text_list, offsets = [], [], [0]
        for _label, _text in batch:
            label_list.append(_label)
            processed_text = torch.tensor([stoi.get(t, unk) for t in reference_tokenize(_text)], dtype=torch.int64)
            text_list.append(processed_text)
            offsets.append(processed_text.size(0))
        label_list = torch.tensor(label_list, dtype=torch.int64)
        offsets = torch.tensor(offsets[:-1]).cumsum(dim=0)
        return label_list, torch.cat(text_list), offsets

    return DataLoader(list(zip(labels, texts)), batch_size=batch_size, shuffle=True, collate_fn=collate_batch)


def time_steps(batches, step, warmup: int, steps: int) -> tuple[float, int]:
    """(seconds, texts) for `steps` training steps after `warmup` steps (loader time included)."""
    it = iter(batches)
    for _ in range(warmup):
        step(next(it))
    t0, texts = time.perf_counter(), 0
    for _ in range(steps):
        texts += step(next(it))
    return time.perf_counter() - t0, texts


def cycle_epochs(make_epoch):
    """Batches of epoch 0, 1, 2, ... back to back (a timing may span an epoch boundary)."""
    epoch = 0
    while True:
        yield from make_epoch(epoch)
        epoch += 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(DEFAULT_DATA), help="AG_NEWS-format CSV (.gz ok)")
    p.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="texts, cycling the file (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=64, help="the tutorial's batch size (default %(default)s)")
    p.add_argument("--embed-dim", type=int, default=64, help="the tutorial's emsize (default %(default)s)")
    p.add_argument("--textpipe-batch-size", type=int, default=DEFAULTS.batch_size,
                   help="textpipe's batch size (default: TrainConfig's, %(default)s)")
    p.add_argument("--steps", type=int, default=300, help="timed steps per round (default %(default)s)")
    p.add_argument("--warmup", type=int, default=20, help="untimed steps first (default %(default)s)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds; the median counts")
    p.add_argument("--threads", type=int, default=1, help="torch threads for every contender, 0 = torch default "
                   "(default 1, as textpipe.train)")
    args = p.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    labels, texts = load_texts(args.data, args.rows)
    need = (args.warmup + args.steps) * args.batch_size
    if need > len(texts):
        p.error(f"--rows {args.rows} is too small for --warmup + --steps = {need // args.batch_size} batches")
    cfg = DEFAULTS

    # tutorial: vocabulary from the tokenized corpus, "<unk>" first; no encoding ahead of time
    t0 = time.perf_counter()
    tut_vocab = build_vocab_from_iterator(map(reference_tokenize, texts), specials=["<unk>"])
    stoi = tut_vocab.get_stoi()
    tut_setup = time.perf_counter() - t0
    # textpipe: vocabulary and the encoded corpus, once (what `textpipe.train` does before epoch 1)
    t0 = time.perf_counter()
    vocab = build_vocab_from_iterator(basic_english_batch(texts), specials=["<pad>", "<unk>"])
    vocab.set_default_index(1)
    corpus = EncodedCorpus.from_texts(texts, labels, vocab)
    tp_setup = time.perf_counter() - t0

    def make_tutorial():
        torch.manual_seed(0)
        model = TutorialModel(len(stoi), args.embed_dim, 4)
        opt = torch.optim.SGD(model.parameters(), lr=5.0)

        def step(batch):
            label, text, offsets = batch
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(text, offsets), label)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 0.1)
            opt.step()
            loss.item()
            return label.numel()
        return tutorial_loader(labels, texts, stoi, args.batch_size), step

    def textpipe_model():
        torch.manual_seed(0)
        return TextClassifier(ModelConfig(vocab_size=len(vocab), embed_dim=cfg.embed_dim, ngrams=cfg.ngrams,
                                          buckets=cfg.buckets, sparse=True))

    def make_fused():  # the default path of textpipe.train (bags computed once per run, like the corpus)
        model = textpipe_model()
        sampler = BucketBatchSampler(corpus.lengths, args.textpipe_batch_size, seed=0,
                                     bucket_size_multiplier=1)  # random batches, as the fused default
        flat = FlatBatches(corpus_bags(model, corpus), sampler, num_rows=model.embedding.num_embeddings)

        def step(batch):
            sgd_step(model, *batch, lr=cfg.lr)
            return batch[3].numel()
        return cycle_epochs(flat.epoch), step

    def make_autograd():
        model = textpipe_model()
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)
        loader = make_dataloader(corpus, batch_size=args.textpipe_batch_size, shuffle=True, seed=0)

        def step(batch):
            ids, _, y = batch
            logits = model(ids)
            loss = nn.functional.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss.item()
            return y.numel()

        def epoch(e):
            loader.batch_sampler.set_epoch(e)
            return iter(loader)
        return cycle_epochs(epoch), step

    contenders = {"tutorial": make_tutorial, "textpipe": make_fused, "textpipe_autograd": make_autograd}
    steps = {"tutorial": args.steps, "textpipe": max(1, args.steps * args.batch_size // args.textpipe_batch_size)}
    steps["textpipe_autograd"] = steps["textpipe"]  # about the same number of texts for every contender
    times = {name: [] for name in contenders}
    for r in range(args.repeats):
        for name, make in contenders.items():  # interleaved: machine noise hits all contenders alike
            loader, step = make()
            times[name].append(time_steps(loader, step, args.warmup, steps[name]))
    sps = {name: statistics.median(n / s for s, n in t) for name, t in times.items()}
    print(f"{args.rows} texts ({Path(args.data).name} cycled), threads {torch.get_num_threads()}, {args.repeats} "
          f"rounds | tutorial: batch {args.batch_size}, unigrams, embed {args.embed_dim}, {steps['tutorial']} steps "
          f"| textpipe: batch {args.textpipe_batch_size}, bigrams, embed {cfg.embed_dim}, {steps['textpipe']} steps")
    print(f"one-time setup: tutorial vocab {tut_setup:.2f} s | textpipe vocab + encoded corpus {tp_setup:.2f} s")
    for name, v in sps.items():
        print(f"{name:>15}: {v:10,.0f} samples/s  ({v / sps['tutorial']:.2f}x tutorial)")
    print(json.dumps({"rows": args.rows, "batch_size": args.batch_size, "embed_dim": args.embed_dim,
                      "textpipe_batch_size": args.textpipe_batch_size, "textpipe_embed_dim": cfg.embed_dim,
                      "threads": torch.get_num_threads(), "steps": steps, "repeats": args.repeats,
                      "tutorial_samples_per_s": round(sps["tutorial"]),
                      "textpipe_samples_per_s": round(sps["textpipe"]),
                      "textpipe_autograd_samples_per_s": round(sps["textpipe_autograd"]),
                      "train_samples_per_s_x": round(sps["textpipe"] / sps["tutorial"], 2),
                      "setup_s": {"tutorial": round(tut_setup, 2), "textpipe": round(tp_setup, 2)}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
