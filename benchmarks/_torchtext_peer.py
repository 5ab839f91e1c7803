"""The real torchtext 0.18 side of the benchmarks, run in torchtext's own interpreter; prints one JSON object.

    /work/venvs/torchtext/bin/python benchmarks/_torchtext_peer.py tokenize_encode --data F --rows N --repeats R
    /work/venvs/torchtext/bin/python benchmarks/_torchtext_peer.py collate --data F --rows N --batch-size B

torchtext no longer imports on current torch, so it lives in a venv of its own (torch 2.3.1 + torchtext 0.18.0,
built by the migrate helper's benchmarks/make_torchtext_venv.sh). `tokenize_encode.py` and `collate_throughput.py`
call this with `--torchtext-python PATH` (see `run_peer`) and compare with textpipe measured in their own process.
Needs only the standard library and torchtext; the texts come from `_common.load_texts`, as in the callers.
"""
from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from array import array
from pathlib import Path


def run_peer(python: str, task: str, **options) -> dict:
    """Run `task` in the interpreter `python` (torchtext's venv) and return its JSON result.

    Raises:
        SystemExit: with the peer's error output, if it fails (e.g. torchtext does not import there).
    """
    if not Path(python).exists():
        raise SystemExit(f"error: --torchtext-python {python!r} does not exist; build the venv with "
                         f"benchmarks/make_torchtext_venv.sh (torch 2.3.1 + torchtext 0.18.0)")
    argv = [python, str(Path(__file__).resolve()), task]
    for k, v in options.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing of ours on its path
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=str(Path(__file__).resolve().parent))
    if proc.returncode != 0:
        raise SystemExit(f"error: the torchtext peer failed ({' '.join(argv)}):\n{proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _timed(fn, repeats: int) -> tuple[float, float]:
    """(median wall, median CPU) seconds of `repeats` calls after one warm-up, gc off while timing."""
    fn()
    walls, cpus = [], []
    for _ in range(repeats):
        gc.disable()
        try:
            w, c = time.perf_counter(), time.process_time()
            fn()
            walls.append(time.perf_counter() - w)
            cpus.append(time.process_time() - c)
        finally:
            gc.enable()
    return statistics.median(walls), statistics.median(cpus)


def ids_digest(rows) -> str:
    """SHA-1 of the ids of all texts, as int64 (the callers compare textpipe's with it)."""
    h = hashlib.sha1()
    for ids in rows:
        h.update(array("q", ids).tobytes())
    return h.hexdigest()


def tokenize_encode(args) -> dict:
    from _common import load_texts
    from torchtext.data.utils import get_tokenizer
    from torchtext.vocab import build_vocab_from_iterator

    _, texts = load_texts(args.data, args.rows)
    tok = get_tokenizer("basic_english")
    tokens = [tok(t) for t in texts]
    specials = ["<pad>", "<unk>"]
    v = build_vocab_from_iterator(tokens, min_freq=2, specials=specials)
    v.set_default_index(v["<unk>"])
    out = {"torchtext": __import__("torchtext").__version__, "torch": __import__("torch").__version__,
           "n_tokens": sum(map(len, tokens)), "encode_digest": ids_digest(v(tok(t)) for t in texts)}
    out["tokenize_streamed"] = _timed(lambda: sum(len(tok(t)) for t in texts), args.repeats)
    out["build_vocab"] = _timed(lambda: build_vocab_from_iterator(tokens, specials=specials), args.repeats)
    out["tokenize_encode"] = _timed(lambda: [v(tok(t)) for t in texts], args.repeats)  # the tutorial's text_pipeline
    return out


def collate(args) -> dict:
    import torch
    from _common import load_texts
    from torch.utils.data import DataLoader
    from torchtext.data.utils import get_tokenizer
    from torchtext.vocab import build_vocab_from_iterator

    labels, texts = load_texts(args.data, args.rows)
    tok = get_tokenizer("basic_english")
    vocab = build_vocab_from_iterator(map(tok, texts), specials=["<pad>", "<unk>"])
    vocab.set_default_index(vocab["<unk>"])

    def collate_batch(batch):  # the tutorial's, minus .to(device)
        label_list, text_list, offsets = [], [], [0]
        for _label, _text in batch:
            label_list.append(_label)
            processed_text = torch.tensor(vocab(tok(_text)), dtype=torch.int64)
            text_list.append(processed_text)
            offsets.append(processed_text.size(0))
        label_list = torch.tensor(label_list, dtype=torch.int64)
        offsets = torch.tensor(offsets[:-1]).cumsum(dim=0)
        return label_list, torch.cat(text_list), offsets

    rows = list(zip(labels, texts))
    loader = DataLoader(rows, batch_size=args.batch_size, shuffle=True, collate_fn=collate_batch)
    batches = [rows[i:i + args.batch_size] for i in range(0, len(rows), args.batch_size)]
    return {"torchtext": __import__("torchtext").__version__, "torch": torch.__version__,
            "collate_from_text": _timed(lambda: [collate_batch(b) for b in batches], args.repeats),
            "dataloader_epoch": _timed(lambda: sum(1 for _ in loader), args.repeats)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", choices=["tokenize_encode", "collate"])
    p.add_argument("--data", required=True)
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    print(json.dumps((tokenize_encode if args.task == "tokenize_encode" else collate)(args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
