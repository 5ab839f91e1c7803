"""Classify texts with a trained checkpoint: the class name and the class probabilities for each text.

    textpipe predict --checkpoint runs/ag_news/best.pt "Stocks fell as oil rose" "Cup final tonight"
    cat headlines.txt | textpipe predict --checkpoint runs/ag_news/best.pt --json      # one text a line
    textpipe predict --checkpoint best.pt --data tickets.csv --text-column body         # a table's texts
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import numpy as np
import torch

from textpipe.batches import pad_collate
from textpipe.core.cli_args import Formatter, Parser, column, run_cli
from textpipe.core.distributed import pick_device
from textpipe.core.specials import PAD_IDX
from textpipe.corpus import CorpusBatch
from textpipe.evaluate import load_for_inference
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
    names, pad_idx = info["class_names"], ckpt["model_config"].get("pad_idx", PAD_IDX)
    results = []
    for start in range(0, len(texts), batch_size):
        chunk = list(texts[start:start + batch_size])
        ids, offsets = vocab.encode_flat(chunk)  # flat ids (N,), offsets (B+1,)
        lengths = np.diff(offsets)
        padded, lens, _ = pad_collate(CorpusBatch(ids, offsets[:-1], lengths, np.zeros(len(chunk), np.int64)),
                                      pad_idx=pad_idx)  # (B, T), (B,): the form every model takes
        logits = forward(model, padded.to(device), lens.to(device))
        for row in logits.softmax(-1).cpu().tolist():
            label = max(range(len(row)), key=row.__getitem__)
            results.append({"label": label, "label_name": names[label],
                            "probs": {name: p for name, p in zip(names, row)}})
    return results


def parser(prog: str = "textpipe predict") -> argparse.ArgumentParser:
    p = Parser(prog=prog, description=__doc__, formatter_class=Formatter)
    p.add_argument("--checkpoint", required=True, help="checkpoint file written by textpipe train")
    p.add_argument("texts", nargs="*", help="texts to classify (None: --data, else one per line from stdin)")
    g = p.add_argument_group("data", "columns and tokenizer default to the checkpoint's")
    g.add_argument("--data", metavar="FILE", default=None, help="classify the texts of this table file")
    g.add_argument("--split", default=None, help="split of a DatasetDict (None: test)")
    g.add_argument("--text-column", dest="text_columns", action="append", type=column, metavar="NAME",
                   default=None, help="column(s) holding the text, as for train")
    g.add_argument("--tokenizer", default=None, help="override the checkpoint's tokenizer")
    g = p.add_argument_group("devices")
    g.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    g.add_argument("--batch-size", type=int, default=512, help="texts per forward pass")
    g = p.add_argument_group("output")
    g.add_argument("--json", action="store_true", help="one JSON object per text")
    g.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return p


def main(argv: list[str] | None = None) -> int:
    """`textpipe predict`: the class of each text."""
    import json

    p = parser()
    args = p.parse_args(argv)
    if args.texts and args.data:
        p.error("give texts or --data FILE, not both")
    if args.batch_size < 1:
        p.error(f"--batch-size must be >= 1, got {args.batch_size}")

    def run() -> int:
        from textpipe.checkpoint.format import data_info, load_checkpoint
        from textpipe.data.table import read_table

        if args.data:
            columns = args.text_columns
            if columns is None:  # the checkpoint's text columns (its labels are not needed)
                columns = data_info(load_checkpoint(args.checkpoint))["text_columns"]
            split = args.split or ("test" if os.path.isfile(os.path.join(args.data, "dataset_dict.json")) else None)
            _, texts = read_table(args.data, text_columns=columns, split=split, need_label=False)
        else:
            texts = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
        results = predict(args.checkpoint, texts, device=args.device, batch_size=args.batch_size,
                          tokenizer=args.tokenizer)
        for text, r in zip(texts, results):
            if args.json:
                print(json.dumps({"text": text, **r}))
            else:
                probs = " ".join(f"{name}={p:.3f}" for name, p in r["probs"].items())
                print(f"{r['label_name']}\t{probs}\t{text[:80]}")
        return 0

    return run_cli(run, debug=args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
