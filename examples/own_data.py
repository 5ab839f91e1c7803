"""Train on your own data, end to end: a 2-class task from a JSONL file and a 5-class task from a headered
CSV with two text columns and string labels, both made here from the AG_NEWS stand-in.

    python examples/own_data.py --data ../shared/data/ag_news --out runs/own_data

For each task it writes the files, trains with `textpipe.train.fit` (what `textpipe train` runs), then
evaluates the best checkpoint and classifies two new texts. The same runs from the command line:

    textpipe train --train runs/own_data/sports_business/train.jsonl --test .../test.jsonl --output-dir ...
    textpipe train --train .../news5/train.csv --test .../news5/test.csv \\
        --text-column headline --text-column body --label-column topic --output-dir ...
"""
from __future__ import annotations

import argparse
import csv
import gzip
import json
import re
from pathlib import Path

from textpipe.evaluate import evaluate
from textpipe.predict import predict
from textpipe.train import TrainConfig, fit

AG_NAMES = {"1": "world", "2": "sports", "3": "business", "4": "scitech"}
# the 5th class: Sci/Tech rows about science, by a keyword rule (a learnable split of one AG_NEWS class)
SCIENCE = re.compile(r"\b(space|nasa|planet|scientists?|species|study|researchers?|mars|astronomers?|climate)\b",
                     re.I)


def ag_rows(path: Path):
    """(label 1..4, title, description) of an AG_NEWS CSV(.gz)."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") if path.suffix == ".gz" else \
            open(path, encoding="utf-8", newline="") as f:
        yield from ((y, title, body) for y, title, body in csv.reader(f))


def make_two_class(src: Path, out: Path) -> None:
    """sports vs business, as JSON lines {"text": ..., "label": "sports"|"business"}."""
    out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        with open(out / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for y, title, body in ag_rows(src / f"{split}.csv.gz"):
                if AG_NAMES[y] in ("sports", "business"):
                    f.write(json.dumps({"text": f"{title} {body}", "label": AG_NAMES[y]}) + "\n")


def make_five_class(src: Path, out: Path) -> None:
    """world / sports / business / tech / science, as a CSV with a header: headline, body, topic."""
    out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        with open(out / f"{split}.csv", "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["headline", "body", "topic"])
            for y, title, body in ag_rows(src / f"{split}.csv.gz"):
                topic = AG_NAMES[y]
                if topic == "scitech":
                    topic = "science" if SCIENCE.search(f"{title} {body}") else "tech"
                w.writerow([title, body, topic])


def run(name: str, cfg: TrainConfig, samples: list[str]) -> dict:
    result = fit(cfg)
    best = result["checkpoint"]
    report = evaluate(best, cfg.test)  # the checkpoint's columns and classes
    labels = [p["label_name"] for p in predict(best, samples)]
    print(f"[{name}] classes {result['classes']} | test accuracy {report['accuracy']:.4f} "
          f"(macro F1 {report['macro_f1']:.4f}) on {report['n']} rows | predictions {labels}", flush=True)
    return {"task": name, "classes": result["classes"], "test_accuracy": report["accuracy"],
            "macro_f1": report["macro_f1"], "n": report["n"], "predictions": labels}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/ag_news", help="the AG_NEWS stand-in (train/test.csv.gz)")
    p.add_argument("--out", default="runs/own_data", help="where the files and runs go")
    p.add_argument("--epochs", type=int, default=10, help="epochs per task")
    args = p.parse_args(argv)
    src, out = Path(args.data), Path(args.out)
    make_two_class(src, out / "sports_business")
    make_five_class(src, out / "news5")
    common = dict(epochs=args.epochs, progress=False, overwrite=True)
    results = [
        run("2 classes, JSONL", TrainConfig(train=str(out / "sports_business" / "train.jsonl"),
                                            test=str(out / "sports_business" / "test.jsonl"),
                                            output_dir=str(out / "sports_business" / "run"), **common),
            ["Yankees beat the Red Sox in extra innings", "Shares of the bank fell after its earnings"]),
        run("5 classes, CSV", TrainConfig(train=str(out / "news5" / "train.csv"), test=str(out / "news5" / "test.csv"),
                                          text_columns=["headline", "body"], label_column="topic",
                                          output_dir=str(out / "news5" / "run"), **common),
            ["NASA probe finds water ice on Mars", "New chip doubles laptop battery life"]),
    ]
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
