"""The gradient checker itself (tinylm/gradcheck.py): every guarantee of the other gradient checks rests
on it, so each way a backward can be wrong must make check_op / check_module fail, a correct backward
must pass, and rel_error / numerical_grad must compute what they document. Expected values here are
written out by hand, never obtained by calling the function under test on itself."""
import numpy as np
import pytest

import tinylm
from tinylm.gradcheck import (GradcheckError, check_module, check_op, fixed_random_streams, numerical_grad,
                              rel_error)
from tinylm.nn.dropout import Dropout
from tinylm.nn.module import Module, Parameter
from tinylm.ops.dropout import dropout_backward, dropout_forward


# --- a small op with two same-shape inputs: out = tanh(a) * b^2 + a, elementwise ------------------

def op_forward(a, b):
    t = np.tanh(a)
    return t * b ** 2 + a, (a, b, t)


def op_backward(dout, cache):
    a, b, t = cache
    return dout * ((1 - t ** 2) * b ** 2 + 1), dout * 2 * t * b


def op_inputs(seed=0):
    r = np.random.default_rng(seed)
    return {"a": r.standard_normal((3, 4)), "b": r.standard_normal((3, 4))}


def test_correct_op_passes_and_reports_every_input():
    report = check_op(op_forward, op_backward, op_inputs())
    assert set(report.errors) == {"a", "b"}
    assert report.ok and report.max_error < 1e-8


@pytest.mark.parametrize("factor", [1.001, 1 + 1e-5])
def test_scaled_backward_fails(factor):
    """A backward off by a factor 1 + 1e-5 is already 100x over the 1e-7 bound of single ops."""
    with pytest.raises(GradcheckError):
        check_op(op_forward, lambda d, c: tuple(factor * g for g in op_backward(d, c)), op_inputs())


def test_swapped_gradients_fail():
    with pytest.raises(GradcheckError):
        check_op(op_forward, lambda d, c: op_backward(d, c)[::-1], op_inputs())


@pytest.mark.parametrize("which", [0, 1])
def test_one_wrong_element_fails(which):
    def backward(d, c):
        grads = list(op_backward(d, c))
        grads[which] = grads[which].copy()
        grads[which][2, 1] += 1e-3 * np.abs(grads[which]).max()
        return tuple(grads)

    with pytest.raises(GradcheckError, match="FAIL"):
        check_op(op_forward, backward, op_inputs())


def test_backward_assuming_a_ones_upstream_gradient_fails():
    """The upstream gradient must be random: a backward that ignores dout (right only for dout = 1)."""
    with pytest.raises(GradcheckError):
        check_op(op_forward, lambda d, c: op_backward(np.ones_like(d), c), op_inputs())


def test_missing_input_gradient_raises():
    with pytest.raises(AssertionError, match="None for 'b'"):
        check_op(op_forward, lambda d, c: (op_backward(d, c)[0], None), op_inputs())
    with pytest.raises(ValueError, match="returned 1 gradients"):
        check_op(op_forward, lambda d, c: op_backward(d, c)[0], op_inputs())


def test_wrt_none_slot_is_skipped_and_wrt_names_select():
    report = check_op(op_forward, lambda d, c: (op_backward(d, c)[0], "not checked"), op_inputs(), wrt=["a", None])
    assert set(report.errors) == {"a"}
    report = check_op(op_forward, lambda d, c: op_backward(d, c)[1], op_inputs(), wrt=["b"])
    assert set(report.errors) == {"b"}
    with pytest.raises(GradcheckError):          # wrt names the slots in order: b's gradient is not a's
        check_op(op_forward, lambda d, c: op_backward(d, c)[1], op_inputs(), wrt=["a"])


def test_raise_on_fail_false_returns_the_failed_report():
    report = check_op(op_forward, lambda d, c: tuple(1.001 * g for g in op_backward(d, c)), op_inputs(),
                      raise_on_fail=False)
    assert not report.ok and report.max_error > 1e-4 and "FAILED" in str(report)


def test_tuple_output_every_output_counts():
    """Both outputs get a random upstream gradient: a backward that drops the second one fails."""
    def forward(a, b):
        return (a * b, np.sin(a)), (a, b)

    def backward(d, c):
        a, b = c
        return d[0] * b + d[1] * np.cos(a), d[0] * a

    check_op(forward, backward, op_inputs())
    with pytest.raises(GradcheckError):
        check_op(forward, lambda d, c: (d[0] * c[1], d[0] * c[0]), op_inputs())


def test_float32_inputs_raise_type_error():
    inputs = op_inputs()
    inputs["b"] = inputs["b"].astype(np.float32)
    with pytest.raises(TypeError, match="float64"):
        check_op(op_forward, op_backward, inputs)


def test_integer_inputs_are_data():
    """A non-float input gets no gradient slot by default."""
    def forward(x, idx):
        return x[idx] ** 2, (x, idx)

    def backward(d, c):
        x, idx = c
        dx = np.zeros_like(x)
        np.add.at(dx, idx, 2 * x[idx] * d)
        return dx

    r = np.random.default_rng(3)
    report = check_op(forward, backward, {"x": r.standard_normal(5), "idx": np.array([0, 3, 3])})
    assert set(report.errors) == {"x"}


# --- modules ------------------------------------------------------------------------------------

class Tiny(Module):
    """y = tanh(x W1^T) W2^T + c * x (W1, W2 both (3, 3), so a swap keeps shapes).
    ``mode`` injects one bug at a time."""

    def __init__(self, mode="ok", seed=0):
        super().__init__()
        r = np.random.default_rng(seed)
        self.w1 = Parameter(r.standard_normal((3, 3)))
        self.w2 = Parameter(r.standard_normal((3, 3)))
        self.c = Parameter(r.standard_normal(3))
        self.mode = mode

    def forward(self, x):
        self.x, self.h = x, np.tanh(x @ self.w1.data.T)
        return self.h @ self.w2.data.T + self.c.data * x

    def backward(self, dy):
        x, h = self.x, self.h
        dw2 = dy.reshape(-1, 3).T @ h.reshape(-1, 3)
        dh = dy @ self.w2.data
        dpre = dh * (1 - h ** 2)
        dw1 = dpre.reshape(-1, 3).T @ x.reshape(-1, 3)
        dc = (dy * x).reshape(-1, 3).sum(0)
        dx = dpre @ self.w1.data + self.c.data * dy
        if self.mode == "scale_param":
            dw1 = 1.001 * dw1
        elif self.mode == "swap_params":
            dw1, dw2 = dw2, dw1
        elif self.mode == "wrong_element":
            dw2 = dw2.copy()
            dw2[1, 2] += 1e-3 * np.abs(dw2).max()
        elif self.mode == "scale_input":
            dx = 1.001 * dx
        if self.mode != "no_param_grad":
            self.w1.accumulate(dw1)
        self.w2.accumulate(dw2)
        self.c.accumulate(dc)
        return None if self.mode == "no_input_grad" else dx


def x_input(seed=1):
    return np.random.default_rng(seed).standard_normal((2, 4, 3))


def test_correct_module_passes_and_reports_inputs_and_parameters():
    report = check_module(Tiny(), x_input(), tol=1e-7)
    assert set(report.errors) == {"input0", "w1", "w2", "c"}
    assert report.max_error < 1e-8


@pytest.mark.parametrize("mode", ["scale_param", "swap_params", "wrong_element", "scale_input"])
def test_wrong_module_backward_fails(mode):
    with pytest.raises(GradcheckError):
        check_module(Tiny(mode), x_input())


def test_parameter_without_gradient_raises():
    with pytest.raises(AssertionError, match="'w1' received no gradient"):
        check_module(Tiny("no_param_grad"), x_input())


def test_missing_input_gradient_raises_for_modules():
    with pytest.raises(AssertionError, match="no gradient for float input0"):
        check_module(Tiny("no_input_grad"), x_input())
    report = check_module(Tiny(), x_input(), check_inputs=False)
    assert set(report.errors) == {"w1", "w2", "c"}


def test_frozen_parameter_is_not_checked():
    m = Tiny("no_param_grad")
    m.w1.requires_grad = False
    report = check_module(m, x_input())
    assert "w1" not in report.errors and {"w2", "c"} <= set(report.errors)


def test_float32_module_or_input_raises_type_error():
    with pytest.raises(TypeError, match="float64"):
        check_module(Tiny(), x_input().astype(np.float32))
    m = Tiny()
    m.w2.data = m.w2.data.astype(np.float32)
    with pytest.raises(TypeError, match="w2"):
        check_module(m, x_input())


def test_module_gradients_accumulated_before_the_check_do_not_count():
    """check_module zeroes .grad first: a stale gradient must not be added to the checked one."""
    m = Tiny()
    m.w1.grad = np.ones((3, 3))
    check_module(m, x_input(), tol=1e-7)


# --- rel_error -------------------------------------------------------------------------------------

@pytest.mark.parametrize("a, n, want", [
    ([1.0, 2.0], [1.0, 2.5], 0.5 / 2.5),                 # max|a-n| over the larger of the two maxima
    ([[0.0, -4.0]], [[0.0, -3.0]], 1.0 / 4.0),           # absolute values: the scale is |-4|
    ([1e-3, 0.0], [0.0, 0.0], 1.0),                      # scale from a alone
    ([3.0, 1.0], [3.0, 1.0], 0.0),
    ([0.0, 0.0], [0.0, 0.0], 0.0),                       # 0 / max(0, tiny): no division by zero
    ([10.0, 0.1], [10.0, 0.2], 0.1 / 10.0),              # relative to the tensor's scale, not elementwise
])
def test_rel_error_on_known_values(a, n, want):
    assert rel_error(np.array(a), np.array(n)) == pytest.approx(want, rel=1e-12, abs=0)


def test_rel_error_shape_mismatch_and_empty():
    with pytest.raises(ValueError, match="shape"):
        rel_error(np.zeros(3), np.zeros((3, 1)))
    assert rel_error(np.zeros((0, 2)), np.zeros((0, 2))) == 0.0


# --- numerical_grad --------------------------------------------------------------------------------

def test_numerical_grad_is_exact_on_a_quadratic():
    """Central differences of a quadratic have no truncation error: only rounding (~1e-10 at eps=1e-6)."""
    r = np.random.default_rng(5)
    A = r.standard_normal((6, 6))
    b = r.standard_normal(6)
    x = r.standard_normal((2, 3))
    x0 = x.copy()

    def f():
        v = x.reshape(-1)
        return float(v @ A @ v + b @ v + 7.0)

    g = numerical_grad(f, x)
    want = ((A + A.T) @ x0.reshape(-1) + b).reshape(2, 3)
    assert g.shape == (2, 3) and g.dtype == np.float64
    np.testing.assert_allclose(g, want, rtol=0, atol=1e-8)
    assert np.array_equal(x, x0)                          # every perturbed element is put back exactly


def test_numerical_grad_uses_central_differences():
    """On x^3 at 1 with eps = 0.1: central gives 3 + eps^2 = 3.01; forward differences would give 3.31."""
    x = np.array([1.0])
    assert numerical_grad(lambda: float(x[0] ** 3), x, eps=0.1)[0] == pytest.approx(3.01, rel=1e-12)


def test_numerical_grad_needs_a_contiguous_array():
    with pytest.raises(ValueError, match="C-contiguous"):
        numerical_grad(lambda: 0.0, np.zeros((3, 4))[:, ::2])
    with pytest.raises(ValueError, match="C-contiguous"):
        numerical_grad(lambda: 0.0, [1.0, 2.0])


# --- training-mode dropout: dropout_seed / fixed_random_streams ----------------------------------

class DropoutLinear(Module):
    """y = dropout(x) * w, and optionally more dropout drawn from tinylm's global generator."""

    def __init__(self, rng=None, global_draw=False):
        super().__init__()
        self.w = Parameter(np.random.default_rng(2).standard_normal(5))
        self.drop = Dropout(0.4, rng=rng)
        self.global_draw = global_draw

    def forward(self, x):
        h = self.drop(x)
        self.h = h
        y = h * self.w.data
        if self.global_draw:                                 # no rng attribute: the global generator
            y, self._gcache = dropout_forward(y, 0.4, True, None)
        return y

    def backward(self, dy):
        if self.global_draw:
            dy = dropout_backward(dy, self._gcache)
        self.w.accumulate((dy * self.h).reshape(-1, 5).sum(0))
        return self.drop.backward(dy * self.w.data)


def test_dropout_check_needs_fixed_masks():
    """In training mode each forward draws new masks: without dropout_seed the check cannot pass;
    with it, it passes at single-op precision, and the masks really drop entries."""
    x = np.random.default_rng(0).standard_normal((4, 5))
    m = DropoutLinear(rng=3)
    with pytest.raises(GradcheckError):
        check_module(m, x, tol=1e-5)
    report = check_module(m, x, tol=1e-7, dropout_seed=0)
    assert set(report.errors) == {"input0", "w"}
    assert (m.drop._cache.mask == 0).any()


@pytest.mark.parametrize("rng", [None, 3, "shared"])
def test_dropout_seed_covers_every_kind_of_generator(rng):
    """The module's own stream (int seed), tinylm's global generator (rng None, and a draw made
    without any rng attribute) and a Generator passed in all become repeatable."""
    x = np.random.default_rng(0).standard_normal((4, 5))
    if rng == "shared":
        rng = np.random.default_rng(8)
    check_module(DropoutLinear(rng=rng, global_draw=True), x, tol=1e-7, dropout_seed=5)


def test_dropout_backward_that_ignores_its_mask_fails():
    x = np.random.default_rng(0).standard_normal((4, 5))
    m = DropoutLinear(rng=3)
    m.drop.backward = lambda dy: dy                      # the mutation "dropout backward skipped"
    with pytest.raises(GradcheckError):
        check_module(m, x, dropout_seed=0)


def test_dropout_backward_with_another_layers_mask_fails():
    """Every submodule gets its own stream, so two Dropouts of one shape draw different masks
    (even when they shared one generator), and swapping them is caught."""
    class Chain(Module):
        """y = b(sin(a(x)) * w), the two Dropouts sharing one Generator."""

        def __init__(self, swap):
            super().__init__()
            g = np.random.default_rng(1)
            self.a, self.b, self.swap = Dropout(0.5, rng=g), Dropout(0.5, rng=g), swap
            self.w = Parameter(np.random.default_rng(2).standard_normal(5))

        def forward(self, x):
            self.u = self.a(x)
            self.h = np.sin(self.u)
            return self.b(self.h * self.w.data)

        def backward(self, dy):
            first, second = (self.b, self.a) if self.swap else (self.a, self.b)
            dz = second.backward(dy)
            self.w.accumulate((dz * self.h).sum(0))
            return first.backward(dz * self.w.data * np.cos(self.u))

    x = np.random.default_rng(0).standard_normal((4, 5))
    check_module(Chain(False), x, tol=1e-7, dropout_seed=0)
    with pytest.raises(GradcheckError):
        check_module(Chain(True), x, dropout_seed=0)


def test_fixed_random_streams_restores_generators_and_global_state():
    g = np.random.default_rng(4)
    m = DropoutLinear(rng=g)
    m.drop2 = Dropout(0.4)                               # rng None: the global generator
    before = tinylm.random.default_rng().bit_generator.state
    x = np.random.default_rng(0).standard_normal((4, 5))
    with fixed_random_streams(m, 3) as reset:
        reset()
        y1 = m(x)
        assert m.drop.rng is not g
        reset()
        np.testing.assert_array_equal(m(x), y1)          # the same masks after each reset
        tinylm.random.default_rng().random(3)            # draws inside do not leak out
    assert m.drop.rng is g and m.drop2.rng is None
    assert tinylm.random.default_rng().bit_generator.state == before
    check_module(m, x, dropout_seed=1)
    assert m.drop.rng is g and tinylm.random.default_rng().bit_generator.state == before
    with pytest.raises(ValueError, match="seed"):
        with fixed_random_streams(m, -1):
            pass
