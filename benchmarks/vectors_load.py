"""Peak memory and time of loading a large ``.vec`` file with ``textpipe.vectors.Vectors``.

    python3 benchmarks/vectors_load.py                       # 400,000 words x 300 dims (~1 GB), under /tmp
    python3 benchmarks/vectors_load.py --words 20000 --dim 50 --torchtext /work/venvs/torchtext/bin/python

It writes a fastText-style ``.vec`` (header line, random values with 5 decimals) into a temporary directory,
loads it in a fresh process (text -> tensor, writing the ``.pt`` cache), loads it again from the cache, and
prints the peak RSS of each against the size of the final float32 tensor. ``--torchtext PY`` also loads the
file with torchtext's ``Vectors`` in that interpreter and checks that words and values are identical.
Everything generated is deleted at the end (``--keep`` keeps it). Prints one JSON line last.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

_CHILD = r"""
import json, resource, sys, time
import torch
from textpipe.vectors import Vectors
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
t = time.perf_counter()
v = Vectors(sys.argv[1], cache=sys.argv[2])
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "baseline_rss": base, "peak_rss": peak, "rows": len(v.itos),
                  "dim": v.dim, "tensor_bytes": v.vectors.numel() * v.vectors.element_size()}))
"""

_TORCHTEXT_CHILD = r"""
import sys, time, torch, torchtext
torchtext.disable_torchtext_deprecation_warning()
from torchtext.vocab import Vectors
t = time.perf_counter()
v = Vectors(sys.argv[1], cache=sys.argv[2])
print(time.perf_counter() - t)
"""


def write_vec(path: str, words: int, dim: int, seed: int = 0) -> None:
    """A fastText-style file: 'count dim' header, then 'word v1 ... vD' with 5-decimal values."""
    rng = np.random.default_rng(seed)
    pool = np.array([f"{x:.5f}".encode() for x in rng.standard_normal(4096)], dtype=object)
    with open(path, "wb", buffering=1 << 22) as f:
        f.write(f"{words} {dim}\n".encode())
        for start in range(0, words, 1000):
            idx = rng.integers(0, len(pool), size=(min(1000, words - start), dim))
            lines = [b"w%d " % (start + i) + b" ".join(pool[row]) + b" \n" for i, row in enumerate(idx)]
            f.write(b"".join(lines))


def run_child(code: str, python: str, *args: str, env=None) -> str:
    out = subprocess.run([python, "-c", code, *args], check=True, capture_output=True, text=True, env=env)
    return out.stdout.strip().splitlines()[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--words", type=int, default=400_000)
    parser.add_argument("--dim", type=int, default=300)
    parser.add_argument("--dir", default=None, help="where to write the file (default: a new dir under /tmp)")
    parser.add_argument("--torchtext", default=None, help="python of a torchtext venv, to compare the result")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args(argv)

    work = tempfile.mkdtemp(prefix="textpipe-vectors-", dir=args.dir)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(__file__))), os.environ.get("PYTHONPATH", "")]))
    try:
        path = os.path.join(work, "big.vec")
        t = time.perf_counter()
        write_vec(path, args.words, args.dim)
        size = os.path.getsize(path)
        print(f"wrote {path}: {args.words:,} x {args.dim}, {size / 2**30:.2f} GiB in {time.perf_counter() - t:.0f} s",
              flush=True)
        cache = os.path.join(work, "cache")
        first = json.loads(run_child(_CHILD, sys.executable, path, cache, env=env))
        cached = json.loads(run_child(_CHILD, sys.executable, path, cache, env=env))
        result = {"words": args.words, "dim": args.dim, "file_bytes": size}
        for label, r in (("text", first), ("pt_cache", cached)):
            tensor = r["tensor_bytes"]
            result[label] = dict(r, peak_over_tensor=round(r["peak_rss"] / tensor, 3),
                                 peak_minus_baseline_over_tensor=round((r["peak_rss"] - r["baseline_rss"]) / tensor, 3))
            print(f"{label:>8}: {r['seconds']:.1f} s, peak RSS {r['peak_rss'] / 2**20:,.0f} MiB (after imports "
                  f"{r['baseline_rss'] / 2**20:,.0f} MiB), tensor {tensor / 2**20:,.0f} MiB: peak/tensor "
                  f"{r['peak_rss'] / tensor:.2f}, (peak - imports)/tensor {(r['peak_rss'] - r['baseline_rss']) / tensor:.2f}")
        if args.torchtext:
            import torch
            tt_cache = os.path.join(work, "tt_cache")
            seconds = float(run_child(_TORCHTEXT_CHILD, args.torchtext, path, tt_cache))
            tt_itos, _, tt_vectors, tt_dim = torch.load(os.path.join(tt_cache, "big.vec.pt"), weights_only=True)
            tp_itos, _, tp_vectors, _ = torch.load(os.path.join(cache, "big.vec.pt"), weights_only=True)
            same = tt_itos == tp_itos and torch.equal(tt_vectors, tp_vectors)
            result["torchtext"] = {"seconds": seconds, "identical": same}
            print(f"torchtext: {seconds:.1f} s; words and values identical: {same}")
        print(json.dumps(result))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
