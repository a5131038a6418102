"""Entropies and mutual information of Bernoulli layers, in bits.

One implementation (torch) serves the training loss, the metrics and the tests;
numpy arrays are accepted everywhere and converted on the way in.

A stochastic layer of ``m`` units gives each event ``x`` a vector of firing
probabilities ``θ(x)``; given ``x`` the units are independent Bernoulli variables,
so ``p(t|x) = Π_i θ_i^t_i (1 − θ_i)^(1 − t_i)`` exactly. Conditioning on a
discrete variable ``S`` (the domain, the class) is done through per-event weights:
``p(t|s) = Σ_x w_x 1[s_x = s] p(t|x) / Σ_x w_x 1[s_x = s]``.

Every measure of I(T;S) depends on the events only through such weighted sums over
events (per value of S: the total weight, and the weighted sum of θ or of p(t|x)).
Given ``reduce`` (e.g. :func:`sqnn.training.parallel.all_reduce_sum`), those sums are summed
over the processes of a distributed run before any entropy is taken, so each process
gets the value, and through a differentiable reduction the gradient, of the global batch.

>>> import numpy as np
>>> theta = np.array([[0.9], [0.9], [0.1], [0.1]])
>>> round(float(factorized_mi(theta, np.array([0, 0, 1, 1]))), 3)
0.531
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch

__all__ = [
    "binary_entropy",
    "factorized_mi",
    "joint_mi",
    "conditional_mi",
    "joint_entropy",
    "mi_with_input",
    "mutual_information",
    "MAX_JOINT_UNITS",
]

ArrayLike = torch.Tensor | np.ndarray | Sequence[float]
Prior = Literal["weights", "balanced"]
# sums a tensor of per-process event sums over all processes (see the module docstring)
Reduce = Callable[[torch.Tensor], torch.Tensor]

MAX_JOINT_UNITS = 16
_EPS = 1e-12
# events per matrix product of the exact joint; larger samples are summed block by block
_EVENTS_PER_BLOCK = 1024


def _as_tensor(x: ArrayLike, dtype: torch.dtype | None = None) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x if dtype is None else x.to(dtype)
    return torch.as_tensor(np.asarray(x), dtype=dtype or torch.float64)


def _returns_like(x: ArrayLike, value: torch.Tensor) -> torch.Tensor | float:
    return value if isinstance(x, torch.Tensor) else float(value.detach())


def _plogp(p: torch.Tensor) -> torch.Tensor:
    """p · log2 p with the limit 0 at p = 0 and a finite gradient everywhere."""
    # the clamp inside the log keeps the masked branch (and its gradient) finite
    return torch.where(p > 0, p * torch.log2(p.clamp(min=torch.finfo(p.dtype).tiny)), torch.zeros_like(p))


def binary_entropy(p: ArrayLike) -> torch.Tensor | np.ndarray:
    """H_b(p) = −p log2 p − (1 − p) log2 (1 − p), elementwise, in bits; 0 at p ∈ {0, 1}."""
    t = _as_tensor(p)
    t = t.clamp(0.0, 1.0)
    h = -(_plogp(t) + _plogp(1.0 - t))
    return h if isinstance(p, torch.Tensor) else h.numpy()


def _require_known_values(reduce: Reduce | None, variable: torch.Tensor, n_values: int | None) -> None:
    # the number of values must not depend on which events a process happens to hold
    if reduce is not None and variable.ndim == 1 and n_values is None:
        raise ValueError("with reduce, give n_values (or soft memberships) so every process has the same values")


def _global_sums(reduce: Reduce | None, *sums: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The event sums of this process, or of all processes when ``reduce`` is given (one collective)."""
    if reduce is None:
        return sums
    flat = reduce(torch.cat([s.reshape(-1) for s in sums]))
    return tuple(part.reshape(s.shape) for part, s in zip(torch.split(flat, [s.numel() for s in sums]), sums))


def _prior(totals: torch.Tensor, prior: Prior) -> torch.Tensor:
    """p(s) from the total weight of each value (last axis); values with no (or negative) weight get 0."""
    present = totals > _EPS
    if prior == "balanced":
        p = present.to(totals.dtype)
    else:
        p = totals.clamp(min=0.0)
    total = p.sum(-1, keepdim=True)
    return torch.where(total > 0, p / total.clamp(min=_EPS), torch.zeros_like(p))


def _codes(m: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    bits = torch.arange(m, device=device)
    values = torch.arange(1 << m, device=device).reshape(-1, 1)
    return ((values >> bits) & 1).to(dtype)  # (2^m, m)


def _code_probabilities(th: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """p(t|x) = Π_i θ_i^t_i (1 − θ_i)^(1 − t_i) for every code t (rows of ``codes``), shape (N, 2^m), from log space."""
    log_on = torch.log(th.clamp(_EPS, 1.0))
    log_off = torch.log((1.0 - th).clamp(_EPS, 1.0))
    return torch.exp(log_on @ codes.T + log_off @ (1.0 - codes).T)


def _split(m: int) -> int:
    """Units in the low half of the code (the rest form the high half)."""
    if m > MAX_JOINT_UNITS:
        raise ValueError(f"exact joint needs at most {MAX_JOINT_UNITS} units, the layer has {m}")
    return (m + 1) // 2


class _CodeTable(torch.autograd.Function):
    """Σ_x c_xk p(t|x) over the events of each group, for every column k of ``columns`` (n, K).

    The events come ordered by group, ``counts`` events in each; the result has shape
    (groups, K, 2^m). Units are independent given x, so p(t|x) = p(t_low|x) · p(t_high|x)
    with the code value t = t_low + 2^a · t_high: 2·2^(m/2) numbers per event describe all
    2^m codes, and the sum over a block of events is one matrix product
    (2^b, n) @ (n, K·2^a), row t_high, column (k, t_low), the half-code probabilities
    computed once for all columns. Blocks of :data:`_EVENTS_PER_BLOCK` events keep the
    operands in cache when N is large (evaluation); a training batch is one block per group.
    The backward is the same arithmetic as autograd through the log-space half codes,
    written out: two matrix products per block and no (n, 2^m)-sized intermediate.
    """

    @staticmethod
    def forward(ctx, th: torch.Tensor, columns: torch.Tensor, counts: tuple[int, ...]) -> torch.Tensor:  # noqa: ANN001
        k = columns.shape[1]
        low_bits = _split(th.shape[1])
        high_bits = th.shape[1] - low_bits
        low_codes = _codes(low_bits, th.dtype, th.device)
        high_codes = _codes(high_bits, th.dtype, th.device)
        out = th.new_zeros((len(counts), k, 1 << th.shape[1]))
        blocks = []
        start = 0
        for group, count in enumerate(counts):
            # this group's table, seen as (t_high, k, t_low): the layout of the products
            table = out[group].view(k, 1 << high_bits, 1 << low_bits).transpose(0, 1)
            for first in range(start, start + count, _EVENTS_PER_BLOCK):
                last = min(first + _EVENTS_PER_BLOCK, start + count)
                low = _code_probabilities(th[first:last, :low_bits], low_codes)
                high = _code_probabilities(th[first:last, low_bits:], high_codes)
                weighted_low = (columns[first:last].unsqueeze(2) * low.unsqueeze(1)).reshape(last - first, -1)
                table += (high.T @ weighted_low).view(1 << high_bits, k, 1 << low_bits)
                if any(ctx.needs_input_grad):
                    blocks.append((group, first, last, low, high, weighted_low))
            start += count
        ctx.blocks = blocks
        ctx.save_for_backward(th, columns, low_codes, high_codes)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # noqa: ANN001
        th, columns, low_codes, high_codes = ctx.saved_tensors
        k = columns.shape[1]
        grad_th = torch.zeros_like(th) if ctx.needs_input_grad[0] else None
        grad_columns = torch.zeros_like(columns) if ctx.needs_input_grad[1] else None
        low_size, high_size = low_codes.shape[0], high_codes.shape[0]
        per_group: dict[int, torch.Tensor] = {}
        for group, first, last, low, high, weighted_low in ctx.blocks:
            if group not in per_group:  # the gradient of this group's table as (t_high, (k, t_low))
                per_group[group] = grad[group].reshape(k, high_size, low_size).transpose(0, 1).reshape(high_size, -1)
            table_grad = per_group[group]
            # ∂/∂(weighted low) = high @ grad, per event (n, K, 2^a)
            per_column = (high @ table_grad).view(last - first, k, low_size)
            if grad_columns is not None:
                grad_columns[first:last] = (per_column * low.unsqueeze(1)).sum(-1)
            if grad_th is not None:
                # ∂/∂p(t_low|x) and ∂/∂p(t_high|x), times p (the exponential's derivative)
                low_part = (per_column * columns[first:last].unsqueeze(2)).sum(1) * low
                high_part = (weighted_low @ table_grad.T) * high
                on = torch.cat([low_part @ low_codes, high_part @ high_codes], dim=1)
                off = torch.cat([low_part @ (1.0 - low_codes), high_part @ (1.0 - high_codes)], dim=1)
                # d log(clamp(θ, ε, 1))/dθ: 1/θ inside the clamp's range, 0 outside (and so for 1 − θ)
                block = th[first:last]
                zero = th.new_zeros(())
                inside_on = (block >= _EPS) & (block <= 1.0)
                inside_off = (1.0 - block >= _EPS) & (1.0 - block <= 1.0)
                grad_th[first:last] = torch.where(inside_on, on / block.clamp(min=_EPS), zero) - torch.where(
                    inside_off, off / (1.0 - block).clamp(min=_EPS), zero
                )
        return grad_th, grad_columns, None


def _code_sums(th: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """Σ_x c_xk p(t|x) for every column k of ``columns`` (N, K) at once, shape (K, 2^m)."""
    return _CodeTable.apply(th, columns, (len(th),))[0]


def _joint_sums(th: torch.Tensor, codes: torch.Tensor | None, member: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
    """Σ_x w_xsy p(t|x) for every value s and class y, shape (S, Y, 2^m).

    With integer values each event enters only the product of its own value: the events
    are grouped by value, so the products hold the N events once whatever the number of values.
    """
    n_values, n_classes = member.shape[1], condition.shape[1]
    if codes is None:  # soft memberships: every event may belong to every value
        columns = (member.unsqueeze(2) * condition.unsqueeze(1)).reshape(len(th), n_values * n_classes)
        return _code_sums(th, columns).reshape(n_values, n_classes, -1)
    order = torch.argsort(codes, stable=True)
    counts = tuple(torch.bincount(codes, minlength=n_values).tolist())
    return _CodeTable.apply(th[order], condition[order], counts)


class _SampledGradientSums(torch.autograd.Function):
    """The exact Σ_x w_xsy p(t|x) of :func:`_joint_sums`, with an unbiased sampled gradient in θ.

    The exact backward contracts the incoming gradient G(s, y, t) with ∂p(t|x)/∂θ over all
    2^m codes: two more matrix products of the forward's size. Because the units are
    independent given x, ∂p(t|x)/∂θ_i = p(t_≠i|x) · (1 if t_i = 1 else −1), so

        ∂/∂θ_i(x) Σ_t g_x(t) p(t|x) = E_{t ~ p(·|x)} [g_x(t with t_i = 1) − g_x(t with t_i = 0)],

    g_x(t) = Σ_{s,y} w_xsy G(s, y, t). The backward draws ``samples`` codes per event from
    p(·|x) and averages that difference (each unit's own bit summed out exactly): an
    unbiased estimate of the exact gradient at the cost of 2·m look-ups per code. The
    value is the exact one.
    """

    @staticmethod
    def forward(ctx, th, codes, member, condition, samples, generator):  # noqa: ANN001, ANN205
        sums = _joint_sums(th.detach(), codes, member, condition)
        bits = torch.rand((samples, *th.shape), generator=generator, dtype=th.dtype, device=th.device) < th
        powers = 1 << torch.arange(th.shape[1], device=th.device)
        drawn = (bits.long() * powers).sum(-1)  # (samples, N): code values t = Σ t_i 2^i
        ctx.save_for_backward(drawn, powers, member, condition)
        return sums

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        drawn, powers, member, condition = ctx.saved_tensors
        n_values, n_classes, n_codes = grad.shape
        on = (drawn.unsqueeze(-1) | powers).unsqueeze(-1)  # (samples, N, m, 1)
        off = (drawn.unsqueeze(-1) & ~powers).unsqueeze(-1)
        # offset of the table of (value s, class y) in the flattened gradient
        tables = (torch.arange(n_values * n_classes, device=grad.device) * n_codes).reshape(1, 1, 1, -1)
        flat = grad.reshape(-1)
        difference = flat[on + tables] - flat[off + tables]  # (samples, N, m, S·Y)
        weights = (member.unsqueeze(2) * condition.unsqueeze(1)).reshape(len(member), 1, -1)  # (N, 1, S·Y)
        grad_th = (difference.mean(0) * weights).sum(-1)
        return grad_th, None, None, None, None, None


def _factorized_sums(th: torch.Tensor, codes: torch.Tensor | None, member: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
    """Σ_x w_xsy θ(x) for every value s and class y, shape (S, Y, m)."""
    n_values, n_classes = member.shape[1], condition.shape[1]
    columns = (member.unsqueeze(2) * condition.unsqueeze(1)).reshape(len(th), n_values * n_classes)
    return (columns.T @ th).reshape(n_values, n_classes, th.shape[1])


def _membership(variable: torch.Tensor, n_values: int | None, dtype: torch.dtype) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Integer codes (or None when soft) and the (N, S) membership of each event in each value of S.

    ``variable`` is either integer codes (N,) or soft memberships (N, S) whose rows sum to
    one (e.g. a classifier's predicted class probabilities).
    """
    if variable.ndim == 2:
        return None, variable.to(dtype)
    codes = variable.long()
    k = int(n_values if n_values is not None else (int(codes.max()) + 1 if codes.numel() else 1))
    return codes, torch.nn.functional.one_hot(codes, num_classes=max(k, 1)).to(dtype)


def _per_class_mi(
    theta: ArrayLike,
    variable: ArrayLike,
    condition: ArrayLike | None,
    weight: ArrayLike | None,
    *,
    joint: bool,
    n_values: int | None,
    prior: Prior,
    reduce: Reduce | None,
    gradient_samples: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """p(y) and I(T;S | Y=y) for every class y, in bits; without ``condition`` one class holds every event.

    Every measure depends on the events only through weighted sums per (value s, class y):
    the total weight and Σ θ (factorised) or Σ p(t|x) (joint). All of them are taken in one
    pass (and, given ``reduce``, summed over processes in one collective) before any
    entropy: p(s|y) = ``prior`` of the totals of class y, then
    I(T;S|Y=y) = H(T|y) − Σ_s p(s|y) H(T|s, y) with every class at once.
    """
    th = _as_tensor(theta)
    if th.ndim == 1:
        th = th.reshape(-1, 1)
    w = th.new_ones(th.shape[0]) if weight is None else _as_tensor(weight, th.dtype).reshape(-1)
    values = _as_tensor(variable, None)
    _require_known_values(reduce, values, n_values)
    if condition is None:
        classes = w.reshape(-1, 1)
    else:
        labels = _as_tensor(condition, None)
        _require_known_values(reduce, labels, None)
        _, classes = _membership(labels, None, th.dtype)
        classes = classes * w.reshape(-1, 1)  # (N, Y): weight of event x in class y
    codes, member = _membership(values, n_values, th.dtype)  # (N, S)
    if joint and gradient_samples is not None and th.requires_grad and torch.is_grad_enabled():
        if gradient_samples < 1:
            raise ValueError(f"gradient_samples must be at least 1, got {gradient_samples}")
        if member.requires_grad or classes.requires_grad:
            raise ValueError("sampled gradients are gradients in θ: weights and memberships must not require one")
        sums = _SampledGradientSums.apply(th, codes, member, classes, int(gradient_samples), generator)
    else:
        sums = (_joint_sums if joint else _factorized_sums)(th, codes, member, classes)
    class_totals, totals, sums = _global_sums(reduce, classes.sum(0), member.T @ classes, sums)
    p_y = _prior(class_totals, "weights")
    totals, sums = totals.T, sums.transpose(0, 1)  # (Y, S) and (Y, S, ·)
    p_s = _prior(totals, prior)
    safe = torch.where(totals.abs() > _EPS, totals, torch.ones_like(totals))
    if joint:
        return p_y, _JointInformation.apply(sums, safe, p_s)
    mean_given_s = (sums / safe.unsqueeze(-1)).clamp(0.0, 1.0)
    mean = (p_s.unsqueeze(-1) * mean_given_s).sum(1)
    h_marginal = binary_entropy(mean).sum(-1)
    h_conditional = (p_s * binary_entropy(mean_given_s).sum(-1)).sum(-1)
    return p_y, h_marginal - h_conditional


def factorized_mi(
    theta: ArrayLike,
    variable: ArrayLike,
    weight: ArrayLike | None = None,
    *,
    n_values: int | None = None,
    prior: Prior = "weights",
    reduce: Reduce | None = None,
) -> torch.Tensor | float:
    """Σ_i [H_b(E θ_i) − Σ_s p(s) H_b(E[θ_i | s])], in bits.

    The factorised I(T;S) of the reference method: units treated as independent.
    Values of ``S`` absent from the events (zero total weight) drop out, so a batch
    that lacks a domain gives 0, never NaN. ``prior='balanced'`` gives every value of
    ``S`` present the same p(s), independent of how many events each has.
    """
    _, value = _per_class_mi(theta, variable, None, weight, joint=False, n_values=n_values, prior=prior, reduce=reduce)
    return _returns_like(theta, value[0])


def _entropy(p: torch.Tensor) -> torch.Tensor:
    return -_plogp(p).sum(-1)


_BITS_PER_NAT = 1.0 / math.log(2.0)


class _JointInformation(torch.autograd.Function):
    """H(T|y) − Σ_s p(s|y) H(T|s, y) per class y from the code sums, with its gradient written out.

    Inputs: ``sums`` (Y, S, 2^m), Σ_x w_xsy p(t|x); ``totals`` (Y, S), Σ_x w_xsy (0 read as 1);
    ``p_s`` (Y, S). p(t|s, y) = sums / totals, negative entries (from negative weights)
    counted as 0. The same value and gradient as autograd through :func:`_entropy` of the
    clamped averages and of their p(s|y)-mixture, in a few passes over the tables (what
    costs here): the logs are kept from the forward pass for the backward
    (d(−p log2 p)/dp = −log2 p − 1/ln 2), products and logs in place.
    """

    @staticmethod
    def forward(ctx, sums: torch.Tensor, totals: torch.Tensor, p_s: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        tiny = torch.finfo(sums.dtype).tiny
        inverse = (1.0 / totals).unsqueeze(-1)
        p_t_given_s = sums * inverse
        negative = p_t_given_s < 0
        p_t_given_s.clamp_(min=0.0)
        p_t = torch.bmm(p_s.unsqueeze(1), p_t_given_s).squeeze(1)  # (Y, 2^m): the p(s|y) mixture
        log_given_s = p_t_given_s.clamp(min=tiny).log2_()  # 0 · log2(tiny) = 0 where p = 0
        log_t = p_t.clamp(min=tiny).log2_()
        # sums (not dot products): their pairwise summation keeps float32 at ~1e-6 over 2^16 codes
        h_given_s = -(p_t_given_s * log_given_s).sum(-1)  # (Y, S)
        h_t = -(p_t * log_t).sum(-1)  # (Y,)
        ctx.save_for_backward(sums, inverse, negative, p_s, p_t_given_s, p_t, log_given_s, log_t, h_given_s)
        return h_t - (p_s * h_given_s).sum(-1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # noqa: ANN001
        sums, inverse, negative, p_s, p_t_given_s, p_t, log_given_s, log_t, h_given_s = ctx.saved_tensors
        # ∂H/∂p = −(log2 p + 1/ln 2) where p > 0, 0 where p = 0 (the limit of the where() form);
        # minus_d_t = −∂H(T|y)/∂p(t|y)
        minus_d_t = (log_t + _BITS_PER_NAT).masked_fill_(p_t <= 0, 0.0)  # (Y, 2^m)
        grad_sums = grad_totals = grad_p_s = None
        if ctx.needs_input_grad[2]:
            # ∂I/∂p(s|y) = Σ_t ∂H(T|y)/∂p(t|y) · p(t|s, y) − H(T|s, y)
            mixed = (p_t_given_s * minus_d_t.unsqueeze(1)).sum(-1)  # (Y, S)
            grad_p_s = grad.unsqueeze(-1) * (-mixed - h_given_s)
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            # ∂I/∂p(t|s, y) = p(s|y) · (log2 p(t|s, y) − log2 p(t|y)), each term where its p > 0;
            # the clamp of negative averages passes no gradient
            grad_averages = (log_given_s + _BITS_PER_NAT).masked_fill_(p_t_given_s <= 0, 0.0)
            grad_averages.sub_(minus_d_t.unsqueeze(1)).mul_((grad.unsqueeze(-1) * p_s).unsqueeze(-1))
            grad_averages.masked_fill_(negative, 0.0)
            if ctx.needs_input_grad[1]:
                # ∂(sums / totals)/∂totals = −sums / totals²
                grad_totals = -(grad_averages * sums).sum(-1) * inverse.squeeze(-1) ** 2
            if ctx.needs_input_grad[0]:
                grad_sums = grad_averages.mul_(inverse)
        return grad_sums, grad_totals, grad_p_s


def joint_mi(
    theta: ArrayLike,
    variable: ArrayLike,
    weight: ArrayLike | None = None,
    *,
    n_values: int | None = None,
    prior: Prior = "weights",
    reduce: Reduce | None = None,
    gradient_samples: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor | float:
    """Exact I(T;S) = H(T) − Σ_s p(s) H(T|S=s) over all 2^m codes (m ≤ 16), in bits.

    Differentiable in θ, so it can serve as a training loss as well as a metric. With
    ``gradient_samples=K`` the value is still exact, but the gradient in θ is an unbiased
    estimate from K codes drawn per event (from ``generator``), about a third of the cost
    (see :class:`_SampledGradientSums`); without a gradient to compute it changes nothing.
    """
    _, value = _per_class_mi(
        theta, variable, None, weight, joint=True, n_values=n_values, prior=prior, reduce=reduce,
        gradient_samples=gradient_samples, generator=generator,
    )
    return _returns_like(theta, value[0])


def joint_entropy(theta: ArrayLike, weight: ArrayLike | None = None) -> torch.Tensor | float:
    """Exact H(T) of the layer over the events (m ≤ 16 units), in bits."""
    th = _as_tensor(theta)
    if th.ndim == 1:
        th = th.reshape(-1, 1)
    w = th.new_ones(th.shape[0]) if weight is None else _as_tensor(weight, th.dtype)
    p_t = _code_sums(th, w.reshape(-1, 1))[0] / w.sum().clamp(min=_EPS)
    return _returns_like(theta, _entropy(p_t.clamp(min=0.0)))


def mutual_information(
    theta: ArrayLike,
    variable: ArrayLike,
    weight: ArrayLike | None = None,
    *,
    joint: bool = False,
    n_values: int | None = None,
    prior: Prior = "weights",
    reduce: Reduce | None = None,
) -> torch.Tensor | float:
    """I(T;V) for a discrete V, factorised or exact joint."""
    fn = joint_mi if joint else factorized_mi
    return fn(theta, variable, weight, n_values=n_values, prior=prior, reduce=reduce)


def conditional_mi(
    theta: ArrayLike,
    variable: ArrayLike,
    condition: ArrayLike,
    weight: ArrayLike | None = None,
    *,
    joint: bool = False,
    n_values: int | None = None,
    prior: Prior = "weights",
    reduce: Reduce | None = None,
    gradient_samples: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor | float:
    """I(T;S|Y) = Σ_y p(y) I(T;S | Y=y), in bits.

    ``condition`` holds integer class codes (N,) or soft class memberships (N, K),
    e.g. true labels in simulation and the classifier's own probabilities in data;
    a soft membership splits an event's weight between the classes. Every class and
    value of S is computed in one pass over the events (see :func:`_per_class_mi`).
    ``gradient_samples`` (joint only): exact value, sampled unbiased gradient in θ, as in
    :func:`joint_mi`.
    """
    p_y, per_class = _per_class_mi(
        theta, variable, condition, weight, joint=joint, n_values=n_values, prior=prior, reduce=reduce,
        gradient_samples=gradient_samples, generator=generator,
    )
    # a class without weight drops out (its terms are finite, but kept out of the graph too)
    total = torch.where(p_y > 0, p_y * per_class, torch.zeros_like(per_class)).sum()
    return _returns_like(theta, total)


def mi_with_input(
    theta: ArrayLike, weight: ArrayLike | None = None, *, joint: bool = True
) -> torch.Tensor | float:
    """I(T;X) = H(T) − H(T|X) for X the empirical distribution of events, in bits.

    H(T|X) = E_x Σ_i H_b(θ_i(x)) is exact because units are independent given x;
    H(T) is exact (m ≤ 16) or, with ``joint=False``, the factorised upper bound Σ_i H_b(E θ_i).
    """
    th = _as_tensor(theta)
    if th.ndim == 1:
        th = th.reshape(-1, 1)
    w = th.new_ones(th.shape[0]) if weight is None else _as_tensor(weight, th.dtype)
    w_norm = w / w.sum().clamp(min=_EPS)
    h_given_x = w_norm @ binary_entropy(th).sum(1)
    if joint:
        h_t = joint_entropy(th, w)
    else:
        h_t = binary_entropy((w_norm @ th).clamp(0.0, 1.0)).sum()
    return _returns_like(theta, torch.as_tensor(h_t) - h_given_x)

