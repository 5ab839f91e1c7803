"""The model families side by side: test accuracy on TREC (6 coarse classes) and the AG_NEWS stand-in (median of
3 seeds, each model with its defaults), CPU training time, and training tokens/s of textpipe's pipeline
(pre-encoded corpus, length-bucketed padded batches) against a plain PyTorch loop over the same model class fed
by the torchtext tutorial's collate (per-sample tokenize + encode, random batches, `pad_sequence`).

    cd benchmarks && python models.py                          # everything (long on 2 cores: ~1 h)
    python models.py --models cnn --datasets trec --seeds 0    # one cell
    python models.py --skip-accuracy --steps 30                # throughput only
    python models.py --models transformer --skip-throughput --set unk_dropout=0.05   # a flag's figures

Data: ../../shared/data/trec (converted to CSV in a temp dir: label = the coarse class, text after the first
space) and ../../shared/data/ag_news (5,600/2,000-row stand-in: not comparable with published AG_NEWS figures).
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import gzip
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from textpipe.batches import make_dataloader  # noqa: E402
from textpipe.corpus.encoded import EncodedCorpus  # noqa: E402
from textpipe.models import MODELS, build_model, forward, model_config  # noqa: E402
from textpipe.text.tokenizer import basic_english  # noqa: E402
from textpipe.text.build import build_vocab_from_texts  # noqa: E402
from textpipe.train import TrainConfig, fit  # noqa: E402
from textpipe.train.config import settle_defaults  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parse_settings  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def trec_csv(out: Path) -> Path:
    """TREC's two files as train.csv/test.csv (label, text) in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    for src, dst in (("train_5500.label", "train.csv"), ("TREC_10.label", "test.csv")):
        with open(DATA / "trec" / src, encoding="latin-1") as f, open(out / dst, "w", newline="") as g:
            w = csv.writer(g)
            w.writerow(["label", "text"])
            for line in f:
                if line.strip():
                    label, text = line.rstrip("\n").split(" ", 1)
                    w.writerow([label.split(":")[0], text])
    return out


def ag_rows(split: str) -> tuple[list[int], list[str]]:
    with gzip.open(DATA / "ag_news" / f"{split}.csv.gz", "rt", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return [int(r[0]) - 1 for r in rows], [f"{r[1]} {r[2]}" for r in rows]


def accuracy(models, datasets, seeds, dirs, work: Path, settings: dict) -> None:
    print(f"{'model':<12}{'dataset':<9}{'test accuracy per seed':<28}{'median':>8}{'train s (median)':>18}")
    for name in models:
        for ds in datasets:
            accs, secs = [], []
            for seed in seeds:
                cfg = TrainConfig(data_dir=str(dirs[ds]), model=name, seed=seed, output_dir=str(work / f"{name}-{ds}-{seed}"),
                                  overwrite=True, progress=False, checkpoints="end", threads=1, **settings)
                with contextlib.redirect_stdout(io.StringIO()):  # fit's report of each run: only the table here
                    summary = fit(cfg)
                accs.append(summary["test"]["accuracy"])
                secs.append(summary["train_loop_s"])
            print(f"{name:<12}{ds:<9}{' '.join(f'{a:.4f}' for a in accs):<28}{statistics.median(accs):>8.4f}"
                  f"{statistics.median(secs):>18.1f}", flush=True)


def throughput(models, steps: int) -> None:
    """Training tokens/s on the AG_NEWS stand-in: textpipe's loader vs the tutorial's collate, same model."""
    labels, texts = ag_rows("train")
    vocab = build_vocab_from_texts([texts])
    corpus = EncodedCorpus.from_texts(texts, labels, vocab)
    stoi = {t: i for i, t in enumerate(vocab.get_itos())}

    def tutorial_collate(batch):  # the tutorial's collate, per sample from raw text, padded for a (B, T) model
        ys, rows = [], []
        for y, text in batch:
            ys.append(y)
            rows.append(torch.tensor([stoi.get(t, 1) for t in basic_english(text)], dtype=torch.int64))
        lengths = torch.tensor([len(r) for r in rows])
        return pad_sequence(rows, batch_first=True, padding_value=0), lengths, torch.tensor(ys)

    print(f"\n{'model':<12}{'textpipe tok/s':>16}{'tutorial tok/s':>16}{'speed-up':>10}   ({steps} steps, batch = "
          "the model's default, 1 thread)")
    torch.set_num_threads(1)
    for name in models:
        bs = settle_defaults(TrainConfig(model=name)).batch_size
        result = []
        for which in ("textpipe", "tutorial"):
            torch.manual_seed(0)
            model = build_model(model_config(name, settle_defaults(TrainConfig(model=name)), vocab_size=len(vocab),
                                             num_classes=4, pad_idx=0, sparse=False))
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
            if which == "textpipe":
                loader = make_dataloader(corpus, batch_size=bs, shuffle=True, seed=0, bucket=True, pad_idx=0)
            else:
                loader = DataLoader(list(zip(labels, texts)), batch_size=bs, shuffle=True, collate_fn=tutorial_collate)
            it, tokens = iter(loader), 0
            for i in range(steps + 3):
                if i == 3:  # warmed up
                    t0, tokens = time.perf_counter(), 0
                try:
                    ids, lengths, y = next(it)
                except StopIteration:
                    it = iter(loader)
                    ids, lengths, y = next(it)
                loss = nn.functional.cross_entropy(forward(model, ids, lengths), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                tokens += int(lengths.sum())
            result.append(tokens / (time.perf_counter() - t0))
        print(f"{name:<12}{result[0]:>16,.0f}{result[1]:>16,.0f}{result[0] / result[1]:>9.2f}x", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    families = [m for m in MODELS if m != "hf"]  # hf:NAME needs a pretrained encoder (none can be downloaded here)
    p.add_argument("--models", nargs="+", default=families, choices=families)
    p.add_argument("--datasets", nargs="+", default=["trec", "ag_news"], choices=["trec", "ag_news"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=50, help="timed training steps per model and pipeline")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="TrainConfig fields instead of the "
                   "defaults, for every model run (e.g. unk_dropout=0.05); the table then is not the defaults'")
    p.add_argument("--skip-accuracy", action="store_true")
    p.add_argument("--skip-throughput", action="store_true")
    args = p.parse_args(argv)
    settings = parse_settings(args.set)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads available; CPU only"
          + (f"; not the defaults: {settings}" if settings else ""))
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {"trec": trec_csv(Path(tmp) / "trec"), "ag_news": DATA / "ag_news"}
        if not args.skip_accuracy:
            accuracy(args.models, args.datasets, args.seeds, dirs, Path(tmp) / "runs", settings)
        if not args.skip_throughput:
            throughput(args.models, args.steps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
