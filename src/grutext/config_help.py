"""One line of help per config field, keyed ``"table.field"``: what it does and what its default does.

The CLI builds every option's help from this table (with the choices from `grutext.config.CHOICES`); tests
check that every field of DataConfig, ModelConfig, TrainConfig and the tasks' own tables has exactly one
entry. `grutext.config` re-exports it.
"""

from __future__ import annotations

FIELD_HELP: dict[str, str] = {
    # [data]
    "data.train": "training data: a file, a folder (one sub-folder per class) or a named dataset "
    "(see grutext.data.named); None = not given, an error (it is required)",
    "data.valid": "validation file; None = the named dataset's dev split, else valid_fraction carved from train",
    "data.test": "test file; None = the named dataset's test split (or test_fraction carved), else no test set",
    "data.format": "file format (csv, tsv, jsonl, json, parquet, labeled-lines, fasttext, text, folder); "
    "None = inferred from the extension or the content",
    "data.text_col": "column holding the text; None = inferred (text, review, sentence, ... or the longest strings)",
    "data.label_col": "column holding the label; None = inferred (label, sentiment, class, ...)",
    "data.tokenizer": "how text becomes tokens: word, char or byte-pair encoding (bpe)",
    "data.lowercase": "lower-case the text before tokenizing",
    "data.strip_html": "remove HTML tags such as <br /> before tokenizing",
    "data.split_contractions": "word tokenizer: split contractions as the Penn Treebank does (doesn't -> does n't)",
    "data.min_freq": "keep tokens seen at least this often in the training data (rarer ones become <unk>)",
    "data.max_vocab": "vocabulary size cap, specials included; None = no limit",
    "data.bpe_vocab_size": "bpe tokenizer: target vocabulary size (capped by max_vocab)",
    "data.max_len": "truncate texts to this many tokens (see truncation)",
    "data.truncation": "which tokens a long text keeps: head (first), tail (last), head+tail (first quarter "
    "and last three quarters)",
    "data.valid_fraction": "fraction of train carved as validation set when there is no validation data",
    "data.test_fraction": "fraction of train carved as test set for a named dataset without a test split",
    "data.data_root": "folder holding the named datasets' files; None = $GRUTEXT_DATA, else ../shared/data",
    "data.sentences": "train on sentences: each text's sentences become examples labelled as the text (weak labels)",
    "data.sentence_min_words": "with sentences: drop sentences shorter than this many words",
    # [model]
    "model.task": "auto = binary/multiclass from the number of classes, multilabel when examples carry label lists",
    "model.cell": "recurrent cell: gru, lstm, rnn (Elman), mingru (minimal GRU), lngru (layer-normalised GRU)",
    "model.embed_dim": "size of the token embedding (the pretrained vectors' size when pretrained is set)",
    "model.hidden_size": "units of the recurrent layer (per direction)",
    "model.num_layers": "stacked recurrent layers",
    "model.bidirectional": "read the text both ways and concatenate the two states",
    "model.dropout": "dropout on the encoder's output and between layers",
    "model.embed_dropout": "dropout on the embedded tokens",
    "model.pooling": "how the states become one vector: last state, mean, max, or learned attention",
    "model.pretrained": "word vectors: glove-6b-50d, a file, or auto (glove-6b-50d if installed and embed_dim is "
    "the default, else random); None = randomly initialised",
    "model.freeze_embeddings": "keep the embedding fixed during training",
    "model.init_from": "model directory (language model or classifier) to start from; None = train from scratch",
    "model.keep_head": "with init_from a classifier: keep its pooling (same kind) and head (same labels)",
    "model.ensemble": "train this many networks (seeds seed, seed+1, ...) and average their probabilities; "
    "1 = one network",
    "model.blend": "classifiers: average with a TF-IDF n-gram model; auto = weight picked on validation, "
    "off = network alone, or its weight 0-1",
    "model.vocab_size": "set from the tokenizer when training; 0 = not set yet (no need to give it)",
    "model.num_classes": "set from the training labels; 0 = not set yet (no need to give it)",
    # [train]
    "train.epochs": "most passes over the training data (early stopping may end sooner); 0 = auto: "
    "classifiers about 3,000 steps (10-40 passes), others 10",
    "train.batch_size": "examples per optimizer step (language model: parallel streams)",
    "train.lr": "peak learning rate of AdamW",
    "train.weight_decay": "AdamW's decoupled weight decay; 0 = none",
    "train.warmup": "fraction of all steps with a linearly rising learning rate; 0 = no warm-up",
    "train.schedule": "learning rate after warm-up: linear or cosine decay to 0, constant, or plateau "
    "(times plateau_factor when the monitor stalls)",
    "train.plateau_factor": "schedule plateau: multiply the learning rate by this when the monitor stalls",
    "train.plateau_patience": "schedule plateau: epochs without improvement before each decay",
    "train.clip": "clip the gradient norm to this; 0 = no clipping",
    "train.ema": "decay of a moving average of the weights used for validation and saving; 0 = off",
    "train.layer_lr_decay": "fine-tuning: each layer below the head trains at lr / decay^depth; 1 = one lr for all",
    "train.unfreeze": "fine-tuning: all = train every layer from the start, gradual = head first, one more "
    "layer each epoch",
    "train.patience": "stop after this many epochs without improvement of the monitor; 0 = never stop early",
    "train.monitor": "validation figure that picks the best epoch and drives early stopping "
    "(language models: val_loss; taggers: val_chunk_f1, or val_accuracy for plain labels)",
    "train.seed": "random seed (data order, initialisation, carved splits); the same seed gives the same model",
    "train.threads": "CPU threads for torch; None = torch's default",
    "train.max_minutes": "stop training after this many minutes (the best epoch so far is kept); None = no time limit",
    "train.device": "auto = cuda if available, else cpu; or cpu, cuda, cuda:N",
    "train.out": "model directory to write (a checkpoint folder goes beside it); "
    "None = a new runs/<task>-<timestamp> folder",
    "train.overwrite": "replace an existing grutext model directory at train.out (other folders are never replaced)",
    "train.keep_checkpoint": "keep the checkpoint folder OUT.ckpt after a successful run, for a later --resume",
    "train.baseline": "classifiers: also fit TF-IDF (1-2 grams) + logistic regression on the same training split "
    "and report its scores beside the model's",
    "train.precision": "auto = bf16 autocast on a CUDA GPU with bf16 support, else fp32; fp32; bf16 (CUDA only)",
    # [lm] (grutext.lm.LMConfig)
    "lm.bptt": "truncated back-propagation window, in tokens",
    "lm.vary_length": "vary the window length per batch around bptt (AWD-LSTM)",
    "lm.eval_batch_size": "parallel validation streams (each starts with no context: a bit above the "
    "batch-1 figure); None = the training batch size, at least 10",
    "lm.add_eos": "end each line with <eos>; None = yes for word and bpe, no for char (newlines stay characters)",
    "lm.word_split": "word tokenizer: punct = punctuation marks are tokens of their own, whitespace = split on "
    "spaces only (already tokenised corpora such as PTB)",
    "lm.tie_weights": "the output layer shares the embedding matrix",
    "lm.input_dropout": "locked dropout on the embeddings; None = model.dropout",
    "lm.layer_dropout": "locked dropout between layers; None = model.dropout",
    "lm.weight_drop": "DropConnect on the recurrent weights; 0 = off",
    "lm.epoch_tokens": "one epoch is about this many training tokens (frequent validation on long corpora); "
    "None = the whole corpus",
    # [tag] (grutext.tasks.tagging.config.TagConfig)
    "tag.tag_col": "column holding the tags: an index (negative counts from the end) or a name (JSONL: a key)",
    "tag.token_col": "column holding the tokens: an index or a name (JSONL: a key)",
    "tag.feature_col": "column fed to the tagger as an extra embedding (e.g. POS); None = no feature",
    "tag.scheme": "the file's tag scheme: auto = detected (POS-like tags read as plain labels), or IOB1, IOB2, "
    "BIOES, none",
    "tag.decoder": "crf = linear-chain CRF with constrained Viterbi, softmax = each token on its own",
    "tag.char_encoder": "how a word's characters are read: gru (a BiGRU), cnn (convolution + max) or none",
    "tag.char_dim": "size of the character embedding",
    "tag.char_hidden": "character encoder units per direction (the CNN has twice as many filters)",
    "tag.case_dim": "size of the case-feature embedding (lower, UPPER, Title, digits, ...)",
    "tag.feature_dim": "size of the feature column's embedding",
}
