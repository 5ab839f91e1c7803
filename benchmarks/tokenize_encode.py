"""Benchmark: tokenization, vocabulary building and corpus encoding, textpipe vs torchtext's algorithm.

    cd benchmarks && python3 tokenize_encode.py [--data PATH] [--rows 120000] [--repeats 5] [--big-vocab 1000000]

The reference is the spec's literal algorithm (torchtext 0.18's ``_basic_english_normalize``: lower,
then 12 ``re.sub`` calls, then ``split``), a ``Counter`` + two sorts for the vocabulary, and a per-token
dict lookup for encoding. Every contender's output is checked equal to the reference's before timing.
Each figure is the median of ``--repeats`` runs after one warm-up run, the contenders of a section
interleaved, with the garbage collector off during the timed call (as ``timeit`` does) for every
contender alike. Ratios are of wall time; CPU-time ratios are printed too, as they are steadier while
other processes share the machine. The last line is one JSON object with the headline ratios.

Sections: (a) tokenization, (b) vocabulary from tokens, (c) tokenize + encode, (d) the same encode with
the vocabulary padded to ``--big-vocab`` tokens (tokens the texts never use, as a large real vocabulary
mostly is): encode cost must not depend on the vocabulary's size; (e) a ``split`` vocabulary against
``basic_english``; (f) ``build_vocab_from_texts`` (raw text chunks, streamed) against tokenizing and
``build_vocab_from_iterator``.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import time
from collections import Counter, OrderedDict
from itertools import accumulate

from _common import DEFAULT_DATA, DEFAULT_ROWS, load_texts, reference_tokenize

from textpipe.tokenizer import basic_english, basic_english_batch
from textpipe.vocab import Vocab, build_vocab_from_iterator, build_vocab_from_texts


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


def timed(contenders: dict, repeats: int) -> dict[str, tuple[float, float]]:
    """``{name: (median wall s, median CPU s)}``: one warm-up each, then ``repeats`` interleaved rounds.

    Rounds run every contender once in turn, so load from other processes hits all of them alike.
    CPU time (this process, all threads) is the steadier measure on a busy machine for one thread.
    """
    for fn in contenders.values():
        fn()
    walls: dict[str, list[float]] = {name: [] for name in contenders}
    cpus: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            gc.collect()
            gc.disable()
            wall, cpu = time.perf_counter(), time.process_time()
            result = fn()
            walls[name].append(time.perf_counter() - wall)
            cpus[name].append(time.process_time() - cpu)
            gc.enable()
            del result
    return {name: (statistics.median(walls[name]), statistics.median(cpus[name])) for name in contenders}


def real_torchtext(python: str, args, texts, vocab) -> dict:
    """(g) the same workloads through torchtext 0.18 itself (its own venv), next to textpipe timed here again.

    Ratios are torchtext wall / textpipe wall; `vocab` is the min_freq=2 vocabulary of section (c), whose ids
    the peer's must equal.
    """
    from _torchtext_peer import ids_digest, run_peer

    peer = run_peer(python, "tokenize_encode", data=args.data, rows=len(texts), repeats=args.repeats)
    ids, offsets = vocab.encode_flat(texts)
    bounds = offsets.tolist()
    assert ids_digest(ids[a:b].tolist() for a, b in zip(bounds, bounds[1:])) == peer["encode_digest"], \
        "textpipe's ids differ from torchtext's"
    tokens = basic_english_batch(texts)
    ours = timed({"tokenize_streamed": lambda: sum(len(basic_english(t)) for t in texts),
                  "build_vocab": lambda: build_vocab_from_iterator(tokens, specials=["<pad>", "<unk>"]),
                  "tokenize_encode": lambda: vocab.encode_flat(texts)}, args.repeats)
    print(f"(g) real torchtext {peer['torchtext']} (torch {peer['torch']}, {python}) vs textpipe, same texts:")
    out = {}
    for key, what in (("tokenize_streamed", "get_tokenizer('basic_english') per text vs basic_english"),
                      ("build_vocab", "build_vocab_from_iterator vs textpipe's"),
                      ("tokenize_encode", "vocab(tokenizer(text)) per text vs Vocab.encode_flat, 1 core")):
        (tw, tc), (ow, oc) = peer[key], ours[key]
        out[f"torchtext_{key}_x"], out[f"torchtext_{key}_cpu_x"] = round(tw / ow, 2), round(tc / oc, 2)
        print(f"  g {what:<58s} {tw:7.3f} s vs {ow:7.3f} s: {tw / ow:5.2f}x (CPU {tc / oc:5.2f}x)")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="AG_NEWS-format CSV (.csv or .csv.gz)")
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="texts, cycling the file's rows")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per figure (median)")
    parser.add_argument("--big-vocab", type=int, default=1_000_000, help="vocabulary size of section (d)")
    parser.add_argument("--torchtext-python", metavar="PYTHON", help="also run the workloads through the real "
                        "torchtext 0.18 in this interpreter, e.g. /work/venvs/torchtext/bin/python")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")

    load_start = os.getloadavg()[0]
    _, texts = load_texts(args.data, args.rows)
    print(f"data: {args.data}, cycled to {len(texts):,} texts ({sum(map(len, texts)):,} chars); "
          f"median of {args.repeats} interleaved runs after 1 warm-up, gc off while timing; "
          f"{os.cpu_count()} CPUs, load average {load_start:.2f} at start")
    ref_tokens = [reference_tokenize(t) for t in texts]
    n_tokens = sum(map(len, ref_tokens))
    assert [basic_english(t) for t in texts] == ref_tokens, "basic_english differs from the reference"
    assert basic_english_batch(texts) == ref_tokens, "basic_english_batch differs from the reference"
    results: dict[str, float] = {}

    cpu_ratios: dict[str, float] = {}

    def report(section: str, figures: dict[str, tuple[float, float]], units: float) -> list[float]:
        ref_wall, ref_cpu = next(iter(figures.values()))
        for name, (wall, cpu) in figures.items():
            print(f"  {section} {name:<44s} {wall:7.3f} s {units / wall / 1e6:6.2f} Mtok/s "
                  f"{ref_wall / wall:6.2f}x   (CPU {cpu:6.3f} s, {ref_cpu / cpu:5.2f}x)")
        cpu_ratios.update({name: ref_cpu / cpu for name, (_, cpu) in figures.items()})
        return [ref_wall / wall for wall, _ in figures.values()]

    # (a) tokenization: "streamed" consumes each text's tokens (counts them) and drops the list;
    # "kept" keeps every token list, as a tokenized corpus in memory does.
    print(f"(a) tokenization of {n_tokens:,} tokens")
    _, per_x = report("a", timed({
        "reference, streamed": lambda: sum(len(reference_tokenize(t)) for t in texts),
        "textpipe basic_english, streamed": lambda: sum(len(basic_english(t)) for t in texts),
    }, args.repeats), n_tokens)
    _, kept_x, batch_x = report("a", timed({
        "reference, kept": lambda: [reference_tokenize(t) for t in texts],
        "textpipe basic_english, kept": lambda: [basic_english(t) for t in texts],
        "textpipe basic_english_batch, kept": lambda: basic_english_batch(texts),
    }, args.repeats), n_tokens)
    results.update(tokenize_per_text_x=per_x, tokenize_per_text_kept_x=kept_x, tokenize_batch_x=batch_x)

    # (b) vocabulary from the tokenized corpus
    specials = ["<pad>", "<unk>"]
    assert build_vocab_from_iterator(ref_tokens, specials=specials).get_itos() == \
        reference_build_vocab(ref_tokens, specials)[0], "build_vocab_from_iterator differs"
    print(f"(b) vocabulary from {n_tokens:,} tokens")
    _, results["build_vocab_x"] = report("b", timed({
        "reference Counter.update + 2 sorts + stoi": lambda: reference_build_vocab(ref_tokens, specials),
        "textpipe build_vocab_from_iterator": lambda: build_vocab_from_iterator(ref_tokens, specials=specials),
    }, args.repeats), n_tokens)

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
        assert offsets[1:].tolist() == list(accumulate(map(len, expected))), "offsets differ"
    del expected, ids, offsets
    print(f"(c) tokenize + encode, {len(texts):,} texts -> ids (vocab {len(v):,} tokens, OOV -> <unk>)")
    figures_c = timed({
        "reference tokenize + dict lookup per token": reference_encode,
        "textpipe Vocab.encode_flat, 1 core": lambda: v.encode_flat(texts),
        "textpipe Vocab.encode_flat(num_workers=2)": lambda: v.encode_flat(texts, num_workers=2),
    }, args.repeats)
    _, one_x, two_x = report("c", figures_c, n_tokens)
    results.update(tokenize_encode_1core_x=one_x, tokenize_encode_2core_x=two_x)

    # (d) the same encode with a vocabulary of --big-vocab tokens: the cost must not grow with it
    itos = v.get_itos()
    start = time.perf_counter()
    big = Vocab(itos + [f"zq{i}x" for i in range(max(args.big_vocab - len(itos), 0))], default_index=v["<unk>"])
    made = time.perf_counter() - start
    start = time.perf_counter()
    big.encode_flat(texts[:1])  # builds the big vocabulary's lookup table once
    table_s = time.perf_counter() - start
    big_stoi = big.get_stoi()
    assert big.encode_flat(texts)[0].tolist() == v.encode_flat(texts)[0].tolist(), "big-vocab ids differ"
    print(f"(d) tokenize + encode, vocab {len(v):,} vs {len(big):,} tokens (same texts, same ids; Vocab() "
          f"{made:.2f} s, its lookup table {table_s:.2f} s, once)")
    figures = timed({
        f"reference, vocab {len(v):,}": reference_encode,
        f"reference, vocab {len(big):,}":
            lambda: [[big_stoi.get(tok, unk) for tok in reference_tokenize(t)] for t in texts],
        f"encode_flat, 1 core, vocab {len(v):,}": lambda: v.encode_flat(texts),
        f"encode_flat, 1 core, vocab {len(big):,}": lambda: big.encode_flat(texts),
        f"encode_flat, 2 cores, vocab {len(v):,}": lambda: v.encode_flat(texts, num_workers=2),
        f"encode_flat, 2 cores, vocab {len(big):,}": lambda: big.encode_flat(texts, num_workers=2),
    }, args.repeats)
    report("d", figures, n_tokens)
    walls = [wall for wall, _ in figures.values()]
    cpus = [cpu for _, cpu in figures.values()]
    results.update(big_vocab_slowdown_1core=walls[3] / walls[2], big_vocab_slowdown_2core=walls[5] / walls[4],
                   big_vocab_slowdown_1core_cpu=cpus[3] / cpus[2], big_vocab_slowdown_reference=walls[1] / walls[0])
    print(f"  d big-vocab slowdown: encode_flat 1 core {walls[3] / walls[2]:.2f}x (CPU {cpus[3] / cpus[2]:.2f}x), "
          f"2 cores {walls[5] / walls[4]:.2f}x, reference {walls[1] / walls[0]:.2f}x")
    del big, big_stoi

    # (e) a split vocabulary: the byte rule too, no per-token Python
    split_tokens = [t.split() for t in texts]
    sv = build_vocab_from_iterator(split_tokens, min_freq=2, specials=specials)
    sv = Vocab(sv.get_itos(), default_index=sv["<unk>"], tokenizer="split")
    split_stoi, split_unk = sv.get_stoi(), sv["<unk>"]
    n_split = sum(map(len, split_tokens))
    del split_tokens

    def reference_split_encode():
        return [[split_stoi.get(tok, split_unk) for tok in t.split()] for t in texts]

    assert sv.encode_flat(texts)[0].tolist() == [i for row in reference_split_encode() for i in row]
    print(f"(e) split tokenizer: encode {n_split:,} tokens (vocab {len(sv):,}) vs basic_english ({n_tokens:,})")
    figures = timed({
        "reference str.split + dict lookup per token": reference_split_encode,
        "textpipe encode_flat, split, 1 core": lambda: sv.encode_flat(texts),
        "textpipe encode_flat, basic_english, 1 core": lambda: v.encode_flat(texts),
    }, args.repeats)
    (ref_w, ref_c), (split_w, split_c), (basic_w, basic_c) = figures.values()
    for name, (wall, cpu) in figures.items():  # the ratio is against the split reference: split rows only
        toks = n_tokens if "basic" in name else n_split
        ratio = "" if "basic" in name else f"{ref_w / wall:6.2f}x   (CPU {cpu:6.3f} s, {ref_c / cpu:5.2f}x)"
        print(f"  e {name:<44s} {wall:7.3f} s {toks / wall / 1e6:6.2f} Mtok/s {ratio}")
    results.update(split_encode_x=ref_w / split_w, split_vs_basic_mtok=(n_split / split_w) / (n_tokens / basic_w))

    # (f) vocabulary straight from raw text chunks, streamed (as from textpipe.data.table.iter_table)
    chunks = [texts[i:i + 8192] for i in range(0, len(texts), 8192)]
    assert build_vocab_from_texts(chunks).get_itos() == \
        build_vocab_from_iterator(map(basic_english, texts), specials=specials).get_itos()
    print(f"(f) vocabulary from {len(texts):,} raw texts in chunks of 8192 ({n_tokens:,} tokens)")
    figures = timed({
        "reference tokenize + Counter.update + 2 sorts": lambda: reference_build_vocab(map(reference_tokenize, texts),
                                                                                          specials),
        "basic_english + build_vocab_from_iterator":
            lambda: build_vocab_from_iterator(map(basic_english, texts), specials=specials),
        "build_vocab_from_texts, num_workers=1": lambda: build_vocab_from_texts(chunks, num_workers=1),
        "build_vocab_from_texts, num_workers=2": lambda: build_vocab_from_texts(chunks, num_workers=2),
    }, args.repeats)
    report("f", figures, n_tokens)
    walls = [wall for wall, _ in figures.values()]
    results.update(from_texts_vs_iterator_1core=walls[1] / walls[2], from_texts_vs_iterator_2core=walls[1] / walls[3],
                   from_texts_2core_x=walls[0] / walls[3])

    if args.torchtext_python:
        results.update(real_torchtext(args.torchtext_python, args, texts, v))
    headline = {"rows": len(texts), "tokens": n_tokens, "repeats": args.repeats,
                "loadavg_start": round(load_start, 2)}
    headline.update({k: round(x, 2) for k, x in results.items()})
    # CPU-time ratios of the one-thread contenders: steadier than wall time on a shared machine
    headline.update(tokenize_per_text_cpu_x=round(cpu_ratios["textpipe basic_english, streamed"], 2),
                    encode_mtok_s_20k_1core=round(n_tokens / figures_c["textpipe Vocab.encode_flat, 1 core"][0] / 1e6, 2),
                    tokenize_encode_1core_cpu_x=round(cpu_ratios["textpipe Vocab.encode_flat, 1 core"], 2))
    print(json.dumps(headline))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
