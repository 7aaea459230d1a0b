"""Finite-difference gradient checks for functional ops and for modules (yours too).

Both checkers build the scalar ``L = sum_i <out_i, g_i>`` with a random upstream gradient ``g``
(so every output element matters, with a different weight), run the analytic backward with
``g``, and compare each gradient to central differences

    dL/dx_j ~ (L(x + eps e_j) - L(x - eps e_j)) / (2 eps)          (error O(eps^2))

on EVERY element of EVERY floating-point input and parameter, in float64.

Error measure, per tensor: ``max_j |a_j - n_j| / max(max_j |a_j|, max_j |n_j|, tiny)``, the
largest deviation relative to the tensor's own gradient scale. (Element-wise relative error
blows up where the true gradient is ~0; this does not, yet still catches any wrong element of
meaningful size.) Thresholds: about 1e-7 for smooth single ops, 1e-5 for composite modules.

Usage::

    report = check_op(linear_forward, linear_backward, {"x": x, "weight": w, "bias": b})
    report = check_module(model, idx)          # model.double() first
    report = check_module(model.train(), idx, dropout_seed=0)   # training mode, dropout on
    print(report)                              # one line per tensor

Dropout in training mode: the finite differences call the forward twice per element, and each
call would draw fresh masks, so ``L`` would not even be a function of the inputs. With
``dropout_seed`` (see :func:`fixed_random_streams`), every forward draws the SAME masks, so the
check differentiates the network with those masks fixed, and the backward passes only if it
reuses exactly the masks its forward drew (not another layer's, not a fresh one, not none).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from tinylm import random as _random
from tinylm.backend import get_backend, to_numpy

__all__ = ["GradcheckReport", "GradcheckError", "check_op", "check_module", "fixed_random_streams",
           "numerical_grad", "rel_error"]


class GradcheckError(AssertionError):
    """The analytic gradient disagrees with finite differences (the message has the full report)."""


@dataclass
class GradcheckReport:
    errors: dict[str, float] = field(default_factory=dict)   # tensor name -> max relative error
    tol: float = 1e-5

    @property
    def max_error(self) -> float:
        return max(self.errors.values(), default=0.0)

    @property
    def ok(self) -> bool:
        return self.max_error <= self.tol

    def __str__(self) -> str:
        w = max((len(n) for n in self.errors), default=4)
        rows = [f"  {n:<{w}}  {e:.2e}  {'ok' if e <= self.tol else 'FAIL'}" for n, e in self.errors.items()]
        return f"gradcheck (tol {self.tol:.0e}): {'ok' if self.ok else 'FAILED'}\n" + "\n".join(rows)


def rel_error(analytic, numeric) -> float:
    """``max|a - n| / max(max|a|, max|n|)``: deviation relative to the gradient's scale."""
    a, n = np.asarray(to_numpy(analytic), np.float64), np.asarray(to_numpy(numeric), np.float64)
    if a.shape != n.shape:
        raise ValueError(f"analytic gradient has shape {a.shape}, numerical {n.shape}")
    if a.size == 0:
        return 0.0
    scale = max(np.abs(a).max(), np.abs(n).max(), 1e-30)
    return float(np.abs(a - n).max() / scale)


def _flatten(out) -> list:
    """Nested tuples/lists of arrays -> flat list of arrays (non-arrays dropped as None)."""
    if isinstance(out, (tuple, list)):
        return [leaf for o in out for leaf in _flatten(o)]
    return [out]


def _is_float(a) -> bool:
    return hasattr(a, "dtype") and a.dtype.kind == "f"


def _random_like(out, rng: np.random.Generator):
    """A random upstream gradient with the structure of ``out``; None for non-float leaves."""
    if isinstance(out, (tuple, list)):
        return type(out)(_random_like(o, rng) for o in out)
    if isinstance(out, float):
        return float(rng.standard_normal())
    if _is_float(out):
        return get_backend().asarray(rng.standard_normal(np.shape(out)))
    return None


def _objective(out, g) -> float:
    total = 0.0
    for o, gi in zip(_flatten(out), _flatten(g)):
        if gi is not None:
            total += float(np.sum(to_numpy(o) * to_numpy(gi)))
    return total


def numerical_grad(f: Callable[[], float], x, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar ``f()`` with respect to array ``x``, perturbed in place."""
    if not (isinstance(x, np.ndarray) and x.flags.c_contiguous):
        raise ValueError("numerical_grad: x must be a C-contiguous NumPy array (perturbed in place)")
    grad = np.zeros(x.shape, dtype=np.float64)
    flat = x.reshape(-1)  # a view, since x is contiguous: writes go into x
    for j in range(flat.size):
        old = flat[j].item()
        flat[j] = old + eps
        f_plus = f()
        flat[j] = old - eps
        f_minus = f()
        flat[j] = old
        grad.reshape(-1)[j] = (f_plus - f_minus) / (2 * eps)
    return grad


def _require_float64(name: str, a) -> None:
    if _is_float(a) and a.dtype != np.float64:
        raise TypeError(f"gradcheck: {name} is {a.dtype}; gradient checks run in float64 "
                        f"(cast inputs with .astype(np.float64), modules with .double())")


def check_op(forward: Callable, backward: Callable, inputs: dict[str, Any], *, kwargs: dict | None = None,
             wrt: Sequence[str] | None = None, tol: float = 1e-7, eps: float = 1e-6, seed: int = 0,
             raise_on_fail: bool = True) -> GradcheckReport:
    """Check a functional pair ``out, cache = forward(**inputs, **kwargs)`` /
    ``grads = backward(dout, cache)``.

    ``wrt`` names the inputs that ``backward`` returns gradients for, in its return order
    (default: every floating-point input, in the order of ``inputs``). A ``None`` name in
    ``wrt`` marks a returned slot to skip.
    """
    kwargs = dict(kwargs or {})
    inputs = {k: (np.ascontiguousarray(v) if isinstance(v, np.ndarray) else v) for k, v in inputs.items()}
    for k, v in inputs.items():
        _require_float64(k, v)
    if wrt is None:
        wrt = [k for k, v in inputs.items() if _is_float(v)]
    rng = np.random.default_rng(seed)
    out, cache = forward(**inputs, **kwargs)
    g = _random_like(out, rng)
    grads = backward(g, cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    if len(grads) != len(wrt):
        raise ValueError(f"check_op: backward returned {len(grads)} gradients, wrt names {len(wrt)}: {list(wrt)}")
    report = GradcheckReport(tol=tol)

    def f() -> float:
        return _objective(forward(**inputs, **kwargs)[0], g)

    for name, ga in zip(wrt, grads):
        if name is None:
            continue
        if ga is None:
            raise AssertionError(f"check_op: backward returned None for {name!r}")
        report.errors[name] = rel_error(ga, numerical_grad(f, inputs[name], eps))
    if raise_on_fail and not report.ok:
        raise GradcheckError(str(report))
    return report


@contextmanager
def fixed_random_streams(module, seed: int) -> Iterator[Callable[[], None]]:
    """Make every forward of ``module`` draw the same random numbers (dropout masks, samples).

    Yields ``reset()``; call it before each forward. ``reset()`` gives every submodule with an
    ``rng`` attribute (``nn.Dropout``, ``MultiheadAttention``'s attention dropout, ``RNN``/``LSTM``/
    ``GRU``'s between-layer dropout, BERT's self-attention, ``HardAttention``, ...) a fresh
    ``np.random.default_rng(seed + i)``, ``i`` its index in ``named_modules()``, whatever it held
    before: ``None`` (tinylm's global generator), an int seed, or a Generator, possibly one shared
    by many submodules (BERT, the seq2seq models and the transformer layers share one). Each
    submodule then has its own stream, so two dropouts get different masks (a backward that uses
    another layer's mask fails), and a module that draws several masks per forward from its one
    generator (an ``RNN``'s masks between layers) gets a different mask each time. ``reset()``
    also rewinds tinylm's global generator (``tinylm.random.default_rng()``) to a state fixed by
    ``seed``, for code that draws from it without holding an ``rng`` (a functional
    ``attention_forward(..., dropout_p=p)`` called with ``rng=None``).

    On exit the original ``rng`` attributes and the global generator's state are put back, so
    the check neither changes the module nor consumes global randomness.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"fixed_random_streams: seed must be a non-negative int, got {seed!r}")
    seed = int(seed)
    holders, seen = [], set()
    for _, m in module.named_modules():
        if id(m) not in seen and hasattr(m, "rng"):
            seen.add(id(m))
            holders.append(m)
    originals = [m.rng for m in holders]
    glob = _random.default_rng()
    saved = glob.bit_generator.state
    glob_state = np.random.default_rng([seed, len(holders)]).bit_generator.state

    def reset() -> None:
        for i, m in enumerate(holders):
            m.rng = np.random.default_rng(seed + i)
        glob.bit_generator.state = glob_state

    try:
        yield reset
    finally:
        for m, r in zip(holders, originals):
            m.rng = r
        glob.bit_generator.state = saved


def check_module(module, *inputs, tol: float = 1e-5, eps: float = 1e-6, seed: int = 0,
                 forward_kwargs: dict | None = None, check_inputs: bool = True,
                 dropout_seed: int | None = None, raise_on_fail: bool = True) -> GradcheckReport:
    """Check ``module.backward`` against finite differences for every float input and parameter.

    The module must be float64 (``module.double()``) and deterministic: dropout off (``.eval()``)
    or, in training mode, ``dropout_seed`` given. With ``dropout_seed`` every forward (the one
    whose backward is checked and every finite-difference one) runs after
    :func:`fixed_random_streams`' ``reset()``, so all draw the same dropout masks and the backward
    must reuse them; the module's generators and tinylm's global one are restored afterwards.
    This only makes the draws repeatable: assert separately that dropout acted (the training-mode
    output differs from ``.eval()``'s), or the check passes vacuously with dropout off.
    ``module.backward(g)`` must return the input gradient(s): one array for one input, a tuple
    for several (``None`` for integer inputs). Parameter gradients are read from ``.grad``.
    Reports names ``input0``, ``input1``, ... and the dotted parameter names.
    """
    if dropout_seed is None:
        return _check_module(module, inputs, tol, eps, seed, forward_kwargs, check_inputs, raise_on_fail, None)
    with fixed_random_streams(module, dropout_seed) as reset:
        return _check_module(module, inputs, tol, eps, seed, forward_kwargs, check_inputs, raise_on_fail, reset)


def _check_module(module, inputs, tol, eps, seed, forward_kwargs, check_inputs, raise_on_fail,
                  reset) -> GradcheckReport:
    forward_kwargs = dict(forward_kwargs or {})
    inputs = tuple(np.ascontiguousarray(x) if isinstance(x, np.ndarray) else x for x in inputs)
    params = list(module.named_parameters())
    for i, x in enumerate(inputs):
        _require_float64(f"input{i}", x)
    for n, p in params:
        _require_float64(n, p.data)
        p.data = np.ascontiguousarray(p.data) if isinstance(p.data, np.ndarray) else p.data
    rng = np.random.default_rng(seed)

    def run():
        if reset is not None:
            reset()
        return module(*inputs, **forward_kwargs)

    module.zero_grad()
    out = run()
    g = _random_like(out, rng)
    dinputs = module.backward(g)
    dinputs = dinputs if isinstance(dinputs, tuple) else (dinputs,)
    report = GradcheckReport(tol=tol)

    def f() -> float:
        return _objective(run(), g)

    if check_inputs:
        for i, x in enumerate(inputs):
            if not _is_float(x):
                continue
            if i >= len(dinputs) or dinputs[i] is None:
                raise AssertionError(f"check_module: backward returned no gradient for float input{i}")
            report.errors[f"input{i}"] = rel_error(dinputs[i], numerical_grad(f, x, eps))
    for n, p in params:
        if not p.requires_grad:
            continue
        if p.grad is None:
            raise AssertionError(f"check_module: parameter {n!r} received no gradient")
        report.errors[n] = rel_error(p.grad, numerical_grad(f, p.data, eps))
    if raise_on_fail and not report.ok:
        raise GradcheckError(str(report))
    return report
