import json

import pytest
from tests.conftest import synthetic

from grutext.artifact import load_model, save_model
from grutext.config import Config, DataConfig, ModelConfig, TrainConfig
from grutext.data.readers import TextDataset
from grutext.errors import ArtifactError
from grutext.infer.predict import Predictor
from grutext.pipeline import Splits, train_classifier


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("art") / "model"
    texts, labels = synthetic(200, classes=("pos", "neg", "mid"))
    tr, va = TextDataset(texts[:160], labels[:160], "t"), TextDataset(texts[160:], labels[160:], "v")
    cfg = Config(DataConfig(min_freq=1), ModelConfig(embed_dim=12, hidden_size=8), TrainConfig(epochs=2, out=str(out)))
    run = train_classifier(cfg, splits=Splits(tr, va, None), verbose=False)
    return run, out


def test_round_trip_identical_predictions(trained):
    run, out = trained
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            "config.json",
            "tokenizer.json",
            "model.safetensors",
            "labels.json",
            "metrics.json",
            "curves.png",
            "confusion.png",
            "manifest.json",
            "ngrams.json",  # the blended n-gram model (model.blend = auto, the default)
            "ngrams.safetensors",
        ]
    )
    assert run.ngrams is not None and 0 < run.ngrams.weight <= 1
    texts = ["the great movie", "an awful boring plot", "okay"]
    from grutext.artifact import LoadedModel

    direct = Predictor(
        LoadedModel(run.model, run.tokenizer, run.config, "classifier", run.labels, ngrams=run.ngrams)
    ).predict_proba(texts)
    loaded = Predictor.load(out).predict_proba(texts)
    assert (direct == loaded).all()
    meta = json.loads((out / "config.json").read_text())
    assert meta["format"] == "grutext-model" and meta["labels"] == ["mid", "neg", "pos"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["history"]) == 2 and "val_accuracy" in metrics["history"][0]


def test_missing_file(trained, tmp_path):
    import shutil

    _, out = trained
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    (broken / "model.safetensors").unlink()
    with pytest.raises(ArtifactError, match="incomplete model directory, missing model.safetensors"):
        load_model(broken)


def test_truncated_weights(trained, tmp_path):
    import shutil

    _, out = trained
    broken = tmp_path / "trunc"
    shutil.copytree(out, broken)
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="model.safetensors"):
        load_model(broken)


def test_corrupt_config_and_newer_format(trained, tmp_path):
    import shutil

    _, out = trained
    broken = tmp_path / "cfg"
    shutil.copytree(out, broken)
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="config.json: not valid JSON"):
        load_model(broken)
    meta = json.loads((out / "config.json").read_text())
    meta["format_version"] = 99
    (broken / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="newer than this"):
        load_model(broken)


def test_shape_mismatch(trained, tmp_path):
    import shutil

    _, out = trained
    broken = tmp_path / "shape"
    shutil.copytree(out, broken)
    meta = json.loads((out / "config.json").read_text())
    meta["config"]["model"]["hidden_size"] = 9
    (broken / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="model.hidden_size is 9 but the weights were saved with 8"):
        load_model(broken)
    (broken / "manifest.json").unlink()  # a folder from before manifests: the shapes still catch it
    with pytest.raises(ArtifactError, match="has shape"):
        load_model(broken)


def test_not_a_directory(tmp_path):
    with pytest.raises(ArtifactError, match="model directory not found"):
        load_model(tmp_path / "nothing")


def test_atomic_write_leaves_nothing_on_crash(trained, tmp_path):
    run, _ = trained
    target = tmp_path / "atomic"

    def boom(path):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        save_model(target, run.model, run.tokenizer, run.config, labels=run.labels, extra={"x.png": boom})
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    # an existing good directory survives a failed overwrite
    save_model(target, run.model, run.tokenizer, run.config, labels=run.labels)
    with pytest.raises(RuntimeError):
        save_model(target, run.model, run.tokenizer, run.config, labels=run.labels, extra={"x.png": boom})
    load_model(target)
    assert [p.name for p in tmp_path.iterdir()] == ["atomic"]


def test_save_creates_missing_parent_folders(trained, tmp_path):
    run, _ = trained
    target = tmp_path / "a" / "b" / "model"
    save_model(target, run.model, run.tokenizer, run.config, labels=run.labels)
    assert load_model(target).labels == run.labels
