"""Classify texts with a trained checkpoint: the label and the class probabilities for each text.

    python -m textpipe.predict --checkpoint runs/ag_news/best.pt "Stocks fell as oil rose" "Cup final tonight"
    cat headlines.txt | python -m textpipe.predict --checkpoint runs/ag_news/best.pt --json   # one text a line
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

import torch

from textpipe.checkpoint import class_names, load_model


@torch.no_grad()
def predict(checkpoint: str | os.PathLike | tuple, texts: Sequence[str], *, device: str = "cpu",
            batch_size: int = 512) -> list[dict]:
    """Predicted label and probabilities for each text.

    Args:
        checkpoint: a checkpoint path, or the `(model, vocab, ckpt)` that `load_model` returns (to load once
            and predict many times).
        texts: raw texts; tokenized and encoded with the checkpoint's vocabulary.
        device: where to run.
        batch_size: texts per forward pass.

    Returns:
        One dict per text: `{"label": int, "label_name": str, "probs": {name: float}}`.

    Example:
        >>> predict("runs/ag_news/best.pt", ["Wall St. falls as oil prices climb"])[0]["label_name"]  # doctest: +SKIP
        'Business'
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, got a single str; wrap it in a list")
    model, vocab, ckpt = load_model(checkpoint, map_location=device) if not isinstance(checkpoint, tuple) \
        else checkpoint
    model = model.to(device).eval()
    names = class_names(ckpt)
    results = []
    for start in range(0, len(texts), batch_size):
        chunk = list(texts[start:start + batch_size])
        ids, offsets = vocab.encode_flat(chunk)  # flat ids (N,), offsets (B+1,)
        # the flat + offsets form of the model: no padding needed on one device
        logits = model(torch.from_numpy(ids).to(device), torch.from_numpy(offsets[:-1]).to(device))
        for row in logits.softmax(-1).cpu().tolist():
            label = max(range(len(row)), key=row.__getitem__)
            results.append({"label": label, "label_name": names[label],
                            "probs": {name: p for name, p in zip(names, row)}})
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m textpipe.predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="checkpoint file written by textpipe.train")
    parser.add_argument("texts", nargs="*", help="texts to classify (default: one per line from stdin)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--json", action="store_true", help="one JSON object per text")
    args = parser.parse_args(argv)
    texts = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    try:
        results = predict(args.checkpoint, texts, device=args.device)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for text, r in zip(texts, results):
        if args.json:
            print(json.dumps({"text": text, **r}))
        else:
            probs = " ".join(f"{name}={p:.3f}" for name, p in r["probs"].items())
            print(f"{r['label_name']}\t{probs}\t{text[:80]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
