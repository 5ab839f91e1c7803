"""Classify texts with a trained checkpoint: the class name and the class probabilities for each text.

    textpipe predict --checkpoint runs/ag_news/best.pt "Stocks fell as oil rose" "Cup final tonight"
    cat headlines.txt | textpipe predict --checkpoint runs/ag_news/best.pt --json      # one text a line
    textpipe predict --checkpoint best.pt --data tickets.csv --text-column body         # a table's texts
    textpipe predict --checkpoint best.pt --data q.tsv --text-column 1 --top-k 3 --output q_pred.csv
    textpipe predict --checkpoint best.pt --data sms.txt --format tsv --text-column 1 --threshold 0.3 --positive spam

Streams: rows are read, classified and written a batch at a time, in input order, one output per input row
(a blank text gets an empty prediction). Output fields: `predicted` (the class name), `probability` (its
probability), `probabilities` (every class's; JSON only) and with --top-k K `top1`, `top1_probability`, ...
`topK_probability`; a field whose name is taken by an input column gets a suffix (`predicted_1`).
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch

from textpipe.batches import pad_collate
from textpipe.core.cli_args import Formatter, Parser, add_format_flags, column, run_cli
from textpipe.core.distributed import pick_device
from textpipe.data.formats import FILE_FORMATS, QUOTINGS
from textpipe.core.specials import PAD_IDX
from textpipe.corpus import CorpusBatch
from textpipe.evaluate import add_device_flags, apply_device_flags, load_for_inference
from textpipe.models import forward


@torch.no_grad()
def predict(checkpoint: str | os.PathLike | tuple, texts: Sequence[str], *, device: str | torch.device = "cpu",
            batch_size: int = 512, tokenizer: str | None = None) -> list[dict]:
    """Predicted class and probabilities for each text.

    Args:
        checkpoint: a checkpoint path, or the `(model, vocab, ckpt)` that `load_model` returns (to load once
            and predict many times).
        texts: raw texts; tokenized (with the checkpoint's tokenizer) and encoded with its vocabulary.
        device: where to run ("auto": the GPU if there is one).
        batch_size: texts per forward pass.
        tokenizer: override the tokenizer the checkpoint recorded.

    Returns:
        One dict per text: `{"label": class id, "label_name": str, "probs": {name: float}}`.

    Example:
        >>> predict("runs/ag_news/best.pt", ["Wall St. falls as oil prices climb"])[0]["label_name"]  # doctest: +SKIP
        'Business'
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, got a single str; wrap it in a list")
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"texts[{bad}] must be a str, got {type(texts[bad]).__name__}")
    device = pick_device(device) if isinstance(device, str) else device
    model, vocab, ckpt, info = load_for_inference(checkpoint, device=device, tokenizer=tokenizer)
    model = model.to(device).eval()
    names = info["class_names"]
    results = []
    for start in range(0, len(texts), batch_size):
        for row in class_probs(model, vocab, list(texts[start:start + batch_size]), device).tolist():
            label = max(range(len(row)), key=row.__getitem__)
            results.append({"label": label, "label_name": names[label],
                            "probs": {name: p for name, p in zip(names, row)}})
    return results


@torch.no_grad()
def class_probs(model, vocab, texts: list[str], device) -> torch.Tensor:
    """(B, C) class probabilities (CPU, float) of a batch of texts."""
    if not texts:
        return torch.zeros(0, model.config.num_classes)
    ids, offsets = vocab.encode_flat(texts)  # flat ids (N,), offsets (B+1,)
    padded, lengths, _ = pad_collate(CorpusBatch(ids, offsets[:-1], np.diff(offsets), np.zeros(len(texts), np.int64)),
                                     pad_idx=getattr(model.config, "pad_idx", PAD_IDX))  # (B, T), (B,)
    return forward(model, padded.to(device), lengths.to(device)).float().softmax(-1).cpu()


class Decision:
    """What a row's probabilities become: the predicted class (argmax, or for two classes `threshold` on the
    `positive` class), its probability, every class's, and the top `top_k`."""

    def __init__(self, names: list[str], *, top_k: int = 0, threshold: float | None = None,
                 positive: str | None = None) -> None:
        from textpipe.evaluate import positive_class

        self.names = [str(n) for n in names]
        if not 0 <= top_k <= len(names):
            raise ValueError(f"--top-k must be between 1 and the number of classes ({len(names)}), got {top_k}")
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise ValueError(f"--threshold must be a probability in [0, 1], got {threshold}")
        if positive is not None and threshold is None:
            raise ValueError("--positive names the class --threshold applies to: give --threshold P too")
        self.top_k, self.threshold = top_k, threshold
        self.positive = positive_class(self.names, positive) if threshold is not None else None

    def fields(self) -> list[str]:
        tops = [f"top{i}{s}" for i in range(1, self.top_k + 1) for s in ("", "_probability")]
        return ["predicted", "probability", "probabilities", *tops]

    def __call__(self, probs: list[float] | None) -> dict:
        """The output fields of one row (None: a blank text, every field empty)."""
        if probs is None:
            return dict.fromkeys(self.fields())
        if self.threshold is not None:
            label = self.positive if probs[self.positive] >= self.threshold else 1 - self.positive
        else:
            label = max(range(len(probs)), key=probs.__getitem__)
        out = {"predicted": self.names[label], "probability": probs[label],
               "probabilities": dict(zip(self.names, probs))}
        for i, c in enumerate(sorted(range(len(probs)), key=lambda c: -probs[c])[:self.top_k], 1):
            out[f"top{i}"], out[f"top{i}_probability"] = self.names[c], probs[c]
        return out


def predict_batches(model, vocab, batches: Iterable[list[str]], decide: Decision, *, device) -> Iterator[list[dict]]:
    """The output fields of every text of every batch, in order; a blank text's are all None."""
    for texts in batches:
        keep = [i for i, t in enumerate(texts) if t.strip()]
        probs = class_probs(model, vocab, [texts[i] for i in keep], device).tolist()
        rows: list[list[float] | None] = [None] * len(texts)
        for i, p in zip(keep, probs):
            rows[i] = p
        yield [decide(p) for p in rows]


def parser(prog: str = "textpipe predict") -> argparse.ArgumentParser:
    p = Parser(prog=prog, description=__doc__, formatter_class=Formatter)
    p.add_argument("--checkpoint", required=True, help="checkpoint file written by textpipe train")
    p.add_argument("texts", nargs="*", help="texts to classify (None: --data, else one per line from stdin)")
    g = p.add_argument_group("data", "columns, format and tokenizer default to the checkpoint's")
    g.add_argument("--data", metavar="FILE", default=None, help="classify the texts of this table file, with or "
                   "without a header row (then --text-column as 0-based indexes)")
    g.add_argument("--split", default=None, help="split of a DatasetDict (None: test)")
    add_format_flags(g, FILE_FORMATS, QUOTINGS)
    g.add_argument("--text-column", dest="text_columns", action="append", type=column, metavar="NAME",
                   default=None, help="column(s) holding the text, as for train (no label column needed)")
    g.add_argument("--tokenizer", default=None, help="override the checkpoint's tokenizer")
    g = p.add_argument_group("decision")
    g.add_argument("--top-k", type=int, default=0, metavar="K", help="also give the K most probable classes")
    g.add_argument("--threshold", type=float, default=None, metavar="P", help="two classes: predict the "
                   "--positive class when its probability is >= P (None: the most probable class); see the "
                   "threshold table of textpipe evaluate, and summary.json's val_threshold")
    g.add_argument("--positive", metavar="NAME", default=None, help="the class --threshold applies to (None: "
                   "the second class)")
    g = p.add_argument_group("devices")
    add_device_flags(g, "texts per forward pass (and per output flush)")
    g = p.add_argument_group("output")
    g.add_argument("--json", action="store_true", help="one JSON object per text: the input's columns (or "
                   "'text') and the output fields")
    g.add_argument("--output", metavar="FILE", default=None, help="write the rows to this .csv or .jsonl file "
                   "instead: the input's columns plus the output fields (CSV: without 'probabilities')")
    g.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return p


def _stdin_batches(size: int) -> Iterator[list[dict]]:
    """stdin's lines as `{"text": line}` records; the first batch small, so the first answers come at once."""
    batch, limit = [], min(size, 64)
    for line in sys.stdin:
        batch.append({"text": line.rstrip("\r\n")})
        if len(batch) >= limit:
            yield batch
            batch, limit = [], size
    if batch:
        yield batch


def main(argv: list[str] | None = None) -> int:
    """`textpipe predict`: the class of each text, streamed, one output per input row."""
    import json

    p = parser()
    args = p.parse_args(argv)
    apply_device_flags(p, args)
    if args.texts and args.data:
        p.error("give texts or --data FILE, not both")

    def run() -> int:
        from textpipe.core.rowfile import RowWriter, row_format, unique_keys
        from textpipe.data.formats import format_of
        from textpipe.data.records import iter_records, record_text
        from textpipe.data.table import inspect_table

        if args.output:
            row_format(args.output)  # a bad name fails before the work
        device = pick_device(args.device)
        model, vocab, _, info = load_for_inference(args.checkpoint, device=device, tokenizer=args.tokenizer)
        model = model.to(device).eval()
        decide = Decision(info["class_names"], top_k=args.top_k, threshold=args.threshold, positive=args.positive)
        if args.data:
            is_dict = os.path.isfile(os.path.join(args.data, "dataset_dict.json"))
            split = args.split or ("test" if is_dict else None)
            unnamed = os.path.isfile(args.data) and format_of(args.data) is None
            spec = inspect_table(args.data, text_columns=args.text_columns or info["text_columns"], split=split,
                                 need_label=False, format=args.format or (info["format"] if unnamed else None),
                                 quoting=args.quoting or info["quoting"])
            columns = list(spec.columns)
            records = iter_records(spec, batch_rows=args.batch_size, split=split)
            text_of = lambda r: record_text(r, spec)  # noqa: E731
        else:
            columns = ["text"]
            records = [[{"text": t} for t in args.texts]] if args.texts else _stdin_batches(args.batch_size)
            text_of = lambda r: r["text"]  # noqa: E731
        keys = unique_keys(decide.fields(), columns)
        pairs = ((batch, [text_of(r) for r in batch]) for batch in records)
        held: list = []  # the current batch's records, for the outputs that belong to them

        def texts():
            for batch, batch_texts in pairs:
                held[:] = [batch, batch_texts]
                yield batch_texts

        if args.output:
            csv_out = row_format(args.output) == "csv"
            fields = [f for f in decide.fields() if not (csv_out and f == "probabilities")]
            with RowWriter(args.output, columns=[*columns, *(keys[f] for f in fields)]) as w:
                for outs in predict_batches(model, vocab, texts(), decide, device=device):
                    for record, out in zip(held[0], outs):
                        w.write({**record, **{keys[f]: out[f] for f in fields}})
            print(f"wrote {w.rows} row(s) to {args.output}", file=sys.stderr)
            return 0
        for outs in predict_batches(model, vocab, texts(), decide, device=device):
            lines = []
            for record, text, out in zip(held[0], held[1], outs):
                if args.json:
                    lines.append(json.dumps({**record, **{keys[f]: v for f, v in out.items()}}, ensure_ascii=False))
                elif out["predicted"] is None:
                    lines.append("")
                else:
                    shown = ([(out[f"top{i}"], out[f"top{i}_probability"]) for i in range(1, decide.top_k + 1)]
                             or out["probabilities"].items())
                    probs = " ".join(f"{name}={p:.3f}" for name, p in shown)
                    lines.append(f"{out['predicted']}\t{probs}\t{text[:80]}")
            sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()
        return 0

    return run_cli(run, debug=args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
