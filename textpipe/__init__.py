"""textpipe: the classic text-classification pipeline on modern PyTorch (a torchtext successor)."""

__version__ = "0.1.0"
__all__ = ["__version__"]
