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
from tinylm.scripting import ScriptError, nonnegative_int, positive_int, script_main


def backend_list(text: str) -> list[str]:
    """argparse type: comma-separated backend names."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in tinylm.backend.BACKEND_NAMES]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(tinylm.backend.BACKEND_NAMES)}"
                                         f", got {text!r}")
    return names


@script_main
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--vocab-size", type=positive_int, default=65, help="tokens (65: tiny Shakespeare's characters)")
    p.add_argument("--n-layer", type=positive_int, default=4, help="transformer blocks")
    p.add_argument("--n-head", type=positive_int, default=4, help="attention heads")
    p.add_argument("--n-embd", type=positive_int, default=128, help="model width")
    p.add_argument("--block-size", type=positive_int, default=64, help="context length")
    p.add_argument("--batch-size", type=positive_int, default=12)
    p.add_argument("--steps", type=positive_int, default=30, help="timed training steps per implementation")
    p.add_argument("--warmup", type=nonnegative_int, default=3, help="untimed steps first")
    p.add_argument("--backends", type=backend_list, default=["numpy", "numba"],
                   help="tinylm backends to time, comma-separated (default: numpy,numba)")
    a = p.parse_args(argv)
    if a.n_embd % a.n_head:
        raise ScriptError(f"--n-head: must divide --n-embd {a.n_embd}, got {a.n_head}")
    cfg = GPTConfig(vocab_size=a.vocab_size, block_size=a.block_size, n_layer=a.n_layer, n_head=a.n_head,
                    n_embd=a.n_embd)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs | "
          f"GPT {a.n_layer}L/{a.n_head}H/{a.n_embd}C, block {a.block_size}, batch {a.batch_size}, float32")
    ref = bench_gpt_torch(cfg, a.batch_size, a.steps, a.warmup)
    rows = [("pytorch eager", ref)] if ref else []
    for name in a.backends:
        try:
            rows.append((f"tinylm {name}", bench_gpt_tinylm(cfg, a.batch_size, a.steps, a.warmup, name)))
        except tinylm.BackendUnavailableError as e:
            print(f"tinylm {name}: skipped ({e})")
    print(f"{'implementation':<16} {'tokens/s':>10} {'vs pytorch':>11}")
    for name, tps in rows:
        print(f"{name:<16} {tps:>10,.0f} {tps / ref if ref else float('nan'):>10.2f}x")


if __name__ == "__main__":
    main()
