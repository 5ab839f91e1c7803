"""Classification metrics: accuracy, per-class precision/recall/F1, confusion matrix, text table, PNG.

Plain numpy; the PNG needs matplotlib (`pip install -e ".[plot]"`) and is skipped with a note without it.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def classification_report(preds: Sequence[int], labels: Sequence[int], num_classes: int) -> dict:
    """Accuracy, per-class precision/recall/F1/support, macro F1 and the confusion matrix.

    `confusion[i][j]` counts samples of true class i predicted as j. A class that is never predicted
    (or never present) gets precision (or recall) 0.

    Example:
        >>> r = classification_report([0, 1, 1], [0, 1, 0], num_classes=2)
        >>> r["accuracy"], r["confusion"], round(r["per_class"][1]["precision"], 2)
        (0.6666666666666666, [[1, 1], [0, 1]], 0.5)
    """
    preds, labels = np.asarray(preds, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    if preds.shape != labels.shape:
        raise ValueError(f"preds and labels must have the same length, got {preds.shape} and {labels.shape}")
    for name, values in (("labels", labels), ("preds", preds)):
        bad = (values < 0) | (values >= num_classes)
        if bad.any():
            raise ValueError(f"{name} must be class ids in 0..{num_classes - 1}, found {int(values[bad][0])} "
                             f"at position {int(np.flatnonzero(bad)[0])}")
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (labels, preds), 1)
    return report_from_confusion(confusion)


def report_from_confusion(confusion) -> dict:
    """`classification_report` of a confusion matrix (`confusion[i][j]`: true class i predicted as j): what a
    streamed evaluation accumulates instead of every prediction."""
    confusion = np.asarray(confusion, dtype=np.int64)
    tp = np.diag(confusion).astype(float)
    predicted, support = confusion.sum(0), confusion.sum(1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp),
                   where=(precision + recall) > 0)
    n = int(confusion.sum())
    return {
        "accuracy": float(tp.sum() / n) if n else 0.0,
        "n": n,
        "macro_f1": float(f1.mean()),
        "per_class": [{"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                      for p, r, f, s in zip(precision, recall, f1, support)],
        "confusion": confusion.tolist(),
    }


def format_report(report: dict, class_names: Sequence[str]) -> str:
    """The report as a text table (per-class rows, then the confusion matrix)."""
    width = max(10, *(len(c) for c in class_names))
    lines = [f"accuracy {report['accuracy']:.4f} on {report['n']} samples, macro F1 {report['macro_f1']:.4f}",
             f"{'class':<{width}} precision  recall      f1  support"]
    for name, row in zip(class_names, report["per_class"]):
        lines.append(f"{name:<{width}} {row['precision']:9.4f} {row['recall']:7.4f} {row['f1']:7.4f} "
                     f"{row['support']:8d}")
    lines.append("confusion matrix (rows: true class, columns: predicted)")
    lines.append(" " * width + "".join(f"{name[:8]:>9}" for name in class_names))
    for name, row in zip(class_names, report["confusion"]):
        lines.append(f"{name:<{width}}" + "".join(f"{v:9d}" for v in row))
    return "\n".join(lines)


def save_confusion_png(confusion: Sequence[Sequence[int]], class_names: Sequence[str], path) -> bool:
    """Draw the confusion matrix to a PNG; returns False (and draws nothing) when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    matrix = np.asarray(confusion)
    fig, ax = plt.subplots(figsize=(1.2 * len(class_names) + 2, 1.2 * len(class_names) + 1.5))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > matrix.max() / 2 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
