"""torchtext's ``torchtext.datasets`` for text classification: ``AG_NEWS``.

    from textpipe.datasets import AG_NEWS
    train_iter, test_iter = AG_NEWS(root=".data")     # (label 1..4, text) rows, as in torchtext

textpipe's own loader, ``textpipe.load_ag_news(split)``, returns a list with labels 0..3.
"""
from textpipe.datasets.ag_news import AG_NEWS, AGNewsSplit, SplitError

__all__ = ["AG_NEWS", "AGNewsSplit", "SplitError"]
