"""torchtext's ``torchtext.transforms`` for the classic pipeline, as ``nn.Module``s (spec §5-§7).

``ToTensor``, ``PadTransform``, ``VocabTransform``, ``Truncate``, ``AddToken``, ``LabelToIndex``,
``StrToIntTransform`` and ``Sequential``, each a thin module around a function of ``textpipe.functional``
or a ``Vocab``, so they compose in ``Sequential``/``nn.Sequential`` as torchtext's did; and torchtext 0.18's
other transforms that need no pretrained file, ``MaskTransform`` and ``RegexTokenizer``.

``torch.jit.script`` works on every one of them and on a ``Sequential`` of them, as in torchtext.
``VocabTransform`` and ``LabelToIndex`` hold a plain-Python ``Vocab``: scripting compiles a copy of its
token->id table taken at that moment (``__prepare_scriptable__``, as torchtext swapped in its TorchBind
vocab), so the scripted module also saves with ``torch.jit.save``.

Run the tests: python3 -m pytest -q tests/test_transforms.py
"""
from typing import Any, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from textpipe import functional
from textpipe._pure_transforms import MaskTransform, RegexTokenizer
from textpipe.text.vocabulary import Vocab

__all__ = ["ToTensor", "PadTransform", "VocabTransform", "Truncate", "AddToken", "LabelToIndex",
           "StrToIntTransform", "Sequential", "MaskTransform", "RegexTokenizer", "TransformArgumentError",
           "TransformTypeError"]


class TransformArgumentError(ValueError, AssertionError):
    """A bad constructor argument where torchtext used ``assert``: ``except AssertionError`` still catches it."""


class TransformTypeError(TypeError, AssertionError):
    """An argument of the wrong type where torchtext used ``assert isinstance(...)``."""


class ToTensor(nn.Module):
    """``to_tensor`` as a module.

    Example:
        >>> ToTensor(padding_value=1)([[5], [6, 7]])
        tensor([[5, 1],
                [6, 7]])
    """

    def __init__(self, padding_value: int | float | None = None, dtype: torch.dtype = torch.long) -> None:
        super().__init__()
        self.padding_value, self.dtype = padding_value, dtype
        self._padding: Optional[float] = None if padding_value is None else float(padding_value)

    def forward(self, input: Any) -> torch.Tensor:
        return functional.to_tensor(input, self._padding, self.dtype)


class PadTransform(nn.Module):
    """Right-pad the last dimension up to ``max_length`` with ``pad_value``; never truncate.

    ``pad_value`` is cast to the input's dtype (0.5 pads a long tensor with 0, as in torchtext).

    Example:
        >>> PadTransform(5, 0)(torch.tensor([1, 2, 3]))
        tensor([1, 2, 3, 0, 0])
    """

    def __init__(self, max_length: int, pad_value: int | float) -> None:
        super().__init__()
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 0:
            raise ValueError(f"max_length must be an int >= 0, got {max_length!r}")
        self.max_length, self.pad_value = max_length, float(pad_value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting() and not isinstance(x, torch.Tensor):
            _not_a_tensor(x)
        missing = self.max_length - x.size(-1)
        return F.pad(x, (0, missing), value=self.pad_value) if missing > 0 else x


@torch.jit.unused
def _not_a_tensor(x: Any) -> None:
    raise TypeError(f"PadTransform expects a tensor, got {type(x).__name__}; use torch.tensor(x) or ToTensor() first")


class Truncate(nn.Module):
    """Cut a sequence (or each sequence of a batch) of str or ids to ``max_seq_len``.

    Example:
        >>> Truncate(2)(["a", "b", "c"])
        ['a', 'b']
    """

    def __init__(self, max_seq_len: int) -> None:
        super().__init__()
        self.max_seq_len = max_seq_len

    def forward(self, input: Any) -> Any:
        return functional.truncate(input, self.max_seq_len)


class AddToken(nn.Module):
    """Add ``token`` (an id or a str) at the start (``begin=True``) or end of each sequence.

    Example:
        >>> AddToken(0, begin=False)([[5, 6], [7]])
        [[5, 6, 0], [7, 0]]
    """

    def __init__(self, token: int | str, begin: bool = True) -> None:
        super().__init__()
        self.token, self.begin = token, begin

    def forward(self, input: Any) -> Any:
        return functional.add_token(input, self.token, self.begin)


class StrToIntTransform(nn.Module):
    """``str_to_int`` as a module: ``["1", "2"] -> [1, 2]`` (also for a batch).

    Example:
        >>> StrToIntTransform()([["1"], ["2", "3"]])
        [[1], [2, 3]]
    """

    def forward(self, input: Any) -> Any:
        return functional.str_to_int(input)


class _ScriptVocab(nn.Module):
    """What a scripted module holds instead of a ``Vocab``: its token->id table and default index, copied once.

    TorchScript compiles only typed attributes, and a ``Vocab`` is a plain Python object over a packed byte
    table; this snapshot is a ``Dict[str, int]`` (later changes to the ``Vocab`` are not seen by it).
    """

    stoi: Dict[str, int]
    default_index: Optional[int]

    def __init__(self, vocab: Vocab) -> None:
        super().__init__()
        self.stoi = vocab.get_stoi()
        self.default_index = vocab.get_default_index()

    @torch.jit.export
    def lookup_index(self, token: str) -> int:
        index = self.stoi.get(token)
        if index is not None:
            return index
        default = self.default_index
        if default is None:
            # subtle: `raise` in TorchScript reaches Python as torch.jit.Error, which is no RuntimeError;
            # a failed Dict lookup is a RuntimeError ("KeyError: <key>"), as torchtext's C++ lookup raised.
            no_default: Dict[str, int] = {}
            return no_default["token '" + token + "' is not in the vocabulary and no default index is set; call "
                              "vocab.set_default_index(vocab['<unk>']) before scripting"]
        return default

    @torch.jit.export
    def lookup_indices(self, tokens: List[str]) -> List[int]:
        return [self.lookup_index(token) for token in tokens]


_MODULE_STATE = frozenset(vars(nn.Module()))  # nn.Module's own bookkeeping attributes


def _with_script_vocab(module: nn.Module, name: str) -> nn.Module:
    """A new module of the same class whose attribute ``name`` (a ``Vocab``) is a ``_ScriptVocab`` copy of it.

    subtle: a fresh module, not copy.copy: a shallow copy would share ``_modules`` with the original, and
    registering the snapshot there would make it a child of the eager module too.
    """
    vocab = getattr(module, name)
    if isinstance(vocab, _ScriptVocab):
        return module
    copy = type(module).__new__(type(module))
    nn.Module.__init__(copy)
    copy.__dict__.update({k: v for k, v in vars(module).items() if k not in _MODULE_STATE and k != name})
    setattr(copy, name, _ScriptVocab(vocab))
    return copy


class VocabTransform(nn.Module):
    """Map tokens to ids with a ``textpipe.Vocab``: ``List[str]`` or ``List[List[str]]``.

    ``torch.jit.script(VocabTransform(v))`` compiles a copy of ``v``'s lookup table taken at that moment.

    Example:
        >>> VocabTransform(Vocab(["a", "b", "c"]))([["a", "b"], ["c"]])
        [[0, 1], [2]]
    """

    def __init__(self, vocab: Vocab) -> None:
        super().__init__()
        if not isinstance(vocab, Vocab):
            raise TransformTypeError(f"vocab must be a textpipe.Vocab, got {type(vocab).__name__}; build one with "
                                     f"textpipe.text.vocabulary.vocab(...) or build_vocab_from_iterator(...)")
        self.vocab = vocab

    def forward(self, input: Any) -> Any:
        if torch.jit.is_scripting():
            if torch.jit.isinstance(input, List[str]):
                return self.vocab.lookup_indices(input)
            if torch.jit.isinstance(input, List[List[str]]):
                ids: List[List[int]] = [self.vocab.lookup_indices(row) for row in input]
                return ids
            raise TypeError("input must be a list of str or a list of lists of str")
        return self._eager_forward(input)

    @torch.jit.unused
    def _eager_forward(self, input: Any) -> Any:
        if isinstance(input, list) and all(isinstance(t, str) for t in input):
            return self.vocab.lookup_indices(input)
        if isinstance(input, list) and all(isinstance(r, list) and all(isinstance(t, str) for t in r)
                                           for r in input):
            return [self.vocab.lookup_indices(row) for row in input]
        raise TypeError(f"input must be a list of str or a list of lists of str, got "
                        f"{type(input).__name__} {input!r:.60}")

    def __prepare_scriptable__(self) -> nn.Module:
        return _with_script_vocab(self, "vocab")


class LabelToIndex(nn.Module):
    """Map label names to ids ``0..C-1``, in the given order (or sorted with ``sort_names=True``).

    Args:
        label_names: The unique label names; or
        label_path: A UTF-8 file with one label name per line (blank lines ignored). Give exactly one.
        sort_names: Sort the names first.

    Raises:
        TransformArgumentError: Neither or both of ``label_names``/``label_path``, or duplicate names
            (also a ``ValueError``, and an ``AssertionError`` as torchtext's ``assert`` was).

    Example:
        >>> t = LabelToIndex(["World", "Sports"])
        >>> t(["Sports", "World"]), t("World"), t.label_names
        ([1, 0], 0, ['World', 'Sports'])
    """

    def __init__(self, label_names: Optional[List[str]] = None, label_path: Optional[str] = None,
                 sort_names: bool = False) -> None:
        super().__init__()
        if not label_names and not label_path:
            raise TransformArgumentError("LabelToIndex needs label_names (a list of names) or label_path (a file "
                                         "with one name per line), got neither")
        if label_names and label_path:
            raise TransformArgumentError("label_names and label_path are mutually exclusive; pass only one")
        if label_path:
            with open(label_path, encoding="utf-8") as f:
                label_names = [line.strip() for line in f if line.strip()]
        names = sorted(label_names) if sort_names else list(label_names)
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise TransformArgumentError(f"label names must be unique, got duplicates {duplicates}"
                                         + (f" in {label_path}" if label_path else ""))
        self._label_vocab = Vocab(names)
        self._label_names: List[str] = self._label_vocab.get_itos()

    def forward(self, input: Any) -> Any:
        if torch.jit.is_scripting():
            if torch.jit.isinstance(input, List[str]):
                return self._label_vocab.lookup_indices(input)
            if torch.jit.isinstance(input, str):
                return self._label_vocab.lookup_index(input)
            raise TypeError("input must be a label name (str) or a list of them")
        return self._eager_forward(input)

    @torch.jit.unused
    def _eager_forward(self, input: Any) -> Any:
        if isinstance(input, str):
            return self._label_vocab[input]
        if isinstance(input, list) and all(isinstance(t, str) for t in input):
            return self._label_vocab.lookup_indices(input)
        raise TypeError(f"input must be a label name (str) or a list of them, got {type(input).__name__}")

    @property
    def label_names(self) -> List[str]:
        return self._label_names

    def __prepare_scriptable__(self) -> nn.Module:
        return _with_script_vocab(self, "_label_vocab")


class Sequential(nn.Sequential):
    """A chain of text transforms: each module's output is the next one's input (torchtext's ``Sequential``).

    Example:
        >>> Sequential(Truncate(2), AddToken(0), ToTensor())([5, 6, 7])
        tensor([0, 5, 6])
    """

    def forward(self, input: Any) -> Any:
        for module in self:
            input = module(input)
        return input
