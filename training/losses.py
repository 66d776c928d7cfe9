"""SINR's presence-only losses (Cole et al. 2023, reference section 3), eps = 1e-5 as the paper.

Every loss has the same signature so the trainer can call any of them, and so that a later
variant (e.g. a source-aware loss) only has to add one function to ``LOSSES``::

    loss(logits_pos, logits_rand, species, neg_mask=None, *, pos_weight=2048.0, generator=None)

- ``logits_pos`` [B, C]: logits at the observed locations x_i (row i observed species ``species[i]``).
- ``logits_rand`` [B', C] or ``None``: logits at uniform random sphere locations r_i
  (only the losses in ``NEEDS_RANDOM`` use them; the trainer skips drawing them otherwise).
- ``species`` [B] int64: the observed species index z_i of each row.
- ``neg_mask`` [B, C] bool or ``None``: which (row, species) pairs at an *observed* location may be
  used as negatives (``None`` = all). ``True`` = usable. The positive pair itself is never a
  negative. Random-location negatives are not masked (nothing was observed there).
  Masked-out terms contribute 0; normalisers stay as in the paper (plain means over B x C).
- ``pos_weight``: lambda, the up-weighting of the positive term in the "full" losses: a number, or
  ``"row"`` (``POS_WEIGHT_ROW``): each row's lambda is the number of terms that row has, its usable
  negatives plus the positive (C without a ``neg_mask``, so then the same as lambda = C). With
  source-aware negatives a row of a survey that records 20 species then weighs its positive
  against its own 19 negatives instead of against 168 it does not have.
- ``generator``: torch RNG for the losses that sample (AN-SLDS / ME-SLDS).

Notation: p = sigmoid(logit), l(p) = -log(p + eps), and the ME ("maximum entropy") variants
replace every negative term l(1 - p) by -H(p), H(p) = p l(p) + (1 - p) l(1 - p).

Memory: the full losses' class-wide terms are summed by :func:`class_wide_sum` in chunks of rows,
with the gradient written straight into one [B, C] tensor. Done with plain autograd, every
elementwise step keeps a [B, C] intermediate for the backward pass: AN-full's forward and backward
at batch 2048 x 47,375 species (the paper's scale) added 3.0 GiB to the logits (measured on CPU);
chunked, 0.88 GiB: the two logits' gradients (0.72 GiB) and a few chunk-sized temporaries
(``CHUNK_ELEMENTS``). The result is the unchunked sum up to float rounding
(tests/training/test_losses_chunked.py).
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from sinr_qgis.core.training.defaults import PAPER_RECIPE

EPS = 1e-5
DEFAULT_POS_WEIGHT = PAPER_RECIPE["pos_weight"]
POS_WEIGHT_ROW = "row"
PosWeight = float | str | torch.Tensor  # a number, POS_WEIGHT_ROW, or (internally) one lambda per row [B]

LossFn = Callable[..., torch.Tensor]


def neg_log(p: torch.Tensor) -> torch.Tensor:
    """l(p) = -log(p + eps)."""
    return -torch.log(p + EPS)


def neg_entropy(p: torch.Tensor) -> torch.Tensor:
    """-H(p) with eps inside the logs (the ME replacement of a negative term)."""
    return -(p * neg_log(p) + (1 - p) * neg_log(1 - p))


def _negative_term(p: torch.Tensor, maximum_entropy: bool) -> torch.Tensor:
    return neg_entropy(p) if maximum_entropy else neg_log(1 - p)


def _positive_p(logits: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
    """p of each row's own species [B]: the sigmoid of the gathered logits only, not of all B x C."""
    return torch.sigmoid(logits.gather(1, species.view(-1, 1)).squeeze(1))


# elements of one chunk of rows in class_wide_sum: 4 M (16 MB per float32 temporary)
CHUNK_ELEMENTS = 1 << 22


def _chunk_terms(x: torch.Tensor, species: torch.Tensor | None, allowed: torch.Tensor | None,
                 pos_weight: float | torch.Tensor, maximum_entropy: bool, grad: bool) -> torch.Tensor:
    """Per-element terms of rows ``x`` [R, C] (grad=False) or their derivatives by the logit (grad=True).

    Negative term where ``allowed`` (all if None), lambda l(p) at each row's ``species`` column
    (``pos_weight``: one lambda, or one per row [R]).
    """
    p = torch.sigmoid(x)
    q = 1 - p
    if grad:
        # d/dx of l(1-p) = p(1-p)/(1-p+eps); of -H(p) = p(1-p) (log(p+eps) + p/(p+eps) - log(q+eps) - q/(q+eps))
        slope = p * q
        if maximum_entropy:
            term = slope * (torch.log(p + EPS) + p / (p + EPS) - torch.log(q + EPS) - q / (q + EPS))
        else:
            term = slope / (q + EPS)
    else:
        term = _negative_term(p, maximum_entropy)
    if allowed is not None:
        term = torch.where(allowed, term, torch.zeros_like(term))
    if species is not None:
        col = species.view(-1, 1)
        ps = p.gather(1, col)
        if isinstance(pos_weight, torch.Tensor):
            pos_weight = pos_weight.view(-1, 1).to(ps.dtype)
        # d/dx of lambda l(p) = -lambda p(1-p)/(p+eps)
        pos = -pos_weight * ps * (1 - ps) / (ps + EPS) if grad else pos_weight * neg_log(ps)
        term.scatter_(1, col, pos)  # the observed pair is the positive, never a negative
    return term


class _ClassWideSum(torch.autograd.Function):
    """Sum of :func:`_chunk_terms` over all rows, in chunks of ``rows`` rows (forward and backward)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, logits: torch.Tensor, species: torch.Tensor | None,
                allowed: torch.Tensor | None, pos_weight: float | torch.Tensor, maximum_entropy: bool,
                rows: int) -> torch.Tensor:
        ctx.save_for_backward(logits, species, allowed)
        ctx.options = (pos_weight, maximum_entropy, rows)
        work = torch.float32 if logits.dtype in (torch.float16, torch.bfloat16) else logits.dtype
        total = torch.zeros((), dtype=work, device=logits.device)
        for a in range(0, logits.shape[0], rows):
            total += _chunk_terms(logits[a:a + rows].to(work), _rows(species, a, rows), _rows(allowed, a, rows),
                                  _rows(pos_weight, a, rows), maximum_entropy, grad=False).sum()
        return total

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad_out: torch.Tensor) -> tuple:
        logits, species, allowed = ctx.saved_tensors
        pos_weight, maximum_entropy, rows = ctx.options
        grad = torch.empty_like(logits)
        for a in range(0, logits.shape[0], rows):
            x = logits[a:a + rows].to(grad_out.dtype)
            d = _chunk_terms(x, _rows(species, a, rows), _rows(allowed, a, rows), _rows(pos_weight, a, rows),
                             maximum_entropy, grad=True)
            grad[a:a + rows] = d * grad_out
        return grad, None, None, None, None, None


def _rows(t: torch.Tensor | float | None, a: int, n: int) -> torch.Tensor | float | None:
    return t[a:a + n] if isinstance(t, torch.Tensor) else t


def class_wide_sum(logits: torch.Tensor, species: torch.Tensor | None = None, allowed: torch.Tensor | None = None,
                   *, pos_weight: float | torch.Tensor = 0.0, maximum_entropy: bool = False,
                   rows_per_chunk: int | None = None) -> torch.Tensor:
    """sum_ij of the full losses' terms over ``logits`` [B, C], computed in chunks of rows.

    Each (i, j) adds the negative term (l(1-p), or -H(p) with ``maximum_entropy``) where
    ``allowed`` [B, C] bool is True (everywhere when None); with ``species`` [B] int64, the pair
    (i, species[i]) adds ``pos_weight`` * l(p) instead (one lambda, or one per row: [B]). Returns a
    0-d tensor (float32 for half precision logits) with a gradient; memory beyond the logits and
    their gradient is one chunk of ``rows_per_chunk`` rows (default: ``CHUNK_ELEMENTS`` // C) times a few temporaries.
    """
    rows = rows_per_chunk or max(1, CHUNK_ELEMENTS // max(1, logits.shape[1]))
    weight = pos_weight if isinstance(pos_weight, torch.Tensor) else float(pos_weight)
    return _ClassWideSum.apply(logits, species, allowed, weight, bool(maximum_entropy), int(rows))


def row_pos_weight(species: torch.Tensor, n_species: int, neg_mask: torch.Tensor | None) -> torch.Tensor:
    """lambda per row [B] float32 for ``pos_weight="row"``: the row's usable negatives (``neg_mask``
    True, its own species excluded) plus one for its positive; C for every row without a mask."""
    if neg_mask is None:
        return torch.full(species.shape, float(n_species), device=species.device)
    own = neg_mask.gather(1, species.view(-1, 1)).squeeze(1)
    return (neg_mask.sum(1) - own.long() + 1).float()


def _full(logits_pos: torch.Tensor, logits_rand: torch.Tensor | None, species: torch.Tensor,
          neg_mask: torch.Tensor | None, pos_weight: PosWeight, maximum_entropy: bool) -> torch.Tensor:
    if logits_rand is None:
        raise ValueError("this loss needs logits at random locations")
    b, c = logits_pos.shape
    if isinstance(pos_weight, str):
        if pos_weight != POS_WEIGHT_ROW:
            raise ValueError(f"pos_weight must be a number or {POS_WEIGHT_ROW!r}, got {pos_weight!r}")
        pos_weight = row_pos_weight(species, c, neg_mask)
    loss_obs = class_wide_sum(logits_pos, species, neg_mask, pos_weight=pos_weight,
                              maximum_entropy=maximum_entropy) / (b * c)
    loss_rand = class_wide_sum(logits_rand, maximum_entropy=maximum_entropy) / logits_rand.numel()
    return loss_obs + loss_rand


def _ssdl(logits_pos: torch.Tensor, logits_rand: torch.Tensor | None, species: torch.Tensor,
          maximum_entropy: bool) -> torch.Tensor:
    if logits_rand is None:
        raise ValueError("this loss needs logits at random locations")
    pos = neg_log(_positive_p(logits_pos, species)).mean()
    n = min(len(species), logits_rand.shape[0])
    rand = _negative_term(_positive_p(logits_rand[:n], species[:n]), maximum_entropy).mean()
    return pos + rand


def other_species(species: torch.Tensor, n_species: int, neg_mask: torch.Tensor | None = None,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One random species s_i != z_i per row (uniform), among ``neg_mask``'s allowed ones if given.

    Returns (s [B] int64, valid [B] bool); a row with no allowed negative gets valid = False.
    """
    b = len(species)
    dev = species.device
    if neg_mask is None:
        if n_species < 2:
            return species.clone(), torch.zeros(b, dtype=torch.bool, device=dev)
        shift = torch.randint(1, n_species, (b,), generator=generator, device=dev)
        return (species + shift) % n_species, torch.ones(b, dtype=torch.bool, device=dev)
    allowed = neg_mask.clone()
    allowed.scatter_(1, species.view(-1, 1), False)
    # argmax of uniform scores restricted to the allowed set = a uniform draw from that set
    scores = torch.rand(allowed.shape, generator=generator, device=dev)
    scores = torch.where(allowed, scores, torch.full_like(scores, -1.0))
    return scores.argmax(1), allowed.any(1)


def _slds(logits_pos: torch.Tensor, species: torch.Tensor, neg_mask: torch.Tensor | None,
          generator: torch.Generator | None, maximum_entropy: bool) -> torch.Tensor:
    pos = neg_log(_positive_p(logits_pos, species)).mean()
    other, valid = other_species(species, logits_pos.shape[1], neg_mask, generator)
    neg = _negative_term(_positive_p(logits_pos, other), maximum_entropy)
    neg = torch.where(valid, neg, torch.zeros_like(neg))
    return pos + neg.mean()


def an_full(logits_pos: torch.Tensor, logits_rand: torch.Tensor | None, species: torch.Tensor,
            neg_mask: torch.Tensor | None = None, *, pos_weight: PosWeight = DEFAULT_POS_WEIGHT,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """AN-full: (1/BC) sum_i [lambda l(p_zi(x_i)) + sum_{j!=zi} l(1-p_j(x_i))] + mean_ij l(1-p_j(r_i))."""
    return _full(logits_pos, logits_rand, species, neg_mask, pos_weight, maximum_entropy=False)


def me_full(logits_pos: torch.Tensor, logits_rand: torch.Tensor | None, species: torch.Tensor,
            neg_mask: torch.Tensor | None = None, *, pos_weight: PosWeight = DEFAULT_POS_WEIGHT,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """ME-full: AN-full with every negative term l(1-p) replaced by -H(p) (lambda kept)."""
    return _full(logits_pos, logits_rand, species, neg_mask, pos_weight, maximum_entropy=True)


def an_ssdl(logits_pos: torch.Tensor, logits_rand: torch.Tensor | None, species: torch.Tensor,
            neg_mask: torch.Tensor | None = None, *, pos_weight: PosWeight = DEFAULT_POS_WEIGHT,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """AN-SSDL (same species, different location): mean_i l(p_zi(x_i)) + mean_i l(1-p_zi(r_i)).

    No lambda; ``neg_mask`` is irrelevant (no negatives at observed locations).
    """
    return _ssdl(logits_pos, logits_rand, species, maximum_entropy=False)


def me_ssdl(logits_pos: torch.Tensor, logits_rand: torch.Tensor | None, species: torch.Tensor,
            neg_mask: torch.Tensor | None = None, *, pos_weight: PosWeight = DEFAULT_POS_WEIGHT,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """ME-SSDL: AN-SSDL with the random-location term l(1-p) replaced by -H(p)."""
    return _ssdl(logits_pos, logits_rand, species, maximum_entropy=True)


def an_slds(logits_pos: torch.Tensor, logits_rand: torch.Tensor | None, species: torch.Tensor,
            neg_mask: torch.Tensor | None = None, *, pos_weight: PosWeight = DEFAULT_POS_WEIGHT,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """AN-SLDS (same location, different species): mean_i l(p_zi(x_i)) + mean_i l(1-p_si(x_i)),
    s_i uniform over the other (allowed) species. No random locations, no lambda."""
    return _slds(logits_pos, species, neg_mask, generator, maximum_entropy=False)


def gp(logits_pos: torch.Tensor, logits_rand: torch.Tensor | None, species: torch.Tensor,
       neg_mask: torch.Tensor | None = None, *, pos_weight: PosWeight = DEFAULT_POS_WEIGHT,
       generator: torch.Generator | None = None) -> torch.Tensor:
    """GP (Mac Aodha et al. 2019) as used in SINR's comparison: AN-full with lambda = C.

    ``pos_weight`` is ignored: lambda is the number of species. The original's date input
    (and random dates for the pseudo-negatives) and its photographer (user-embedding) terms are
    not modelled here.
    """
    return _full(logits_pos, logits_rand, species, neg_mask, float(logits_pos.shape[1]),
                 maximum_entropy=False)


LOSSES: dict[str, LossFn] = {
    "an_full": an_full,
    "an_ssdl": an_ssdl,
    "an_slds": an_slds,
    "me_full": me_full,
    "me_ssdl": me_ssdl,
    "gp": gp,
}
# losses that take logits at random sphere locations (the trainer draws them only for these)
NEEDS_RANDOM = frozenset({"an_full", "an_ssdl", "me_full", "me_ssdl", "gp"})
# The losses that read ``neg_mask`` (negatives at observed locations) are
# ``sinr_qgis.core.training.defaults.USES_NEG_MASK``: the plugin's supervisor needs that set too,
# and core imports nothing from training (tests/training/test_losses.py checks it against the code).


def get_loss(name: str) -> LossFn:
    """The loss called ``name``; ``ValueError`` listing the choices otherwise."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}") from None
