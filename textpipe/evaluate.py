"""Evaluate a checkpoint on labelled data: any table `textpipe train` reads, with the checkpoint's columns,
classes and tokenizer unless told otherwise.

    textpipe evaluate --checkpoint runs/ag_news/best.pt --data-dir ../shared/data/ag_news
    textpipe evaluate --checkpoint best.pt --test reviews_test.csv --json       # one JSON object
    textpipe evaluate --checkpoint best.pt --data sms_test --format tsv --errors wrong.csv --pr-png pr.png

Two classes: a table of precision, recall and F1 of the positive class (--positive, default the second class)
at each decision threshold, with the threshold of the best F1 (`predict --threshold` applies it).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys

import numpy as np
import torch
from torch import nn

from textpipe.checkpoint.format import data_info, load_model
from textpipe.core.distributed import pick_device
from textpipe.core.cli_args import Formatter, Parser, add_column_flags, add_format_flags, run_cli
from textpipe.data.formats import DESCRIPTION, FILE_FORMATS, QUOTINGS, format_of
from textpipe.metrics import report_from_confusion, threshold_table
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
def evaluate_model(model: nn.Module, loader, *, device: torch.device | str = "cpu", probs: bool = False) -> dict:
    """Mean loss, accuracy, predictions and labels of `model` over a loader of `(ids, lengths, labels)`.

    Runs in eval mode under `torch.no_grad()` and restores the model's previous mode. Losses are summed
    as Python floats. `probs`: also `"probs"`, the class probabilities of each sample (a (N, C) float tensor).
    """
    was_training = model.training
    model.eval()
    loss_sum, preds, labels, all_probs = 0.0, [], [], []
    for ids, lengths, y in loader:
        ids, lengths, y = (t.to(device, non_blocking=True) for t in (ids, lengths, y))
        logits = forward(model, ids, lengths)  # (B, C)
        loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").item()
        preds.append(logits.argmax(1).cpu())
        labels.append(y.cpu())
        if probs:
            all_probs.append(logits.float().softmax(-1).cpu())
    model.train(was_training)
    preds_t = torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long)
    labels_t = torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long)
    n = labels_t.numel()
    out = {"loss": loss_sum / max(n, 1), "accuracy": (preds_t == labels_t).sum().item() / max(n, 1), "n": n,
           "preds": preds_t.tolist(), "labels": labels_t.tolist()}
    if probs:
        out["probs"] = torch.cat(all_probs) if all_probs else torch.zeros(0, 0)
    return out


def positive_class(names, positive: str | None) -> int:
    """The class id of the positive class of a two-class task: the one named `positive`, else the second."""
    names = [str(n) for n in names]
    if len(names) != 2:
        raise ValueError(f"a decision threshold needs two classes, this model has {len(names)} ({names[:6]})")
    if positive is None:
        return 1
    if str(positive) not in names:
        raise ValueError(f"--positive {positive!r} is not a class of this model; its classes are {names}")
    return names.index(str(positive))


def thresholds_of(probs: torch.Tensor, labels, names, positive: str | None = None) -> dict:
    """`textpipe.metrics.threshold_table` of a two-class model's probabilities (N, 2) and true class ids."""
    pos = positive_class(names, positive)
    return threshold_table(probs[:, pos].tolist(), [y == pos for y in labels], name=names[pos])


def val_threshold(model: nn.Module, loader, names, *, device) -> dict:
    """The best-F1 decision threshold of a two-class model on validation data: `{"positive", "threshold",
    "precision", "recall", "f1", "f1_at_0.5"}` (what `train` records in summary.json as `val_threshold`)."""
    result = evaluate_model(model, loader, device=device, probs=True)
    t = thresholds_of(result["probs"], result["labels"], list(names))
    return {"positive": t["positive"], **t["best"], "f1_at_0.5": t["at_0.5"]["f1"]}


def read_labelled(data, ckpt: dict, **options) -> list[tuple[int, str]]:
    """(class id, text) rows of a file, directory (its test file) or datasets object, labelled as in training
    (`iter_labelled`'s options), all at once."""
    rows = []
    for ids, texts in iter_labelled(data, ckpt, **options):
        rows += zip(ids.tolist(), texts)
    return rows


def iter_labelled(data, ckpt: dict, *, text_columns=None, label_column=None, split: str | None = None,
                  on_bad_rows: str = "raise", format: str | None = None, quoting: str | None = None,
                  batch_rows: int = 8192):
    """`(class ids, texts)` chunks of at most `batch_rows` rows of a file, directory (its test file) or datasets
    object, labelled as in training, in bounded memory (the AG_NEWS reader of a directory holding AG_NEWS files
    is read whole, then chunked). `format`/`quoting` default to the checkpoint's `--format`/`--quoting` for a
    file whose name says nothing.

    Raises:
        ValueError: a label the checkpoint was not trained on (naming it and its row), a missing column, ...
    """
    from textpipe.data.labels import LabelVocab
    from textpipe.data.sources import read_source
    from textpipe.data.table import iter_table

    source = _labelled_source(data, ckpt, text_columns=text_columns, label_column=label_column, split=split,
                              format=format, quoting=quoting)
    info = data_info(ckpt)
    labels = LabelVocab(info["label_values"], names=info["class_names"])
    if source.ag_news:
        raw, texts = read_source(source, split="test", on_bad_rows=on_bad_rows)
        chunks = ((raw[i:i + batch_rows], texts[i:i + batch_rows]) for i in range(0, len(raw), batch_rows))
    else:
        chunks = iter_table(source.data, **source.spec.column_args(), split=source.split, on_bad_rows=on_bad_rows,
                            batch_rows=batch_rows)
    row = 1
    for raw, texts in chunks:
        # subtle: with on_bad_rows="skip" the row numbers in a label error count the kept rows
        yield labels.encode(raw, source=source.describe(), first_row=row), texts
        row += len(raw)


def _labelled_source(data, ckpt: dict, *, text_columns, label_column, split, format, quoting):
    from textpipe.data.sources import Source, resolve_sources
    from textpipe.data.table import inspect_table

    info = data_info(ckpt)
    columns = {"text_columns": info["text_columns"] if text_columns is None else text_columns,
               "label_column": info["label_column"] if label_column is None else label_column}
    unnamed = isinstance(data, (str, os.PathLike)) and (os.path.isdir(data) or format_of(data) is None)
    reading = {"format": format or (info["format"] if unnamed else None), "quoting": quoting or info["quoting"]}
    if isinstance(data, (str, os.PathLike)) and os.path.isdir(data) and not _is_datasets_dir(data):
        source = resolve_sources(data_dir=data, require_train=False, only="test", **columns, **reading)["test"]
        if source is None:
            raise FileNotFoundError(f"{data} holds no test file (test{DESCRIPTION.replace(' ', ', ')}); give the "
                                    "file itself")
        return source
    if isinstance(data, (str, os.PathLike)) and not os.path.exists(data):
        raise FileNotFoundError(f"{data}: no such file or directory")
    if split is None and _is_dataset_dict(data):
        split = "test"
    if not isinstance(data, (str, os.PathLike)) or os.path.isdir(data):
        reading["format"] = None  # a datasets object or directory
    return Source(data, split, inspect_table(data, split=split, **columns, **reading), False)


def _is_datasets_dir(path) -> bool:
    return any(os.path.isfile(os.path.join(path, f)) for f in ("dataset_info.json", "dataset_dict.json"))


def _is_dataset_dict(data) -> bool:
    if isinstance(data, (str, os.PathLike)):
        return os.path.isfile(os.path.join(data, "dataset_dict.json"))
    return type(data).__name__ == "DatasetDict"


def evaluate(checkpoint, data, *, batch_size: int = 512, device: str | torch.device = "cpu", text_columns=None,
             label_column=None, split: str | None = None, tokenizer: str | None = None,
             on_bad_rows: str = "raise", format: str | None = None, quoting: str | None = None,
             positive: str | None = None, errors=None, details: bool = False) -> dict:
    """Accuracy, per-class metrics and confusion matrix of a checkpoint on labelled data.

    Args:
        checkpoint: a file written by `textpipe train`, or the `(model, vocab, ckpt)` that `load_model` returns.
        data: a table file, a directory (its test file), a datasets object (a DatasetDict: its test split, or
            `split`), or a list of `(class id, text)` rows.
        batch_size: texts per forward pass.
        device: where to run ("cpu", "cuda", "cuda:1", "auto", ...); the checkpoint loads onto it.
        text_columns, label_column, tokenizer, format, quoting: override what the checkpoint recorded from
            training.
        positive: the positive class of a two-class model, for the threshold table (None: the second class).
        errors: a .csv or .jsonl path: write the misclassified rows there (`text`, `true`, `predicted`,
            `probability` of the prediction, `true_probability`).
        details: also return `"probs"`, the (N, C) class probabilities, and `"labels"`, the true class ids.

    Returns:
        `classification_report(...)` (each per-class entry names its `"class"`) plus `loss` and `class_names`,
        and for two classes `"thresholds"` (see `textpipe.metrics.threshold_table`).

    Example:
        >>> evaluate("runs/ag_news/best.pt", "../shared/data/ag_news")["accuracy"]  # doctest: +SKIP
        0.87
    """
    from textpipe.batches.loader import make_dataloader
    from textpipe.core.rowfile import RowWriter
    from textpipe.corpus.encoded import EncodedCorpus

    device = pick_device(device) if isinstance(device, str) else device
    model, vocab, ckpt, info = load_for_inference(checkpoint, device=device, tokenizer=tokenizer)
    model = model.to(device)
    names, k = list(info["class_names"]), model.config.num_classes
    if isinstance(data, list):
        chunks = ((np.asarray([y for y, _ in data[i:i + 8192]], dtype=np.int64), [t for _, t in data[i:i + 8192]])
                  for i in range(0, len(data), 8192))
    else:
        chunks = iter_labelled(data, ckpt, text_columns=text_columns, label_column=label_column, split=split,
                               on_bad_rows=on_bad_rows, format=format, quoting=quoting)
    # streamed: a chunk of rows at a time; kept are the confusion matrix, the summed loss and, where asked for,
    # one probability per row (two classes: the threshold table) or all of them (`details`)
    confusion, loss_sum, done = np.zeros((k, k), dtype=np.int64), 0.0, 0
    want_probs = len(names) == 2 or errors is not None or details
    probs, labels = [], []
    writer = RowWriter(errors, columns=["row", "text", "true", "predicted", "probability", "true_probability"]) \
        if errors is not None else None
    with writer if writer is not None else _nothing():
        for ids, texts in chunks:
            corpus = EncodedCorpus.from_texts(texts, ids, vocab)
            # subtle: num_replicas=1 so that, inside a torchrun job, this process still sees every row
            loader = make_dataloader(corpus, batch_size=batch_size, shuffle=False, num_replicas=1, rank=0,
                                     pad_idx=model.config.pad_idx)
            result = evaluate_model(model, loader, device=device, probs=want_probs)
            # the loader batches texts of similar length together: the chunk row of each result
            order = np.argsort([int(i) for batch in loader.batch_sampler for i in batch], kind="stable")
            preds, ys = np.asarray(result["preds"])[order], np.asarray(result["labels"])[order]
            np.add.at(confusion, (ys, preds), 1)
            loss_sum += result["loss"] * result["n"]
            if want_probs:
                chunk_probs = result["probs"][torch.from_numpy(order)]
                if details or len(names) == 2:
                    probs.append(chunk_probs)
                    labels.append(ys)
            if writer is not None:
                write_errors(writer, texts, ys, preds, chunk_probs, names, first_row=done + 1)
            done += len(texts)
    report = {**report_from_confusion(confusion, names), "loss": loss_sum / max(done, 1)}
    labels = np.concatenate(labels).tolist() if labels else []
    if len(names) == 2 and done:
        report["thresholds"] = thresholds_of(torch.cat(probs), labels, names, positive)
    if details:
        report.update(probs=torch.cat(probs) if probs else torch.zeros(0, k), labels=labels)
    return report


@contextlib.contextmanager
def _nothing():
    yield


def write_errors(writer, texts: list[str], ys, preds, probs: torch.Tensor, names: list[str], *, first_row: int) -> None:
    """The misclassified rows of a chunk (in the data's order) to the `--errors` file's RowWriter."""
    probs = probs.tolist()
    for i in np.flatnonzero(preds != ys).tolist():
        y, pred = int(ys[i]), int(preds[i])
        writer.write({"row": first_row + i, "text": texts[i], "true": names[y], "predicted": names[pred],
                      "probability": probs[i][pred], "true_probability": probs[i][y]})


def add_device_flags(g, batch_help: str = "texts per forward pass") -> None:
    """`--device`, `--batch-size`, `--threads` of the inference commands (evaluate, predict)."""
    g.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    g.add_argument("--batch-size", type=int, default=512, help=batch_help)
    g.add_argument("--threads", type=int, default=1, help="torch CPU threads, 0 = torch's default (these small "
                   "batches are fastest single-threaded: 10,000 texts 4.0 s vs 8.4 s with 2 on a busy 2-core machine)")


def apply_device_flags(p, args) -> None:
    """Check `add_device_flags`' values (one `error:` line) and set torch's threads."""
    if args.batch_size < 1:
        p.error(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.threads < 0:
        p.error(f"--threads must be >= 0, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)


def parser(prog: str = "textpipe evaluate") -> argparse.ArgumentParser:
    p = Parser(prog=prog, description=__doc__, formatter_class=Formatter)
    p.add_argument("--checkpoint", required=True, help="checkpoint file written by textpipe train")
    g = p.add_argument_group("data", "columns and tokenizer default to the checkpoint's")
    g.add_argument("--data", "--test", dest="data", metavar="PATH", default=None,
                   help="labelled data: a table file, a datasets directory, or a directory holding test.*")
    g.add_argument("--data-dir", default=None, help="directory whose test.* file to evaluate on")
    g.add_argument("--split", default=None, help="split of a DatasetDict (None: test)")
    add_format_flags(g, FILE_FORMATS, QUOTINGS)
    add_column_flags(g)
    g.add_argument("--tokenizer", default=None, help="override the checkpoint's tokenizer (None: the checkpoint's)")
    g.add_argument("--on-bad-rows", choices=["raise", "skip"], default="raise", help="malformed rows")
    g = p.add_argument_group("devices")
    add_device_flags(g)
    g = p.add_argument_group("output")
    g.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    g.add_argument("--confusion-png", default=None, help="also draw the confusion matrix to this PNG (two "
                   "classes: and the precision-recall curve to precision_recall.png beside it)")
    g.add_argument("--pr-png", default=None, help="two classes: draw the precision-recall curve to this PNG")
    g.add_argument("--positive", metavar="NAME", default=None, help="two classes: the positive class of the "
                   "threshold table and the precision-recall curve (None: the second class)")
    g.add_argument("--errors", metavar="FILE", default=None, help="write the misclassified rows (text, true and "
                   "predicted class, probability) to this .csv or .jsonl file")
    g.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return p


def main(argv: list[str] | None = None) -> int:
    """`textpipe evaluate`: metrics of a checkpoint on labelled data."""
    import json

    p = parser()
    args = p.parse_args(argv)
    apply_device_flags(p, args)
    if (args.data is None) == (args.data_dir is None):
        p.error("give the data to evaluate on: --data PATH or --data-dir DIR (one of them)")

    def run() -> int:
        from textpipe.core.rowfile import row_format
        from textpipe.metrics import format_report, save_confusion_png, save_pr_png

        if args.errors:
            row_format(args.errors)  # a bad name fails before the work
        pr_png = args.pr_png or (os.path.join(os.path.dirname(args.confusion_png) or ".", "precision_recall.png")
                                 if args.confusion_png else None)
        report = evaluate(args.checkpoint, args.data or args.data_dir, batch_size=args.batch_size,
                          device=args.device, text_columns=args.text_columns, label_column=args.label_column,
                          split=args.split, tokenizer=args.tokenizer, on_bad_rows=args.on_bad_rows,
                          format=args.format, quoting=args.quoting, positive=args.positive, errors=args.errors,
                          details=bool(pr_png))  # per-row probabilities only for the plot
        probs, labels = report.pop("probs", None), report.pop("labels", None)
        drawn = True
        if args.confusion_png:
            drawn = save_confusion_png(report["confusion"], report["class_names"], args.confusion_png)
        if pr_png and report.get("thresholds"):
            pos = positive_class(report["class_names"], args.positive)
            drawn = drawn and save_pr_png(probs[:, pos].tolist(), [y == pos for y in labels],
                                          report["class_names"][pos], pr_png, best=report["thresholds"]["best"])
        if not drawn:
            print("note: matplotlib is not installed, no PNG drawn (pip install matplotlib)", file=sys.stderr)
        if args.errors:
            wrong = report["n"] - round(report["accuracy"] * report["n"])
            print(f"wrote {wrong} misclassified row(s) to {args.errors}", file=sys.stderr)
        print(json.dumps(report) if args.json else format_report(report, report["class_names"]))
        return 0

    return run_cli(run, debug=args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
