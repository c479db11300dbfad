"""`TextDataset`: texts with their string labels, as every reader returns them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast


@dataclass
class TextDataset:
    """Texts with their labels, as read from one source.

    Args:
        texts: one string per example, never empty.
        labels: one string per example (single-label), a list of strings per example
            (multi-label), or None (unlabelled).
        source: where the data came from (a path or a name), used in error messages.

    Example:
        >>> ds = TextDataset(["good", "bad"], ["pos", "neg"], "inline")
        >>> len(ds), ds.classes
        (2, ['neg', 'pos'])
    """

    texts: list[str]
    labels: list[str] | list[list[str]] | None
    source: str
    # the class order when it is not the sorted one: a named dataset whose coded labels were given
    # names keeps the order of its codes (class indices, splits and trained weights unchanged)
    label_order: list[str] | None = None
    # (text column, label column or None) when read from a table or records; None otherwise
    columns: tuple[str, str | None] | None = None

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def multilabel(self) -> bool:
        """True when each example carries a list of labels."""
        return self.labels is not None and len(self.labels) > 0 and isinstance(self.labels[0], list)

    @property
    def classes(self) -> list[str]:
        """The distinct labels, sorted or in `label_order` when set (empty when unlabelled)."""
        return _in_class_order(self, _label_set(self))

    def subset(self, indices: Sequence[int], source: str | None = None) -> TextDataset:
        """Return the examples at `indices` (in that order) as a new dataset.

        Args:
            indices: positions to keep.
            source: name of the new dataset; defaults to this one's.

        Returns:
            A new `TextDataset` sharing no lists with this one.
        """
        labels = None if self.labels is None else cast("list[str] | list[list[str]]", [self.labels[i] for i in indices])
        order = None if self.label_order is None else list(self.label_order)
        return TextDataset([self.texts[i] for i in indices], labels, source or self.source, order, self.columns)


def _in_class_order(ds: TextDataset, labels: set[str]) -> list[str]:
    """`labels` sorted, or in `ds.label_order` when it has one (labels outside it last, sorted)."""
    if ds.label_order is None:
        return sorted(labels)
    known = [lab for lab in ds.label_order if lab in labels]
    return known + sorted(labels - set(known))


def _label_set(ds: TextDataset) -> set[str]:
    if not ds.labels:
        return set()
    if isinstance(ds.labels[0], list):
        return {lab for labs in ds.labels for lab in labs}
    return set(ds.labels)
