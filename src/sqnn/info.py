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


def _domain_weights(
    variable: torch.Tensor,
    weight: torch.Tensor | None,
    n_values: int | None,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Matrix (N, K): weight of event n in value k of the conditioning variable.

    ``variable`` is either integer codes (N,) or soft memberships (N, K) whose rows
    sum to one (e.g. a classifier's predicted class probabilities).
    """
    if variable.ndim == 2:
        member = variable.to(dtype)
    else:
        codes = variable.long()
        k = int(n_values if n_values is not None else (int(codes.max()) + 1 if codes.numel() else 1))
        member = torch.nn.functional.one_hot(codes, num_classes=max(k, 1)).to(dtype)
    if weight is not None:
        member = member * weight.to(dtype).reshape(-1, 1)
    return member


def _global_sums(reduce: Reduce | None, *sums: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The event sums of this process, or of all processes when ``reduce`` is given (one collective)."""
    if reduce is None:
        return sums
    flat = reduce(torch.cat([s.reshape(-1) for s in sums]))
    return tuple(part.reshape(s.shape) for part, s in zip(torch.split(flat, [s.numel() for s in sums]), sums))


def _require_known_values(reduce: Reduce | None, variable: torch.Tensor, n_values: int | None) -> None:
    # the number of values must not depend on which events a process happens to hold
    if reduce is not None and variable.ndim == 1 and n_values is None:
        raise ValueError("with reduce, give n_values (or soft memberships) so every process has the same values")


def _prior(totals: torch.Tensor, prior: Prior) -> torch.Tensor:
    """p(s) from the total weight of each value; values with no (or negative) weight get 0."""
    present = totals > _EPS
    if prior == "balanced":
        p = present.to(totals.dtype)
    else:
        p = totals.clamp(min=0.0)
    total = p.sum()
    return torch.where(total > 0, p / total.clamp(min=_EPS), torch.zeros_like(p))


def _theta_sums(th: torch.Tensor, member: torch.Tensor) -> torch.Tensor:
    """Σ_x w_xs θ(x) per value s of the conditioning variable, shape (K, m)."""
    return member.T @ th


def _per_value_averages(
    theta: ArrayLike,
    variable: ArrayLike,
    weight: ArrayLike | None,
    n_values: int | None,
    prior: Prior,
    reduce: Reduce | None,
    sums_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """p(s) and the weighted average over the events of each value s of ``sums_of(θ, weights)``.

    The event sums are added over processes first when ``reduce`` is given (distributed
    training), so the averages are those of the global batch.
    """
    th = _as_tensor(theta)
    if th.ndim == 1:
        th = th.reshape(-1, 1)
    w = None if weight is None else _as_tensor(weight, th.dtype)
    values = _as_tensor(variable, None)
    _require_known_values(reduce, values, n_values)
    member = _domain_weights(values, w, n_values, th.dtype)
    totals, sums = _global_sums(reduce, member.sum(0), sums_of(th, member))
    safe = torch.where(totals.abs() > _EPS, totals, torch.ones_like(totals))
    return _prior(totals, prior), sums / safe.reshape(-1, 1)


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
    p_s, mean_given_s = _per_value_averages(theta, variable, weight, n_values, prior, reduce, _theta_sums)
    mean_given_s = mean_given_s.clamp(0.0, 1.0)  # (K, m)
    mean = p_s @ mean_given_s  # (m,)
    h_marginal = binary_entropy(mean).sum()
    h_conditional = (p_s @ binary_entropy(mean_given_s)).sum()
    return _returns_like(theta, h_marginal - h_conditional)


def _codes(m: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    bits = torch.arange(m, device=device)
    values = torch.arange(1 << m, device=device).reshape(-1, 1)
    return ((values >> bits) & 1).to(dtype)  # (2^m, m)


def _code_probabilities(th: torch.Tensor) -> torch.Tensor:
    """p(t|x) for every code t of the units in ``th``, shape (N, 2^m), from log space."""
    codes = _codes(th.shape[1], th.dtype, th.device)
    log_on = torch.log(th.clamp(_EPS, 1.0))
    log_off = torch.log((1.0 - th).clamp(_EPS, 1.0))
    return torch.exp(log_on @ codes.T + log_off @ (1.0 - codes).T)


def _code_distributions(th: torch.Tensor, member: torch.Tensor) -> torch.Tensor:
    """Unnormalised p(t, s) = Σ_x w_xs p(t|x), shape (K, 2^m).

    Units are independent given x, so p(t|x) = p(t_low|x) · p(t_high|x) for the low and
    high halves of the code; the sum over events is then one matrix product per value
    of S, with 2·2^(m/2) exponentials per event instead of 2^m.
    """
    m = th.shape[1]
    if m > MAX_JOINT_UNITS:
        raise ValueError(f"exact joint needs at most {MAX_JOINT_UNITS} units, the layer has {m}")
    low_bits = (m + 1) // 2
    low = _code_probabilities(th[:, :low_bits])  # (N, 2^a)
    high = _code_probabilities(th[:, low_bits:])  # (N, 2^b)
    rows = []
    for k in range(member.shape[1]):
        # code value v = v_low + 2^a · v_high, so flatten (high, low) row-major
        rows.append((high.T @ (member[:, k : k + 1] * low)).reshape(-1))
    return torch.stack(rows)


def _entropy(p: torch.Tensor) -> torch.Tensor:
    return -_plogp(p).sum(-1)


def joint_mi(
    theta: ArrayLike,
    variable: ArrayLike,
    weight: ArrayLike | None = None,
    *,
    n_values: int | None = None,
    prior: Prior = "weights",
    reduce: Reduce | None = None,
) -> torch.Tensor | float:
    """Exact I(T;S) = H(T) − Σ_s p(s) H(T|S=s) over all 2^m codes (m ≤ 16), in bits.

    Differentiable in θ, so it can serve as a training loss as well as a metric.
    """
    p_s, p_t_given_s = _per_value_averages(theta, variable, weight, n_values, prior, reduce, _code_distributions)
    p_t_given_s = p_t_given_s.clamp(min=0.0)
    p_t = p_s @ p_t_given_s
    value = _entropy(p_t) - p_s @ _entropy(p_t_given_s)
    return _returns_like(theta, value)


def joint_entropy(theta: ArrayLike, weight: ArrayLike | None = None) -> torch.Tensor | float:
    """Exact H(T) of the layer over the events (m ≤ 16 units), in bits."""
    th = _as_tensor(theta)
    if th.ndim == 1:
        th = th.reshape(-1, 1)
    w = th.new_ones(th.shape[0]) if weight is None else _as_tensor(weight, th.dtype)
    p_t = _code_distributions(th, w.reshape(-1, 1))[0] / w.sum().clamp(min=_EPS)
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
) -> torch.Tensor | float:
    """I(T;S|Y) = Σ_y p(y) I(T;S | Y=y), in bits.

    ``condition`` holds integer class codes (N,) or soft class memberships (N, K),
    e.g. true labels in simulation and the classifier's own probabilities in data;
    a soft membership splits an event's weight between the classes.
    """
    th = _as_tensor(theta)
    w = th.new_ones(th.shape[0]) if weight is None else _as_tensor(weight, th.dtype)
    classes = _as_tensor(condition, None)
    _require_known_values(reduce, classes, None)
    cond = _domain_weights(classes, w, None, th.dtype)  # (N, C)
    (totals,) = _global_sums(reduce, cond.sum(0))
    p_y = _prior(totals, "weights")
    var = _as_tensor(variable, None)
    total = th.new_zeros(())
    for y in range(cond.shape[1]):
        if p_y[y] <= 0:
            continue
        part = mutual_information(th, var, cond[:, y], joint=joint, n_values=n_values, prior=prior, reduce=reduce)
        total = total + p_y[y] * part
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

