"""Cross-checks against PyTorch (and Hugging Face schedules): optimizers step for step in float64,
schedules, clipping, and bf16 safetensors written by torch.

Run: PYTHONPATH=/work/main /work/torchenv/bin/python -m pytest tests/test_torch_optim.py -p no:cacheprovider
"""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tinylm.io import load, save  # noqa: E402
from tinylm.nn.module import Parameter  # noqa: E402
from tinylm.optim import (SGD, Adagrad, Adam, AdamW, CosineWithWarmup, LinearDecay, StepLR,  # noqa: E402
                          clip_grad_norm_)

pytestmark = pytest.mark.torch

SHAPES = [(3, 4), (4,), (2, 2, 3)]
STEPS = 7

CASES = [
    (SGD, torch.optim.SGD, dict(lr=0.1)),
    (SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9)),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    (Adam, torch.optim.Adam, dict(lr=0.01)),
    (Adam, torch.optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    (AdamW, torch.optim.AdamW, dict(lr=0.01)),
    (AdamW, torch.optim.AdamW, dict(lr=0.02, betas=(0.85, 0.98), weight_decay=0.3)),
    (Adagrad, torch.optim.Adagrad, dict(lr=0.1)),
    (Adagrad, torch.optim.Adagrad, dict(lr=0.1, lr_decay=0.01, weight_decay=0.05,
                                        initial_accumulator_value=0.1, eps=1e-8)),
]


def _assert_close(ours, theirs, what):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    err = np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1.0)
    assert err <= 1e-12, f"{what}: relative difference {err:.1e}"


@pytest.mark.parametrize("ours_cls, torch_cls, kwargs", CASES, ids=lambda v: getattr(v, "__name__", str(v)))
@pytest.mark.parametrize("grouped", [False, True], ids=["one_group", "two_groups"])
def test_optimizer_matches_torch(ours_cls, torch_cls, kwargs, grouped):
    rng = np.random.default_rng(0)
    init = [rng.standard_normal(s) for s in SHAPES]
    ours = [Parameter(a.copy()) for a in init]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    if grouped:   # a no-decay group with its own learning rate, as in GPT training
        group = lambda ps, **kw: [{"params": ps[:1], "lr": kwargs["lr"] * 3, "weight_decay": 0.0, **kw},
                                  {"params": ps[1:]}]
        opt, topt = ours_cls(group(ours), **kwargs), torch_cls(group(theirs), **kwargs)
    else:
        opt, topt = ours_cls(ours, **kwargs), torch_cls(theirs, **kwargs)
    for t in range(STEPS):
        for k, (p, q) in enumerate(zip(ours, theirs)):
            if t == 2 and k == 2:          # a parameter without a gradient this step is skipped
                p.grad, q.grad = None, None
                continue
            g = rng.standard_normal(SHAPES[k])
            p.grad, q.grad = g.copy(), torch.tensor(g)
        if t == 4:                         # a schedule changing lr mid-run
            for group, tgroup in zip(opt.param_groups, topt.param_groups):
                group["lr"] = tgroup["lr"] = group["lr"] * 0.5
        opt.step()
        topt.step()
        for k, (p, q) in enumerate(zip(ours, theirs)):
            _assert_close(p.data, q, f"step {t} param {k}")
    for p, q in zip(ours, theirs):
        for key, value in opt.state[p].items():
            if hasattr(value, "shape"):
                _assert_close(value, topt.state[q][key], f"state {key}")
            else:
                assert value == int(topt.state[q][key]), key


def _torch_lrs(make_sched, steps, base_lrs=(0.5, 0.1)):
    params = [torch.zeros(1, requires_grad=True) for _ in base_lrs]
    opt = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, base_lrs)], lr=1.0)
    sched = make_sched(opt)
    out = []
    for _ in range(steps):
        out.append(sched.get_last_lr())
        opt.step()
        sched.step()
    return np.array(out)


def _our_lrs(make_sched, steps, base_lrs=(0.5, 0.1)):
    opt = SGD([{"params": [Parameter(np.zeros(1))], "lr": lr} for lr in base_lrs], lr=1.0)
    sched = make_sched(opt)
    out = []
    for _ in range(steps):
        out.append(sched.get_last_lr())
        assert out[-1] == [g["lr"] for g in opt.param_groups]
        sched.step()
    return np.array(out)


def test_step_lr_matches_torch():
    ours = _our_lrs(lambda o: StepLR(o, step_size=3, gamma=0.5), 20)
    theirs = _torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5), 20)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_cosine_with_warmup_matches_hugging_face():
    from transformers.optimization import (get_cosine_schedule_with_warmup,
                                           get_cosine_with_min_lr_schedule_with_warmup)
    # up to total_steps (inclusive): past it HF's cosine rises again, ours holds min_lr
    ours = _our_lrs(lambda o: CosineWithWarmup(o, warmup_steps=5, total_steps=30), 31)
    theirs = _torch_lrs(lambda o: get_cosine_schedule_with_warmup(o, 5, 30), 31)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)
    # min_lr: ours is absolute, HF's a ratio of the base rate; with one group they agree
    ours = _our_lrs(lambda o: CosineWithWarmup(o, warmup_steps=5, total_steps=30, min_lr=0.05), 31, (0.5,))
    theirs = _torch_lrs(lambda o: get_cosine_with_min_lr_schedule_with_warmup(o, 5, 30, min_lr_rate=0.1), 31, (0.5,))
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_linear_decay_matches_hugging_face_and_torch():
    from transformers.optimization import get_linear_schedule_with_warmup
    ours = _our_lrs(lambda o: LinearDecay(o, total_steps=25, warmup_steps=4), 30)
    theirs = _torch_lrs(lambda o: get_linear_schedule_with_warmup(o, 4, 25), 30)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)
    # no warm-up, end_factor: torch's LinearLR(start_factor=1, end_factor, total_iters)
    ours = _our_lrs(lambda o: LinearDecay(o, total_steps=10, end_factor=0.2), 14)
    theirs = _torch_lrs(lambda o: torch.optim.lr_scheduler.LinearLR(o, 1.0, 0.2, total_iters=10), 14)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal(s) for s in SHAPES]
    ours = [Parameter(np.zeros(s)) for s in SHAPES]
    theirs = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in SHAPES]
    for p, q, g in zip(ours, theirs, grads):
        p.grad, q.grad = g.copy(), torch.tensor(g)
    total = clip_grad_norm_(ours, max_norm, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert float(total) == pytest.approx(float(ttotal), rel=1e-12)
    for p, q in zip(ours, theirs):
        _assert_close(p.grad, q.grad, "clipped grad")


def test_bf16_checkpoint_written_by_torch_loads_as_float32(tmp_path):
    from safetensors.torch import load_file, save_file
    w = torch.randn(3, 5, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    save_file({"w": w, "ids": torch.arange(4)}, str(tmp_path / "hf.safetensors"))
    got = load(tmp_path / "hf.safetensors")
    assert got["w"].dtype == np.float32 and got["ids"].dtype == np.int64
    np.testing.assert_array_equal(got["w"], w.float().numpy())     # bf16 -> f32 is exact
    # and the other way: torch reads what we write
    save(tmp_path / "ours.safetensors", {"w": got["w"], "h": np.float16([1.5, -2])})
    back = load_file(str(tmp_path / "ours.safetensors"))
    assert back["h"].dtype == torch.float16
    np.testing.assert_array_equal(back["w"].numpy(), got["w"])
