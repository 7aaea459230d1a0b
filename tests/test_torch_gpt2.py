"""Cross-check GPT against Hugging Face transformers' GPT2LMHeadModel (optional: skips without them).

Run with an environment that has torch and transformers, e.g.
``python -m pytest tests/test_torch_gpt2.py``.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tinylm.models.gpt import GPT, GPTConfig  # noqa: E402
from tinylm.nn.loss import CrossEntropyLoss  # noqa: E402

pytestmark = pytest.mark.torch

CONV1D = ("c_attn.weight", "c_proj.weight", "c_fc.weight")


def hf_model(seed=0):
    torch.manual_seed(seed)
    cfg = transformers.GPT2Config(vocab_size=37, n_positions=16, n_embd=24, n_layer=2, n_head=3,
                                  resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    m = transformers.GPT2LMHeadModel(cfg).double().eval()
    with torch.no_grad():                      # random LayerNorm/bias values, so nothing is trivially 0/1
        for name, p in m.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                p.add_(0.1 * torch.randn_like(p))
    return m


def test_hf_checkpoint_loads_and_matches_logits_loss_and_every_gradient(tmp_path):
    hf = hf_model()
    hf.save_pretrained(tmp_path, safe_serialization=True)
    ours = GPT.from_pretrained(tmp_path, dtype=np.float64)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 37, size=(2, 9))
    targets = rng.integers(0, 37, size=(2, 9))

    out = hf(torch.from_numpy(idx))
    ref_logits = out.logits
    ref_loss = torch.nn.functional.cross_entropy(ref_logits.reshape(-1, 37), torch.from_numpy(targets).reshape(-1))
    ref_loss.backward()

    logits = ours(idx)
    crit = CrossEntropyLoss()
    loss = crit(logits, targets)
    ours.zero_grad()
    ours.backward(crit.backward())

    np.testing.assert_allclose(logits, ref_logits.detach().numpy(), rtol=1e-10, atol=1e-10)
    assert abs(loss - ref_loss.item()) < 1e-10
    ours_params = dict(ours.named_parameters())
    for name, p in hf.named_parameters():
        if name == "lm_head.weight":           # tied: the same tensor as wte
            continue
        g = p.grad.numpy()
        g = g.T if name.endswith(CONV1D) else g
        np.testing.assert_allclose(ours_params[name].grad, g, rtol=1e-9, atol=1e-11, err_msg=name)


def test_save_pretrained_loads_in_transformers(tmp_path):
    ours = GPT(GPTConfig(vocab_size=29, block_size=12, n_layer=2, n_head=2, n_embd=16)).double()
    ours.save_pretrained(tmp_path)
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path, torch_dtype=torch.float64).eval()
    idx = np.random.default_rng(1).integers(0, 29, size=(3, 12))
    with torch.no_grad():
        ref = hf(torch.from_numpy(idx)).logits.numpy()
    np.testing.assert_allclose(ours(idx), ref, rtol=1e-10, atol=1e-10)


def test_greedy_generation_matches_transformers(tmp_path):
    hf = hf_model(seed=1)
    hf.save_pretrained(tmp_path, safe_serialization=True)
    ours = GPT.from_pretrained(tmp_path, dtype=np.float64)
    idx = np.array([[1, 5, 7]])
    ref = hf.generate(torch.from_numpy(idx), max_new_tokens=8, do_sample=False, pad_token_id=0).numpy()
    np.testing.assert_array_equal(ours.generate(idx, 8), ref)
