"""The fast path: it runs when expected, and computes exactly the explicit path's function."""

from __future__ import annotations

import os
import warnings

import pytest
import torch
from tests.conftest import torch_threads

from grutext.nn import cudnn, fused
from grutext.nn.gru import GRU

E, H, B, T = 5, 6, 4, 7
LENGTHS = [7, 3, 1, 5]


@pytest.fixture(params=["ext", "torch"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "ext" and not fused.extension_available():
        pytest.skip("C++ extension unavailable (no compiler)")
    monkeypatch.setattr(fused, "BACKEND", request.param)
    return request.param


def _run(gru: GRU, impl: str, x: torch.Tensor, h0: torch.Tensor, lengths: list[int] | None):
    gru.impl = impl
    gru.zero_grad()
    xx = x.detach().clone().requires_grad_(True)
    hh = h0.detach().clone().requires_grad_(True)
    out, h_n = gru(xx, lengths, hh)
    g = torch.Generator().manual_seed(5)
    loss = (out * torch.randn(out.shape, generator=g, dtype=out.dtype)).sum() + (h_n * h_n).sum()
    loss.backward()
    return [out.detach(), h_n.detach(), xx.grad, hh.grad] + [p.grad.clone() for p in gru.parameters()]


@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("bi", [False, True])
@pytest.mark.parametrize("lengths", [None, LENGTHS])
def test_fused_equals_explicit_fp64(backend: str, layers: int, bi: bool, lengths: list[int] | None) -> None:
    torch.manual_seed(layers)
    gru = GRU(E, H, layers, batch_first=True, bidirectional=bi).double()
    x = torch.randn(B, T, E, dtype=torch.float64)
    h0 = torch.randn(layers * (2 if bi else 1), B, H, dtype=torch.float64)
    ref = _run(gru, "explicit", x, h0, lengths)
    got = _run(gru, "fused", x, h0, lengths)
    for a, b in zip(got, ref, strict=True):
        assert (a - b).abs().max().item() <= 1e-10


@pytest.mark.parametrize("bi", [False, True])
def test_recurrent_dropout_fused_equals_explicit_fp64(backend: str, bi: bool) -> None:
    """Training with recurrent dropout: both fused backends give the explicit loop's outputs and
    gradients (the same masks: the same seed before each run)."""
    torch.manual_seed(3)
    gru = GRU(E, H, 2, batch_first=True, bidirectional=bi, recurrent_dropout=0.3).double().train()
    x = torch.randn(B, T, E, dtype=torch.float64)
    h0 = torch.randn(2 * (2 if bi else 1), B, H, dtype=torch.float64)
    results = []
    for impl in ("explicit", "fused"):
        torch.manual_seed(11)
        results.append(_run(gru, impl, x, h0, LENGTHS))
    for a, b in zip(*results, strict=True):
        assert (a - b).abs().max().item() <= 1e-10


@pytest.mark.parametrize("bi", [False, True])
def test_fused_equals_explicit_fp32(backend: str, bi: bool) -> None:
    torch.manual_seed(0)
    gru = GRU(E, H, 2, batch_first=True, bidirectional=bi, bias=False)
    x = torch.randn(B, T, E) * 3  # large pre-activations exercise the saturated sigmoid/tanh
    h0 = torch.randn(2 * (2 if bi else 1), B, H)
    ref = _run(gru, "explicit", x, h0, LENGTHS)
    got = _run(gru, "fused", x, h0, LENGTHS)
    for a, b in zip(got, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_spy_fast_path_runs_when_expected() -> None:
    fused.reset_counters()
    gru = GRU(E, H, batch_first=True, bidirectional=True)
    x = torch.randn(B, T, E, requires_grad=True)
    out, h_n = gru(x, LENGTHS)
    out.sum().backward()
    assert fused.COUNTERS["fused"] == 1 and fused.COUNTERS["explicit"] == 0
    assert gru.last_path == "fused"
    with torch.no_grad():
        gru(x)  # inference too
    assert fused.COUNTERS["fused"] == 2
    gru(x, LENGTHS, return_gates=True)  # gates need the explicit path
    assert fused.COUNTERS["fused"] == 2 and fused.COUNTERS["explicit"] == 1
    assert gru.last_path == "explicit"
    gru.impl = "explicit"
    gru(x)
    assert fused.COUNTERS["explicit"] == 2
    assert fused.COUNTERS["fused_ext"] + fused.COUNTERS["fused_torch"] == fused.COUNTERS["fused"]
    fp16 = GRU(E, H).to(torch.float16)  # no fused kernel for fp16 on CPU -> explicit
    assert fp16._choose_path(False, torch.zeros(1, 1, E, dtype=torch.float16)) == "explicit"


def test_spy_extension_used_when_available() -> None:
    if not fused.extension_available():
        pytest.skip("C++ extension unavailable")
    fused.reset_counters()
    GRU(E, H)(torch.randn(T, B, E))
    assert fused.COUNTERS["fused_ext"] == 1 and fused.COUNTERS["fused_torch"] == 0


def test_no_compiler_falls_back_with_one_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> bool:
        raise OSError("no compiler")

    monkeypatch.setattr(fused, "_EXT_OK", None)
    monkeypatch.setattr(fused, "_build_extension", broken)
    monkeypatch.setattr(fused, "BACKEND", "auto")
    recorded: list[tuple] = []  # the failure is noted for `grutext --version`, not in the real cache here
    monkeypatch.setattr(fused, "record_failure", lambda *a: recorded.append(a))
    fused.reset_counters()
    gru = GRU(E, H)
    x = torch.randn(T, B, E)
    with pytest.warns(RuntimeWarning, match="pure-torch"):
        out = gru(x)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gru(x)  # no second warning
    assert fused.COUNTERS["fused_torch"] == 2
    assert len(recorded) == 1 and recorded[0][0] == "grutext_gru_loop"
    gru.impl = "explicit"
    torch.testing.assert_close(gru(x)[0], out, rtol=1e-5, atol=1e-6)


def test_no_grad_inference_skips_saving(backend: str) -> None:
    torch.manual_seed(0)
    gru = GRU(E, H, 2, bidirectional=True).double()
    x = torch.randn(T, B, E, dtype=torch.float64)
    with torch.no_grad():
        a = gru(x, LENGTHS)
    gru.impl = "explicit"
    b = gru(x, LENGTHS)
    assert (a[0] - b[0]).abs().max() < 1e-12 and (a[1] - b[1]).abs().max() < 1e-12


def _assert_bf16_backends_agree(gru: GRU, x: torch.Tensor, lengths: list[int]) -> None:
    """The C++ loops and the torch loops compute the same bf16-rounded outputs and gradients."""
    results = []
    for backend in ("ext", "torch"):
        fused.BACKEND = backend
        try:
            gru.zero_grad()
            out, h_n = gru(x, lengths)
            out.sum().backward()
            results.append([out.detach()] + [p.grad.clone() for p in gru.parameters()])
        finally:
            fused.BACKEND = "auto"
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("bi", [False, True])
def test_bf16_backends_agree(bi: bool) -> None:
    if not fused.extension_available():
        pytest.skip("C++ extension unavailable")
    torch.manual_seed(0)
    gru = GRU(E, 16, bidirectional=bi, compute_dtype=torch.bfloat16)
    x = torch.randn(T, B, E)
    _assert_bf16_backends_agree(gru, x, LENGTHS)


@pytest.mark.parametrize("lengths", [None, [7, 3, 0, 5]])
def test_cudnn_dispatch_function_matches(lengths: list[int] | None) -> None:
    """The CUDA dispatch goes through torch's GRU with our weights; check that function on CPU."""
    torch.manual_seed(0)
    gru = GRU(E, H, 2, bidirectional=True).double()
    x = torch.randn(T, B, E, dtype=torch.float64)
    h0 = torch.randn(4, B, H, dtype=torch.float64)
    lt = None if lengths is None else torch.tensor(lengths)
    out, h_n = cudnn.cudnn_gru(gru, x, lt, h0)
    gru.impl = "explicit"
    ref_out, ref_h = gru(x, lengths, h0)
    assert (out - ref_out).abs().max() < 1e-10 and (h_n - ref_h).abs().max() < 1e-10


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_dispatches_to_cudnn() -> None:
    fused.reset_counters()
    gru = GRU(E, H, bidirectional=True).cuda().double()
    x = torch.randn(T, B, E, device="cuda", dtype=torch.float64)
    out, h_n = gru(x, LENGTHS)
    assert fused.COUNTERS["cudnn"] == 1 and gru.last_path == "cudnn"
    gru.impl = "explicit"
    ref, ref_h = gru(x, LENGTHS)
    assert (out - ref).abs().max() < 1e-10 and (h_n - ref_h).abs().max() < 1e-10


def test_allocator_tuning_is_opt_out(monkeypatch: pytest.MonkeyPatch) -> None:
    import platform
    import sys

    monkeypatch.setattr(fused, "_ALLOCATOR_TUNED", False)
    monkeypatch.setenv("GRUTEXT_MALLOC_TUNING", "0")
    assert fused.tune_allocator() is False
    monkeypatch.delenv("GRUTEXT_MALLOC_TUNING")
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert fused.tune_allocator() is glibc
    assert fused.tune_allocator() is glibc  # once per process, then a no-op


@pytest.fixture
def two_threads():
    """The C++ loops split (direction, batch chunk) items across threads only when torch has more than one."""
    yield from torch_threads(2)


# 17 rows: two unequal batch chunks (8 + 9) per direction; lengths with zeros, full rows, and one
# chunk whose rows all end early (its steps past them skip the GEMM)
MW_LENGTHS = [7, 3, 0, 1, 5, 7, 2, 6, 4, 2, 1, 0, 3, 2, 1, 2, 3]


@pytest.mark.parametrize("hidden", [16, 40])
@pytest.mark.parametrize("bi", [False, True])
def test_multi_worker_loops_equal_explicit_fp64(two_threads: None, hidden: int, bi: bool) -> None:
    if not fused.extension_available():
        pytest.skip("C++ extension unavailable")
    torch.manual_seed(hidden)
    gru = GRU(E, hidden, 2, batch_first=True, bidirectional=bi).double()
    x = torch.randn(17, T, E, dtype=torch.float64)
    h0 = torch.randn(2 * (2 if bi else 1), 17, hidden, dtype=torch.float64)
    lengths = MW_LENGTHS
    ref = _run(gru, "explicit", x, h0, lengths)
    got = _run(gru, "fused", x, h0, lengths)
    for a, b in zip(got, ref, strict=True):
        assert (a - b).abs().max().item() <= 1e-10


@pytest.mark.parametrize("bi", [False, True])
def test_multi_worker_recurrent_dropout_and_bf16(two_threads: None, bi: bool) -> None:
    if not fused.extension_available():
        pytest.skip("C++ extension unavailable")
    torch.manual_seed(1)
    gru = GRU(E, 24, 2, batch_first=True, bidirectional=bi, recurrent_dropout=0.25).double()
    x = torch.randn(17, T, E, dtype=torch.float64)
    results = []
    for impl in ("explicit", "fused"):
        torch.manual_seed(42)  # the same dropout masks on both paths
        results.append(_run(gru, impl, x, torch.randn(2 * (2 if bi else 1), 17, 24, dtype=torch.float64), MW_LENGTHS))
    for a, b in zip(*results, strict=True):
        assert (a - b).abs().max().item() <= 1e-10
    # bf16 GEMMs: the C++ workers and the torch loops compute the same rounded function
    gru = GRU(E, 24, bidirectional=bi, compute_dtype=torch.bfloat16)
    x = torch.randn(T, 17, E)
    _assert_bf16_backends_agree(gru, x, MW_LENGTHS)


@pytest.mark.parametrize("in_loop", [True, False])
def test_input_projection_in_or_before_the_loop(monkeypatch: pytest.MonkeyPatch, in_loop: bool) -> None:
    if not fused.extension_available():
        pytest.skip("C++ extension unavailable")
    monkeypatch.setattr(fused, "PROJECT_IN_LOOP", in_loop)
    torch.manual_seed(3)
    gru = GRU(E, H, 2, batch_first=True, bidirectional=True).double()
    x = torch.randn(B, T, E, dtype=torch.float64)
    h0 = torch.randn(4, B, H, dtype=torch.float64)
    ref = _run(gru, "explicit", x, h0, LENGTHS)
    got = _run(gru, "fused", x, h0, LENGTHS)
    for a, b in zip(got, ref, strict=True):
        assert (a - b).abs().max().item() <= 1e-10


def test_aten_gemm_fallback_matches(tmp_path) -> None:
    """GRUTEXT_DIRECT_BLAS=0: the loops' GEMMs through ATen ops (the path for a torch whose BLAS
    symbols are not exported) compute the same function."""
    if not fused.extension_available():
        pytest.skip("C++ extension unavailable")
    import os
    import subprocess
    import sys

    script = tmp_path / "check.py"
    script.write_text(
        "import torch\n"
        "torch.set_num_threads(2)\n"
        "from grutext.nn.gru import GRU\n"
        "torch.manual_seed(0)\n"
        "g = GRU(5, 24, 2, bidirectional=True, batch_first=True).double()\n"
        "x = torch.randn(17, 7, 5, dtype=torch.float64, requires_grad=True)\n"
        "lengths = [7, 3, 0, 1, 5, 7, 2, 6, 4, 2, 1, 0, 3, 2, 1, 2, 3]\n"
        "res = []\n"
        "for impl in ('explicit', 'fused'):\n"
        "    g.impl = impl; g.zero_grad(); x.grad = None\n"
        "    out, h = g(x, lengths); (out.square().sum() + h.sum()).backward()\n"
        "    res.append([out.detach(), h.detach(), x.grad] + [p.grad.clone() for p in g.parameters()])\n"
        "print(max((a - b).abs().max().item() for a, b in zip(*res)))\n"
    )
    env = dict(os.environ, GRUTEXT_DIRECT_BLAS="0")
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.strip().splitlines()[-1]) <= 1e-10


def test_the_extensions_load_wherever_a_compiler_is_present(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where a C++ compiler and ninja exist both loops (GRU; LSTM/RNN) must build and expose their ops (the
    spy tests skip otherwise, so a broken build would pass unseen)."""
    import importlib.util
    import shutil

    from grutext.nn import fused_cells

    if not (shutil.which("c++") or shutil.which("g++")) or importlib.util.find_spec("ninja") is None:
        pytest.skip("no C++ compiler or ninja here")
    if os.environ.get("GRUTEXT_NO_EXT"):
        pytest.skip("GRUTEXT_NO_EXT is set")
    for module, ops, op in ((fused, "grutext_gru", "forward"), (fused_cells, "grutext_cells", "lstm_forward")):
        monkeypatch.setattr(module, "_EXT_OK", None)
        assert module.extension_available() is True, module.__name__
        assert hasattr(getattr(torch.ops, ops), op)


@pytest.mark.parametrize(("layers", "bi"), [(1, False), (2, True)])
def test_the_inference_cache_computes_the_same_and_follows_weight_changes(layers: int, bi: bool) -> None:
    """Prediction keeps the prepared weights between calls: bit-identical outputs, rebuilt after an optimiser
    step, ``load_state_dict`` or an in-place ``copy_``; never used with autograd on or in training mode."""
    if not fused.extension_available():
        pytest.skip("C++ extension unavailable")
    torch.manual_seed(0)
    gru = GRU(E, H, num_layers=layers, bidirectional=bi, batch_first=True).eval()
    x, lengths = torch.randn(B, T, E), torch.tensor([T, 2, 5, 1])

    def fresh() -> tuple[torch.Tensor, torch.Tensor]:
        gru.inference_cache = False
        with torch.no_grad():
            out = gru(x, lengths)
        gru.inference_cache = True
        return out

    def cached() -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            return gru(x, lengths)

    gru.inference_cache = True
    for _ in range(2):  # the second call reads the cache
        got, want = cached(), fresh()
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    assert len(gru._inference_weights) == layers

    opt = torch.optim.SGD(gru.parameters(), lr=0.5)  # an optimiser step changes the weights in place
    gru.train()
    gru(x, lengths)[0].sum().backward()
    assert len(gru._inference_weights) == layers  # training with autograd never touches the cache
    opt.step()
    gru.eval()
    assert torch.equal(cached()[0], fresh()[0])
    other = GRU(E, H, num_layers=layers, bidirectional=bi, batch_first=True)
    gru.load_state_dict(other.state_dict())
    assert torch.equal(cached()[0], fresh()[0])
    with torch.no_grad():
        gru.weight_hh_l0.copy_(torch.randn_like(gru.weight_hh_l0))
    assert torch.equal(cached()[0], fresh()[0])

    x.requires_grad_(True)  # autograd on: the ordinary path, gradients reach the input
    gru(x, lengths)[0].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_loaded_models_predict_with_the_inference_cache(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import synthetic, write_csv

    from grutext.artifact import load_model
    from grutext.config import Config, DataConfig, ModelConfig, TrainConfig
    from grutext.tasks.classification.train import train_classifier

    texts, labels = synthetic(40, seed=1)
    data = write_csv(tmp_path / "train.csv", texts, labels)
    cfg = Config(
        DataConfig(train=str(data), min_freq=1),
        ModelConfig(embed_dim=8, hidden_size=8, blend="off"),
        TrainConfig(epochs=1, batch_size=16, out=str(tmp_path / "m")),
    )
    train_classifier(cfg, verbose=False, progress=False)
    loaded = load_model(tmp_path / "m")
    grus = [m for m in loaded.model.modules() if isinstance(m, GRU)]
    assert grus and all(g.inference_cache for g in grus)
