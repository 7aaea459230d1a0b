"""Learning-rate schedules: values at the key steps (from the formulas), what step() writes into
the optimizer, state_dict round trips, bad arguments, and shape properties. The comparison
with PyTorch / Hugging Face schedules is in tests/test_torch_optim.py."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinylm.nn.module import Parameter
from tinylm.optim import SGD, AdamW, CosineWithWarmup, LinearDecay, StepLR


def make_opt(*lrs):
    return SGD([{"params": [Parameter(np.zeros(1))], "lr": lr} for lr in lrs], lr=1.0)


def test_step_lr_values():
    s = StepLR(make_opt(1.0), step_size=3, gamma=0.5)
    assert [s.lr_at(k)[0] for k in (0, 2, 3, 5, 6, 9)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.125]


def test_cosine_with_warmup_key_steps():
    s = CosineWithWarmup(make_opt(1.0), warmup_steps=10, total_steps=110, min_lr=0.1)
    lr = lambda k: s.lr_at(k)[0]
    assert lr(0) == 0.0 and lr(5) == pytest.approx(0.5) and lr(10) == pytest.approx(1.0)   # linear warm-up from 0
    assert lr(60) == pytest.approx(0.55)                          # halfway through the cosine: (max + min) / 2
    assert lr(35) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2)
    assert lr(110) == pytest.approx(0.1) and lr(500) == 0.1       # then min_lr for good


def test_linear_decay_key_steps():
    s = LinearDecay(make_opt(2.0), total_steps=12, warmup_steps=4, end_factor=0.25)
    lr = lambda k: s.lr_at(k)[0]
    assert [lr(0), lr(2), lr(4)] == [0.0, 1.0, 2.0]
    assert lr(8) == pytest.approx(2.0 * (0.25 + 0.75 * 0.5))
    assert lr(12) == pytest.approx(0.5) and lr(40) == 0.5
    plain = LinearDecay(make_opt(1.0), total_steps=4)          # no warm-up: starts at the base rate, ends at 0
    assert [plain.lr_at(k)[0] for k in range(6)] == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]


def test_step_writes_every_group_and_get_last_lr():
    opt = make_opt(1.0, 0.1)
    s = CosineWithWarmup(opt, warmup_steps=2, total_steps=6)
    assert [g["lr"] for g in opt.param_groups] == [0.0, 0.0] == s.get_last_lr()     # constructing applies step 0
    s.step()
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.05] == s.get_last_lr()
    assert s.last_step == 1 and [g["initial_lr"] for g in opt.param_groups] == [1.0, 0.1]
    assert s.lr_at(4) == [pytest.approx(0.5), pytest.approx(0.05)] and s.last_step == 1   # lr_at is pure


def test_state_dict_round_trip_and_fresh_schedule_on_loaded_optimizer():
    opt = AdamW([Parameter(np.zeros(2))], lr=3e-3)
    s = CosineWithWarmup(opt, warmup_steps=3, total_steps=20, min_lr=1e-4)
    for _ in range(7):
        s.step()
    state, opt_state = s.state_dict(), opt.state_dict()
    expected = [s.lr_at(k) for k in range(8, 12)]

    opt2 = AdamW([Parameter(np.zeros(2))], lr=3e-3)
    opt2.load_state_dict(opt_state)                    # its lr is the scheduled one; initial_lr the base
    s2 = CosineWithWarmup(opt2, warmup_steps=3, total_steps=20, min_lr=1e-4)
    assert s2.base_lrs == [3e-3]
    s2.load_state_dict(state)
    assert s2.get_last_lr() == s.get_last_lr() and opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    got = []
    for _ in range(4):
        s2.step()
        got.append(s2.get_last_lr())
    assert got == expected


@pytest.mark.parametrize("bad, exc, match", [
    (lambda o: StepLR(o, step_size=0), ValueError, "step_size: expected a positive int, got 0"),
    (lambda o: StepLR(o, step_size=2, gamma=-0.5), ValueError, "gamma"),
    (lambda o: CosineWithWarmup(o, warmup_steps=10, total_steps=5), ValueError,
     "warmup_steps: expected at most total_steps=5, got 10"),
    (lambda o: CosineWithWarmup(o, warmup_steps=-1, total_steps=5), ValueError, r"warmup_steps: expected an int >= 0"),
    (lambda o: LinearDecay(o, total_steps=2.5), ValueError, "total_steps: expected a positive int, got 2.5"),
    (lambda o: StepLR(o, 2).lr_at(-1), ValueError, r"step: expected an int >= 0, got -1"),
    (lambda o: StepLR(object(), 2), TypeError, "optimizer: expected a tinylm optimizer"),
    (lambda o: StepLR(o, 2).load_state_dict({"last_step": 1}), TypeError, "keys 'last_step' and 'base_lrs'"),
    (lambda o: StepLR(o, 2).load_state_dict({"last_step": 1, "base_lrs": [1.0, 2.0]}), ValueError,
     "2 base learning rates, the optimizer has 1 parameter groups"),
    (lambda o: CosineWithWarmup(o, 1, 5, min_lr=2.0), ValueError,
     r"min_lr: expected at most every group's base lr, got 2.0 > param_groups\[0\] lr 1.0"),
    (lambda o: LinearDecay(o, 5, end_factor=3.0), ValueError, r"end_factor: expected a number in \[0, 1\] .*got 3.0"),
])
def test_bad_arguments(bad, exc, match):
    with pytest.raises(exc, match=match):
        bad(make_opt(1.0))


@given(warmup=st.integers(0, 20), extra=st.integers(1, 50), base=st.floats(1e-5, 1.0), min_frac=st.floats(0, 1))
def test_cosine_shape(warmup, extra, base, min_frac):
    total, min_lr = warmup + extra, base * min_frac
    s = CosineWithWarmup(make_opt(base), warmup_steps=warmup, total_steps=total, min_lr=min_lr)
    lrs = np.array([s.lr_at(k)[0] for k in range(total + 5)])
    assert np.all(np.diff(lrs[:warmup + 1]) > 0)                      # rises during warm-up ...
    assert np.all(np.diff(lrs[warmup:]) <= 1e-15 * base)               # ... never rises after it
    assert lrs[warmup] == pytest.approx(base) and lrs[total] == pytest.approx(min_lr, abs=1e-15)
    assert np.all(lrs[warmup:] >= min_lr - 1e-15) and np.all(lrs <= base * (1 + 1e-15))


@given(warmup=st.integers(0, 10), extra=st.integers(1, 30), end=st.floats(0, 1))
def test_linear_decay_is_piecewise_linear(warmup, extra, end):
    total = warmup + extra
    s = LinearDecay(make_opt(1.0), total_steps=total, warmup_steps=warmup, end_factor=end)
    lrs = np.array([s.lr_at(k)[0] for k in range(total + 3)])
    for part in (lrs[:warmup + 1], lrs[warmup:total + 1]):            # constant slope on each piece
        if len(part) > 2:
            np.testing.assert_allclose(np.diff(part, 2), 0, atol=1e-12)
    assert lrs[total] == pytest.approx(end) and np.all(lrs[total:] == lrs[total])
