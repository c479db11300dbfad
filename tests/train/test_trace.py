import io

from grutext.train.trace import EpochTable, Progress, plot_curves


def test_epoch_table_rows_align():
    buf = io.StringIO()
    t = EpochTable(buf)
    t.print_row(
        {
            "epoch": 1,
            "loss": 0.5,
            "accuracy": 0.8,
            "val_loss": 0.6,
            "val_accuracy": 0.75,
            "lr": 1e-3,
            "time": 2.0,
            "tokens_per_s": 1000.0,
        }
    )
    t.print_row(
        {
            "epoch": 2,
            "loss": 0.4,
            "accuracy": 0.85,
            "val_loss": 0.55,
            "val_accuracy": 0.8,
            "lr": 5e-4,
            "time": 2.1,
            "tokens_per_s": 1100.0,
        }
    )
    lines = buf.getvalue().splitlines()
    assert lines[0].split() == ["epoch", "loss", "acc", "val_loss", "val_acc", "lr", "time_s", "tok/s"]
    assert len({len(line) for line in lines}) == 1  # header and rows line up
    assert lines[2].split()[0] == "2" and lines[2].split()[4] == "0.8000"


def test_progress_line_when_enabled():
    buf = io.StringIO()
    p = Progress(10, desc="epoch 1/3", enabled=True, stream=buf)
    p.update(10, tokens=5000, loss=0.25)
    p.close()
    text = buf.getvalue()
    assert "epoch 1/3" in text and "10/10" in text and "loss 0.2500" in text and "tok/s" in text


def test_progress_silent_when_not_a_terminal():
    buf = io.StringIO()
    p = Progress(10, enabled=None, stream=buf)
    p.update(5, tokens=100, loss=1.0)
    p.close()
    assert buf.getvalue() == ""


def test_curves_png(tmp_path):
    hist = [
        {"epoch": i, "loss": 1 / i, "accuracy": 0.5 + i / 10, "val_loss": 1.1 / i, "val_accuracy": 0.5 + i / 11}
        for i in range(1, 4)
    ]
    path = plot_curves(hist, tmp_path / "c.png")
    assert path is not None and path.stat().st_size > 5000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
