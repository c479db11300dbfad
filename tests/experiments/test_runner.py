"""The experiment runner on tiny data: matched parameter counts, the same batches per seed for every cell,
resume, the files a comparison writes, and the one-line errors of `compare` and `sweep`."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from tests.conftest import synthetic, write_csv

from grutext.cli import main
from grutext.config import Config, DataConfig, ModelConfig, TrainConfig
from grutext.errors import ConfigError
from grutext.experiments import runner
from grutext.experiments.matching import match_hidden_sizes, model_builder, trainable_parameters
from grutext.experiments.plan import Experiment, Point, grid_points, parse_cells, parse_sets, resolve_field
from grutext.experiments.report import write_results
from grutext.tasks.classification.evaluate import ClassificationTask

CELLS = ["gru", "lstm", "rnn", "mingru", "lngru"]


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


@pytest.fixture
def csv_data(tmp_path: Path) -> Path:
    texts, labels = synthetic(80, seed=3)
    return write_csv(tmp_path / "train.csv", texts, labels)


def tiny_config(data: Path, **model) -> Config:
    return Config(
        DataConfig(train=str(data), min_freq=1),
        ModelConfig(**{"embed_dim": 8, "hidden_size": 12, "dropout": 0.0, "embed_dropout": 0.0, **model}),
        TrainConfig(epochs=2, batch_size=16, threads=None, seed=0),
    )


def experiment(cfg: Config, out: Path, cells: list[str], seeds: int, hidden: int = 12) -> Experiment:
    points = [Point(c, c, {"model.cell": c, "model.hidden_size": hidden}) for c in cells]
    return Experiment("compare", "classifier", cfg.to_dict(), {}, points, seeds, out, match="hidden")


# ---- matching -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("hidden", [24, 48])
def test_matching_picks_the_nearest_size_within_two_percent(csv_data, hidden):
    cfg = tiny_config(csv_data, embed_dim=16)
    build = model_builder("classifier", cfg, {})
    sizes = match_hidden_sizes(build, CELLS, hidden)
    target = trainable_parameters(build("gru", hidden))
    assert sizes["gru"] == {"hidden_size": hidden, "params": target, "target": target, "relative_difference": 0.0}
    for cell in CELLS[1:]:
        h = sizes[cell]["hidden_size"]
        count = trainable_parameters(build(cell, h))
        assert count == sizes[cell]["params"]
        assert abs(count - target) <= 0.02 * target, (cell, h, count, target)
        for other in (h - 1, h + 1):  # no neighbouring size is nearer the target
            assert abs(trainable_parameters(build(cell, other)) - target) >= abs(count - target)
    # an LSTM step has 4 gate blocks to the GRU's 3, an RNN 1: fewer and more units for the same count
    assert sizes["lstm"]["hidden_size"] < hidden < sizes["rnn"]["hidden_size"]


def test_a_size_too_coarse_to_match_within_two_percent_is_an_error(csv_data):
    build = model_builder("classifier", tiny_config(csv_data, embed_dim=16), {})
    with pytest.raises(
        ConfigError, match=r"the nearest lstm \(hidden 10, 2,821 parameters\) is \+2\.8% from gru's 2,745"
    ):
        match_hidden_sizes(build, ["gru", "lstm"], 12)


def test_matching_counts_the_language_models_own_network(tmp_path):
    rng = random.Random(0)
    words = [
        "the",
        "a",
        "cat",
        "dog",
        "sat",
        "ran",
        "on",
        "in",
        "mat",
        "park",
        "big",
        "small",
        "red",
        "blue",
        "and",
        "then",
    ]
    (tmp_path / "lm.txt").write_text(
        "\n".join(" ".join(rng.choice(words) for _ in range(8)) for _ in range(200)) + "\n", encoding="utf-8"
    )
    from grutext.tasks.language_model.config import LMConfig

    cfg = tiny_config(tmp_path / "lm.txt", embed_dim=16)
    build = model_builder("language_model", cfg, {"bptt": 8})
    sizes = match_hidden_sizes(build, ["gru", "lstm"], 48)
    assert abs(sizes["lstm"]["relative_difference"]) <= 0.02
    model = build("lstm", sizes["lstm"]["hidden_size"])
    assert type(model).__name__ == "LanguageModel" and model.tied == LMConfig().tie_weights


def _tag_file(path: Path, n: int, seed: int) -> Path:
    from tests.tasks.planted_chunks import sentences

    tokens, tags = sentences(n, seed)
    lines = [
        line
        for ws, ts in zip(tokens, tags, strict=True)
        for line in [*(f"{w} {t}" for w, t in zip(ws, ts, strict=True)), ""]
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_matching_and_compare_for_taggers(tmp_path, monkeypatch, capsys):
    """A tagger's cells are matched on the tagger's own network (word + case + character embeddings, the
    bidirectional stack, the head, the CRF), and `compare --task tag` trains one run per cell."""
    from functools import partial

    data = _tag_file(tmp_path / "train.txt", 120, seed=0)
    cfg = Config(DataConfig(train=str(data), min_freq=1), ModelConfig(embed_dim=16), TrainConfig(epochs=1, seed=0))
    build = model_builder("tagger", cfg, {"char_dim": 6, "char_hidden": 6})
    sizes = match_hidden_sizes(build, ["gru", "lstm", "rnn"], 32)
    assert all(abs(sizes[c]["relative_difference"]) <= 0.02 for c in ("lstm", "rnn"))
    model = build("lstm", sizes["lstm"]["hidden_size"])
    assert type(model).__name__ == "Tagger" and type(model.encoder).__name__ == "LSTM" and model.crf is not None

    monkeypatch.setattr(runner, "run_all", partial(runner.run_all, processes=False))
    monkeypatch.setattr(runner, "latency_pass", partial(runner.latency_pass, processes=False))
    out = tmp_path / "cmp"
    argv = ["compare", str(data), "--task", "tag", "--cells", "gru,lstm", "--seeds", "1", "--out", str(out)]
    argv += ["--epochs", "1", "--embed-dim", "8", "--hidden-size", "16", "--char-hidden", "6", "--threads", "1"]
    assert main([*argv, "--latency-repeats", "2"]) == 0
    assert "lstm vs gru" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert [r["cell"] for r in results["runs"]] == ["gru", "lstm"]
    saved = [json.loads((out / "runs" / f"{c}-seed1" / "config.json").read_text()) for c in ("gru", "lstm")]
    assert [m["kind"] for m in saved] == ["tagger", "tagger"] and [m["config"]["model"]["cell"] for m in saved] == [
        "gru",
        "lstm",
    ]


def test_a_network_that_ignores_the_cell_is_refused():
    with pytest.raises(ConfigError, match="does not use model.cell"):
        match_hidden_sizes(lambda cell, h: torch.nn.Linear(h, 2), ["gru", "lstm"], 8)


# ---- runs: same batches, resume ---------------------------------------------------------------------------


def test_every_cell_sees_the_same_batches_in_the_same_order_per_seed(csv_data, tmp_path, monkeypatch):
    seen: dict[tuple[str, int], list[list[int]]] = {}
    step = ClassificationTask.step
    current: dict[str, object] = {}

    def recording_step(self, model, batch):
        seen.setdefault(current["run"], []).append(batch["ids"].sum(1).tolist() + batch["labels"].tolist())  # type: ignore[index]
        return step(self, model, batch)

    train_run = runner.train_run

    def tracking(spec):
        current["run"] = (spec["point"], spec["seed"])
        return train_run(spec)

    monkeypatch.setattr(ClassificationTask, "step", recording_step)
    monkeypatch.setattr(runner, "train_run", tracking)
    exp = experiment(tiny_config(csv_data), tmp_path / "exp", ["gru", "lstm"], seeds=2)
    runner.prepare_folder(exp)
    records = runner.run_all(exp, processes=False, threads=1, log=lambda *a: None)
    assert [(r["point"], r["seed"]) for r in records] == [
        ("gru", 1), ("lstm", 1), ("gru", 2), ("lstm", 2),
    ]  # fmt: skip
    for seed in (1, 2):
        assert seen[("gru", seed)] == seen[("lstm", seed)]
        assert len(seen[("gru", seed)]) == 2 * 5  # 2 epochs x 5 batches (of 16) of the 72 training texts
    assert seen[("gru", 1)] != seen[("gru", 2)]  # another seed, another order
    assert {r["train_seed"] for r in records} == {0, 1}


def test_resume_skips_finished_runs_and_more_seeds_add_runs(csv_data, tmp_path, monkeypatch):
    cfg = replace(tiny_config(csv_data), train=replace(tiny_config(csv_data).train, epochs=1))
    out = tmp_path / "exp"
    trained: list[str] = []
    train_run = runner.train_run

    def counting(spec):
        trained.append(f"{spec['point']}-seed{spec['seed']}")
        return train_run(spec)

    monkeypatch.setattr(runner, "train_run", counting)
    quiet = {"processes": False, "threads": 1, "log": lambda *a: None}
    exp = experiment(cfg, out, ["gru", "rnn"], seeds=1)
    runner.prepare_folder(exp)
    first = runner.run_all(exp, **quiet)
    assert trained == ["gru-seed1", "rnn-seed1"]
    before = (out / "runs" / "gru-seed1" / "run.json").read_bytes()
    more = experiment(cfg, out, ["gru", "rnn"], seeds=2)
    runner.prepare_folder(more)  # the same experiment: accepted
    (out / "runs" / "rnn-seed1" / "run.json").unlink()  # as if interrupted after saving, before its figures
    records = runner.run_all(more, **quiet)
    assert trained[2:] == ["rnn-seed1", "gru-seed2", "rnn-seed2"]
    assert (out / "runs" / "gru-seed1" / "run.json").read_bytes() == before
    assert [r["name"] for r in records] == ["gru-seed1", "rnn-seed1", "gru-seed2", "rnn-seed2"]
    assert records[0] == first[0]
    runner.run_all(more, **quiet)
    assert len(trained) == 5  # nothing left to train


def test_another_experiment_or_a_foreign_folder_is_refused(csv_data, tmp_path):
    cfg = tiny_config(csv_data)
    out = tmp_path / "exp"
    runner.prepare_folder(experiment(cfg, out, ["gru", "rnn"], seeds=1))
    other = replace(cfg, train=replace(cfg.train, lr=0.1))
    with pytest.raises(ConfigError, match=r"different config\.train\.lr: 0\.002 there, 0\.1 now"):
        runner.prepare_folder(experiment(other, out, ["gru", "rnn"], seeds=1))
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a grutext experiment"):
        runner.prepare_folder(experiment(cfg, foreign, ["gru"], seeds=1))
    assert (foreign / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_the_results_files(csv_data, tmp_path):
    exp = experiment(tiny_config(csv_data), tmp_path / "exp", ["gru", "lstm"], seeds=2)
    runner.prepare_folder(exp)
    records = runner.run_all(exp, processes=False, threads=1, log=lambda *a: None)
    runner.latency_pass(exp, records, repeats=3, processes=False)
    lines: list[str] = []
    files = write_results(exp, records, None, log=lines.append)
    out = exp.out
    for name in ("runs.csv", "summary.csv", "summary.md", "results.json", "report.html", "curves.png"):
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert len(results["runs"]) == 4 and results["summary"]["metric"] == "accuracy"
    for r in results["runs"]:
        assert r["latency_ms"] > 0 and r["params"] > 0 and r["size_bytes"] > 0 and r["peak_rss_mb"] > 0
        assert len(r["curve"]) == r["epochs"] == 2
    assert results["summary"]["comparisons"][0]["sentence"].startswith("lstm vs gru: ")
    assert any(line.startswith("lstm vs gru: ") for line in lines)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 3 and "lstm vs gru" in html
    assert files["report_html"] == out / "report.html"


def test_a_run_in_its_own_process(csv_data, tmp_path):
    exp = experiment(tiny_config(csv_data), tmp_path / "exp", ["gru"], seeds=1)
    exp = replace(exp, config={**exp.config, "train": {**exp.config["train"], "epochs": 1}})
    runner.prepare_folder(exp)
    (record,) = runner.run_all(exp, jobs=1, threads=1, log=lambda *a: None)
    assert record["threads"] == 1 and record["epochs"] == 1
    assert (exp.out / "runs" / "gru-seed1.log").read_text(encoding="utf-8").strip()  # the training's own output


# ---- errors -----------------------------------------------------------------------------------------------


def test_bad_cell_names_and_fields_are_one_line_errors_listing_the_valid_ones():
    with pytest.raises(ConfigError) as exc:
        parse_cells("gru,lsmt")
    assert str(exc.value) == "--cells: unknown cell 'lsmt'; expected some of gru, lstm, rnn, mingru, lngru"
    with pytest.raises(ConfigError) as exc:
        resolve_field("hidden_sise", "classifier")
    text = str(exc.value)
    assert "\n" not in text and "did you mean hidden_size?" in text and "model.num_layers" in text
    with pytest.raises(ConfigError, match="set by the runner"):
        resolve_field("seed", "classifier")
    with pytest.raises(ConfigError, match="expected int values; got 'big'"):
        parse_sets(["hidden_size=16,big"], "classifier")
    assert resolve_field("bptt", "language_model") == "lm.bptt"
    with pytest.raises(ConfigError, match="no such config field"):
        resolve_field("bptt", "classifier")


def test_grid_points():
    points = grid_points(parse_sets(["hidden_size=16,32", "num_layers=1,2"], "classifier"))
    assert [p.name for p in points] == [
        "hidden_size-16_num_layers-1", "hidden_size-16_num_layers-2", "hidden_size-32_num_layers-1",
        "hidden_size-32_num_layers-2",
    ]  # fmt: skip
    assert points[1].values == {"model.hidden_size": 16, "model.num_layers": 2}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", "--cells", "gru,lsmt"], "--cells: unknown cell 'lsmt'"),
        (["sweep", "--set", "hidden_sise=8,16"], "--set hidden_sise: no such config field"),
        (
            ["sweep", "--set", "hidden_size=8,16", "--hidden-size", "8"],
            "--hidden-size and --set hidden_size: both given",
        ),
        (["compare", "--cells", "gru,lstm", "--seeds", "0"], "--seeds: expected an integer >= 1; got 0"),
        (["compare", "--cells", "gru,lstm", "--bptt", "20"], "--bptt: a language-model option; add --task lm"),
    ],
)
def test_cli_errors_are_one_line(csv_data, tmp_path, capsys, argv, message):
    assert main([argv[0], str(csv_data), "--out", str(tmp_path / "x"), *argv[1:]]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err, err
    assert not (tmp_path / "x").exists()


def test_sweep_through_the_cli(csv_data, tmp_path, monkeypatch, capsys):
    """The command end to end, its runs trained in this process (the process path has its own test)."""
    from functools import partial

    monkeypatch.setattr(runner, "run_all", partial(runner.run_all, processes=False))
    monkeypatch.setattr(runner, "latency_pass", partial(runner.latency_pass, processes=False))
    out = tmp_path / "sweep"
    argv = ["sweep", str(csv_data), "--set", "hidden_size=8,16", "--seeds", "1", "--out", str(out)]
    argv += ["--epochs", "1", "--embed-dim", "8", "--min-freq", "1", "--latency-repeats", "2", "--threads", "1"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "hidden_size=16 vs hidden_size=8" in text and "tf-idf + logistic regression" in text
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert [r["hidden_size"] for r in results["runs"]] == [8, 16]
    assert results["swept"] == ["model.hidden_size"] and results["baseline"]["valid"] is not None
    assert (out / "metric_vs_swept.png").is_file()


def test_threads_are_split_between_jobs_and_reach_each_run(csv_data, tmp_path):
    assert runner.threads_per_job(8, 3) == 2 and runner.threads_per_job(2, 4) == 1 and runner.threads_per_job(6, 1) == 6
    exp = experiment(tiny_config(csv_data), tmp_path / "exp", ["gru"], seeds=1)
    spec = runner.spec_of(exp, runner.jobs_of(exp)[0], threads=3)
    assert spec["threads"] == 3 and spec["config"]["train"]["threads"] == 3  # start_run sets torch's threads from it
    assert spec["config"]["train"]["out"] == str(tmp_path / "exp" / "runs" / "gru-seed1")


def test_the_settings_line_names_the_monitor_each_task_really_uses(csv_data, tmp_path):
    from grutext.experiments.report import settings_line

    cfg = tiny_config(csv_data)
    points = [Point("gru", "gru", {"model.cell": "gru"})]
    line = {
        kind: settings_line(Experiment("compare", kind, cfg.to_dict(), {}, points, 1, tmp_path))
        for kind in ("classifier", "language_model", "tagger")
    }
    assert "monitor val_accuracy" in line["classifier"]
    assert "monitor val_loss" in line["language_model"]  # the language model always picks by validation loss
    assert "monitor val_chunk_f1" in line["tagger"]
