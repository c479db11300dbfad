"""Raw text to tensors: readers, tokenizers, batching, pretrained embeddings, the named datasets.

Names are imported on first use (PEP 562), so ``import grutext.data.named`` (the table of named
datasets, read by the CLI's help) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "TextDataset": "grutext.data.readers",
    "read_dataset": "grutext.data.readers",
    "split_sentences": "grutext.data.readers",
    "infer_format": "grutext.data.readers",
    "load_named": "grutext.data.readers",
    "default_data_root": "grutext.data.readers",
    "train_test_split": "grutext.data.readers",
    "check_labels": "grutext.data.readers",
    "FORMATS": "grutext.data.readers",
    "NAMED_DATASETS": "grutext.data.readers",
    "is_named": "grutext.data.named",
    "Tokenizer": "grutext.data.tokenizers",
    "SPECIALS": "grutext.data.tokenizers",
    "truncate": "grutext.data.batching",
    "pad_batch": "grutext.data.batching",
    "check_nonempty": "grutext.data.batching",
    "BucketSampler": "grutext.data.batching",
    "TextBatches": "grutext.data.batching",
    "StreamBatches": "grutext.data.batching",
    "POLICIES": "grutext.data.batching",
    "load_vectors": "grutext.data.embeddings",
    "build_embedding_matrix": "grutext.data.embeddings",
}

__all__ = [
    "TextDataset",
    "read_dataset",
    "split_sentences",
    "infer_format",
    "load_named",
    "default_data_root",
    "train_test_split",
    "check_labels",
    "FORMATS",
    "NAMED_DATASETS",
    "is_named",
    "Tokenizer",
    "SPECIALS",
    "truncate",
    "pad_batch",
    "check_nonempty",
    "BucketSampler",
    "TextBatches",
    "StreamBatches",
    "POLICIES",
    "load_vectors",
    "build_embedding_matrix",
]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load lazily
    from grutext.data.batching import (
        POLICIES,
        BucketSampler,
        StreamBatches,
        TextBatches,
        check_nonempty,
        pad_batch,
        truncate,
    )
    from grutext.data.embeddings import build_embedding_matrix, load_vectors
    from grutext.data.named import is_named
    from grutext.data.readers import (
        FORMATS,
        NAMED_DATASETS,
        TextDataset,
        check_labels,
        default_data_root,
        infer_format,
        load_named,
        read_dataset,
        split_sentences,
        train_test_split,
    )
    from grutext.data.tokenizers import SPECIALS, Tokenizer


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'grutext.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
