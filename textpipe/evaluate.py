"""Evaluate a checkpoint on labelled data: any table `textpipe train` reads, with the checkpoint's columns,
classes and tokenizer unless told otherwise.

    textpipe evaluate --checkpoint runs/ag_news/best.pt --data-dir ../shared/data/ag_news
    textpipe evaluate --checkpoint best.pt --test reviews_test.csv --json       # one JSON object
"""
from __future__ import annotations

import argparse
import os
import sys

import torch
from torch import nn

from textpipe.checkpoint.format import data_info, load_model
from textpipe.core.distributed import pick_device
from textpipe.core.cli_args import Formatter, Parser, add_column_flags, run_cli
from textpipe.data.formats import DESCRIPTION
from textpipe.metrics import classification_report
from textpipe.models import forward


def load_for_inference(checkpoint, *, device: torch.device, tokenizer: str | None = None):
    """`(model, vocab, ckpt, data_info)` of a checkpoint path or an already loaded `(model, vocab, ckpt)`;
    `tokenizer` overrides the one the vocabulary was built with (`load_model` gives the checkpoint's)."""
    from textpipe.text.vocabulary import Vocab

    model, vocab, ckpt = checkpoint if isinstance(checkpoint, tuple) else load_model(checkpoint, map_location=device)
    if tokenizer is not None:
        vocab = Vocab(vocab.get_itos(), default_index=vocab.get_default_index(), tokenizer=tokenizer)
    return model, vocab, ckpt, data_info(ckpt)


@torch.no_grad()
def evaluate_model(model: nn.Module, loader, *, device: torch.device | str = "cpu") -> dict:
    """Mean loss, accuracy, predictions and labels of `model` over a loader of `(ids, lengths, labels)`.

    Runs in eval mode under `torch.no_grad()` and restores the model's previous mode. Losses are summed
    as Python floats.
    """
    was_training = model.training
    model.eval()
    loss_sum, preds, labels = 0.0, [], []
    for ids, lengths, y in loader:
        ids, lengths, y = (t.to(device, non_blocking=True) for t in (ids, lengths, y))
        logits = forward(model, ids, lengths)  # (B, C)
        loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").item()
        preds.append(logits.argmax(1).cpu())
        labels.append(y.cpu())
    model.train(was_training)
    preds_t = torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long)
    labels_t = torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long)
    n = labels_t.numel()
    return {"loss": loss_sum / max(n, 1), "accuracy": (preds_t == labels_t).sum().item() / max(n, 1), "n": n,
            "preds": preds_t.tolist(), "labels": labels_t.tolist()}


def read_labelled(data, ckpt: dict, *, text_columns=None, label_column=None, split: str | None = None,
                  on_bad_rows: str = "raise") -> list[tuple[int, str]]:
    """(class id, text) rows of a file, directory (its test file) or datasets object, labelled as in training.

    Raises:
        ValueError: a label the checkpoint was not trained on (naming it and its row), a missing column, ...
    """
    from textpipe.data.labels import LabelVocab
    from textpipe.data.sources import Source, read_source, resolve_sources
    from textpipe.data.table import inspect_table

    info = data_info(ckpt)
    columns = {"text_columns": info["text_columns"] if text_columns is None else text_columns,
               "label_column": info["label_column"] if label_column is None else label_column}
    if isinstance(data, (str, os.PathLike)) and os.path.isdir(data) and not _is_datasets_dir(data):
        source = resolve_sources(data_dir=data, require_train=False, only="test", **columns)["test"]
        if source is None:
            raise FileNotFoundError(f"{data} holds no test file (test{DESCRIPTION.replace(' ', ', ')}); give the "
                                    "file itself")
    else:
        if isinstance(data, (str, os.PathLike)) and not os.path.exists(data):
            raise FileNotFoundError(f"{data}: no such file or directory")
        if split is None and _is_dataset_dict(data):
            split = "test"
        source = Source(data, split, inspect_table(data, split=split, **columns), False)
    raw, texts = read_source(source, split="test", on_bad_rows=on_bad_rows)
    labels = LabelVocab(info["label_values"], names=info["class_names"])
    return list(zip(labels.encode(raw, source=source.describe()).tolist(), texts))


def _is_datasets_dir(path) -> bool:
    return any(os.path.isfile(os.path.join(path, f)) for f in ("dataset_info.json", "dataset_dict.json"))


def _is_dataset_dict(data) -> bool:
    if isinstance(data, (str, os.PathLike)):
        return os.path.isfile(os.path.join(data, "dataset_dict.json"))
    return type(data).__name__ == "DatasetDict"


def evaluate(checkpoint, data, *, batch_size: int = 512, device: str | torch.device = "cpu", text_columns=None,
             label_column=None, split: str | None = None, tokenizer: str | None = None,
             on_bad_rows: str = "raise") -> dict:
    """Accuracy, per-class metrics and confusion matrix of a checkpoint on labelled data.

    Args:
        checkpoint: a file written by `textpipe train`, or the `(model, vocab, ckpt)` that `load_model` returns.
        data: a table file, a directory (its test file), a datasets object (a DatasetDict: its test split, or
            `split`), or a list of `(class id, text)` rows.
        batch_size: texts per forward pass.
        device: where to run ("cpu", "cuda", "cuda:1", "auto", ...); the checkpoint loads onto it.
        text_columns, label_column, tokenizer: override what the checkpoint recorded from training.

    Returns:
        `classification_report(...)` plus `loss` and `class_names`.

    Example:
        >>> evaluate("runs/ag_news/best.pt", "../shared/data/ag_news")["accuracy"]  # doctest: +SKIP
        0.87
    """
    from textpipe.corpus.encoded import EncodedCorpus
    from textpipe.batches.loader import make_dataloader

    device = pick_device(device) if isinstance(device, str) else device
    model, vocab, ckpt, info = load_for_inference(checkpoint, device=device, tokenizer=tokenizer)
    if isinstance(data, list):
        rows = data
    else:
        rows = read_labelled(data, ckpt, text_columns=text_columns, label_column=label_column, split=split,
                             on_bad_rows=on_bad_rows)
    corpus = EncodedCorpus.from_texts([t for _, t in rows], [y for y, _ in rows], vocab)
    # subtle: num_replicas=1 so that, inside a torchrun job, this process still sees every row
    loader = make_dataloader(corpus, batch_size=batch_size, shuffle=False, num_replicas=1, rank=0,
                             pad_idx=model.config.pad_idx)
    result = evaluate_model(model.to(device), loader, device=device)
    report = classification_report(result["preds"], result["labels"], model.config.num_classes)
    return {**report, "loss": result["loss"], "class_names": list(info["class_names"])}


def parser(prog: str = "textpipe evaluate") -> argparse.ArgumentParser:
    p = Parser(prog=prog, description=__doc__, formatter_class=Formatter)
    p.add_argument("--checkpoint", required=True, help="checkpoint file written by textpipe train")
    g = p.add_argument_group("data", "columns and tokenizer default to the checkpoint's")
    g.add_argument("--data", "--test", dest="data", metavar="PATH", default=None,
                   help="labelled data: a table file, a datasets directory, or a directory holding test.*")
    g.add_argument("--data-dir", default=None, help="directory whose test.* file to evaluate on")
    g.add_argument("--split", default=None, help="split of a DatasetDict (None: test)")
    add_column_flags(g)
    g.add_argument("--tokenizer", default=None, help="override the checkpoint's tokenizer (None: the checkpoint's)")
    g.add_argument("--on-bad-rows", choices=["raise", "skip"], default="raise", help="malformed rows")
    g = p.add_argument_group("devices")
    g.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    g.add_argument("--batch-size", type=int, default=512, help="texts per forward pass")
    g = p.add_argument_group("output")
    g.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    g.add_argument("--confusion-png", default=None, help="also draw the confusion matrix to this PNG")
    g.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return p


def main(argv: list[str] | None = None) -> int:
    """`textpipe evaluate`: metrics of a checkpoint on labelled data."""
    import json

    p = parser()
    args = p.parse_args(argv)
    if (args.data is None) == (args.data_dir is None):
        p.error("give the data to evaluate on: --data PATH or --data-dir DIR (one of them)")
    if args.batch_size < 1:
        p.error(f"--batch-size must be >= 1, got {args.batch_size}")

    def run() -> int:
        from textpipe.metrics import format_report, save_confusion_png

        report = evaluate(args.checkpoint, args.data or args.data_dir, batch_size=args.batch_size,
                          device=args.device, text_columns=args.text_columns, label_column=args.label_column,
                          split=args.split, tokenizer=args.tokenizer, on_bad_rows=args.on_bad_rows)
        if args.confusion_png and not save_confusion_png(report["confusion"], report["class_names"],
                                                         args.confusion_png):
            print("note: matplotlib is not installed, no PNG drawn (pip install matplotlib)", file=sys.stderr)
        print(json.dumps(report) if args.json else format_report(report, report["class_names"]))
        return 0

    return run_cli(run, debug=args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
