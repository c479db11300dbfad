"""`export_model`: a model directory -> one self-describing ONNX folder the torch-free runtime reads.

The folder (written to a temporary sibling and renamed into place once, so it is complete or
absent) holds ``model.onnx``, with ``--int8`` also ``model.int8.onnx``, the training
``tokenizer.json``, a blended classifier's ``ngrams.json`` and ``ngrams.safetensors`` (its n-gram
model, `grutext.ngrams`, copied as trained), a tagger's ``tagger.json`` (`grutext.export.tagger`)
and ``grutext-export.json`` (format, versions, kind,
labels, pre- and post-processing settings, the blend, input/output names, the parity and int8
measurements, and the sha256 of every file).

Before it writes anything the exporter validates every graph with ``onnx.checker`` and compares
the fp32 graph with the torch model: a padded batch of random ids against torch's output, and
each sequence alone against the padded batch. A difference above `PARITY_TOL` is an error, not a
warning. The parity check is the network's alone (the graph's ``probs``, a tagger's ``emissions``);
the n-gram blend and the tagger's decoding run after the graph, in NumPy, in the runtime.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from grutext.errors import ArtifactError, ConfigError, DataError
from grutext.export.graph import DEFAULT_OPSET, OPSETS, classifier_graph, lm_step_graph
from grutext.export.nets import classifier_nets, lm_net
from grutext.export.tagger import TAGGER_FILE, tagger_file, tagger_graphs, tagger_parity
from grutext.ngrams import FILES as NGRAM_FILES
from grutext.runtime import FORMAT, FORMAT_VERSION, MANIFEST, load, read_manifest, sha256_file

PARITY_TOL = 1e-4  # fp32 graph vs torch, max |difference| of probabilities / logits
LM_EVAL_TOKENS = 4000  # tokens of a language model's test text scored per graph for --int8

Graphs = dict[str, Any]  # file name -> onnx ModelProto


def _finite_check(model: Any, what: str) -> None:
    from onnx import numpy_helper

    def walk(graph: Any) -> None:
        for init in graph.initializer:
            a = numpy_helper.to_array(init)
            if a.dtype.kind == "f" and "ninf_" not in init.name and not np.isfinite(a).all():  # -inf: the masks' fill
                raise ArtifactError(f"{what}: weight {init.name} holds NaN or Infinity; the model cannot be exported")
        for node in graph.node:
            for attr in node.attribute:
                if attr.g is not None and attr.g.node:
                    walk(attr.g)

    walk(model.graph)


def _session(model: Any) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"])


def _random_batch(vocab: int, T: int, B: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = np.sort(rng.integers(1, T + 1, size=B))[::-1].copy()
    lengths[0] = T
    lengths[-1] = 1
    ids = rng.integers(4, vocab, size=(B, T)) if vocab > 4 else rng.integers(1, vocab, size=(B, T))
    ids[np.arange(T)[None, :] >= lengths[:, None]] = 0
    return ids.astype(np.int64), lengths.astype(np.int64)


def classifier_parity(model: torch.nn.Module, sess: Any, vocab: int) -> float:
    """Max |probability difference|: torch vs graph on padded batches, and each sequence alone vs its padded row."""
    worst = 0.0
    clf: Any = model
    for B, T in ((5, 23), (3, 1), (2, 64)):
        ids, lengths = _random_batch(vocab, T, B, seed=B * 100 + T)
        with torch.no_grad():
            ref = clf.probabilities(clf(torch.from_numpy(ids), torch.from_numpy(lengths))[0]).float().numpy()
        got = sess.run(["probs"], {"ids": ids, "lengths": lengths})[0]
        worst = max(worst, float(np.abs(ref - got).max()))
        for b in range(B):
            alone = sess.run(["probs"], {"ids": ids[b : b + 1, : lengths[b]], "lengths": lengths[b : b + 1]})[0]
            worst = max(worst, float(np.abs(alone[0] - got[b]).max()))
    return worst


def lm_parity(model: torch.nn.Module, sess: Any, vocab: int, num_layers: int, hidden: int, steps: int = 20) -> float:
    """Max |logit difference|: the step graph driven `steps` times vs torch over the whole sequence."""
    rng = np.random.default_rng(0)
    ids = rng.integers(4 if vocab > 4 else 1, vocab, size=(3, steps)).astype(np.int64)
    with torch.no_grad():
        ref = model(torch.from_numpy(ids))[0].float().numpy()  # (B, T, V)
    state = np.zeros((num_layers, 3, hidden), np.float32)
    worst = 0.0
    for t in range(steps):
        logits, state = sess.run(["logits", "state_out"], {"ids": ids[:, t : t + 1], "state": state})
        worst = max(worst, float(np.abs(logits - ref[:, t]).max()))
    return worst


def _check_out(out: Path, overwrite: bool) -> None:
    if not out.exists():
        if not out.parent.is_dir():
            raise ConfigError(f"OUT {out}: its parent folder {out.parent} does not exist")
        return
    if not out.is_dir():
        raise ConfigError(f"OUT {out}: exists and is a file; expected a new folder or an earlier export folder")
    if not any(out.iterdir()):
        return
    try:
        read_manifest(out)
    except ArtifactError:
        raise ConfigError(
            f"OUT {out}: exists and is not a grutext export folder (no valid {MANIFEST}); refusing to replace it, "
            "choose a new path"
        ) from None
    if not overwrite:
        raise ConfigError(f"OUT {out}: an export folder already exists there; pass --overwrite to replace it")


def _write_atomic(out: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temporary sibling, fsync, then rename it into place (old one moved aside)."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        write(tmp)
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o777 & ~_umask())
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        if old is not None:
            os.rename(old, out)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _classifier_test_data(loaded: Any, test: str | None) -> tuple[list[str], Any, str]:
    """(texts, labels, where) of the test set: `test` when given, else the split training recorded."""
    from grutext.data.readers import read_dataset

    cfg = loaded.config
    if test is not None:
        ds = read_dataset(test, fmt=cfg.data.format, text_col=cfg.data.text_col, label_col=cfg.data.label_col)
        where = str(test)
    else:
        from grutext.tasks.classification.data import load_splits

        try:
            splits = load_splits(cfg.data, seed=cfg.train.seed)
        except (DataError, ConfigError, OSError) as exc:
            raise DataError(
                f"--int8: the model's recorded test split could not be read ({exc}); pass --test FILE"
            ) from None
        if splits.test is None:
            raise DataError("--int8: the model records no test split; pass --test FILE (labelled texts)")
        ds = splits.test
        where = f"the recorded test split of {cfg.data.train}"
    if ds.labels is None:
        raise DataError(f"{where}: no labels; --int8 measures accuracy on labelled texts")
    known = set(loaded.labels)
    for i, lab in enumerate(ds.labels):
        for one in lab if isinstance(lab, list) else [lab]:
            if one not in known:
                raise DataError(f"{where}: text {i} has label {one!r}, which the model does not know")
    return list(ds.texts), ds.labels, where


def classifier_accuracy(probs: np.ndarray, labels: Any, label_names: list[str], task: str, threshold: float) -> float:
    """Accuracy in percent: argmax vs label; multi-label: per-(text, class) decisions at `threshold`."""
    index = {name: i for i, name in enumerate(label_names)}
    if task == "multilabel":
        y = np.zeros_like(probs, dtype=bool)
        for r, labs in enumerate(labels):
            for lab in labs if isinstance(labs, list) else [labs]:
                y[r, index[lab]] = True
        return 100.0 * float(((probs >= threshold) == y).mean())
    y1 = np.array([index[lab] for lab in labels])
    return 100.0 * float((probs.argmax(1) == y1).mean())


def _lm_perplexity(rt: Any, ids: list[int]) -> float:
    """Perplexity of `ids` under an exported LM, one stream, step by step (the first id is context only)."""
    state = rt.init_state(1)
    nll = 0.0
    logits, state = rt.step([ids[0]], state)
    for nxt in ids[1:]:
        z = logits[0].astype(np.float64)
        m = z.max()
        nll += float(np.log(np.exp(z - m).sum()) + m - z[nxt])
        logits, state = rt.step([nxt], state)
    return float(np.exp(nll / max(1, len(ids) - 1)))


def export_model(
    model_dir: str | Path,
    out: str | Path,
    *,
    int8: bool = False,
    opset: int = DEFAULT_OPSET,
    test: str | None = None,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Export a model directory to an ONNX folder.

    Args:
        model_dir: a classifier (one network or an ensemble), language model or tagger directory.
        out: the folder to write (a new path, an empty folder, or an earlier export with `overwrite`).
        int8: also write ``model.int8.onnx`` (embedding, linear layers and the GRU's matrices int8)
            and measure its accuracy change on the test set (not for taggers: a ConfigError).
        opset: ONNX opset (one of `OPSETS`).
        test: labelled test file (classifier) or text file (language model) for the int8 measurement;
            a classifier without it uses the test split its training recorded.
        overwrite: replace an earlier export folder at `out`.
        log: where progress lines go.

    Returns:
        The manifest written as ``grutext-export.json``.

    Raises:
        ConfigError: bad option or OUT. ArtifactError: unreadable model, a kind or cell that cannot
        be exported, or a failed check. DataError: unusable test data.
    """
    import onnx  # noqa: F401 - needed by every step below: missing, it fails before anything is read

    from grutext.artifact import load_model

    _check_options(int8, opset, test)
    model_dir, out = Path(model_dir), Path(out)
    _check_out(out, overwrite)
    loaded = load_model(model_dir)
    if loaded.kind not in ("classifier", "language_model", "tagger"):
        raise ArtifactError(
            f"{model_dir}: a {loaded.kind} model; export supports classifiers, language models and taggers"
        )
    model = loaded.model.eval()
    info = _base_manifest(loaded, model_dir, opset)
    build = {"classifier": _classifier_graphs, "language_model": _lm_graphs, "tagger": tagger_graphs}[loaded.kind]
    graphs = build(loaded, model, int8, opset, info)
    _check_graphs(graphs, model_dir)
    info["parity"] = _parity(loaded, model, graphs["model.onnx"], info, log)
    copied = _copied_files(loaded, model_dir)
    if int8:  # measured on a scratch copy through the runtime itself, end to end from the raw text (blended)
        with tempfile.TemporaryDirectory(prefix=".grutext-int8-", dir=out.parent) as scratch:
            _write_files(Path(scratch), dict(info), graphs, copied)
            info["int8"] = _measure_int8(loaded, Path(scratch), test, log)
    _write_atomic(out, lambda folder: _write_files(folder, info, graphs, copied))
    shown = [*graphs, *(n for n in copied if n in NGRAM_FILES)]  # a blended classifier: its n-gram model too
    sizes = ", ".join(f"{n} {(out / n).stat().st_size / 1e6:.2f} MB" for n in shown)
    log(f"wrote {out} ({sizes})")
    return info


def _copied_files(loaded: Any, model_dir: Path) -> dict[str, bytes]:
    """The files the export carries as they are: the tokenizer, and a blended classifier's n-gram model."""
    names = ["tokenizer.json", *(NGRAM_FILES if getattr(loaded, "ngrams", None) is not None else ())]
    files = {name: (model_dir / name).read_bytes() for name in names}
    if loaded.kind == "tagger":  # its vocabularies and CRF, written from the model
        files[TAGGER_FILE] = tagger_file(loaded)
    return files


def _blend_entry(loaded: Any) -> dict[str, Any] | None:
    """The manifest's ``blend``: the n-gram model's weight and files (None: the network alone)."""
    ngrams = getattr(loaded, "ngrams", None)
    if ngrams is None:
        return None
    return {
        "weight": ngrams.weight,
        "files": list(NGRAM_FILES),
        "probabilities": "(1 - weight) * the graph's probs + weight * the n-gram model's (grutext.ngrams, "
        "on the raw text)",
    }


def _check_options(int8: bool, opset: int, test: str | None) -> None:
    if opset not in OPSETS:
        raise ConfigError(f"--opset: expected one of {list(OPSETS)}, got {opset!r}")
    if test is not None and not int8:
        raise ConfigError("--test: applies only with --int8 (it measures the int8 model's accuracy change)")
    if test is not None and not Path(test).is_file():
        raise DataError(f"--test {test}: file not found")


def _base_manifest(loaded: Any, model_dir: Path, opset: int) -> dict[str, Any]:
    """The manifest's entries every kind has (format, versions, kind, source, tokenizer)."""
    from grutext.version import __version__

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "grutext_version": __version__,
        "kind": loaded.kind,
        "opset": opset,
        "source": str(model_dir.resolve()),
        "tokenizer": {"kind": loaded.tokenizer.kind, "vocab_size": int(loaded.tokenizer.vocab_size)},
        "special_ids": {"pad": 0, "unk": 1, "bos": 2, "eos": 3},
    }


def _classifier_graphs(loaded: Any, model: torch.nn.Module, int8: bool, opset: int, info: dict[str, Any]) -> Graphs:
    """A classifier's graphs (fp32: the GRU op; int8: the Loop form); its entries added to `info`."""
    cfg = loaded.config
    nets = classifier_nets(model)
    graphs = {"model.onnx": classifier_graph(nets, "op", False, opset)}
    if int8:
        graphs["model.int8.onnx"] = classifier_graph(nets, "loop", True, opset)
    info.update(
        task=cfg.model.task,
        labels=list(loaded.labels),
        ensemble=len(nets),
        preprocess={
            "lowercase": bool(loaded.tokenizer.lowercase),
            "max_len": cfg.data.max_len,
            "truncation": cfg.data.truncation,
            "empty_text": "one <unk> token",
            "padding": "post, id 0",
        },
        postprocess={"probabilities": "sigmoid (binary: [1-p, p]) or softmax", "multilabel_threshold": 0.5},
        blend=_blend_entry(loaded),
        inputs={"ids": "int64 (batch, time), post-padded with 0", "lengths": "int64 (batch,), each >= 1"},
        outputs={"probs": "float32 (batch, classes), mean over ensemble members"},
        gru={"model.onnx": "ONNX GRU op, linear_before_reset=1, sequence_lens", "model.int8.onnx": "Loop"},
    )
    return graphs


def _lm_graphs(loaded: Any, model: torch.nn.Module, int8: bool, opset: int, info: dict[str, Any]) -> Graphs:
    """A language model's one-step graphs; its entries added to `info`."""
    from grutext.tasks.language_model.predict import starts_after_eos

    vocab = int(loaded.tokenizer.vocab_size)
    net = lm_net(model)
    graphs = {"model.onnx": lm_step_graph(net, False, opset)}
    if int8:
        graphs["model.int8.onnx"] = lm_step_graph(net, True, opset)
    L, H = len(net.layers), net.layers[0].hidden
    info.update(
        labels=[],
        lm={
            "add_eos": bool(starts_after_eos(loaded)),
            "num_layers": L,
            "hidden_size": H,
            "vocab_size": vocab,
            "tied": net.dec_w is net.embedding,
        },
        preprocess={"lowercase": bool(loaded.tokenizer.lowercase), "prompt": "<eos> first when add_eos"},
        inputs={"ids": "int64 (batch, 1)", "state": f"float32 ({L}, batch, {H})"},
        outputs={"logits": f"float32 (batch, {vocab})", "state_out": f"float32 ({L}, batch, {H})"},
    )
    return graphs


def _check_graphs(graphs: Graphs, model_dir: Path) -> None:
    """Every weight finite and every graph accepted by ``onnx.checker``."""
    import onnx

    for name, graph in graphs.items():
        _finite_check(graph, f"{model_dir}")
        try:
            onnx.checker.check_model(graph, full_check=True)
        except Exception as exc:  # onnx's checker error types
            raise ArtifactError(f"{name}: onnx.checker rejected the graph ({str(exc).splitlines()[0]})") from None


def _parity(
    loaded: Any, model: torch.nn.Module, graph: Any, info: dict[str, Any], log: Callable[[str], None]
) -> dict[str, Any]:
    """The fp32 graph against torch (the manifest's ``parity`` entry); an error above `PARITY_TOL`.

    The network's probabilities only: the n-gram blend is applied after the graph, by the same
    NumPy code (`grutext.ngrams`) in the torch predictor and the runtime, so it has nothing to check here.
    """
    sess = _session(graph)
    vocab = int(loaded.tokenizer.vocab_size)
    if loaded.kind == "classifier":
        diff = classifier_parity(model, sess, vocab)
    elif loaded.kind == "tagger":
        diff = tagger_parity(model, sess)
    else:
        diff = lm_parity(model, sess, vocab, info["lm"]["num_layers"], info["lm"]["hidden_size"])
    if not diff <= PARITY_TOL:
        raise ArtifactError(
            f"parity check failed: model.onnx differs from the torch model by {diff:.3g} (> {PARITY_TOL})"
        )
    log(f"parity: model.onnx vs torch, max |diff| {diff:.2e} (tolerance {PARITY_TOL:g})")
    return {
        "max_abs_diff": diff,
        "tolerance": PARITY_TOL,
        "checked": "padded batches vs torch; each row alone",
    }


def _write_files(folder: Path, manifest: dict[str, Any], graphs: Graphs, copied: dict[str, bytes]) -> None:
    """The graphs, the copied files (tokenizer, n-gram model) and the manifest (with every file's
    sha256 and size) into `folder`."""
    files: dict[str, Any] = {}
    for name, graph in graphs.items():
        (folder / name).write_bytes(graph.SerializeToString())
    for name, data in copied.items():
        (folder / name).write_bytes(data)
    for name in [*graphs, *copied]:
        files[name] = {"sha256": sha256_file(folder / name), "bytes": (folder / name).stat().st_size}
    manifest["files"] = files
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def _measure_int8(loaded: Any, folder: Path, test: str | None, log: Callable[[str], None]) -> dict[str, Any]:
    fp32, q8 = load(folder, threads=1), load(folder, threads=1, int8=True)
    sizes = {n: (folder / n).stat().st_size for n in ("model.onnx", "model.int8.onnx")}
    result: dict[str, Any] = {
        "size_ratio": sizes["model.int8.onnx"] / sizes["model.onnx"],
        "quantized": "embedding (per row), every linear layer and both GRU matrices (per output channel) int8; "
        "activations uint8 per tensor at run time",
    }
    if loaded.kind == "classifier":
        texts, labels, where = _classifier_test_data(loaded, test)
        task = loaded.config.model.task
        p32, p8 = fp32.predict_proba(texts), q8.predict_proba(texts)  # type: ignore[attr-defined]
        a32 = classifier_accuracy(p32, labels, loaded.labels, task, 0.5)
        a8 = classifier_accuracy(p8, labels, loaded.labels, task, 0.5)
        result.update(
            test=where,
            n=len(texts),
            accuracy_fp32=round(a32, 4),
            accuracy_int8=round(a8, 4),
            accuracy_change=round(a8 - a32, 4),
            max_prob_diff=float(np.abs(p32 - p8).max()),
        )
        log(
            f"int8: accuracy {a8:.2f}% vs fp32 {a32:.2f}% ({a8 - a32:+.2f} points) on {len(texts):,} texts of {where}; "
            f"file {result['size_ratio']:.1%} of fp32"
        )
    else:
        if test is None:
            raise DataError(
                "--int8 for a language model: pass --test FILE (plain text) to measure its perplexity change"
            )
        text = Path(test).read_text(encoding="utf-8", errors="replace")
        ids = fp32.tokenizer.encode(text)[:LM_EVAL_TOKENS]
        if len(ids) < 2:
            raise DataError(f"--test {test}: fewer than 2 tokens; expected some text")
        pp32, pp8 = _lm_perplexity(fp32, ids), _lm_perplexity(q8, ids)
        if not (np.isfinite(pp32) and np.isfinite(pp8)):
            raise ArtifactError(f"--int8: perplexity on {test} not finite (fp32 {pp32}, int8 {pp8}); nothing written")
        result.update(test=str(test), tokens=len(ids), perplexity_fp32=round(pp32, 4), perplexity_int8=round(pp8, 4))
        log(
            f"int8: perplexity {pp8:.2f} vs fp32 {pp32:.2f} on the first {len(ids):,} tokens of {test}; "
            f"file {result['size_ratio']:.1%} of fp32"
        )
    return result


__all__ = ["PARITY_TOL", "classifier_accuracy", "classifier_parity", "export_model", "lm_parity"]
