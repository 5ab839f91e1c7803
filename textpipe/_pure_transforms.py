"""torchtext 0.18's transforms that need no pretrained file: ``MaskTransform`` and ``RegexTokenizer``.

Public through ``textpipe.transforms`` (``from textpipe.transforms import MaskTransform, RegexTokenizer``).
Both compile with ``torch.jit.script``. ``MaskTransform`` draws the same random numbers, in the same order,
as torchtext's, so a seeded run masks the same positions.

Run the tests: python3 -m pytest -q tests/test_pure_transforms.py
"""
import functools
import re
from typing import Any, Callable, List, Sequence, Tuple

import torch
from torch import Tensor, nn

__all__ = ["MaskTransform", "RegexTokenizer"]


class MaskTransform(nn.Module):
    """Masked-language-model masking of a ``(B, T)`` batch of token ids (BERT's 80/10/10 rule).

    In each sequence ``int(T * mask_prob)`` positions are drawn at random; of those, ``[BOS]`` (unless
    ``mask_bos``) and ``[PAD]`` positions are dropped, and if no position is left in the whole batch,
    position ``[0, 0]`` is taken so that a loss over the chosen positions is never empty. A chosen token is
    replaced by ``mask_idx`` with probability ``mask_mask_prob`` (0.8), by a random id in
    ``[0, vocab_len)`` with probability ``rand_mask_prob`` (0.1), and otherwise kept. The two probabilities
    are class attributes, read at each call (torchtext's tests patch them).

    Args:
        vocab_len: The number of ids random replacements are drawn from (the vocabulary size).
        mask_idx: The ``[MASK]`` id.
        bos_idx: The ``[BOS]`` id.
        pad_idx: The ``[PAD]`` id; padding is never chosen.
        mask_bos: Whether ``[BOS]`` positions may be chosen.
        mask_prob: The fraction of each sequence's positions drawn.

    Returns (from ``forward``):
        ``masked_tokens`` (B, T), same dtype as the input; ``target_tokens`` (N,), the original ids at the
        N chosen positions, row by row; ``mask`` (B, T) ``torch.int``, 1 at the chosen positions.

    Example:
        >>> t = MaskTransform(vocab_len=7, mask_idx=5, bos_idx=6, pad_idx=4, mask_prob=1.0)
        >>> masked, targets, mask = t(torch.tensor([[6, 0, 1, 2, 3], [6, 0, 1, 4, 4]]))
        >>> mask.tolist(), targets.tolist()
        ([[0, 1, 1, 1, 1], [0, 1, 1, 0, 0]], [0, 1, 2, 3, 0, 1])
    """

    mask_mask_prob = 0.8  # a chosen token becomes [MASK]
    rand_mask_prob = 0.1  # a chosen token becomes a random id

    def __init__(self, vocab_len: int, mask_idx: int, bos_idx: int, pad_idx: int, mask_bos: bool = False,
                 mask_prob: float = 0.15) -> None:
        super().__init__()
        if isinstance(vocab_len, bool) or not isinstance(vocab_len, int) or vocab_len < 1:
            raise ValueError(f"vocab_len must be an int >= 1 (the vocabulary size), got {vocab_len!r}")
        if not 0.0 <= mask_prob <= 1.0:
            raise ValueError(f"mask_prob must be in [0, 1], got {mask_prob!r}")
        self.vocab_len, self.mask_idx, self.bos_idx, self.pad_idx = vocab_len, mask_idx, bos_idx, pad_idx
        self.mask_bos, self.mask_prob = mask_bos, float(mask_prob)

    def forward(self, tokens: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        if not torch.jit.is_scripting():
            _check_tokens(tokens)
        B, T = tokens.size(0), tokens.size(1)
        n = int(T * self.mask_prob)
        # subtle: torchtext's order of random draws (a CPU randperm per row, then rand_like, then
        # randint_like), so that the same seed chooses and replaces the same positions.
        chosen = torch.zeros((B, T), dtype=torch.bool)
        for i in range(B):
            chosen[i] = torch.randperm(T) < n  # n random positions of row i
        chosen = chosen.to(tokens.device)
        if not self.mask_bos:
            chosen = chosen & (tokens != self.bos_idx)
        chosen = chosen & (tokens != self.pad_idx)
        if not bool(chosen.any()):
            chosen[0, 0] = True
        probs = torch.rand_like(tokens, dtype=torch.float)
        to_mask = chosen & (probs >= 1 - self.mask_mask_prob)
        to_random = chosen & (probs < self.rand_mask_prob)
        random_ids = torch.randint_like(tokens, high=self.vocab_len)
        masked = torch.where(to_mask, torch.full_like(tokens, self.mask_idx), tokens)
        masked = torch.where(to_random, random_ids, masked)  # where both apply, the random id wins (as in torchtext)
        return masked, torch.masked_select(tokens, chosen), chosen.to(torch.int)

    def __prepare_scriptable__(self) -> "MaskTransform":
        # TorchScript compiles instance attributes only: pin the class-level probabilities on a copy.
        copy = MaskTransform(self.vocab_len, self.mask_idx, self.bos_idx, self.pad_idx, self.mask_bos, self.mask_prob)
        copy.mask_mask_prob, copy.rand_mask_prob = float(self.mask_mask_prob), float(self.rand_mask_prob)
        return copy


@torch.jit.unused
def _check_tokens(tokens: Any) -> None:
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.is_floating_point() or tokens.is_complex():
        what = f"a {tokens.dim()}-D {tokens.dtype} tensor" if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise TypeError(f"MaskTransform expects a 2-D (batch, seq_len) integer tensor of token ids, got {what}; "
                        f"for one sequence use tokens.unsqueeze(0)")
    if tokens.size(1) == 0:
        raise ValueError("MaskTransform needs seq_len >= 1, got a (B, 0) tensor")


class RegexTokenizer(nn.Module):
    r"""Apply ``(pattern, replacement)`` pairs in order to a line, then split it at spaces (torchtext's).

    Each pattern replaces every match (leftmost first, non-overlapping, and no empty match right after a
    match, as RE2's ``GlobalReplace`` did); the result is split at the space character only (a tab or
    newline stays inside a token unless a pattern replaced it) and empty tokens are dropped. Patterns are
    Python ``re`` patterns compiled with ``re.ASCII``, so ``\w \d \b`` are the ASCII classes, and ``\s`` is
    RE2's ``[\t\n\f\r ]`` (no vertical tab); RE2-only syntax (``\pL``, ``[[:alpha:]]``) is not supported.
    A replacement is literal text except ``\1``..``\9`` (a group) and ``\\`` (a backslash), RE2's rewrite
    syntax.

    ``torch.jit.script`` compiles it (the substitutions run in Python's ``re``); ``torch.jit.save`` cannot
    export the scripted module, since TorchScript has no regular expressions.

    Raises:
        ValueError: A pattern that does not compile, or a replacement with a bad escape or a group the
            pattern does not have (the pattern is named).

    Example:
        >>> RegexTokenizer([(r"\.", " . "), (r"\s+", " ")])("Basic  Regex.\tDone")
        ['Basic', 'Regex', '.', 'Done']
    """

    __jit_unused_properties__ = ["is_jitable"]
    patterns: List[str]
    replacements: List[str]

    def __init__(self, patterns_list: Sequence[Tuple[str, str]]) -> None:
        super().__init__()
        self.patterns, self.replacements = [], []
        for i, pair in enumerate(patterns_list):
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
                raise ValueError(f"patterns_list[{i}] must be a (pattern, replacement) pair of str, got {pair!r}")
            _compile(*pair)  # fail here, naming the pattern, not at the first call
            self.patterns.append(pair[0])
            self.replacements.append(pair[1])
        self._compiled: Any = [_compile(p, r) for p, r in zip(self.patterns, self.replacements)]

    @property
    def is_jitable(self) -> bool:
        """Whether this module is the form ``torch.jit.script`` compiles (what ``__prepare_scriptable__`` returns)."""
        return self._compiled is None

    def forward(self, line: str) -> List[str]:
        if torch.jit.is_scripting():
            return _tokenize(line, self.patterns, self.replacements)
        return self._eager_forward(line)

    @torch.jit.unused
    def _eager_forward(self, line: str) -> List[str]:
        if not isinstance(line, str):
            raise TypeError(f"RegexTokenizer takes one line (a str), got {type(line).__name__}; "
                            f"for a batch, call it on each line")
        for pattern, rewrite in self._compiled or [_compile(p, r) for p, r in zip(self.patterns, self.replacements)]:
            line = _global_replace(pattern, rewrite, line)
        return [token for token in line.split(" ") if token]

    def __prepare_scriptable__(self) -> "RegexTokenizer":
        copy = RegexTokenizer(list(zip(self.patterns, self.replacements)))
        copy._compiled = None  # the scripted form keeps only the strings; TorchScript cannot hold re.Pattern
        return copy


@torch.jit.ignore
def _tokenize(line: str, patterns: List[str], replacements: List[str]) -> List[str]:
    """The scripted ``RegexTokenizer.forward`` calls this in Python (TorchScript has no regular expressions)."""
    for pattern, rewrite in (_compile(p, r) for p, r in zip(patterns, replacements)):
        line = _global_replace(pattern, rewrite, line)
    return [token for token in line.split(" ") if token]


def _global_replace(pattern: re.Pattern, rewrite: Callable[[re.Match], str], line: str) -> str:
    """RE2's ``GlobalReplace``: like ``pattern.sub``, but an empty match right where the last match ended is
    skipped (Python's ``sub`` takes it: ``re.sub("x*", "-", "xa")`` is ``'--a-'``, RE2 gives ``'-a-'``)."""
    if not _can_match_empty(pattern):
        return pattern.sub(rewrite, line)  # no empty matches: the same result, at C speed
    out, pos, last_end = [], 0, -1
    while pos <= len(line):
        m = pattern.search(line, pos)
        if m is None:
            break
        start, end = m.span()
        out.append(line[pos:start])
        if start == end == last_end:  # skip ahead one character, keeping it
            out.append(line[start:start + 1])
            pos = start + 1
            continue
        out.append(rewrite(m))
        pos = last_end = end
    out.append(line[pos:])
    return "".join(out)


@functools.lru_cache(maxsize=256)
def _can_match_empty(pattern: re.Pattern) -> bool:
    try:  # the parser's minimum width; a private module, so any surprise means "assume it can"
        from re import _parser as sre_parse  # Python >= 3.11
    except ImportError:  # pragma: no cover (Python 3.10)
        import sre_parse
    try:
        return sre_parse.parse(pattern.pattern, pattern.flags).getwidth()[0] == 0
    except Exception:  # pragma: no cover
        return True


_RE2_SPACE = r"\t\n\f\r "  # RE2's \s: no vertical tab (Python's ASCII \s has it)


def _re2_classes(pattern: str) -> str:
    r"""Rewrite ``\s``/``\S`` to RE2's meaning; every other character and escape is left as it is."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if nxt == "s":
                out.append(_RE2_SPACE if in_class else f"[{_RE2_SPACE}]")
            elif nxt == "S" and not in_class:
                out.append(f"[^{_RE2_SPACE}]")
            else:
                out.append(pattern[i:i + 2])
            i += 2
            continue
        if c == "[" and not in_class:
            in_class = True
            out.append(c)
            i += 1
            # subtle: a ']' right after '[' or '[^' is a literal member, not the end of the class
            for prefix in ("^", "]"):
                if pattern.startswith(prefix, i):
                    out.append(prefix)
                    i += 1
            continue
        if c == "]" and in_class:
            in_class = False
        out.append(c)
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=256)
def _compile(pattern: str, replacement: str) -> tuple[re.Pattern, Callable[[re.Match], str]]:
    """``(compiled pattern, match -> the text to insert)`` for an RE2 pattern and rewrite string."""
    try:
        compiled = re.compile(_re2_classes(pattern), re.ASCII)
    except re.error as e:
        raise ValueError(f"RegexTokenizer pattern {pattern!r} does not compile: {e}") from None
    if "\\" not in replacement:
        return compiled, lambda m: replacement  # literal text
    parts: list[str | int] = []  # literal text, or a group number
    i = 0
    while i < len(replacement):
        c = replacement[i]
        if c != "\\":
            parts.append(c)
        elif i + 1 < len(replacement) and replacement[i + 1] == "\\":
            parts.append("\\")
            i += 1
        elif i + 1 < len(replacement) and replacement[i + 1].isdigit() and replacement[i + 1].isascii():
            group = int(replacement[i + 1])
            if group > compiled.groups:
                raise ValueError(f"replacement {replacement!r} refers to group {group}, but the pattern {pattern!r} "
                                 f"has {compiled.groups} group(s)")
            parts.append(group)
            i += 1
        else:
            raise ValueError(f"replacement {replacement!r} for pattern {pattern!r} has a bad escape at position {i}: "
                             f"only \\0-\\9 and \\\\ are allowed (RE2's rewrite syntax)")
        i += 1

    def rewrite(m: re.Match) -> str:
        return "".join(p if isinstance(p, str) else (m.group(p) or "") for p in parts)

    return compiled, rewrite
