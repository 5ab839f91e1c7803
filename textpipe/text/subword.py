"""Hugging Face subword tokenizers as textpipe tokenizers: the names ``hf:FILE`` and ``hf:DIR_OR_NAME``.

``hf:path/tokenizer.json`` is any Hugging Face ``tokenizers`` file (BPE, WordPiece, Unigram ...): its token
strings, without special tokens, feed a textpipe ``Vocab`` like ``basic_english``'s words. ``hf:DIR_OR_NAME``
is a pretrained model's own tokenizer (its directory, or its name in the local Hugging Face cache): special
tokens added and truncated to the model's length, as that model expects (``--model hf:...`` uses it).
Either one travels with a checkpoint (``tokenizer_state``/``from_state``), and ``train_tokenizer`` trains a
new one (``textpipe tokenizer train``). Needs the ``hf`` extra: pip install "textpipe-classic[hf]".

    >>> tok = train_tokenizer(["the cat sat", "the cats sat down"], kind="wordpiece", vocab_size=40)
    >>> SubwordTokenizer(tok.to_str())("The cats")
    ['the', 'cats']
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

__all__ = ["SubwordTokenizer", "load_hf_tokenizer", "tokenizer_state", "from_state", "train_tokenizer",
           "model_itos", "unk_index", "fingerprint", "from_pretrained", "not_cached_message", "KINDS", "PREFIX"]

PREFIX = "hf:"
KINDS = ("bpe", "wordpiece", "unigram")
# the special tokens each trained kind reserves (first ids); WordPiece's are BERT's, so a tiny BERT can use it
_SPECIALS = {"bpe": ["<unk>", "<pad>"], "wordpiece": ["[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]"],
             "unigram": ["<unk>", "<pad>"]}
_EXTRA = 'pip install "textpipe-classic[hf]" (or: pip install tokenizers transformers)'


def _tokenizers():
    try:
        import tokenizers
    except ImportError:
        raise ValueError(f"Hugging Face tokenizers need the tokenizers package: {_EXTRA}") from None
    return tokenizers


class SubwordTokenizer:
    """A ``tokenizers.Tokenizer`` (from its JSON) as a function ``str -> list[str]``; picklable by its JSON.

    Args:
        json_str: the tokenizer, as ``tokenizer.json`` holds it.
        special_tokens: add the tokenizer's special tokens ([CLS] ... [SEP]) as its model expects.
        max_length: truncate to this many tokens, special tokens included (None: no truncation).
        files: other files of the model's tokenizer directory (name -> text), kept for `textpipe export`.
    """

    def __init__(self, json_str: str, *, special_tokens: bool = False, max_length: int | None = None,
                 files: dict | None = None) -> None:
        self.json_str, self.special_tokens, self.max_length = json_str, special_tokens, max_length
        self.files = dict(files or {})
        self.tokenizer = _tokenizers().Tokenizer.from_str(json_str)
        self.tokenizer.no_padding()
        if max_length:
            self.tokenizer.enable_truncation(max_length)
        else:
            self.tokenizer.no_truncation()

    def __call__(self, text: str) -> list[str]:
        return self.tokenizer.encode(text, add_special_tokens=self.special_tokens).tokens

    def __reduce__(self):  # DataLoader workers and pickled Vocabs: rebuilt from the JSON, no file needed
        return (SubwordTokenizer, (self.json_str,), {"special_tokens": self.special_tokens,
                                                     "max_length": self.max_length, "files": self.files})

    def __setstate__(self, state: dict) -> None:
        self.__init__(self.json_str, **state)

    def __repr__(self) -> str:
        model = json.loads(self.json_str).get("model", {}).get("type")
        return f"SubwordTokenizer({model}, size={self.tokenizer.get_vocab_size()})"


def model_itos(fn: SubwordTokenizer) -> list[str]:
    """The tokenizer's tokens in id order: the vocabulary of a model that reads its ids (``--model hf:``).

    Raises:
        ValueError: ids without a token, or two ids with the same token (textpipe's Vocab maps strings).
    """
    tok = fn.tokenizer
    n = tok.get_vocab_size(with_added_tokens=True)
    itos = [tok.id_to_token(i) for i in range(n)]
    if None in itos or len(set(itos)) != n:
        raise ValueError(f"the tokenizer's {n} ids do not map to {n} distinct tokens (a gap or a duplicate at id "
                         f"{next(i for i, t in enumerate(itos) if t is None or itos.index(t) != i)}); textpipe "
                         "cannot use it as a vocabulary")
    return itos


def unk_index(fn: SubwordTokenizer) -> int | None:
    """The id of the tokenizer's unknown token, or None (byte-level BPE has none: every text is covered)."""
    model = fn.tokenizer.model
    token = getattr(model, "unk_token", None)
    return fn.tokenizer.token_to_id(token) if token else getattr(model, "unk_id", None)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on") or \
        os.environ.get("TRANSFORMERS_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def not_cached_message(name: str) -> str:
    """The one-line error for a model name that is neither a directory nor in the local Hugging Face cache."""
    try:
        from huggingface_hub.constants import HF_HUB_CACHE as cache
    except ImportError:
        cache = "~/.cache/huggingface/hub"
    why = "HF_HUB_OFFLINE is set" if _offline() else "the Hugging Face Hub cannot be reached"
    return (f"{name!r} is not a directory and not in the local Hugging Face cache ({cache}), and {why}: "
            f"download it where there is a network (huggingface-cli download {name}) and copy it into that "
            "cache, or save it with save_pretrained(DIR) and pass hf:DIR")


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face Hub (HF_ENDPOINT) answers a TCP connect within `timeout` seconds: a machine
    without a network fails here at once instead of in the Hub client's retries (about a minute)."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)),
                                 timeout=timeout).close()
        return True
    except OSError:
        return False


def from_pretrained(cls, source: str, **kwargs):
    """`cls.from_pretrained(source)`: the local directory or cache first (never the network); then, unless
    HF_HUB_OFFLINE is set or the Hub does not answer within 3 s, the Hub. A name found nowhere is one
    ValueError naming where to put the files."""
    try:
        return cls.from_pretrained(source, local_files_only=True, **kwargs)
    except OSError:
        if Path(source).is_dir():
            raise
        if _offline() or not hub_reachable():
            raise ValueError(not_cached_message(source)) from None
    try:
        return cls.from_pretrained(source, **kwargs)
    except OSError:
        raise ValueError(not_cached_message(source)) from None


def load_hf_tokenizer(spec: str) -> SubwordTokenizer:
    """The tokenizer of ``hf:SPEC`` (the prefix optional): a ``tokenizer.json`` file (its tokens, no specials),
    or a model directory / cached model name (its ``AutoTokenizer``: specials, truncated to the model's length).

    Raises:
        ValueError: no such file, directory or cached model (one line: where to put the files), or the
            packages are missing.
    """
    spec = spec[len(PREFIX):] if spec.startswith(PREFIX) else spec
    path = Path(spec)
    if path.is_file():
        return SubwordTokenizer(path.read_text(encoding="utf-8"))
    if spec.endswith(".json") and not path.is_dir():
        raise ValueError(f"--tokenizer hf:{spec}: no such file (a tokenizers JSON file, e.g. from `textpipe "
                         "tokenizer train`)")
    _tokenizers()
    try:
        from transformers import AutoConfig, AutoTokenizer
    except ImportError:
        raise ValueError(f"hf:{spec} (a model's tokenizer) needs transformers: {_EXTRA}") from None
    tok = from_pretrained(AutoTokenizer, spec, use_fast=True)
    if not getattr(tok, "is_fast", False):
        raise ValueError(f"hf:{spec}: no fast (Rust) tokenizer could be made for this model")
    try:
        limit = getattr(from_pretrained(AutoConfig, spec), "max_position_embeddings", None)
    except (OSError, ValueError):
        limit = None
    lengths = [n for n in (tok.model_max_length, limit) if isinstance(n, int) and 0 < n < 1_000_000]
    tok.model_max_length = min(lengths) if lengths else 512
    with tempfile.TemporaryDirectory() as tmp:  # the files `textpipe export` writes back
        tok.save_pretrained(tmp)
        files = {p.name: p.read_text(encoding="utf-8") for p in Path(tmp).iterdir()
                 if p.is_file() and p.suffix in (".json", ".txt", ".model") and p.name != "tokenizer.json"}
    return SubwordTokenizer(tok.backend_tokenizer.to_str(), special_tokens=True, max_length=tok.model_max_length,
                            files=files)


def fingerprint(fn) -> str | None:
    """SHA-256 of what a subword tokenizer does (its JSON, special tokens, truncation), None for any other: the
    corpus cache's key, so that a tokenizer retrained at the same path does not reuse a stale encoded corpus."""
    if not isinstance(fn, SubwordTokenizer):
        return None
    import hashlib

    what = json.dumps([fn.json_str, fn.special_tokens, fn.max_length])
    return hashlib.sha256(what.encode("utf-8")).hexdigest()


def tokenizer_state(fn) -> dict | None:
    """What a checkpoint keeps of a subword tokenizer (its JSON and settings), or None for any other."""
    if not isinstance(fn, SubwordTokenizer):
        return None
    return {"json": fn.json_str, "special_tokens": fn.special_tokens, "max_length": fn.max_length,
            "files": dict(fn.files)}


def from_state(state: dict) -> SubwordTokenizer:
    """The tokenizer a checkpoint saved (`tokenizer_state`): no original file or directory needed."""
    return SubwordTokenizer(state["json"], special_tokens=bool(state.get("special_tokens")),
                            max_length=state.get("max_length"), files=state.get("files"))


def train_tokenizer(texts: Iterable[str], *, kind: str = "bpe", vocab_size: int = 8000, min_frequency: int = 2,
                    lowercase: bool = True):
    """Train a subword tokenizer on `texts` with Hugging Face ``tokenizers``; returns the ``Tokenizer``.

    Args:
        kind: ``bpe`` (byte-level, GPT-2 style: no unknown tokens), ``wordpiece`` (BERT's: ``##`` pieces,
            ``[UNK] [PAD] [CLS] [SEP] [MASK]`` at ids 0-4) or ``unigram`` (SentencePiece's, ``▁`` marks a space).
        vocab_size: the number of tokens, specials included.
        min_frequency: pairs seen fewer times are not merged (bpe, wordpiece).
        lowercase: lower-case (and, for wordpiece, strip accents) before splitting.

    Raises:
        ValueError: an unknown kind or a vocab_size below 2 + the specials.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < len(_SPECIALS[kind]) + 2:
        raise ValueError(f"vocab_size must be an int >= {len(_SPECIALS[kind]) + 2}, got {vocab_size!r}")
    tk = _tokenizers()
    from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

    specials = _SPECIALS[kind]
    norm = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
    if kind == "bpe":
        tok = tk.Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    elif kind == "wordpiece":
        tok = tk.Tokenizer(models.WordPiece(unk_token="[UNK]"))
        norm = [normalizers.BertNormalizer(lowercase=lowercase, strip_accents=lowercase or None)]
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                            special_tokens=specials, show_progress=False)
    else:
        tok = tk.Tokenizer(models.Unigram())
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>",
                                          show_progress=False)
    tok.normalizer = normalizers.Sequence(norm)
    tok.train_from_iterator(texts, trainer=trainer)
    if kind == "wordpiece":  # [CLS] text [SEP], as BERT reads it (used only with special tokens on)
        from tokenizers.processors import TemplateProcessing
        tok.post_processor = TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return tok
