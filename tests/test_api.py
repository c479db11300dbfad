"""The public API: every exported name resolves, lazily."""

import grutext


def test_every_export_resolves():
    for name in grutext.__all__:
        assert getattr(grutext, name) is not None, name
    for name in ("train_language_model", "Generator", "Suggester", "LMConfig", "GRU", "Predictor"):
        assert name in grutext.__all__
