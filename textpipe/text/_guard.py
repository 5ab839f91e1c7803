"""The tokenizer trap: a `Vocab` built from tokens (torchtext's `vocab()` / `build_vocab_from_iterator`) without
`tokenizer=` gets basic_english, the torchtext default, to encode texts with. When its tokens show they came
from another tokenizer (a token basic_english cannot produce: `Hello,`, `World`), encoding a text would map
them all to `<unk>` without a word; `check_tokenizer` makes that an error that says to pass `tokenizer=`.
Encoding token lists is unaffected.
"""
from __future__ import annotations

from textpipe.text.tokenizer import basic_english

__all__ = ["NOT_GIVEN", "mark_assumed", "check_tokenizer"]

NOT_GIVEN = object()  # the default of `tokenizer=`: basic_english, but checked against the tokens


def mark_assumed(vocab, specials) -> None:
    """Record that `vocab`'s tokenizer was not given (its `specials` are not checked)."""
    vocab.__dict__["_tokenizer_assumed"] = frozenset(specials or ())


def check_tokenizer(vocab) -> None:
    """Raise ValueError when `vocab`'s tokenizer was not given and a token shows it is not basic_english
    (checked once; later calls are free)."""
    specials = vocab.__dict__.get("_tokenizer_assumed")
    if specials is None:
        return
    foreign = next((t for t in vocab.get_itos() if t not in specials and basic_english(t) != [t]), None)
    if foreign is None:
        vocab.__dict__["_tokenizer_assumed"] = None  # checked: basic_english fits every token
        return
    raise ValueError(f"this Vocab was built without tokenizer=, so it would encode texts with basic_english, but "
                     f"its token {foreign!r} is one basic_english never produces: the tokens came from another "
                     "tokenizer, and texts would come out mostly <unk>. Pass the tokenizer the tokens came from, "
                     "e.g. build_vocab_from_iterator(..., tokenizer='split') or vocab(..., tokenizer=my_fn) (or "
                     "encode token lists: vocab.encode(tokenizer(text)))")
