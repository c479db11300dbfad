"""Tests for grutext.nn.crf against brute-force enumeration of every tag path (fp64)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from grutext.data.tag_schemes import invalid_transitions
from grutext.nn.crf import CRF, allowed_transitions, lengths_to_mask

K = 3
LENGTHS = [4, 1, 3, 2]  # several lengths in one batch, T = 4


def make_crf(seed: int = 0, k: int = K) -> CRF:
    torch.manual_seed(seed)
    crf = CRF(k).double()
    with torch.no_grad():
        crf.transitions.normal_()
        crf.start.normal_()
        crf.end.normal_()
    return crf


def batch(seed: int = 1, lengths: list[int] = LENGTHS, k: int = K) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    emissions = torch.randn(len(lengths), max(lengths), k, generator=g, dtype=torch.float64)  # (B, T, K)
    mask = lengths_to_mask(torch.tensor(lengths), max(lengths))
    return emissions, mask


def brute_scores(crf: CRF, emissions: torch.Tensor, n: int) -> dict[tuple[int, ...], float]:
    """Score of every path of one sentence (emissions (T, K), first n tokens), written out."""
    out = {}
    for path in itertools.product(range(crf.num_tags), repeat=n):
        s = crf.start[path[0]] + crf.end[path[-1]]
        s = s + sum(emissions[t, path[t]] for t in range(n))
        s = s + sum(crf.transitions[path[t - 1], path[t]] for t in range(1, n))
        out[path] = float(s.detach())
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_log_partition_path_score_and_nll_equal_brute_force(seed: int) -> None:
    crf = make_crf(seed)
    emissions, mask = batch(seed + 10)
    log_z = crf.log_partition(emissions, mask)
    tags = torch.randint(0, K, mask.shape, generator=torch.Generator().manual_seed(seed))
    scores = crf.path_score(emissions, tags, mask)
    nll = crf.nll(emissions, tags, mask, reduction="none")
    for b, n in enumerate(LENGTHS):
        table = brute_scores(crf, emissions[b], n)
        expected = math.log(sum(math.exp(v) for v in table.values()))
        assert log_z[b].item() == pytest.approx(expected, abs=1e-10)
        gold = table[tuple(tags[b, :n].tolist())]
        assert scores[b].item() == pytest.approx(gold, abs=1e-10)
        assert nll[b].item() == pytest.approx(expected - gold, abs=1e-10)
    assert crf(emissions, tags, mask).item() == pytest.approx(nll.mean().item())
    assert crf.nll(emissions, tags, mask, reduction="sum").item() == pytest.approx(nll.sum().item())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_viterbi_and_two_best_equal_brute_force(seed: int) -> None:
    crf = make_crf(seed)
    emissions, mask = batch(seed + 20)
    paths, best = crf.decode(emissions, mask, constrained=False)
    two, two_scores = crf.kbest(emissions, k=2, mask=mask, constrained=False)
    for b, n in enumerate(LENGTHS):
        ranked = sorted(brute_scores(crf, emissions[b], n).items(), key=lambda kv: -kv[1])
        assert paths[b] == list(ranked[0][0])
        assert best[b].item() == pytest.approx(ranked[0][1], abs=1e-10)
        assert two[b] == [list(ranked[0][0]), list(ranked[1][0])]
        assert two_scores[b].tolist() == pytest.approx([ranked[0][1], ranked[1][1]], abs=1e-10)


def test_kbest_larger_k_and_fewer_paths_than_k() -> None:
    crf = make_crf(3)
    emissions, mask = batch(4, lengths=[3, 2])
    paths, scores = crf.kbest(emissions, k=5, mask=mask, constrained=False)
    for b, n in enumerate([3, 2]):
        ranked = sorted(brute_scores(crf, emissions[b], n).items(), key=lambda kv: -kv[1])[:5]
        assert [tuple(p) for p in paths[b]] == [p for p, _ in ranked]
        assert scores[b].tolist() == pytest.approx([s for _, s in ranked], abs=1e-10)
    one, one_scores = crf.kbest(emissions[:1, :1], k=4)  # one token, 3 paths: the fourth is -inf
    assert sorted(p[0] for p in one[0][:3]) == [0, 1, 2]
    assert one_scores[0, 3].item() == float("-inf")


def test_masked_positions_change_nothing() -> None:
    crf = make_crf(5)
    emissions, mask = batch(6)
    tags = torch.randint(0, K, mask.shape, generator=torch.Generator().manual_seed(0))
    garbage = emissions.clone()
    garbage[~mask] = torch.randn(int((~mask).sum()), K, dtype=torch.float64) * 1e3
    garbage[1, 3, 0] = float("nan")
    garbage_tags = tags.masked_fill(~mask, -100)  # out-of-range tags on padding are ignored
    assert torch.equal(crf.log_partition(emissions, mask), crf.log_partition(garbage, mask))
    assert torch.equal(
        crf.nll(emissions, tags, mask, reduction="none"), crf.nll(garbage, garbage_tags, mask, reduction="none")
    )
    (clean_paths, clean_scores), (dirty_paths, dirty_scores) = crf.decode(emissions, mask), crf.decode(garbage, mask)
    assert clean_paths == dirty_paths and torch.equal(clean_scores, dirty_scores)
    (clean_two, clean_two_scores), (dirty_two, dirty_two_scores) = (
        crf.kbest(emissions, 2, mask),
        crf.kbest(garbage, 2, mask),
    )
    assert clean_two == dirty_two and torch.equal(clean_two_scores, dirty_two_scores)
    # each sentence alone, unpadded, gives the same numbers as inside the batch
    for b, n in enumerate(LENGTHS):
        alone = emissions[b : b + 1, :n]
        assert crf.log_partition(alone)[0].item() == pytest.approx(
            crf.log_partition(garbage, mask)[b].item(), abs=1e-12
        )
        assert crf.decode(alone)[0][0] == crf.decode(garbage, mask)[0][b]
    # lengths= and mask= are the same thing
    assert torch.equal(crf.log_partition(emissions, lengths=torch.tensor(LENGTHS)), crf.log_partition(emissions, mask))
    # the gradient never reaches padded emissions
    leaf = garbage.clone().requires_grad_(True)
    crf.nll(leaf, garbage_tags, mask).backward()
    assert torch.all(leaf.grad[~mask] == 0) and torch.isfinite(leaf.grad).all()


def test_gradcheck() -> None:
    crf = make_crf(7)
    emissions, mask = batch(8, lengths=[3, 1, 2])
    tags = torch.randint(0, K, mask.shape, generator=torch.Generator().manual_seed(1))
    inputs = tuple(p.detach().clone().requires_grad_(True) for p in (emissions, crf.transitions, crf.start, crf.end))
    assert torch.autograd.gradcheck(lambda em, tr, st, en: _nll_functional(em, tr, st, en, tags, mask), inputs)
    assert torch.autograd.gradcheck(lambda em, tr, st, en: _log_z_functional(em, tr, st, en, mask), inputs)


def _log_z_functional(em, trans, start, end, mask):  # type: ignore[no-untyped-def]
    return _with_params(trans, start, end).log_partition(em, mask)


def _with_params(trans, start, end):  # type: ignore[no-untyped-def]
    """A CRF whose parameters are the given tensors (so gradcheck differentiates them)."""
    crf = CRF(K).double()
    del crf.transitions, crf.start, crf.end
    crf.transitions, crf.start, crf.end = trans, start, end  # plain tensors, not Parameters
    return crf


def _nll_functional(em, trans, start, end, tags, mask):  # type: ignore[no-untyped-def]
    return _with_params(trans, start, end).nll(em, tags, mask, reduction="none")


def test_marginals_equal_brute_force() -> None:
    crf = make_crf(9)
    emissions, mask = batch(10)
    marg = crf.marginals(emissions, mask)  # (B, T, K)
    for b, n in enumerate(LENGTHS):
        table = brute_scores(crf, emissions[b], n)
        z = sum(math.exp(v) for v in table.values())
        for t in range(n):
            for j in range(K):
                p = sum(math.exp(v) for path, v in table.items() if path[t] == j) / z
                assert marg[b, t, j].item() == pytest.approx(p, abs=1e-10)
        assert torch.all(marg[b, n:] == 0)


TAGS_BIO = ["O", "B-NP", "I-NP", "B-VP", "I-VP"]
TAGS_BIOES = ["O", "B-NP", "I-NP", "E-NP", "S-NP", "B-VP", "I-VP", "E-VP", "S-VP"]


def test_allowed_transitions_tables() -> None:
    bio = allowed_transitions(TAGS_BIO, "BIO")
    assert bio.start.tolist() == [True, True, False, True, False]
    assert bio.end.all()
    i_np = TAGS_BIO.index("I-NP")
    assert bio.transitions[:, i_np].tolist() == [False, True, True, False, False]  # only after B-NP / I-NP
    assert bio.transitions[:, TAGS_BIO.index("B-VP")].all()
    bioes = allowed_transitions(TAGS_BIOES, "IOBES")
    assert bioes.start.tolist() == [True, True, False, False, True, True, False, False, True]
    assert bioes.end.tolist() == [True, False, False, True, True, False, False, True, True]
    b_np = TAGS_BIOES.index("B-NP")
    assert [TAGS_BIOES[j] for j in range(9) if bioes.transitions[b_np, j]] == ["I-NP", "E-NP"]
    e_np = TAGS_BIOES.index("E-NP")
    assert [TAGS_BIOES[j] for j in range(9) if bioes.transitions[e_np, j]] == ["O", "B-NP", "S-NP", "B-VP", "S-VP"]
    iob1 = allowed_transitions(TAGS_BIO, "IOB1")
    assert iob1.start.tolist() == [True, False, True, False, True]
    assert iob1.transitions[:, TAGS_BIO.index("B-NP")].tolist() == [False, True, True, False, False]


@pytest.mark.parametrize(("tags", "scheme"), [(TAGS_BIO, "IOB2"), (TAGS_BIOES, "BIOES"), (TAGS_BIO, "IOB1")])
def test_constrained_decoding_never_produces_an_invalid_sequence(tags: list[str], scheme: str) -> None:
    k = len(tags)
    constraints = allowed_transitions(tags, scheme)
    crf = CRF(k, constraints=constraints)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # transitions that push towards invalid moves, and loud emissions
        crf.transitions.copy_(torch.randn(k, k, generator=g) * 3)
        crf.start.copy_(torch.randn(k, generator=g) * 3)
        crf.end.copy_(torch.randn(k, generator=g) * 3)
    lengths = torch.randint(1, 9, (200,), generator=g)
    emissions = torch.randn(200, 8, k, generator=g) * 4  # (B, T, K)
    mask = lengths_to_mask(lengths, 8)
    unconstrained, _ = crf.decode(emissions, mask, constrained=False)
    assert any(invalid_transitions([tags[i] for i in p], scheme) for p in unconstrained)  # the test has teeth
    paths, scores = crf.decode(emissions, mask)
    second, second_scores = crf.kbest(emissions, 2, mask)
    for b, path in enumerate(paths):
        assert len(path) == lengths[b]
        assert constraints.allows(path), [tags[i] for i in path]
        assert invalid_transitions([tags[i] for i in path], scheme) == []
        assert second[b][0] == path
        if second_scores[b, 1] > float("-inf"):
            assert constraints.allows(second[b][1]) and second[b][1] != path
    assert torch.isfinite(scores).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_numpy_viterbi_equals_the_torch_loop(monkeypatch: pytest.MonkeyPatch, dtype: torch.dtype) -> None:
    import grutext.nn.crf as crf_module

    tags = ["O", "B-NP", "I-NP", "E-NP", "S-NP", "B-VP", "I-VP", "E-VP", "S-VP"]
    crf = CRF(len(tags), allowed_transitions(tags, "BIOES"))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in crf.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    emissions = torch.randn(7, 11, len(tags), generator=gen).to(dtype)
    lengths = torch.tensor([11, 1, 5, 9, 2, 11, 3])
    for constrained in (True, False):
        fast = crf.decode(emissions, lengths=lengths, constrained=constrained)
        monkeypatch.setattr(crf_module, "NUMPY_VITERBI", False)
        slow = crf.decode(emissions, lengths=lengths, constrained=constrained)
        monkeypatch.setattr(crf_module, "NUMPY_VITERBI", True)
        assert fast[0] == slow[0] and [len(p) for p in fast[0]] == lengths.tolist()
        assert fast[1].dtype == slow[1].dtype == dtype and torch.equal(fast[1], slow[1])
        assert all(crf.allowed_start[p[0]] for p in fast[0]) or not constrained


@pytest.mark.parametrize("lengths", [[6], [6, 6, 6], [6, 2, 4]])
def test_numpy_viterbi_breaks_ties_as_the_torch_loop(monkeypatch: pytest.MonkeyPatch, lengths: list[int]) -> None:
    """Small integer scores: many equal candidates; both recursions keep the first best previous tag
    (full batches take the NumPy path's no-padding shortcut at every step)."""
    import grutext.nn.crf as crf_module

    tags = ["O", "B-NP", "I-NP", "E-NP", "S-NP"]
    crf = CRF(len(tags), allowed_transitions(tags, "BIOES"))
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in crf.parameters():
            p.copy_(torch.randint(-1, 2, p.shape, generator=gen).float())
    emissions = torch.randint(-1, 2, (len(lengths), 6, len(tags)), generator=gen).float()
    lens = torch.tensor(lengths)
    for constrained in (True, False):
        fast = crf.decode(emissions, lengths=lens, constrained=constrained)
        monkeypatch.setattr(crf_module, "NUMPY_VITERBI", False)
        slow = crf.decode(emissions, lengths=lens, constrained=constrained)
        monkeypatch.setattr(crf_module, "NUMPY_VITERBI", True)
        assert fast[0] == slow[0] and torch.equal(fast[1], slow[1])


def test_set_constraints_replaces_and_clears_the_allowed_transitions() -> None:
    tags = ["O", "B-NP", "I-NP", "E-NP", "S-NP"]
    mask = allowed_transitions(tags, "BIOES")
    crf = CRF(len(tags), mask)
    assert not bool(crf.allowed_transitions.all()) and not bool(crf.allowed_start.all())
    crf.set_constraints(None)  # allow everything
    for buf in (crf.allowed_start, crf.allowed_transitions, crf.allowed_end):
        assert bool(buf.all())
    assert crf.allowed_end.shape == (len(tags),) and crf.allowed_transitions.shape == (len(tags), len(tags))
    crf.set_constraints(mask)
    assert torch.equal(crf.allowed_transitions, mask.transitions) and torch.equal(crf.allowed_end, mask.end)
    assert torch.equal(crf.allowed_start, mask.start)
    with pytest.raises(ValueError, match="constraints are for 3 tags, the CRF has 5"):
        crf.set_constraints(allowed_transitions(["O", "B-NP", "I-NP"], "IOB2"))


def test_bad_shapes_and_empty_sentences_are_named_errors() -> None:
    crf = make_crf()
    with pytest.raises(ValueError, match=rf"^emissions must be \(B, T, {K}\), got \(2, 3, {K + 1}\)$"):
        crf.decode(torch.zeros(2, 3, K + 1, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"^every sentence needs at least one token \(mask\[:, 0\] must be True\)$"):
        crf.decode(torch.zeros(2, 3, K, dtype=torch.float64), lengths=torch.tensor([3, 0]))
    with pytest.raises(ValueError, match="at least one token"):
        crf.decode(torch.zeros(2, 0, K, dtype=torch.float64))


def test_nll_with_lengths_equals_nll_with_the_mask() -> None:
    crf = make_crf()
    emissions, mask = batch()
    lengths = mask.sum(1)
    tags = torch.randint(0, K, emissions.shape[:2])
    for reduction in ("mean", "sum", "none"):
        torch.testing.assert_close(
            crf.nll(emissions, tags, lengths=lengths, reduction=reduction),
            crf.nll(emissions, tags, mask=mask, reduction=reduction),
        )
    full = crf.nll(emissions, tags, reduction="none")  # no lengths: every step counts, so the padded rows differ
    assert not torch.allclose(full, crf.nll(emissions, tags, lengths=lengths, reduction="none"))
