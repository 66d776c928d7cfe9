"""Each loss against a small case computed by hand with explicit numpy formulas (B = 3, C = 2..4)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from training import losses

EPS = 1e-5
LP = np.array([[2.0, -1.0, 0.5, -3.0],
               [0.0, 1.5, -2.0, 1.0],
               [-0.5, 0.3, 3.0, -1.2]])  # logits at observed locations, B=3, C=4
LR = np.array([[-2.0, 0.4, -0.1, 1.0],
               [1.2, -3.0, 0.0, -0.7],
               [0.2, 0.9, -1.5, 2.5]])  # logits at random locations
Z = np.array([0, 3, 2])


def sig(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def nl(p: float | np.ndarray) -> float | np.ndarray:
    return -np.log(p + EPS)


def negH(p: float | np.ndarray) -> float | np.ndarray:
    return -(p * nl(p) + (1 - p) * nl(1 - p))


def call(name: str, lp: np.ndarray = LP, lr: np.ndarray | None = LR, z: np.ndarray = Z, **kw) -> float:
    fn = losses.LOSSES[name]
    return float(fn(torch.tensor(lp, dtype=torch.float64),
                    None if lr is None else torch.tensor(lr, dtype=torch.float64),
                    torch.tensor(z), **kw))


def full_by_hand(lam: float, neg_term, mask: np.ndarray | None = None) -> float:
    b, c = LP.shape
    total = 0.0
    for i in range(b):
        for j in range(c):
            p = sig(LP[i, j])
            if j == Z[i]:
                total += lam * nl(p)
            elif mask is None or mask[i, j]:
                total += neg_term(p)
    obs = total / (b * c)
    rand = sum(neg_term(sig(LR[i, j])) for i in range(b) for j in range(c)) / (b * c)
    return obs + rand


def test_an_full_matches_hand_computation():
    assert call("an_full", pos_weight=2048.0) == pytest.approx(full_by_hand(2048.0, lambda p: nl(1 - p)), rel=1e-10)
    assert call("an_full", pos_weight=3.0) == pytest.approx(full_by_hand(3.0, lambda p: nl(1 - p)), rel=1e-10)


def test_an_full_value_spelled_out_for_one_row():
    # B=1, C=2, logits (0, 0): p = 0.5 everywhere -> (lam*l(.5) + l(.5))/2 + (l(.5) + l(.5))/2
    v = call("an_full", lp=np.zeros((1, 2)), lr=np.zeros((1, 2)), z=np.array([1]), pos_weight=4.0)
    assert v == pytest.approx((4 * nl(0.5) + nl(0.5)) / 2 + nl(0.5), rel=1e-12)


def test_me_full_matches_hand_computation():
    assert call("me_full", pos_weight=10.0) == pytest.approx(full_by_hand(10.0, negH), rel=1e-10)


def test_gp_is_an_full_with_lambda_equal_to_species_count():
    expected = full_by_hand(4.0, lambda p: nl(1 - p))
    assert call("gp", pos_weight=2048.0) == pytest.approx(expected, rel=1e-10)  # pos_weight ignored
    assert call("gp") != pytest.approx(call("an_full"))


def test_an_ssdl_and_me_ssdl_match_hand_computation():
    pos = np.mean([nl(sig(LP[i, Z[i]])) for i in range(3)])
    assert call("an_ssdl") == pytest.approx(pos + np.mean([nl(1 - sig(LR[i, Z[i]])) for i in range(3)]), rel=1e-10)
    assert call("me_ssdl") == pytest.approx(pos + np.mean([negH(sig(LR[i, Z[i]])) for i in range(3)]), rel=1e-10)


def test_slds_with_two_species_uses_the_other_one():
    # with C = 2 the "other species" s_i is determined: 1 - z_i
    lp = LP[:, :2]
    z = np.array([0, 1, 1])
    pos = np.mean([nl(sig(lp[i, z[i]])) for i in range(3)])
    an = pos + np.mean([nl(1 - sig(lp[i, 1 - z[i]])) for i in range(3)])
    pos + np.mean([negH(sig(lp[i, 1 - z[i]])) for i in range(3)])
    assert call("an_slds", lp=lp, lr=None, z=z) == pytest.approx(an, rel=1e-10)
    assert call("an_slds", lp=lp, lr=None, z=z, neg_mask=torch.ones(3, 2, dtype=torch.bool)) == pytest.approx(an)


def test_slds_other_species_is_uniform_and_never_the_positive():
    g = torch.Generator().manual_seed(0)
    z = torch.zeros(20000, dtype=torch.int64)
    s, valid = losses.other_species(z, 4, generator=g)
    assert valid.all() and (s != 0).all()
    freq = torch.bincount(s, minlength=4)[1:].double() / len(s)
    assert torch.allclose(freq, torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.02)
    mask = torch.zeros(20000, 4, dtype=torch.bool)
    mask[:, 2] = True
    s, valid = losses.other_species(z, 4, mask, generator=g)
    assert (s == 2).all() and valid.all()


def test_neg_mask_drops_masked_negatives_at_observed_locations():
    mask = np.ones((3, 4), dtype=bool)
    mask[0, 1] = mask[1, 0] = mask[2, 3] = False
    got = call("an_full", pos_weight=5.0, neg_mask=torch.tensor(mask))
    assert got == pytest.approx(full_by_hand(5.0, lambda p: nl(1 - p), mask), rel=1e-10)
    assert got < call("an_full", pos_weight=5.0)
    # masking the positive itself changes nothing: the positive is never a negative
    mask2 = np.ones((3, 4), dtype=bool)
    mask2[np.arange(3), Z] = False
    assert call("an_full", neg_mask=torch.tensor(mask2)) == pytest.approx(call("an_full"))


def test_registry_and_random_flags():
    assert set(losses.LOSSES) == {"an_full", "an_ssdl", "an_slds", "me_full", "me_ssdl", "gp"}
    assert "an_slds" not in losses.NEEDS_RANDOM
    with pytest.raises(ValueError, match="unknown loss"):
        losses.get_loss("nope")
    with pytest.raises(ValueError, match="random"):
        call("an_full", lr=None)


def test_losses_backpropagate():
    lp = torch.tensor(LP, requires_grad=True)
    lr = torch.tensor(LR, requires_grad=True)
    for name, fn in losses.LOSSES.items():
        lp.grad = lr.grad = None
        fn(lp, lr, torch.tensor(Z)).backward()
        assert lp.grad is not None and torch.isfinite(lp.grad).all(), name


def test_exactly_the_losses_core_names_read_the_negative_mask():
    """``core.training.defaults.USES_NEG_MASK`` (what the supervisor and the CLI act on) is the set of
    losses whose value a mask of no usable negatives changes."""
    from sinr_qgis.core.training.defaults import LOSSES, USES_NEG_MASK

    none_usable = torch.zeros(LP.shape, dtype=torch.bool)
    reads_mask = set()
    for name in LOSSES:
        seeded = {"generator": torch.Generator().manual_seed(0)}, {"generator": torch.Generator().manual_seed(0)}
        if call(name, neg_mask=none_usable, **seeded[0]) != call(name, **seeded[1]):
            reads_mask.add(name)
    assert reads_mask == set(USES_NEG_MASK) == {"an_full", "an_slds", "me_full", "gp"}
    assert set(losses.LOSSES) == set(LOSSES)
