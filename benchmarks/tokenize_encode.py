"""Benchmark: tokenization, vocabulary building and corpus encoding, textpipe vs torchtext's algorithm.

    cd benchmarks && python3 tokenize_encode.py [--data PATH] [--rows 120000] [--repeats 5]

The reference is the spec's literal algorithm (torchtext 0.18's ``_basic_english_normalize``: lower,
then 12 ``re.sub`` calls, then ``split``), a ``Counter`` + two sorts for the vocabulary, and a per-token
dict lookup for encoding. Every contender's output is checked equal to the reference's before timing.
Each figure is the median of ``--repeats`` runs after one warm-up run, with the garbage collector off
during the timed call (as ``timeit`` does), for every contender alike. The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import gc
import json
import re
import statistics
import time
from collections import Counter, OrderedDict
from itertools import accumulate

from _common import DEFAULT_DATA, DEFAULT_ROWS, load_texts

from textpipe.tokenizer import basic_english, basic_english_batch
from textpipe.vocab import build_vocab_from_iterator

# spec §1, steps 1-3, written out literally: this is torchtext's own algorithm
_STEPS = [(re.compile(p), r) for p, r in [
    (r"\'", " '  "), (r"\"", ""), (r"\.", " . "), (r"<br \/>", " "), (r",", " , "), (r"\(", " ( "),
    (r"\)", " ) "), (r"\!", " ! "), (r"\?", " ? "), (r"\;", " "), (r"\:", " "), (r"\s+", " ")]]


def reference_tokenize(line: str) -> list[str]:
    line = line.lower()
    for pattern, replacement in _STEPS:
        line = pattern.sub(replacement, line)
    return line.split()


def reference_build_vocab(token_lists, specials):
    """torchtext's build_vocab_from_iterator: itos, and the stoi that its C++ Vocab builds."""
    counter = Counter()
    for tokens in token_lists:
        counter.update(tokens)
    ordered = sorted(counter.items(), key=lambda kv: kv[0])
    ordered.sort(key=lambda kv: kv[1], reverse=True)
    ordered = OrderedDict(ordered)
    for s in specials:
        ordered.pop(s, None)
    itos = list(specials) + [t for t, c in ordered.items() if c >= 1]
    return itos, {t: i for i, t in enumerate(itos)}


def median_seconds(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
        gc.enable()
        del result
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="AG_NEWS-format CSV (.csv or .csv.gz)")
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="texts, cycling the file's rows")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per figure (median)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")

    _, texts = load_texts(args.data, args.rows)
    print(f"data: {args.data}, cycled to {len(texts):,} texts ({sum(map(len, texts)):,} chars); "
          f"median of {args.repeats} runs after 1 warm-up, gc off while timing")
    ref_tokens = [reference_tokenize(t) for t in texts]
    n_tokens = sum(map(len, ref_tokens))
    assert [basic_english(t) for t in texts] == ref_tokens, "basic_english differs from the reference"
    assert basic_english_batch(texts) == ref_tokens, "basic_english_batch differs from the reference"
    results: dict[str, float] = {}

    def report(section: str, name: str, seconds: float, ref_seconds: float, units: float, unit: str):
        print(f"  {section} {name:<42s} {seconds:8.3f} s {units / seconds / 1e6:8.2f} M{unit}/s "
              f"{ref_seconds / seconds:6.2f}x")

    # (a) tokenization: "streamed" consumes each text's tokens (counts them) and drops the list;
    # "kept" keeps every token list, as a tokenized corpus in memory does.
    print(f"(a) tokenization of {n_tokens:,} tokens")
    ref_s = median_seconds(lambda: sum(len(reference_tokenize(t)) for t in texts), args.repeats)
    per_s = median_seconds(lambda: sum(len(basic_english(t)) for t in texts), args.repeats)
    ref_k = median_seconds(lambda: [reference_tokenize(t) for t in texts], args.repeats)
    per_k = median_seconds(lambda: [basic_english(t) for t in texts], args.repeats)
    bat_k = median_seconds(lambda: basic_english_batch(texts), args.repeats)
    report("a", "reference, streamed", ref_s, ref_s, n_tokens, "tok")
    report("a", "textpipe basic_english, streamed", per_s, ref_s, n_tokens, "tok")
    report("a", "reference, kept", ref_k, ref_k, n_tokens, "tok")
    report("a", "textpipe basic_english, kept", per_k, ref_k, n_tokens, "tok")
    report("a", "textpipe basic_english_batch, kept", bat_k, ref_k, n_tokens, "tok")
    results.update(tokenize_per_text_x=ref_s / per_s, tokenize_per_text_kept_x=ref_k / per_k,
                   tokenize_batch_x=ref_k / bat_k)

    # (b) vocabulary from the tokenized corpus
    specials = ["<pad>", "<unk>"]
    assert build_vocab_from_iterator(ref_tokens, specials=specials).get_itos() == \
        reference_build_vocab(ref_tokens, specials)[0], "build_vocab_from_iterator differs"
    print(f"(b) vocabulary from {n_tokens:,} tokens")
    ref_b = median_seconds(lambda: reference_build_vocab(ref_tokens, specials), args.repeats)
    tp_b = median_seconds(lambda: build_vocab_from_iterator(ref_tokens, specials=specials), args.repeats)
    report("b", "reference Counter.update + 2 sorts + stoi", ref_b, ref_b, n_tokens, "tok")
    report("b", "textpipe build_vocab_from_iterator", tp_b, ref_b, n_tokens, "tok")
    results["build_vocab_x"] = ref_b / tp_b

    # (c) tokenize + encode of the whole corpus; min_freq=2 leaves some tokens out of vocabulary
    v = build_vocab_from_iterator(ref_tokens, min_freq=2, specials=specials)
    v.set_default_index(v["<unk>"])
    stoi, unk = v.get_stoi(), v["<unk>"]
    del ref_tokens

    def reference_encode():
        return [[stoi.get(tok, unk) for tok in reference_tokenize(t)] for t in texts]

    expected = reference_encode()
    for workers in (1, 2):
        ids, offsets = v.encode_flat(texts, num_workers=workers)
        assert ids.tolist() == [i for row in expected for i in row], "encode_flat differs"
        assert offsets[1:].tolist() == list(accumulate(map(len, expected)))
    del expected, ids, offsets
    print(f"(c) tokenize + encode, {len(texts):,} texts -> ids (vocab {len(v):,} tokens, OOV -> <unk>)")
    ref_c = median_seconds(reference_encode, args.repeats)
    one_c = median_seconds(lambda: v.encode_flat(texts), args.repeats)
    two_c = median_seconds(lambda: v.encode_flat(texts, num_workers=2), args.repeats)
    report("c", "reference tokenize + dict lookup per token", ref_c, ref_c, n_tokens, "tok")
    report("c", "textpipe Vocab.encode_flat, 1 core", one_c, ref_c, n_tokens, "tok")
    report("c", "textpipe Vocab.encode_flat(num_workers=2)", two_c, ref_c, n_tokens, "tok")
    results.update(tokenize_encode_1core_x=ref_c / one_c, tokenize_encode_2core_x=ref_c / two_c)

    headline = {"rows": len(texts), "tokens": n_tokens, "repeats": args.repeats}
    headline.update({k: round(x, 2) for k, x in results.items()})
    print(json.dumps(headline))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
