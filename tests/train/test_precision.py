"""The GPU path's decisions (grutext.train.precision), checked on any machine: the capability check is
passed in, so the CUDA answers are tested without a GPU; on the CPU nothing changes."""

from __future__ import annotations

import contextlib

import pytest
import torch

from grutext.cli.main import main
from grutext.errors import ConfigError
from grutext.train.loop import to_device
from grutext.train.precision import autocast, pin_batches, resolve_precision

CPU, CUDA = torch.device("cpu"), torch.device("cuda", 0)


def yes() -> bool:
    return True


def no() -> bool:
    return False


def test_auto_is_bf16_only_on_a_cuda_device_with_bf16():
    assert resolve_precision("auto", CUDA, yes) == "bf16"
    assert resolve_precision("auto", CUDA, no) == "fp32"
    assert resolve_precision("auto", CPU, yes) == "fp32"  # the capability of a GPU says nothing about the CPU
    assert resolve_precision("fp32", CUDA, yes) == "fp32"
    assert resolve_precision("bf16", CUDA, yes) == "bf16"


def test_bf16_where_it_cannot_run_is_an_error():
    with pytest.raises(ConfigError, match="bf16 autocast is for CUDA devices; this run trains on cpu"):
        resolve_precision("bf16", CPU, yes)
    with pytest.raises(ConfigError, match="no bf16 support"):
        resolve_precision("bf16", CUDA, no)
    with pytest.raises(ConfigError, match="expected auto, fp32 or bf16"):
        resolve_precision("fp16", CUDA, yes)


def test_autocast_and_pinning_only_on_cuda():
    assert isinstance(autocast(CPU, "fp32"), contextlib.nullcontext)
    assert isinstance(autocast(CUDA, "fp32"), contextlib.nullcontext)
    with pytest.warns(UserWarning) if not torch.cuda.is_available() else contextlib.nullcontext():
        ctx = autocast(CUDA, "bf16")
    assert isinstance(ctx, torch.autocast) and ctx.fast_dtype == torch.bfloat16
    assert pin_batches(CUDA) and not pin_batches(CPU)
    batch = {"ids": torch.ones(2, 3, dtype=torch.long)}
    assert to_device(batch, CPU, pin=pin_batches(CPU)) is batch  # the CPU path is untouched


def test_cli_refuses_bf16_on_the_cpu_before_training(tmp_path, capsys):
    data = tmp_path / "t.csv"
    data.write_text("text,label\n" + "\n".join(f"good film {i},pos\nbad film {i},neg" for i in range(10)))
    code = main(
        ["train", str(data), "--precision", "bf16", "--device", "cpu", "--epochs", "1", "--out", str(tmp_path / "m")]
    )
    assert code == 2
    assert "train.precision='bf16'" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_the_cudnn_recurrence_runs_outside_autocast(monkeypatch):
    """CUDA autocast would run cuDNN's GRU in fp16 (not bf16): our cuDNN path turns autocast off around
    it. Checked on the CPU through the same code (autocast off for the input's device type)."""
    from grutext.nn import cudnn
    from grutext.nn.gru import GRU

    gru = GRU(4, 5)
    shell = cudnn._shell(gru)
    seen = []
    real_forward = shell.forward

    def recording(*args, **kwargs):
        seen.append((torch.is_autocast_enabled("cpu"), args[1].dtype))
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(shell, "forward", recording)
    x, h0 = torch.randn(6, 3, 4), torch.zeros(1, 3, 5)
    plain, _ = cudnn.cudnn_gru(gru, x, torch.tensor([6, 3, 2]), h0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = cudnn.cudnn_gru(gru, x.bfloat16(), torch.tensor([6, 3, 2]), h0)
    assert seen == [(False, torch.float32), (False, torch.float32)]
    assert out.dtype == torch.float32
    assert torch.allclose(out, plain, atol=1e-2)  # the same function (the input came rounded to bf16)
