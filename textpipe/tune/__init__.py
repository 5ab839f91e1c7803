"""Hyperparameter search on Ray Tune: `search(...)` and `textpipe tune` / `python -m textpipe.tune`. Only
`_ray` imports Ray, and only once a search starts."""
from textpipe.tune.command import SearchConfig, SearchInterrupted, UsageError, main, parse_args, search

__all__ = ["SearchConfig", "SearchInterrupted", "UsageError", "main", "parse_args", "search"]
