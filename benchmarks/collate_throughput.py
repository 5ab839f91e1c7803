"""Collate throughput: the torchtext tutorial's per-sample collate vs textpipe, at B=64, in one run.

    python3 benchmarks/collate_throughput.py                         # AG_NEWS stand-in cycled to 120,000
    python3 benchmarks/collate_throughput.py --data FILE --rows N --repeats 5

Cases (samples/s, median of --repeats passes over all batches, after a warm-up; every round runs each
case once, and ratios are the median of per-round ratios, so both sides of a ratio saw the same load): (a) tutorial collate from raw text, (b) the same loop from pre-encoded
ids, (c) textpipe TextCollate from text, (d) textpipe's corpus path (__getitems__ + collate), random and
bucketed batches, (e) a whole DataLoader epoch, tutorial vs textpipe, num_workers 0 and 2: the tutorial's
DataLoader(shuffle=True, collate_fn=collate_batch) from raw text (given persistent workers, as textpipe
has) vs ``make_dataloader`` defaults (bucketed, padded) on the corpus encoded once (its one-time cost is
printed). The last line is one JSON object with the headline figures; ``dataloader_epoch_x`` is the
smaller of the per-num_workers ratios.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA, DEFAULT_ROWS, load_texts, reference_tokenize  # noqa: E402

from textpipe.batches.collate import offsets_collate, pad_collate  # noqa: E402
from textpipe.batches.text_collate import TextCollate  # noqa: E402
from textpipe.corpus import EncodedCorpus  # noqa: E402
from textpipe.batches.loader import make_dataloader  # noqa: E402
from textpipe.batches.sampler import BucketBatchSampler  # noqa: E402
from textpipe.tokenizer import basic_english_batch  # noqa: E402
from textpipe.vocab import build_vocab_from_iterator  # noqa: E402


class Tutorial:
    """The text-classification tutorial's collate_batch (per-sample loop), minus its ``.to(device)``."""

    def __init__(self, stoi: dict[str, int], *, from_text: bool, form: str, unk: int = 1) -> None:
        self.stoi, self.from_text, self.form, self.unk = stoi, from_text, form, unk

    def text_pipeline(self, x):
        if not self.from_text:
            return x  # (b): the ids are already encoded
        return [self.stoi.get(token, self.unk) for token in reference_tokenize(x)]

    def __call__(self, batch):
        label_list, text_list, offsets = [], [], [0]
        for _label, _text in batch:
            label_list.append(int(_label))
            processed_text = torch.tensor(self.text_pipeline(_text), dtype=torch.int64)
            text_list.append(processed_text)
            offsets.append(processed_text.size(0))
        label_list = torch.tensor(label_list, dtype=torch.int64)
        if self.form == "pad":
            lengths = torch.tensor(offsets[1:], dtype=torch.int64)
            return pad_sequence(text_list, batch_first=True, padding_value=0), lengths, label_list
        offsets = torch.tensor(offsets[:-1]).cumsum(dim=0)
        return torch.cat(text_list), offsets, label_list


def padding(lengths: np.ndarray, batches) -> float:
    real = sum(int(lengths[b].sum()) for b in batches)
    return 1 - real / sum(len(b) * int(lengths[b].max()) for b in batches)


def time_cases(cases: dict, repeats: int, warmup: int) -> dict[str, list[float]]:
    """Seconds of each pass, per case: ``repeats`` rounds, each running every case once in turn.

    Interleaving keeps the cases of one round close in time, so a ratio taken per round (see
    ``paired_ratio``) compares passes that saw the same load on a shared machine.
    """
    for fn, inputs in cases.values():
        for item in inputs[:warmup]:
            fn(item)
    times = {name: [] for name in cases}
    for _ in range(repeats):
        for name, (fn, inputs) in cases.items():
            start = time.perf_counter()
            for item in inputs:
                fn(item)
            times[name].append(time.perf_counter() - start)
    return times


def paired_ratio(times: dict[str, list[float]], slow: str, fast: str) -> float:
    """Median over rounds of ``slow / fast`` pass time: how many times faster ``fast`` is."""
    return statistics.median(s / f for s, f in zip(times[slow], times[fast]))


def epoch_times(loaders: dict, repeats: int) -> dict[str, list[float]]:
    """Seconds per full DataLoader epoch: one warm-up epoch each (starts workers), then rounds of one
    epoch per loader in turn."""
    times = {name: [] for name in loaders}
    for epoch in range(repeats + 1):
        for name, loader in loaders.items():
            if isinstance(loader.batch_sampler, BucketBatchSampler):
                loader.batch_sampler.set_epoch(epoch)
            start = time.perf_counter()
            for _ in loader:
                pass
            if epoch:
                times[name].append(time.perf_counter() - start)
    return times


def real_torchtext(python: str, args, rows, vocab, corpus) -> dict:
    """The tutorial's collate and DataLoader epoch through torchtext 0.18 itself (its own venv), next to
    textpipe's TextCollate (offsets, from text) and make_dataloader epoch (num_workers=0) timed here again."""
    from _torchtext_peer import _timed, run_peer

    B = args.batch_size
    peer = run_peer(python, "collate", data=args.data, rows=len(rows), batch_size=B, repeats=args.repeats)
    batches = [rows[i:i + B] for i in range(0, len(rows), B)]
    text_collate, loader = TextCollate(vocab, form="offsets"), make_dataloader(corpus, batch_size=B)
    ours = {"collate_from_text": _timed(lambda: [text_collate(b) for b in batches], args.repeats),
            "dataloader_epoch": _timed(lambda: sum(1 for _ in loader), args.repeats)}
    print(f"real torchtext {peer['torchtext']} (torch {peer['torch']}, {python}) vs textpipe:")
    out = {}
    for key, what in (("collate_from_text", "tutorial collate (torchtext tokenizer + vocab) vs TextCollate"),
                      ("dataloader_epoch", "tutorial DataLoader epoch vs make_dataloader epoch, 0 workers")):
        (tw, tc), (ow, oc) = peer[key], ours[key]
        out[f"torchtext_{key}_x"], out[f"torchtext_{key}_cpu_x"] = round(tw / ow, 2), round(tc / oc, 2)
        print(f"  {what:<64s} {tw:7.3f} s vs {ow:7.3f} s: {tw / ow:5.1f}x (CPU {tc / oc:5.1f}x)")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="collate throughput, tutorial vs textpipe")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="AG_NEWS-format CSV(.gz)")
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="texts, the file cycled to this many")
    parser.add_argument("--batch-size", type=int, default=64, help="samples per batch")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per case (median), >= 1")
    parser.add_argument("--workers", type=int, nargs="*", default=[0, 2], help="DataLoader num_workers to try")
    parser.add_argument("--torchtext-python", metavar="PYTHON", help="also run the tutorial through the real "
                        "torchtext 0.18 in this interpreter, e.g. /work/venvs/torchtext/bin/python")
    args = parser.parse_args(argv)
    B = args.batch_size

    labels, texts = load_texts(args.data, args.rows)
    print(f"data: {args.data} cycled to {len(texts):,} rows; B={B}; median of {args.repeats}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    vocab = build_vocab_from_iterator(basic_english_batch(texts), specials=["<pad>", "<unk>"])
    vocab.set_default_index(1)
    start = time.perf_counter()
    corpus = EncodedCorpus.from_texts(texts, labels, vocab)
    print(f"one-time: encode {len(texts):,} texts into {corpus} in {time.perf_counter() - start:.2f}s "
          f"(vocab {len(vocab):,})")

    stoi = vocab.get_stoi()
    rows = list(zip(labels, texts))
    flat, bounds = corpus.ids.tolist(), corpus.offsets.tolist()
    encoded = [(label, flat[a:b]) for label, a, b in zip(labels, bounds, bounds[1:])]
    perm = np.random.default_rng(0).permutation(len(rows))
    random_batches = [perm[i:i + B].tolist() for i in range(0, len(perm), B)]
    bucketed_batches = list(BucketBatchSampler(corpus.lengths, B, seed=0))
    raw_in = [[rows[i] for i in b] for b in random_batches]
    ids_in = [[encoded[i] for i in b] for b in random_batches]

    def fast(collate):
        return lambda indices: collate(corpus.__getitems__(indices))

    cases = {  # paired cases sit next to each other, so each ratio compares passes close in time
        "(a) tutorial, text, pad": (Tutorial(stoi, from_text=True, form="pad"), raw_in),
        "(c) textpipe TextCollate, text, pad": (TextCollate(vocab, form="pad"), raw_in),
        "(a) tutorial, text, offsets": (Tutorial(stoi, from_text=True, form="offsets"), raw_in),
        "(c) textpipe TextCollate, text, offsets": (TextCollate(vocab, form="offsets"), raw_in),
        "(b) tutorial loop, ids, pad": (Tutorial(stoi, from_text=False, form="pad"), ids_in),
        "(d) textpipe corpus, random, pad": (fast(pad_collate), random_batches),
        "(d) textpipe corpus, bucketed, pad": (fast(pad_collate), bucketed_batches),
        "(b) tutorial loop, ids, offsets": (Tutorial(stoi, from_text=False, form="offsets"), ids_in),
        "(d) textpipe corpus, random, offsets": (fast(offsets_collate), random_batches),
    }
    times = time_cases(cases, args.repeats, warmup=20)
    rate = {name: len(rows) / statistics.median(t) for name, t in times.items()}
    for name in sorted(rate):
        print(f"{name:42s} {rate[name]:>12,.0f} samples/s")

    epoch, best = {}, {"tutorial": float("inf"), "textpipe": float("inf")}
    for workers in args.workers:
        extra = {"persistent_workers": True} if workers else {}  # the same worker reuse for both
        tutorial = DataLoader(rows, batch_size=B, shuffle=True, collate_fn=Tutorial(stoi, from_text=True, form="offsets"),
                              num_workers=workers, **extra)
        ours = make_dataloader(corpus, batch_size=B, num_workers=workers)
        epoch_t = epoch_times({"tutorial": tutorial, "textpipe": ours}, args.repeats)
        t_tut, t_ours = statistics.median(epoch_t["tutorial"]), statistics.median(epoch_t["textpipe"])
        epoch[workers] = paired_ratio(epoch_t, "tutorial", "textpipe")
        best = {"tutorial": min(best["tutorial"], t_tut), "textpipe": min(best["textpipe"], t_ours)}
        print(f"(e) DataLoader epoch, num_workers={workers}: tutorial {t_tut:.3f}s "
              f"({len(rows) / t_tut:,.0f}/s), textpipe {t_ours:.3f}s ({len(rows) / t_ours:,.0f}/s): "
              f"{epoch[workers]:.1f}x")
        del tutorial, ours

    pad_random, pad_bucketed = padding(corpus.lengths, random_batches), padding(corpus.lengths, bucketed_batches)
    pairs = {  # headline name: (baseline case, textpipe case)
        "pad_fast_vs_loop_ids_x": ("(b) tutorial loop, ids, pad", "(d) textpipe corpus, random, pad"),
        "pad_fast_bucketed_vs_loop_ids_x": ("(b) tutorial loop, ids, pad", "(d) textpipe corpus, bucketed, pad"),
        "offsets_fast_vs_loop_ids_x": ("(b) tutorial loop, ids, offsets", "(d) textpipe corpus, random, offsets"),
        "from_text_vs_tutorial_x": ("(a) tutorial, text, pad", "(c) textpipe TextCollate, text, pad"),
        "from_text_offsets_vs_tutorial_x": ("(a) tutorial, text, offsets", "(c) textpipe TextCollate, text, offsets"),
    }
    ratios = {name: paired_ratio(times, slow, fast) for name, (slow, fast) in pairs.items()}
    for name, value in ratios.items():
        print(f"{name:42s} {value:>8.1f}x  (median of per-round ratios)")
    if epoch:
        print(f"DataLoader epoch, each side at its best num_workers: {best['tutorial'] / best['textpipe']:.1f}x")
    print(f"padding fraction: random batches {pad_random:.1%}, bucketed batches {pad_bucketed:.1%}")
    headline = {"rows": len(rows), "batch_size": B, **{k: round(v, 2) for k, v in ratios.items()},
                "dataloader_epoch_x": round(min(epoch.values()), 2) if epoch else None,
                **{f"dataloader_epoch_x_workers{w}": round(x, 2) for w, x in epoch.items()},
                "dataloader_epoch_best_x": round(best["tutorial"] / best["textpipe"], 2) if epoch else None,
                "padding_random": round(pad_random, 4), "padding_bucketed": round(pad_bucketed, 4),
                "samples_per_s": {name: round(rate[name]) for name in sorted(rate)}}
    if args.torchtext_python:
        headline.update(real_torchtext(args.torchtext_python, args, rows, vocab, corpus))
    print(json.dumps(headline))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
