"""Sequence tagging (chunking, named entities, part of speech) from CoNLL column files or JSONL.

Modules, as in every task package: ``config`` (`TagConfig` and the decisions written once: the
training scheme BIOES, the case feature, the monitor), ``data`` (reading, vocabularies, batches),
``model`` (`Tagger`: words + case + characters (+ a feature column) -> BiGRU -> CRF or softmax),
``train`` (`train_tagger`), ``evaluate`` (the `fit` adapter, `evaluate_tagger`, conlleval-exact),
``predict`` (tagging raw or pre-tokenized sentences, chunks with character offsets, CoNLL output).

`TAGGING` is this task's entry in `grutext.tasks.TASKS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from grutext.tasks.tagging.config import KIND, TagConfig

if TYPE_CHECKING:
    import torch

    from grutext.config import Config


class Tagging:
    """The tagging task as the shared layers see it (see `grutext.tasks.Task`)."""

    kind = KIND
    title = "tagger"
    has_labels = False  # the tags live in config.json's "tag" section, not labels.json
    cli = "grutext.tasks.tagging.cli"
    train_flag: str | None = "tag"

    def build(self, cfg: Config, meta: dict[str, Any]) -> torch.nn.Module:
        from grutext.tasks.tagging.model import build_tagger

        return build_tagger(cfg, meta)

    def members(self, cfg: Config) -> int:
        return 1

    def member(self, model: torch.nn.Module, cfg: Config, k: int) -> tuple[torch.nn.Module, Config]:
        return model, cfg

    def settings(self, cfg: Config, meta: dict[str, Any]) -> dict[str, Any]:
        m, t = cfg.model, TagConfig.from_meta(meta)
        raw = meta.get("tag") or {}
        return {
            "scheme": raw.get("file_scheme"),
            "learnt_in": raw.get("train_scheme"),
            "tags": len(raw.get("tags", [])),
            "decoder": t.decoder,
            "char_encoder": t.char_encoder,
            "feature_col": t.feature_col,
            "layers": m.num_layers,
            "hidden": m.hidden_size,
            "embed": m.embed_dim,
            "dropout": m.dropout,
        }

    def report_sections(self, metrics: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        """The report's tagger sections: per-type chunk scores and the chunk-type confusion."""
        from grutext.tasks.tagging.report import report_sections

        return report_sections(metrics)

    def fit_adapter(self, loaded: Any) -> Any:
        from grutext.tasks.tagging.data import TagVocab
        from grutext.tasks.tagging.evaluate import TaggingTask

        return TaggingTask(TagVocab.from_meta(loaded.meta))

    def evaluate(self, loaded: Any, data: Any, **options: Any) -> dict[str, Any]:
        from grutext.tasks.tagging.evaluate import evaluate_tagger

        return evaluate_tagger(loaded, data, **options)


TAGGING = Tagging()

__all__ = ["KIND", "TAGGING", "Tagging"]
