"""Raw text to tensors: readers, tokenizers, batching, pretrained embeddings."""

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
