import pytest
import torch
from tests.conftest import synthetic

from grutext.config import TrainConfig
from grutext.data.batching import TextBatches
from grutext.data.tokenizers import Tokenizer
from grutext.errors import ArtifactError
from grutext.models.classifier import TextClassifier
from grutext.train.loop import fit, make_schedule
from grutext.train.tasks import ClassificationTask


def _setup(n=240, seed=0):
    texts, labels = synthetic(n, seed=seed)
    tok = Tokenizer.train(texts, kind="word")
    ids = tok.encode_batch(texts)
    y = torch.tensor([0 if lab == "neg" else 1 for lab in labels])
    train = TextBatches(ids[:200], y[:200], batch_size=16, shuffle=True, seed=0)
    valid = TextBatches(ids[200:], y[200:], batch_size=64, shuffle=False)
    return tok, train, valid


def _model(tok):
    torch.manual_seed(0)
    return TextClassifier(tok.vocab_size, 2, "binary", embed_dim=16, hidden_size=16, dropout=0.0, embed_dropout=0.0)


def test_fit_learns_planted_words(capsys):
    tok, train, valid = _setup()
    model = _model(tok)
    res = fit(
        model,
        ClassificationTask("binary", ["neg", "pos"]),
        train,
        valid,
        TrainConfig(epochs=6, lr=1e-2, patience=0, warmup=0.1),
    )
    assert len(res.history) == 6
    assert res.history[-1]["val_accuracy"] >= 0.95
    assert res.history[-1]["loss"] < res.history[0]["loss"]
    out = capsys.readouterr().out
    assert "val_acc" in out and "tok/s" in out  # the epoch table was printed
    assert out.count("\n") >= 7


def test_early_stopping_keeps_best_weights():
    tok, train, valid = _setup()
    model = _model(tok)
    seen = []
    res = fit(
        model,
        ClassificationTask("binary", ["neg", "pos"]),
        train,
        valid,
        TrainConfig(epochs=30, lr=5e-2, patience=2, monitor="val_loss"),
        verbose=False,
        on_epoch_end=lambda row: seen.append({k: v.clone() for k, v in model.state_dict().items()}),
    )
    assert res.stopped_early and len(res.history) < 30
    best = min(range(len(res.history)), key=lambda i: res.history[i]["val_loss"])
    assert res.best_epoch == best + 1
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, seen[best][k])


def test_resume_continues_exactly(tmp_path):
    tok, train, valid = _setup()
    cfg = TrainConfig(epochs=4, lr=1e-2, patience=0)
    task = ClassificationTask("binary", ["neg", "pos"])
    straight = _model(tok)
    ref = fit(straight, task, train, valid, cfg, verbose=False)

    class Stop(Exception):
        pass

    def stop_after_two(row):
        if row["epoch"] == 2:
            raise Stop

    first = _model(tok)
    with pytest.raises(Stop):
        fit(first, task, train, valid, cfg, checkpoint_dir=tmp_path / "ck", verbose=False, on_epoch_end=stop_after_two)
    resumed = _model(tok)
    res = fit(resumed, task, train, valid, cfg, checkpoint_dir=tmp_path / "ck", resume=True, verbose=False)
    assert [h["epoch"] for h in res.history] == [1, 2, 3, 4]
    assert res.history[-1]["loss"] == pytest.approx(ref.history[-1]["loss"], rel=1e-5)
    for k, v in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[k], v, rtol=1e-5, atol=1e-6)


def test_resume_without_checkpoint(tmp_path):
    tok, train, valid = _setup()
    with pytest.raises(ArtifactError, match="cannot resume"):
        fit(
            _model(tok),
            ClassificationTask("binary", ["neg", "pos"]),
            train,
            valid,
            TrainConfig(epochs=1),
            checkpoint_dir=tmp_path / "none",
            resume=True,
            verbose=False,
        )


def test_schedule_warmup_then_decay():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=1.0)
    sched = make_schedule(opt, total_steps=100, warmup=0.1, kind="linear")
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.1) and max(lrs) == pytest.approx(1.0)
    assert lrs.index(max(lrs)) == 9
    assert lrs[-1] < 0.02


class _ScriptedValidation(ClassificationTask):
    """The real classification step, with validation losses read from a script."""

    def __init__(self, losses):
        super().__init__("binary", ["neg", "pos"])
        self.losses = list(losses)

    def evaluate(self, model, batches):
        return {"val_loss": self.losses.pop(0)}


@pytest.mark.parametrize("patience", [1, 2])
def test_plateau_schedule_decays_when_the_monitor_stalls(patience, tmp_path):
    tok, train, valid = _setup()
    losses = [1.0, 0.9, 0.95, 0.97, 0.8, 0.85, 0.86]
    cfg = TrainConfig(
        epochs=7,
        lr=1e-3,
        warmup=0.0,
        schedule="plateau",
        plateau_factor=0.5,
        plateau_patience=patience,
        patience=0,
        monitor="val_loss",
    )
    res = fit(
        _model(tok), _ScriptedValidation(losses), train, valid, cfg, verbose=False, checkpoint_dir=tmp_path / "ck"
    )
    lrs = [h["lr"] for h in res.history]  # the rate in force during each epoch
    # stalls after epochs 3, 4 (two in a row), 6 and 7 (two in a row)
    expected = {1: [1e-3, 1e-3, 1e-3, 5e-4, 2.5e-4, 2.5e-4, 1.25e-4], 2: [1e-3, 1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 5e-4]}[
        patience
    ]
    assert lrs == pytest.approx(expected)
    import json

    state = json.loads((tmp_path / "ck" / "state.json").read_text())  # kept for --resume
    assert state["lr_scale"] == pytest.approx({1: 0.0625, 2: 0.25}[patience])


def test_discriminative_learning_rates_by_depth():
    from grutext.train.loop import layer_depths, param_groups

    tok, _, _ = _setup()
    model = TextClassifier(tok.vocab_size, 2, "binary", embed_dim=8, hidden_size=8, num_layers=2)
    cfg = TrainConfig(lr=1e-2, layer_lr_decay=2.0)
    depths = layer_depths(model, cfg)
    assert [len(d) for d in depths] == [1, 8, 8, 2]  # embedding, layer 0, layer 1 (uni+reverse), head
    groups = param_groups(depths, cfg)
    lrs = [g["lr"] for g in groups[::2]]
    assert lrs == pytest.approx([1e-2 / 8, 1e-2 / 4, 1e-2 / 2, 1e-2])
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert len(layer_depths(model, TrainConfig())) == 1  # plain training: one group


def test_gradual_unfreezing_trains_the_head_first(capsys):
    tok, train, valid = _setup()
    model = _model(tok)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    snaps = []
    fit(
        model,
        ClassificationTask("binary", ["neg", "pos"]),
        train,
        valid,
        TrainConfig(epochs=3, lr=1e-2, patience=0, unfreeze="gradual", monitor="val_loss"),
        on_epoch_end=lambda row: snaps.append({k: v.clone() for k, v in model.state_dict().items()}),
    )
    assert "training the top 1 of 3 layer groups" in capsys.readouterr().out
    changed = [{k for k in before if not torch.equal(before[k], s[k])} for s in snaps]
    assert changed[0] == {"head.weight", "head.bias"}  # epoch 1: the head only
    assert "encoder.weight_hh_l0" in changed[1] and "embedding.weight" not in changed[1]  # epoch 2: + the GRU
    assert "embedding.weight" in changed[2]  # epoch 3: everything
    assert all(p.requires_grad for p in model.parameters())  # handed back trainable


def test_weight_average_follows_the_documented_recurrence():
    from grutext.train.loop import WeightAverage

    lin = torch.nn.Linear(3, 2)
    avg = WeightAverage(lin, decay=0.9)
    ref = {n: p.detach().clone() for n, p in lin.named_parameters()}
    for n_update in range(1, 40):
        with torch.no_grad():
            for p in lin.parameters():
                p.add_(torch.randn_like(p))
        avg.update(lin)
        d = min(0.9, (1 + n_update) / (10 + n_update))
        for n, p in lin.named_parameters():
            ref[n] = d * ref[n] + (1 - d) * p.detach()
    live = {n: p.detach().clone() for n, p in lin.named_parameters()}
    with avg.applied(lin):
        for n, p in lin.named_parameters():
            torch.testing.assert_close(p.detach(), ref[n])
    for n, p in lin.named_parameters():  # swapped back afterwards
        torch.testing.assert_close(p.detach(), live[n], rtol=0, atol=0)


def test_ema_validates_and_keeps_the_averaged_weights(monkeypatch):
    """With train.ema the epoch's validation and the weights handed back are the average's."""
    from grutext.train.loop import WeightAverage

    tok, train, valid = _setup()
    task = ClassificationTask("binary", ["neg", "pos"])
    rows, averages, made = [], [], []
    model = _model(tok)
    real_init = WeightAverage.__init__

    def remember(self, *args, **kw):  # keep a handle on the loop's average
        real_init(self, *args, **kw)
        made.append(self)

    monkeypatch.setattr(WeightAverage, "__init__", remember)

    def at_epoch_end(row):
        rows.append(row)
        with made[0].applied(model):
            averages.append({k: v.detach().clone() for k, v in model.state_dict().items()})

    res = fit(
        model,
        task,
        train,
        valid,
        TrainConfig(epochs=4, lr=1e-2, patience=0, ema=0.95),
        verbose=False,
        on_epoch_end=at_epoch_end,
    )
    best = res.best_epoch - 1
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, averages[best][k])
    model.eval()
    with torch.no_grad():
        ev = task.evaluate(model, valid)
    assert ev["val_accuracy"] == pytest.approx(rows[best]["val_accuracy"])
    assert ev["val_loss"] == pytest.approx(rows[best]["val_loss"], rel=1e-5)


def test_ema_resume_continues_exactly(tmp_path):
    tok, train, valid = _setup()
    cfg = TrainConfig(epochs=4, lr=1e-2, patience=0, ema=0.9)
    task = ClassificationTask("binary", ["neg", "pos"])
    straight = _model(tok)
    fit(straight, task, train, valid, cfg, verbose=False)

    class Stop(Exception):
        pass

    def stop_after_two(row):
        if row["epoch"] == 2:
            raise Stop

    with pytest.raises(Stop):
        fit(
            _model(tok),
            task,
            train,
            valid,
            cfg,
            checkpoint_dir=tmp_path / "ck",
            verbose=False,
            on_epoch_end=stop_after_two,
        )
    assert (tmp_path / "ck" / "average.safetensors").is_file()
    resumed = _model(tok)
    fit(resumed, task, train, valid, cfg, checkpoint_dir=tmp_path / "ck", resume=True, verbose=False)
    for k, v in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[k], v, rtol=1e-5, atol=1e-6)
