"""Training throughput of the tiny GPT: tinylm (each available backend) beside PyTorch CPU eager.

    python examples/bench_gpt.py                      # README's config: 4 layers, 4 heads, 128 wide
    python examples/bench_gpt.py --block-size 128 --batch-size 16 --steps 30

Both sides train the same architecture (GPT-2 blocks, tied head, AdamW, float32) on random
token batches for ``--steps`` steps after ``--warmup`` untimed ones, in this process, one after
the other; the table gives tokens/s and the ratio to PyTorch measured in the same run. PyTorch is
optional (``pip install torch``); without it only tinylm's rows are printed.
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

import tinylm
from tinylm.models.gpt import GPT, GPTConfig
from tinylm.nn.loss import CrossEntropyLoss
from tinylm.optim import AdamW


def bench_tinylm(cfg: GPTConfig, batch: int, steps: int, warmup: int, backend: str) -> float:
    with tinylm.use_backend(backend) as b:
        tinylm.manual_seed(0)
        model, crit = GPT(cfg), CrossEntropyLoss()
        opt = AdamW(model.parameters(), lr=1e-3)
        rng = np.random.default_rng(0)
        t0 = 0.0
        for i in range(warmup + steps):
            if i == warmup:
                t0 = time.perf_counter()
            x = b.asarray(rng.integers(0, cfg.vocab_size, (batch, cfg.block_size)))
            loss = crit(model(x), x)
            model.zero_grad()
            model.backward(crit.backward())
            opt.step()
        assert np.isfinite(loss)
        return steps * batch * cfg.block_size / (time.perf_counter() - t0)


def bench_torch(cfg: GPTConfig, batch: int, steps: int, warmup: int) -> float | None:
    try:
        import torch
        import torch.nn as tnn
        import torch.nn.functional as F
    except ImportError:
        return None

    class Block(tnn.Module):
        def __init__(self):
            super().__init__()
            C = cfg.n_embd
            self.ln_1, self.ln_2 = tnn.LayerNorm(C), tnn.LayerNorm(C)
            self.c_attn, self.c_proj = tnn.Linear(C, 3 * C), tnn.Linear(C, C)
            self.c_fc, self.mlp_proj = tnn.Linear(C, 4 * C), tnn.Linear(4 * C, C)

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
            q, k, v = (t.view(B, T, cfg.n_head, -1).transpose(1, 2) for t in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
            x = x + self.c_proj(y)
            return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))

    class TorchGPT(tnn.Module):
        def __init__(self):
            super().__init__()
            self.wte = tnn.Embedding(cfg.vocab_size, cfg.n_embd)
            self.wpe = tnn.Embedding(cfg.block_size, cfg.n_embd)
            self.h = tnn.ModuleList(Block() for _ in range(cfg.n_layer))
            self.ln_f = tnn.LayerNorm(cfg.n_embd)

        def forward(self, idx):
            x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
            for blk in self.h:
                x = blk(x)
            return self.ln_f(x) @ self.wte.weight.T

    torch.manual_seed(0)
    model = TorchGPT()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    t0 = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            t0 = time.perf_counter()
        x = torch.randint(0, cfg.vocab_size, (batch, cfg.block_size), generator=gen)
        loss = F.cross_entropy(model(x).view(-1, cfg.vocab_size), x.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps * batch * cfg.block_size / (time.perf_counter() - t0)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--vocab-size", type=int, default=65)
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=128)
    p.add_argument("--block-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=12)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--backends", default="numpy,numba")
    a = p.parse_args(argv)
    cfg = GPTConfig(vocab_size=a.vocab_size, block_size=a.block_size, n_layer=a.n_layer, n_head=a.n_head,
                    n_embd=a.n_embd)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs | "
          f"GPT {a.n_layer}L/{a.n_head}H/{a.n_embd}C, block {a.block_size}, batch {a.batch_size}, float32")
    ref = bench_torch(cfg, a.batch_size, a.steps, a.warmup)
    rows = [("pytorch eager", ref)] if ref else []
    for name in a.backends.split(","):
        try:
            rows.append((f"tinylm {name}", bench_tinylm(cfg, a.batch_size, a.steps, a.warmup, name)))
        except tinylm.BackendUnavailableError as e:
            print(f"tinylm {name}: skipped ({e})")
    print(f"{'implementation':<16} {'tokens/s':>10} {'vs pytorch':>11}")
    for name, tps in rows:
        print(f"{name:<16} {tps:>10,.0f} {tps / ref if ref else float('nan'):>10.2f}x")


if __name__ == "__main__":
    main()
