"""AG_NEWS to padded batches: build the vocabulary and encoded corpus once, then load bucketed batches.

    python3 examples/ag_news_dataloader.py                      # uses ../shared/data/ag_news
    python3 examples/ag_news_dataloader.py --data-dir DIR --batch-size 64 --num-workers 2

Prints one batch (shapes and first rows) and the padding fraction of random vs bucketed batches.
With ``--cache FILE`` the encoded corpus is saved on the first run and memory-mapped on the next, so a
second run does not re-tokenize (the vocabulary is rebuilt deterministically from the same data).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from textpipe.corpus import EncodedCorpus
from textpipe.data.ag_news import load_ag_news
from textpipe.batches.loader import make_dataloader
from textpipe.tokenizer import basic_english_batch
from textpipe.vocab import build_vocab_from_iterator

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "ag_news"


def padding_fraction(loader) -> float:
    """Share of the ``(B, T)`` positions that are padding, over one epoch."""
    real = total = 0
    for ids, lengths, _ in loader:
        real += int(lengths.sum())
        total += ids.numel()
    return 1 - real / total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="directory with train.csv(.gz)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="encoded-corpus cache file: written if missing, else loaded (default: no cache)")
    parser.add_argument("--batch-size", type=int, default=64, help="samples per batch")
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")
    args = parser.parse_args(argv)

    rows = load_ag_news("train", root=args.data_dir)
    labels, texts = [label for label, _ in rows], [text for _, text in rows]
    vocab = build_vocab_from_iterator(basic_english_batch(texts), specials=["<pad>", "<unk>"])
    vocab.set_default_index(vocab["<unk>"])

    start = time.perf_counter()
    if args.cache is not None and args.cache.exists():
        corpus, how = EncodedCorpus.load(args.cache), f"loaded from {args.cache}"
    else:
        corpus, how = EncodedCorpus.from_texts(texts, labels, vocab), "encoded"
        if args.cache is not None:
            corpus.save(args.cache)
            how += f" and saved to {args.cache}"
    print(f"{corpus} {how} in {time.perf_counter() - start:.2f}s; vocab of {len(vocab)} tokens")

    loader = make_dataloader(corpus, batch_size=args.batch_size, seed=0, num_workers=args.num_workers)
    loader.batch_sampler.set_epoch(0)
    ids, lengths, batch_labels = next(iter(loader))
    print(f"batch: ids {tuple(ids.shape)} {ids.dtype}, lengths {tuple(lengths.shape)}, "
          f"labels {tuple(batch_labels.shape)}")
    torch.set_printoptions(linewidth=120)
    for row, length, label in list(zip(ids, lengths, batch_labels))[:3]:
        words = " ".join(vocab.lookup_tokens(row[:length].tolist()))
        print(f"  label {int(label)} length {int(length)}: {row[:12].tolist()} ... | {words[:60]}")

    random = make_dataloader(corpus, batch_size=args.batch_size, bucket=False)
    print(f"padding fraction: random batches {padding_fraction(random):.1%}, "
          f"bucketed batches {padding_fraction(loader):.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
