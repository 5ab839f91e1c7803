"""`textpipe export`: an `hf:` model's checkpoint as a standard Hugging Face model directory.

    textpipe export --checkpoint runs/bert/best.pt --to bert-agnews/
    python -c "from transformers import pipeline; print(pipeline('text-classification', 'bert-agnews/')('Stocks fell'))"

The directory holds what `save_pretrained` writes (config.json with the class names as id2label, the weights)
and the model's tokenizer files, all taken from the checkpoint: the original model directory is not needed.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from textpipe.checkpoint.format import data_info, load_model
from textpipe.core.cli_args import Formatter, Parser, run_cli

__all__ = ["export_hf", "parser", "main"]


def export_hf(checkpoint: str | Path, to: str | Path) -> Path:
    """Write the `hf:` model of `checkpoint` to the directory `to` (created; files there are replaced).

    Returns:
        The directory, which `AutoModelForSequenceClassification.from_pretrained` and `AutoTokenizer` load.

    Raises:
        ValueError: the checkpoint holds another model family (only `hf:` models have a Hugging Face form).
    """
    model, _, ckpt = load_model(checkpoint)
    if ckpt.get("model_name") != "hf":
        raise ValueError(f"--checkpoint {checkpoint} holds a {ckpt.get('model_name', 'bag')!r} model; export writes "
                         "hf: models (textpipe train --model hf:NAME_OR_DIR) as Hugging Face directories")
    info = data_info(ckpt)
    state = (ckpt.get("data") or {}).get("tokenizer_state") or {}
    names = info["class_names"]
    net = model.net
    net.config.id2label = dict(enumerate(names))
    net.config.label2id = {n: i for i, n in enumerate(names)}
    to = Path(to)
    to.mkdir(parents=True, exist_ok=True)
    net.save_pretrained(to)
    for name, text in (state.get("files") or {}).items():  # tokenizer_config.json, special_tokens_map.json, ...
        (to / name).write_text(text, encoding="utf-8")
    if state.get("json"):
        (to / "tokenizer.json").write_text(state["json"], encoding="utf-8")
    return to


def parser(prog: str = "textpipe export") -> argparse.ArgumentParser:
    p = Parser(prog=prog, description=__doc__, formatter_class=Formatter)
    p.add_argument("--checkpoint", required=True, help="a checkpoint of an hf: model (textpipe train)")
    p.add_argument("--to", required=True, metavar="DIR", help="the Hugging Face model directory to write")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return p


def main(argv: list[str] | None = None) -> int:
    """`textpipe export --checkpoint best.pt --to DIR`."""
    args = parser().parse_args(argv)

    def run() -> int:
        out = export_hf(args.checkpoint, args.to)
        print(f"wrote {out}: AutoModelForSequenceClassification.from_pretrained({str(out)!r}) and "
              f"AutoTokenizer.from_pretrained({str(out)!r}) load it")
        return 0

    return run_cli(run, debug=args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
