"""Value checks shared by the modules that validate their arguments (collate, sampler)."""
from __future__ import annotations

import numpy as np

__all__ = ["is_int", "DivergedError"]


def is_int(x: object) -> bool:
    """An integer value: an int or a numpy integer, not a bool (True is not a length or an index).

    Example:
        >>> is_int(3), is_int(np.int32(3)), is_int(True), is_int(3.0)
        (True, True, False, False)
    """
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


class DivergedError(FloatingPointError):
    """A training run whose loss (or weights) became NaN or infinite; the command line exits with status 1."""

    exit_status = 1
