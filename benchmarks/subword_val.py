"""BPE (`textpipe tokenizer train --kind bpe`) against basic_english, for `--model bag` and `--model cnn`, on the
AG_NEWS stand-in and TREC (6 coarse classes): the README table of "Subword tokenizers for every model".

    cd benchmarks && python subword_val.py          # ~20 min on 2 shared cores, one training at a time

1. Validation: a seeded 10% carve-out of each training file (seed 0, `prepare_data`'s permutation) is the
   validation set; the BPE tokenizers (1,000 / 4,000 / 16,000 tokens) are trained on the other 90% only, each
   model trains on those 90% with each tokenizer, and the size with the best validation accuracy is chosen.
2. Test: a BPE tokenizer of the chosen size is trained on the whole training file, and each model trains on the
   whole training file (basic_english and BPE) and is tested once on the test file (never used to choose).
Every run: `python -m textpipe.train --model M --threads 1 --no-progress` with the model's defaults, seed 0.
"""
from __future__ import annotations

import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from models import DATA, ag_rows, trec_csv  # noqa: E402

SIZES = (1000, 4000, 16000)
MODELS = ("bag", "cnn")


def write(path: Path, labels, texts) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["label", "text"])
        w.writerows(zip(labels, texts))
    return path


def read(path: Path):
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["label"] for r in rows], [r["text"] for r in rows]


def run(*args) -> dict:
    out = Path(tempfile.mkdtemp(prefix="run-", dir=WORK))
    cmd = [sys.executable, "-m", "textpipe.train", *map(str, args), "--threads", "1", "--no-progress",
           "--output-dir", str(out), "--checkpoints", "none"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                                                                      "OMP_NUM_THREADS": "1", "HOME": str(WORK)})
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return json.loads((out / "summary.json").read_text())


def tokenizer(train_csv: Path, size: int, out: Path) -> Path:
    subprocess.run([sys.executable, "-m", "textpipe", "tokenizer", "train", "--kind", "bpe", "--vocab-size",
                    str(size), str(train_csv), "--out", str(out)], check=True, capture_output=True,
                   env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    return out


def main() -> None:
    results = {}
    trec = trec_csv(WORK / "trec")
    ag = WORK / "ag_news"
    ag.mkdir()
    for split in ("train", "test"):
        y, x = ag_rows(split)
        write(ag / f"{split}.csv", [v + 1 for v in y], x)
    for name, d in (("ag_news", ag), ("trec", trec)):
        labels, texts = read(d / "train.csv")
        n_val = int(round(len(texts) * 0.1))
        val = set(np.random.default_rng(0).permutation(len(texts))[:n_val].tolist())
        fit = write(d / "fit.csv", *zip(*[(lab, t) for i, (lab, t) in enumerate(zip(labels, texts)) if i not in val]))
        vfile = write(d / "val.csv", *zip(*[(lab, t) for i, (lab, t) in enumerate(zip(labels, texts)) if i in val]))
        toks = {"basic_english": "basic_english",
                **{f"bpe{n}": f"hf:{tokenizer(fit, n, d / f'bpe{n}-fit.json')}" for n in SIZES}}
        for model in MODELS:
            cell = results.setdefault(f"{name}/{model}", {"val": {}, "test": {}})
            for key, tok in toks.items():
                s = run("--train", fit, "--val", vfile, "--model", model, "--tokenizer", tok)
                cell["val"][key] = s["best_val_accuracy"]
                print(name, model, key, "val", cell["val"][key], flush=True)
            best = max(SIZES, key=lambda n: cell["val"][f"bpe{n}"])
            cell["chosen"] = best
            full = tokenizer(d / "train.csv", best, d / f"bpe{best}.json")
            for key, tok in (("basic_english", "basic_english"), (f"bpe{best}", f"hf:{full}")):
                s = run("--train", d / "train.csv", "--test", d / "test.csv", "--model", model, "--tokenizer", tok)
                cell["test"][key] = s["test"]["accuracy"]
                print(name, model, key, "test", cell["test"][key], flush=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    WORK = Path(tempfile.mkdtemp(prefix="subword-val-"))
    main()
