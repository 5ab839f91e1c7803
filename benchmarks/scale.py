"""Scale benchmark: a CSV larger than memory budgets allow, from the file to the batch, vs Hugging Face datasets.

    python benchmarks/scale.py --rows 2000000            # default; files go to a temp dir, deleted after
    python benchmarks/scale.py --rows 8000000 --keep     # keep the files (prints where)

The corpus is the AG_NEWS training stand-in (5,600 real rows) cycled to ``--rows`` rows, every 10th row
given a new token so the vocabulary grows as real corpora do. Each stage runs in its own subprocess and
reports wall time and peak memory: ``peak_rss`` is the kernel's high-water mark (VmHWM: includes pages of
memory-mapped files, which are page cache the kernel can drop), ``peak_anon`` is the highest anonymous
(heap) RSS seen by a 5 ms sampler, and ``base_anon`` that of the process after imports and the vocabulary,
so ``peak_anon - base_anon`` is what a stage adds beyond the vocabulary. Stages:

    textpipe: vocab (streamed counts) | encode+write (CorpusWriter) | open+epoch (mmap, windowed sampler,
              pad_collate) | epoch with 2 workers | train CLI 200 steps (cold cache, then warm)
    datasets: load_dataset("csv") + map(batched=True, same tokenizer and ids) + save_to_disk | open+epoch

The last line is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from itertools import cycle
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ag_news" / "train.csv.gz"
GiB = 1 << 30


# -- measuring ---------------------------------------------------------------------------------------------
def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


class _AnonPeak:
    """Samples RssAnon every 5 ms in a thread: the heap part of the RSS, without mapped file pages."""

    def __init__(self) -> None:
        self.peak, self._stop, self._lock = _status_kb("RssAnon"), threading.Event(), threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            with self._lock:
                self.peak = max(self.peak, _status_kb("RssAnon"))

    def reset(self) -> int:
        """Forget the peak so far (the stage's set-up, e.g. loading the vocabulary); returns the RSS now."""
        with self._lock:
            self.peak = _status_kb("RssAnon")
            return self.peak

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return max(self.peak, _status_kb("RssAnon"))


# -- the synthetic corpus --------------------------------------------------------------------------------------
def make_csv(path: Path, rows: int, data: Path = DEFAULT_DATA) -> None:
    raw = gzip.decompress(data.read_bytes()) if data.suffix == ".gz" else data.read_bytes()
    base = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\n")
        for i, (label, title, description) in zip(range(rows), cycle(base)):
            writer.writerow([label, title, f"{description} zq{i:x}" if i % 10 == 0 else description])


# -- stages (each in its own process) ---------------------------------------------------------------------------
def _chunks(work: Path):
    from textpipe.corpus.cache import iter_chunks
    from textpipe.data.labels import LabelVocab
    return iter_chunks(work / "train.csv", label_vocab=LabelVocab([1, 2, 3, 4]))


def stage_vocab(work: Path, args) -> dict:
    from textpipe.vocab import build_vocab_from_texts
    vocab = build_vocab_from_texts((t for _, t in _chunks(work)), specials=("<pad>", "<unk>"), num_workers=2)
    vocab.set_default_index(1)
    vocab.save(work / "vocab.txt")
    return {"vocab_size": len(vocab)}


def _vocab(work: Path):
    from textpipe.vocab import Vocab
    return Vocab.load(work / "vocab.txt")


def stage_write(work: Path, args) -> dict:
    import textpipe.corpus.cache  # noqa: F401  (the reader's imports: not what the write adds)
    from textpipe.corpus.writer import CorpusWriter
    vocab = _vocab(work)
    base = _base()
    for old in work.glob("train.corpus*"):
        old.unlink()
    with CorpusWriter(work / "train.corpus", vocab_size=len(vocab)) as writer:
        for labels, texts in _chunks(work):
            writer.append_texts(texts, labels, vocab, num_workers=2)
    size = sum(p.stat().st_size for p in work.glob("train.corpus*"))
    return {"base_anon": base, "corpus_bytes": size, "csv_bytes": (work / "train.csv").stat().st_size}


def _epoch(loader) -> tuple[int, int]:
    batches = tokens = 0
    loader.batch_sampler.set_epoch(0)
    for ids, lengths, _ in loader:
        batches += 1
        tokens += int(lengths.sum())
    return batches, tokens


def stage_epoch(work: Path, args, num_workers: int = 0) -> dict:
    from textpipe.corpus import EncodedCorpus
    from textpipe.batches.loader import make_dataloader
    vocab = _vocab(work)  # held, as in training: the figure of interest is what the corpus adds beyond it
    base = _base()
    path = work / "train.corpus"
    if not path.exists():  # stages run without "write": the training CLI's cached corpus
        path = next((work / "cache").glob("corpus-*/fit.corpus"))
    t = time.perf_counter()
    corpus = EncodedCorpus.load(path)
    open_s = time.perf_counter() - t
    loader = make_dataloader(corpus, batch_size=args.batch_size, seed=0, window=args.window, num_workers=num_workers)
    batches, tokens = _epoch(loader)
    del vocab
    return {"base_anon": base, "open_s": round(open_s, 3), "batches": batches, "tokens": tokens}


def stage_epoch_workers(work: Path, args) -> dict:
    return stage_epoch(work, args, num_workers=2)


def stage_hf_write(work: Path, args) -> dict:
    import numpy as np
    from datasets import disable_progress_bars, load_dataset
    disable_progress_bars()
    vocab = _vocab(work)
    base = _base()
    for old in ("hf_cache", "hf_corpus"):  # no reuse of an earlier run's Arrow cache
        shutil.rmtree(work / old, ignore_errors=True)

    def encode(batch):
        texts = [f"{t} {d}" for t, d in zip(batch["title"], batch["description"])]
        ids, offsets = vocab.encode_flat(texts, num_workers=2)
        return {"ids": np.split(ids, offsets[1:-1]), "label": [y - 1 for y in batch["label"]]}

    ds = load_dataset("csv", data_files=str(work / "train.csv"), column_names=["label", "title", "description"],
                      split="train", cache_dir=str(work / "hf_cache"))
    ds = ds.map(encode, batched=True, remove_columns=["title", "description"])
    ds.save_to_disk(str(work / "hf_corpus"))
    size = sum(p.stat().st_size for p in (work / "hf_corpus").rglob("*") if p.is_file())
    return {"base_anon": base, "corpus_bytes": size}


def stage_hf_epoch(work: Path, args) -> dict:
    import numpy as np
    import torch
    from datasets import load_from_disk
    from textpipe.batches.collate import pad_collate
    vocab = _vocab(work)  # noqa: F841  (held, as above)
    base = _base()
    t = time.perf_counter()
    ds = load_from_disk(str(work / "hf_corpus")).with_format("numpy")
    open_s = time.perf_counter() - t
    order = np.random.default_rng(0).permutation(len(ds))
    batches = tokens = 0
    for i in range(0, len(ds), args.batch_size):
        rows = ds[order[i:i + args.batch_size]]
        ids, lengths, _ = pad_collate([(torch.from_numpy(x), int(y)) for x, y in zip(rows["ids"], rows["label"])])
        batches += 1
        tokens += int(lengths.sum())
    return {"base_anon": base, "open_s": round(open_s, 3), "batches": batches, "tokens": tokens}


def _cli(work: Path, args, tag: str) -> dict:
    out = work / f"run_{tag}"
    cmd = [sys.executable, "-m", "textpipe.train", "--data-dir", str(work), "--output-dir", str(out),
           "--max-steps", "200", "--no-progress", "--cache-dir", str(work / "cache"), "--overwrite"]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if proc.returncode != 0:
        raise RuntimeError(f"train CLI failed: {proc.stderr[-2000:]}")
    import resource
    return {"cli_s": round(time.perf_counter() - t, 3), "peak_anon": None,  # RssAnon of the CLI is not sampled
            "peak_rss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}


def stage_cli_cold(work: Path, args) -> dict:
    shutil.rmtree(work / "cache", ignore_errors=True)
    return _cli(work, args, "cold")


def stage_cli_warm(work: Path, args) -> dict:
    return _cli(work, args, "warm")


STAGES = {"vocab": stage_vocab, "write": stage_write, "epoch": stage_epoch, "epoch_workers2": stage_epoch_workers,
          "hf_write": stage_hf_write, "hf_epoch": stage_hf_epoch, "cli_cold": stage_cli_cold,
          "cli_warm": stage_cli_warm}


PEAK: _AnonPeak | None = None


def _base() -> int:
    """Anonymous RSS after a stage's set-up; the peak is measured from here on."""
    return PEAK.reset() if PEAK is not None else _status_kb("RssAnon")


def run_stage(name: str, work: Path, args) -> None:
    """Child process: run one stage and print its JSON line."""
    global PEAK
    peak = PEAK = _AnonPeak()
    t = time.perf_counter()
    result = STAGES[name](work, args)
    seconds = time.perf_counter() - t
    result.setdefault("peak_rss", _status_kb("VmHWM"))
    print(json.dumps({"stage": name, "seconds": round(seconds, 3), "peak_anon": peak.stop(), **result}))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=2_000_000, help="rows of the synthetic CSV (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size of the epoch stages (default %(default)s)")
    p.add_argument("--window", type=int, default=1 << 20, help="sampler window in rows (default %(default)s)")
    p.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset of: " + ", ".join(STAGES))
    p.add_argument("--workdir", help="where the files go (default: a new temp dir, deleted at the end)")
    p.add_argument("--keep", action="store_true", help="keep the generated files")
    p.add_argument("--stage", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.stage:
        run_stage(args.stage, Path(args.workdir), args)
        return 0
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="textpipe_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    results = {"rows": args.rows, "batch_size": args.batch_size, "window": args.window,
               "loadavg": open("/proc/loadavg").read().split()[:3], "stages": {}}
    try:
        if not (work / "train.csv").exists():
            t = time.perf_counter()
            make_csv(work / "train.csv", args.rows)
            print(f"made {work / 'train.csv'}: {args.rows:,} rows, "
                  f"{(work / 'train.csv').stat().st_size / GiB:.2f} GiB in {time.perf_counter() - t:.1f} s", flush=True)
        print(f"{'stage':<16}{'seconds':>9}{'peak RSS':>11}{'peak anon':>11}{'anon - base':>13}  notes", flush=True)
        for name in args.stages.split(","):
            cmd = [sys.executable, __file__, "--stage", name, "--workdir", str(work), "--rows", str(args.rows),
                   "--batch-size", str(args.batch_size), "--window", str(args.window)]
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
            if proc.returncode != 0:
                print(f"{name:<16} FAILED: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}",
                      flush=True)
                results["stages"][name] = {"error": proc.stderr[-1500:]}
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            results["stages"][name] = r
            anon = r.get("peak_anon")
            extra = anon - r["base_anon"] if anon is not None and "base_anon" in r else None
            notes = {k: v for k, v in r.items() if k in ("vocab_size", "corpus_bytes", "batches", "open_s", "cli_s")}
            if "corpus_bytes" in r and "csv_bytes" in r:
                notes["corpus/csv"] = round(r["corpus_bytes"] / r["csv_bytes"], 3)
            anon_s = f"{anon / GiB:>10.3f}G" if anon is not None else f"{'-':>11}"
            print(f"{name:<16}{r['seconds']:>9.2f}{r['peak_rss'] / GiB:>10.3f}G{anon_s}"
                  f"{'' if extra is None else f'{extra / GiB:>12.3f}G'}  {notes}", flush=True)
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
        elif args.keep:
            print(f"files kept in {work}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
