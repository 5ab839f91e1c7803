"""Classify texts with a trained checkpoint: the class name and the class probabilities for each text.

    textpipe predict --checkpoint runs/ag_news/best.pt "Stocks fell as oil rose" "Cup final tonight"
    cat headlines.txt | textpipe predict --checkpoint runs/ag_news/best.pt --json      # one text a line
    textpipe predict --checkpoint best.pt --data tickets.csv --text-column body         # a table's texts
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from textpipe.evaluate import load_for_inference, pick_device


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
    """`python -m textpipe.predict ...`: the same as `textpipe predict ...` (see textpipe.cli)."""
    from textpipe.cli import predict_main

    return predict_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
