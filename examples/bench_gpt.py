"""Training throughput of the tiny GPT: tinylm (each available backend) beside PyTorch CPU eager.

    python examples/bench_gpt.py                      # README's config: 4 layers, 4 heads, 128 wide
    python examples/bench_gpt.py --block-size 128 --batch-size 16 --steps 30

Both sides train the same architecture (GPT-2 blocks, tied head, AdamW, float32) on random
token batches for ``--steps`` steps after ``--warmup`` untimed ones, in this process, one after
the other; the table gives tokens/s and the ratio to PyTorch measured in the same run. The models
and loops are tinylm.bench's (``python -m tinylm.bench`` adds the kernel benchmarks). PyTorch is
optional (``pip install torch``); without it only tinylm's rows are printed.
"""
from __future__ import annotations

import argparse
import os
import platform

import tinylm
from tinylm.bench import bench_gpt_tinylm, bench_gpt_torch
from tinylm.models.gpt import GPTConfig


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
    ref = bench_gpt_torch(cfg, a.batch_size, a.steps, a.warmup)
    rows = [("pytorch eager", ref)] if ref else []
    for name in a.backends.split(","):
        try:
            rows.append((f"tinylm {name}", bench_gpt_tinylm(cfg, a.batch_size, a.steps, a.warmup, name)))
        except tinylm.BackendUnavailableError as e:
            print(f"tinylm {name}: skipped ({e})")
    print(f"{'implementation':<16} {'tokens/s':>10} {'vs pytorch':>11}")
    for name, tps in rows:
        print(f"{name:<16} {tps:>10,.0f} {tps / ref if ref else float('nan'):>10.2f}x")


if __name__ == "__main__":
    main()
