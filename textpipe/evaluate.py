"""Evaluate a checkpoint on an AG_NEWS-format CSV file (or a data directory's test split).

    python -m textpipe.evaluate --checkpoint runs/ag_news/best.pt --data ../shared/data/ag_news
    python -m textpipe.evaluate --checkpoint best.pt --data test.csv.gz --json     # one JSON object
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch
from torch import nn

from textpipe.checkpoint import class_names, load_model
from textpipe.metrics import classification_report, format_report, save_confusion_png


@torch.no_grad()
def evaluate_model(model: nn.Module, loader, *, device: torch.device | str = "cpu") -> dict:
    """Mean loss, accuracy, predictions and labels of `model` over a loader of `(ids, lengths, labels)`.

    Runs in eval mode under `torch.no_grad()` and restores the model's previous mode. Losses are summed
    as Python floats.
    """
    was_training = model.training
    model.eval()
    loss_sum, preds, labels = 0.0, [], []
    for ids, _, y in loader:
        ids, y = ids.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits = model(ids)  # (B, C)
        loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").item()
        preds.append(logits.argmax(1).cpu())
        labels.append(y.cpu())
    model.train(was_training)
    preds_t = torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long)
    labels_t = torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long)
    n = labels_t.numel()
    return {"loss": loss_sum / max(n, 1), "accuracy": (preds_t == labels_t).sum().item() / max(n, 1), "n": n,
            "preds": preds_t.tolist(), "labels": labels_t.tolist()}


def read_rows(data: str | os.PathLike) -> list[tuple[int, str]]:
    """(label, text) rows from a CSV file (`.csv` or `.csv.gz`) or from a directory's test split."""
    from textpipe.data.ag_news import load_ag_news, read_ag_news_csv

    path = Path(data)
    if path.is_dir():
        return load_ag_news("test", root=path, download=False)
    if not path.is_file():
        raise FileNotFoundError(f"--data {str(path)!r} is neither a CSV file nor a directory with test.csv")
    return read_ag_news_csv(path)


def evaluate(checkpoint: str | os.PathLike, data, *, batch_size: int = 512, device: str = "cpu") -> dict:
    """Accuracy, per-class metrics and confusion matrix of a checkpoint on labelled data.

    Args:
        checkpoint: a file written by `textpipe.train`.
        data: a CSV path or directory (see `read_rows`), or a list of `(label, text)` rows.
        batch_size: texts per forward pass.
        device: where to run ("cpu", "cuda", "cuda:1", ...); the checkpoint loads onto it.

    Returns:
        `classification_report(...)` plus `loss` and `class_names`.

    Example:
        >>> evaluate("runs/ag_news/best.pt", "../shared/data/ag_news")["accuracy"]  # doctest: +SKIP
        0.87
    """
    from textpipe.corpus import EncodedCorpus
    from textpipe.loader import make_dataloader

    model, vocab, ckpt = load_model(checkpoint, map_location=device)
    rows = read_rows(data) if isinstance(data, (str, os.PathLike)) else list(data)
    corpus = EncodedCorpus.from_texts([t for _, t in rows], [y for y, _ in rows], vocab)
    # subtle: num_replicas=1 so that, inside a torchrun job, this process still sees every row
    loader = make_dataloader(corpus, batch_size=batch_size, shuffle=False, num_replicas=1, rank=0,
                             pad_idx=model.config.pad_idx)
    result = evaluate_model(model, loader, device=device)
    report = classification_report(result["preds"], result["labels"], model.config.num_classes)
    names = class_names(ckpt)
    return {**report, "loss": result["loss"], "class_names": list(names)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m textpipe.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="checkpoint file written by textpipe.train")
    parser.add_argument("--data", required=True, help="AG_NEWS-format CSV (.csv/.csv.gz), or a directory "
                        "holding test.csv[.gz]")
    parser.add_argument("--batch-size", type=int, default=512, help="texts per forward pass")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--confusion-png", default=None, help="also draw the confusion matrix to this PNG")
    args = parser.parse_args(argv)
    try:
        report = evaluate(args.checkpoint, args.data, batch_size=args.batch_size, device=args.device)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.confusion_png and not save_confusion_png(report["confusion"], report["class_names"],
                                                     args.confusion_png):
        print("note: matplotlib is not installed, no PNG drawn (pip install matplotlib)", file=sys.stderr)
    print(json.dumps(report) if args.json else format_report(report, report["class_names"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
