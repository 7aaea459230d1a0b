"""Optimizers (against hand-computed updates), param groups, state_dict round trips, clipping,
L1/L2 penalties (finite-difference checked) and the NaN guard. The float64 step-for-step
comparison with PyTorch is tests/test_torch_optim.py."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinylm
from tinylm.gradcheck import numerical_grad, rel_error
from tinylm.nn.module import Parameter
from tinylm.optim import (SGD, Adagrad, Adam, AdamW, NonFiniteLossError, check_finite, clip_grad_norm_,
                          clip_grad_value_, l1_penalty, l1_penalty_backward, l2_penalty, l2_penalty_backward,
                          weight_decay_groups)


def param(values, grad=None):
    p = Parameter(np.array(values, dtype=np.float64))
    p.grad = None if grad is None else np.array(grad, dtype=np.float64)
    return p


# --- single updates, expected values written from the formulas ---

def test_sgd_plain_step():
    p = param([1.0, 2.0], [0.5, -1.0])
    SGD([p], lr=0.1).step()
    np.testing.assert_allclose(p.data, [1.0 - 0.1 * 0.5, 2.0 + 0.1 * 1.0], rtol=1e-15)


def test_sgd_momentum_dampening_weight_decay_three_steps():
    p = param([1.0, -1.0])
    opt = SGD([p], lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.01)
    w, buf = np.array([1.0, -1.0]), None
    for g in ([0.5, 1.0], [-0.2, 0.3], [0.1, 0.1]):
        p.grad = np.array(g)
        opt.step()
        d = np.array(g) + 0.01 * w
        buf = d if buf is None else 0.9 * buf + 0.8 * d    # first step undampened
        w = w - 0.1 * buf
        np.testing.assert_allclose(p.data, w, rtol=1e-14)


def test_sgd_nesterov_two_steps():
    p = param([1.0], [1.0])
    opt = SGD([p], lr=0.5, momentum=0.5, nesterov=True)
    opt.step()          # buf = 1,              d = 1 + 0.5 * 1 = 1.5,      w = 1 - 0.75 = 0.25
    p.grad = np.array([2.0])
    opt.step()          # buf = 0.5 + 2 = 2.5,  d = 2 + 0.5 * 2.5 = 3.25,   w = 0.25 - 1.625
    np.testing.assert_allclose(p.data, [0.25 - 1.625], rtol=1e-15)


def test_adam_first_two_steps_by_hand():
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    g1, g2 = np.array([0.5, -2.0]), np.array([1.0, 0.25])
    p = param([1.0, 2.0], g1)
    opt = Adam([p], lr=lr, betas=(b1, b2), eps=eps)
    opt.step()
    # step 1: m_hat = g1, v_hat = g1^2, so the step is lr * g1 / (|g1| + eps)
    w1 = np.array([1.0, 2.0]) - lr * g1 / (np.abs(g1) + eps)
    np.testing.assert_allclose(p.data, w1, rtol=1e-14)
    p.grad = g2
    opt.step()
    m = b1 * (1 - b1) * g1 + (1 - b1) * g2
    v = b2 * (1 - b2) * g1**2 + (1 - b2) * g2**2
    w2 = w1 - lr * (m / (1 - b1**2)) / (np.sqrt(v / (1 - b2**2)) + eps)
    np.testing.assert_allclose(p.data, w2, rtol=1e-14)
    assert opt.state[p]["step"] == 2


def test_adam_weight_decay_is_l2_adamw_is_decoupled():
    lr, wd, eps = 0.1, 0.5, 1e-8
    g = np.array([0.5, -2.0])
    pa, pw = param([1.0, 2.0], g), param([1.0, 2.0], g)
    Adam([pa], lr=lr, eps=eps, weight_decay=wd).step()
    AdamW([pw], lr=lr, eps=eps, weight_decay=wd).step()
    ga = g + wd * np.array([1.0, 2.0])                       # Adam: decay enters the gradient
    np.testing.assert_allclose(pa.data, np.array([1.0, 2.0]) - lr * ga / (np.abs(ga) + eps), rtol=1e-14)
    w = np.array([1.0, 2.0]) * (1 - lr * wd)                 # AdamW: shrink, then the plain Adam step
    np.testing.assert_allclose(pw.data, w - lr * g / (np.abs(g) + eps), rtol=1e-14)
    np.testing.assert_array_equal(pa.grad, g)                # p.grad is read, never written
    assert AdamW([param([0.0])]).defaults["weight_decay"] == 1e-2


def test_adagrad_two_steps_by_hand():
    lr, decay, init, eps = 0.1, 0.5, 0.2, 1e-10
    p = param([1.0, -1.0], [0.5, 2.0])
    opt = Adagrad([p], lr=lr, lr_decay=decay, initial_accumulator_value=init, eps=eps)
    opt.step()
    s = init + np.array([0.5, 2.0]) ** 2
    w = np.array([1.0, -1.0]) - lr * np.array([0.5, 2.0]) / (np.sqrt(s) + eps)
    np.testing.assert_allclose(p.data, w, rtol=1e-14)
    p.grad = np.array([-1.0, 1.0])
    opt.step()
    s = s + 1.0
    w = w - lr / (1 + decay) * np.array([-1.0, 1.0]) / (np.sqrt(s) + eps)
    np.testing.assert_allclose(p.data, w, rtol=1e-14)


# --- what every optimizer shares ---

MAKERS = {
    "sgd": lambda ps: SGD(ps, lr=0.1),
    "sgd_momentum": lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
    "sgd_nesterov": lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    "adam": lambda ps: Adam(ps, lr=0.01, weight_decay=0.1),
    "adamw": lambda ps: AdamW(ps, lr=0.01),
    "adagrad": lambda ps: Adagrad(ps, lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1),
}


@pytest.mark.parametrize("make", MAKERS.values(), ids=MAKERS.keys())
def test_skips_none_grad_and_frozen_and_updates_in_place(make):
    a, b, c = param([1.0, 2.0], [0.3, 0.4]), param([3.0], None), param([4.0], [1.0])
    c.requires_grad = False
    a_data = a.data
    opt = make([a, b, c])
    opt.step()
    assert a.data is a_data and not np.array_equal(a_data, [1.0, 2.0])   # updated in place
    np.testing.assert_array_equal(b.data, [3.0])
    np.testing.assert_array_equal(c.data, [4.0])
    assert b not in opt.state and c not in opt.state
    np.testing.assert_array_equal(a.grad, [0.3, 0.4])                   # grad untouched
    opt.zero_grad()
    assert a.grad is None and b.grad is None and c.grad is None


@pytest.mark.parametrize("make", MAKERS.values(), ids=MAKERS.keys())
def test_state_dict_round_trip_continues_identically(make, rng):
    shapes = [(3, 2), (2,), (4,)]
    init = [rng.standard_normal(s) for s in shapes]
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(6)]

    def run(params, opt, steps):
        for gs in steps:
            for p, g in zip(params, gs):
                p.grad = g.copy()
            opt.step()

    ps = [Parameter(a.copy()) for a in init]
    opt = make([{"params": ps[:1], "lr": 0.05}, {"params": ps[1:]}])
    run(ps, opt, grads[:3])
    snapshot, data = opt.state_dict(), [p.data.copy() for p in ps]
    run(ps, opt, grads[3:])                                   # the uninterrupted run
    assert all(not hasattr(v, "shape") or not np.shares_memory(v, opt.state[ps[i]][k])
               for i, e in snapshot["state"].items() for k, v in e.items())   # a snapshot, not views

    qs = [Parameter(d) for d in data]
    fresh = make([{"params": qs[:1], "lr": 0.05}, {"params": qs[1:]}])
    fresh.param_groups[1]["lr"] = 123.0                       # overwritten by the loaded hyperparameters
    fresh.load_state_dict(snapshot)
    run(qs, fresh, grads[3:])
    for p, q in zip(ps, qs):
        np.testing.assert_array_equal(p.data, q.data)
    assert [g["params"] for g in snapshot["param_groups"]] == [[0], [1, 2]]


def test_state_dict_layout():
    a, b = param([1.0], [1.0]), param([2.0, 3.0], [1.0, 1.0])
    opt = Adam([a, b], lr=0.1)
    opt.step()
    sd = opt.state_dict()
    assert set(sd["state"]) == {0, 1} and set(sd["state"][1]) == {"step", "exp_avg", "exp_avg_sq"}
    assert sd["state"][1]["step"] == 1 and sd["state"][1]["exp_avg"].shape == (2,)
    assert sd["param_groups"] == [{"lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0,
                                   "params": [0, 1]}]


def test_load_state_dict_mismatch_leaves_optimizer_unchanged():
    a, b = param([1.0], [1.0]), param([2.0, 3.0], [1.0, 1.0])
    opt = Adam([a, b], lr=0.1)
    opt.step()
    sd = opt.state_dict()
    other = Adam([param([0.0]), param([0.0, 0.0, 0.0])], lr=0.5)
    with pytest.raises(ValueError, match=r"state\[1\]\['exp_avg'\]: has shape \(2,\) but its parameter has "
                                         r"shape \(3,\)"):
        other.load_state_dict(sd)
    assert other.state == {} and other.param_groups[0]["lr"] == 0.5
    with pytest.raises(ValueError, match="the state has 1 parameter group"):
        Adam([{"params": [param([0.0])]}, {"params": [param([0.0, 0.0])]}]).load_state_dict(sd)
    with pytest.raises(ValueError, match=r"param_groups\[0\] has 2 parameters in the state but 1"):
        Adam([param([0.0])]).load_state_dict(sd)
    with pytest.raises(ValueError, match="SGD uses"):
        SGD([param([0.0]), param([0.0, 0.0])], lr=0.1).load_state_dict(sd)


def test_param_groups_override_defaults():
    a, b = param([1.0], [1.0]), param([1.0], [1.0])
    opt = SGD([{"params": [a], "weight_decay": 0.0}, {"params": [b], "lr": 0.5}], lr=0.1, weight_decay=1.0)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[1]["weight_decay"] == 1.0
    opt.step()
    np.testing.assert_allclose(a.data, [1.0 - 0.1 * 1.0])
    np.testing.assert_allclose(b.data, [1.0 - 0.5 * (1.0 + 1.0)])
    opt.param_groups[0]["lr"] = 0.0                       # what a schedule does
    opt.step()
    np.testing.assert_allclose(a.data, [0.9])


@pytest.mark.parametrize("bad, exc, match", [
    (lambda ps: SGD(ps, lr=-1.0), ValueError, r"lr: expected a finite number >= 0, got -1.0"),
    (lambda ps: SGD(ps, lr=0.1, nesterov=True), ValueError, "Nesterov momentum needs momentum > 0"),
    (lambda ps: Adam(ps, betas=(0.9, 1.0)), ValueError, r"betas: expected two numbers in \[0, 1\)"),
    (lambda ps: Adam(ps, eps=float("nan")), ValueError, "eps: expected a finite number >= 0, got nan"),
    (lambda ps: Adagrad(ps, lr_decay=-0.1), ValueError, "lr_decay"),
    (lambda ps: SGD([{"params": ps, "lr": -2}], lr=0.1), ValueError, r"param_groups\[0\]\.lr: .* got -2"),
    (lambda ps: SGD([{"params": ps, "weight_decy": 0.0}], lr=0.1), ValueError,
     r"unknown hyperparameter\(s\) \['weight_decy'\]"),
    (lambda ps: SGD(ps + ps, lr=0.1), ValueError, r"\['params'\]\[1\]: this parameter already appears"),
    (lambda ps: SGD([{"params": ps}, {"params": ps}], lr=0.1), ValueError, r"param_groups\[1\]\['params'\]\[0\]"),
    (lambda ps: SGD([], lr=0.1), ValueError, "empty parameter list"),
    (lambda ps: SGD(tinylm.nn.Linear(2, 2), lr=0.1), TypeError, r"got Linear \(pass model.parameters\(\)\)"),
    (lambda ps: SGD(ps[0], lr=0.1), TypeError, "got Parameter"),
    (lambda ps: SGD([np.zeros(2)], lr=0.1), TypeError, r"\['params'\]\[0\]: expected a tinylm Parameter, got ndarray"),
    (lambda ps: SGD(ps, lr=0.1, momentum=1.5), ValueError, r"momentum: expected a number in \[0, 1\], got 1.5"),
    (lambda ps: SGD(ps, lr=0.1, dampening=2.0), ValueError, r"dampening: expected a number in \[0, 1\], got 2.0"),
    (lambda ps: SGD(ps, lr=0.1, momentum=-0.5), ValueError, r"momentum: expected a finite number >= 0, got -0.5"),
    (lambda ps: SGD(ps, lr=np.float64(-1.0)), ValueError, r"lr: expected a finite number >= 0"),
    (lambda ps: SGD(ps, lr=True), ValueError, r"lr: expected a finite number >= 0, got True"),
])
def test_bad_arguments(bad, exc, match):
    with pytest.raises(exc, match=match):
        bad([param([1.0], [1.0])])


def test_numpy_hyperparameters_are_accepted():
    p = param([1.0], [1.0])
    opt = SGD([p], lr=np.float32(0.5), momentum=np.float64(0.9))
    opt.step()
    np.testing.assert_allclose(p.data, [0.5])


def test_step_rechecks_a_group_changed_by_hand():
    p = param([1.0], [1.0])
    opt = SGD([p], lr=0.1)
    opt.param_groups[0]["lr"] = -5
    with pytest.raises(ValueError, match=r"param_groups\[0\]\.lr: expected a finite number >= 0, got -5"):
        opt.step()
    np.testing.assert_array_equal(p.data, [1.0])             # nothing was updated


def test_grad_that_does_not_match_the_parameter_is_an_error():
    a, b = param([1.0], [1.0]), param([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['params'\]\[1\]: grad is float64\(1,\) but the "
                                         r"parameter is float64\(2,\)"):
        SGD([a, b], lr=0.1).step()
    b.grad = np.ones(2, np.float32)
    with pytest.raises(TypeError, match=r"grad is float32\(2,\)"):
        SGD([b], lr=0.1).step()


@given(shape=st.lists(st.integers(1, 4), min_size=0, max_size=3), dtype=st.sampled_from([np.float32, np.float64]),
       name=st.sampled_from(sorted(MAKERS)))
def test_dtype_and_shape_preserved_and_zero_lr_changes_nothing(shape, dtype, name):
    rng = np.random.default_rng(0)
    p = Parameter(np.asarray(rng.standard_normal(shape), dtype=dtype))
    p.grad = np.asarray(rng.standard_normal(shape), dtype=dtype)
    before = p.data.copy()
    opt = MAKERS[name]([p])
    opt.step()
    assert p.data.dtype == dtype and p.data.shape == tuple(shape) and not np.array_equal(p.data, before)
    assert all(v.dtype == dtype and v.shape == tuple(shape) for v in opt.state[p].values() if hasattr(v, "dtype"))
    for g in opt.param_groups:
        g["lr"] = 0.0                                    # AdamW's decay is lr * wd: off too
    after_one = p.data.copy()
    opt.step()
    np.testing.assert_array_equal(p.data, after_one)


@given(g=st.lists(st.floats(-1e3, 1e3).filter(lambda x: abs(x) > 1e-3), min_size=1, max_size=6))
def test_adam_first_step_moves_each_coordinate_by_lr(g):
    # bias correction makes the first step lr * g / (|g| + eps): size lr whatever the gradient scale
    p = param(np.zeros(len(g)), g)
    Adam([p], lr=0.01).step()
    assert np.all(np.abs(p.data) <= 0.01) and np.all(np.abs(p.data) >= 0.01 * (1 - 1e-5))   # eps / |g| <= 1e-5
    np.testing.assert_array_equal(np.sign(p.data), -np.sign(g))


# --- clipping ---

def test_clip_grad_norm_scales_to_max_norm(rng):
    ps = [param(np.zeros(s), rng.standard_normal(s)) for s in [(3, 2), (4,)]]
    ps.append(param([0.0]))                               # no grad: skipped
    flat = np.concatenate([p.grad.ravel() for p in ps[:2]])
    total = clip_grad_norm_(ps, 0.5)
    assert float(total) == pytest.approx(np.linalg.norm(flat), rel=1e-14)
    clipped = np.concatenate([p.grad.ravel() for p in ps[:2]])
    np.testing.assert_allclose(clipped, flat * 0.5 / (np.linalg.norm(flat) + 1e-6), rtol=1e-14)
    assert ps[2].grad is None


@pytest.mark.parametrize("norm_type, ref", [(1.0, lambda v: np.abs(v).sum()), (math.inf, lambda v: np.abs(v).max()),
                                            (3.0, lambda v: (np.abs(v) ** 3).sum() ** (1 / 3))])
def test_clip_grad_norm_other_norms(rng, norm_type, ref):
    ps = [param(np.zeros(s), rng.standard_normal(s)) for s in [(3, 2), (4,)]]
    flat = np.concatenate([p.grad.ravel() for p in ps])
    total = clip_grad_norm_(ps, 0.1, norm_type=norm_type)
    assert float(total) == pytest.approx(ref(flat), rel=1e-12)
    after = np.concatenate([p.grad.ravel() for p in ps])
    assert ref(after) == pytest.approx(0.1 * ref(flat) / (ref(flat) + 1e-6), rel=1e-12)


def test_clip_grad_norm_below_threshold_is_a_no_op_and_float32_stays_float32(rng):
    p = Parameter(np.zeros(5, np.float32))
    p.grad = rng.standard_normal(5).astype(np.float32)
    g = p.grad.copy()
    total = clip_grad_norm_([p], 1e3)
    np.testing.assert_array_equal(p.grad, g)
    assert p.grad.dtype == np.float32 and np.asarray(total).dtype == np.float32
    assert clip_grad_norm_([param([1.0])], 1.0) == 0.0   # nothing to clip


def test_clip_grad_norm_nonfinite():
    p = param([1.0, 2.0], [np.inf, 1.0])
    with pytest.raises(RuntimeError, match="total gradient norm is inf"):
        clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(p.grad, [np.inf, 1.0])
    with pytest.raises(ValueError, match="norm_type: expected a number > 0"):
        clip_grad_norm_([p], 1.0, norm_type=0)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm_([p], -1.0)


@given(scale=st.floats(1e-3, 1e3), max_norm=st.floats(1e-3, 10.0))
def test_clip_grad_norm_never_exceeds_max_norm(scale, max_norm):
    rng = np.random.default_rng(0)
    ps = [param(np.zeros(s), scale * rng.standard_normal(s)) for s in [(2, 3), (3,)]]
    clip_grad_norm_(ps, max_norm)
    assert np.sqrt(sum(np.sum(p.grad**2) for p in ps)) <= max_norm * (1 + 1e-12)


def test_clip_grad_value():
    p = param([0.0, 0.0, 0.0], [-3.0, 0.5, 2.0])
    clip_grad_value_([p], 1.0)
    np.testing.assert_array_equal(p.grad, [-1.0, 0.5, 1.0])


# --- penalties ---

@pytest.mark.parametrize("value, backward, expected", [
    (l2_penalty, l2_penalty_backward, lambda ws, lam: 0.5 * lam * sum(np.sum(w**2) for w in ws)),
    (l1_penalty, l1_penalty_backward, lambda ws, lam: lam * sum(np.sum(np.abs(w)) for w in ws)),
])
def test_penalty_value_and_gradient_by_finite_differences(rng, value, backward, expected):
    ps = [Parameter(rng.standard_normal(s)) for s in [(3, 2), (4,)]]
    for p in ps:   # keep away from 0, where |w| has no derivative
        p.data = np.where(np.abs(p.data) < 0.1, 0.5, p.data)
    assert value(ps, 0.3) == pytest.approx(expected([p.data for p in ps], 0.3), rel=1e-14)
    backward(ps, 0.3)
    for p in ps:
        err = rel_error(p.grad, numerical_grad(lambda: value(ps, 0.3), p.data))
        assert err < 1e-7, err


def test_penalty_backward_accumulates_skips_frozen_and_l1_subgradient_is_zero_at_zero():
    a, b = param([2.0, 0.0], [1.0, 1.0]), param([3.0])
    b.requires_grad = False
    l2_penalty_backward([a, b], 0.5)
    np.testing.assert_array_equal(a.grad, [1.0 + 0.5 * 2.0, 1.0])
    assert b.grad is None
    l1_penalty_backward([a], 0.25)
    np.testing.assert_array_equal(a.grad, [2.0 + 0.25, 1.0])   # sign(0) = 0
    with pytest.raises(TypeError, match=r"params\[0\]: expected a tinylm Parameter, got ndarray"):
        l2_penalty([np.zeros(2)], 0.1)


def test_sgd_weight_decay_equals_l2_penalty_but_adam_weight_decay_is_not_adamw(rng):
    w, g = rng.standard_normal(4), rng.standard_normal(4)
    results = {}
    for name, make, penalty in [
        ("sgd_decay", lambda ps: SGD(ps, lr=0.1, weight_decay=0.2), False),
        ("sgd_penalty", lambda ps: SGD(ps, lr=0.1), True),
        ("adam_penalty", lambda ps: Adam(ps, lr=0.1), True),
        ("adam_decay", lambda ps: Adam(ps, lr=0.1, weight_decay=0.2), False),
        ("adamw", lambda ps: AdamW(ps, lr=0.1, weight_decay=0.2), False),
    ]:
        p = param(w.copy(), g.copy())
        if penalty:
            l2_penalty_backward([p], 0.2)
        make([p]).step()
        results[name] = p.data
    np.testing.assert_array_equal(results["sgd_decay"], results["sgd_penalty"])
    np.testing.assert_array_equal(results["adam_decay"], results["adam_penalty"])
    assert np.abs(results["adam_decay"] - results["adamw"]).max() > 1e-3


# --- NaN guard ---

def test_check_finite():
    assert check_finite(np.float32(1.5), 3) == 1.5
    assert check_finite(np.array(2.0), 4) == 2.0
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at step 137; .*learning rate") as info:
        check_finite(np.array(np.nan), 137)
    assert info.value.step == 137 and math.isnan(info.value.loss)
    with pytest.raises(NonFiniteLossError, match="loss is -inf at step 2"):
        check_finite(-math.inf, 2)
    with pytest.raises(TypeError, match="loss: expected a scalar, got ndarray of size 2"):
        check_finite(np.zeros(2), 0)
    with pytest.raises(TypeError, match=r"loss: expected a real number or a one-element array, got None"):
        check_finite(None, 0)
    with pytest.raises(TypeError, match=r"loss: expected a real number, got an array of dtype <U1"):
        check_finite(np.array("x"), 0)
    with pytest.raises(TypeError, match=r"step: expected an int, got 1.5"):
        check_finite(1.0, 1.5)
    assert check_finite(1.0, np.int64(3)) == 1.0
    assert issubclass(NonFiniteLossError, FloatingPointError)


def test_weight_decay_groups_split_matrices_from_vectors():
    from tinylm.models.gpt import GPT, GPTConfig
    from tinylm.optim import weight_decay_groups

    model = GPT(GPTConfig(vocab_size=7, block_size=4, n_layer=1, n_head=2, n_embd=4))
    decay, no_decay = weight_decay_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    named = dict(model.named_parameters())
    matrices = ("wte.weight", "wpe.weight", "c_attn.weight", "c_proj.weight", "c_fc.weight")
    assert {id(p) for p in decay["params"]} == {id(p) for n, p in named.items() if n.endswith(matrices)}
    assert {id(p) for p in no_decay["params"]} == {id(p) for n, p in named.items()
                                                    if n.endswith(".bias") or ".ln_" in n}
    assert len(decay["params"]) + len(no_decay["params"]) == len(named)   # tied wte counted once


@pytest.mark.parametrize("bad, exc, match", [
    (lambda m, ps: weight_decay_groups(None, 0.1), TypeError, r"model: expected a tinylm Module .*got NoneType"),
    (lambda m, ps: weight_decay_groups(ps, 0.1), TypeError, r"model: expected a tinylm Module .*got list"),
    (lambda m, ps: weight_decay_groups(m, -0.1), ValueError, r"weight_decay: expected a finite number >= 0, got -0.1"),
    (lambda m, ps: weight_decay_groups(m, "x"), ValueError, r"weight_decay: expected a finite number >= 0, got 'x'"),
    (lambda m, ps: clip_grad_norm_(m, 1.0), TypeError,
     r"params: expected a Parameter or an iterable of Parameters, got a Linear module \(pass model.parameters\(\)\)"),
    (lambda m, ps: clip_grad_norm_(None, 1.0), TypeError,
     r"params: expected a Parameter or an iterable .*got NoneType"),
    (lambda m, ps: clip_grad_value_(m, 1.0), TypeError, r"pass model.parameters\(\)"),
    (lambda m, ps: l2_penalty(m, 0.1), TypeError, r"params: .*got a Linear module \(pass model.parameters\(\)\)"),
    (lambda m, ps: l1_penalty_backward(None, 0.1), TypeError, r"params: .*got NoneType"),
    (lambda m, ps: l2_penalty([ps[0], "w"], 0.1), TypeError, r"params\[1\]: expected a tinylm Parameter, got str"),
])
def test_helpers_bad_arguments(bad, exc, match):
    m = tinylm.nn.Linear(2, 3)
    with pytest.raises(exc, match=match):
        bad(m, list(m.parameters()))


def test_helpers_accept_parameters_and_numpy_weights():
    m = tinylm.nn.Linear(2, 3)
    assert l2_penalty(m.parameters(), np.float32(0.5)) > 0
    decay, no_decay = weight_decay_groups(m, np.float64(0.1))
    assert decay["weight_decay"] == 0.1 and len(decay["params"]) == 1 and len(no_decay["params"]) == 1
