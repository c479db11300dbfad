"""Language modelling (word, BPE or character level; truncated BPTT, AWD-style regularisation).

Modules, as in every task package: ``config`` (`LMConfig` and the decisions written once: EOS,
weight tying, the perplexity clamp), ``data`` (corpora, tokenizer, id stream, `LMBatches`),
``model`` (`LanguageModel`), ``train`` (`train_language_model`, `save_language_model`),
``evaluate`` (the `fit` adapter, `score_stream`, `evaluate_language_model`), ``predict`` (the
kind check and saved settings that generation and next-word suggestion start from).

`LANGUAGE_MODEL` is this task's entry in `grutext.tasks.TASKS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from grutext.tasks.language_model.config import KIND, LMConfig

if TYPE_CHECKING:
    import torch

    from grutext.config import Config


class LanguageModeling:
    """The language-model task as the shared layers see it (see `grutext.tasks.Task`)."""

    kind = KIND
    title = "language model"
    has_labels = False
    cli = "grutext.tasks.language_model.cli"
    train_flag: str | None = "lm"

    def build(self, cfg: Config, meta: dict[str, Any]) -> torch.nn.Module:
        from grutext.tasks.language_model.model import build_language_model

        return build_language_model(cfg, meta)

    def members(self, cfg: Config) -> int:
        return 1

    def member(self, model: torch.nn.Module, cfg: Config, k: int) -> tuple[torch.nn.Module, Config]:
        return model, cfg

    def settings(self, cfg: Config, meta: dict[str, Any]) -> dict[str, Any]:
        m, lm = cfg.model, LMConfig.from_meta(meta)
        return {
            "cell": m.cell,
            "layers": m.num_layers,
            "hidden": m.hidden_size,
            "embed": m.embed_dim,
            "bptt": lm.bptt,
            "dropout": m.dropout,
            "input_dropout": m.dropout if lm.input_dropout is None else lm.input_dropout,
            "layer_dropout": m.dropout if lm.layer_dropout is None else lm.layer_dropout,
            "embed_dropout": m.embed_dropout,
            "weight_drop": lm.weight_drop,
            "tie_weights": lm.tie_weights,
        }

    def fit_adapter(self, loaded: Any) -> Any:
        from grutext.tasks.language_model.evaluate import LanguageModelTask

        return LanguageModelTask(loaded.tokenizer.kind == "char")

    def evaluate(self, loaded: Any, data: Any, **options: Any) -> dict[str, Any]:
        from grutext.tasks.language_model.evaluate import evaluate_language_model

        return evaluate_language_model(loaded, data, **options)


LANGUAGE_MODEL = LanguageModeling()

__all__ = ["KIND", "LANGUAGE_MODEL", "LanguageModeling"]
