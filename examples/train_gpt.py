"""Train a character-level GPT, evaluate it, checkpoint it, resume it, and sample from it.

    python examples/train_gpt.py                                   # built-in corpus, 600 steps, no download
    python examples/train_gpt.py --data ../shared/data/tinyshakespeare/input.txt --max-iters 2000
    python examples/train_gpt.py --data input.txt --resume         # continue from --out's checkpoint

The model and optimizer are the configuration nanoGPT documents for CPUs on tiny Shakespeare
(4 layers, 4 heads, 128 wide, context 64, batch 12, AdamW lr 1e-3 with warm-up and cosine decay,
no dropout); nanoGPT trains it 2000 steps (``--max-iters 2000``: 94 s on 2 quiet cores, see the
README), the default here is a 600-step run, about a third of that. Without ``--data`` it trains on the
prose of Python's own documentation (``pydoc_data.topics``), which every CPython install carries.

Everything the loop does is spelled out below: forward, loss, backward, clipping, the
optimizer step, a NaN guard, evaluation, an atomic checkpoint (model + optimizer + RNG + step,
so ``--resume`` continues exactly as if never stopped) and sampling.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np

import tinylm
from tinylm.data.builtin import python_docs_text
from tinylm.data.files import DataError, read_text
from tinylm.io import load_training_state, save_training_state
from tinylm.models.gpt import GPT, GPTConfig
from tinylm.nn.loss import CrossEntropyLoss
from tinylm.optim import AdamW, CosineWithWarmup, check_finite, clip_grad_norm_, weight_decay_groups
from tinylm.scripting import (ScriptError, nonnegative_float, nonnegative_int, positive_float, positive_int,
                              script_main)
from tinylm.tokenizers import CharTokenizer


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=pathlib.Path, help="a UTF-8 text file (default: built-in corpus)")
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/gpt"), help="checkpoint directory")
    p.add_argument("--resume", action="store_true", help="continue from --out/ckpt.safetensors")
    p.add_argument("--stop-after", type=positive_int, default=None,
                   help="end this run after N steps (checkpointed), e.g. to split a long run; --resume continues")
    p.add_argument("--backend", default=None, choices=tinylm.backend.BACKEND_NAMES,
                   help="numpy (default; or env TINYLM_BACKEND), numba, cupy")
    p.add_argument("--n-layer", type=positive_int, default=4, help="transformer blocks")
    p.add_argument("--n-head", type=positive_int, default=4, help="attention heads (must divide --n-embd)")
    p.add_argument("--n-embd", type=positive_int, default=128, help="model width")
    p.add_argument("--block-size", type=positive_int, default=64, help="context length in characters")
    p.add_argument("--batch-size", type=positive_int, default=12)
    p.add_argument("--dropout", type=nonnegative_float, default=0.0)
    p.add_argument("--max-iters", type=positive_int, default=600, help="training steps (nanoGPT: 2000)")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="peak learning rate")
    p.add_argument("--min-lr", type=nonnegative_float, default=1e-4, help="learning rate at the end of the cosine")
    p.add_argument("--warmup-iters", type=nonnegative_int, default=100, help="linear warm-up steps")
    p.add_argument("--weight-decay", type=nonnegative_float, default=0.1, help="AdamW decay (matrices only)")
    p.add_argument("--grad-clip", type=nonnegative_float, default=1.0, help="clip the gradient norm (0: off)")
    p.add_argument("--eval-interval", type=positive_int, default=200, help="evaluate and checkpoint every N steps")
    p.add_argument("--eval-iters", type=positive_int, default=20, help="batches per evaluation")
    p.add_argument("--sample-tokens", type=nonnegative_int, default=300, help="characters to sample at the end")
    p.add_argument("--seed", type=nonnegative_int, default=1337)
    p.add_argument("--no-progress", action="store_true",
                   help="plain log lines every 50 steps instead of a progress bar (the default when stderr "
                        "is not a terminal)")
    return p.parse_args(argv)


def get_batch(data: np.ndarray, block_size: int, batch_size: int, rng: np.random.Generator):
    """Random windows of the token stream: x (B, T) and the next-token targets y (B, T)."""
    ix = rng.integers(0, len(data) - block_size - 1, size=batch_size)
    x = np.stack([data[i:i + block_size] for i in ix])
    y = np.stack([data[i + 1:i + 1 + block_size] for i in ix])
    xp = tinylm.get_backend()
    return xp.asarray(x), xp.asarray(y)


def estimate_loss(model, crit, splits, args, rng) -> dict[str, float]:
    model.eval()
    out = {}
    for name, data in splits.items():
        losses = [crit(model(x), y) for x, y in (get_batch(data, args.block_size, args.batch_size, rng)
                                                 for _ in range(args.eval_iters))]
        out[name] = float(np.mean(losses))
    model.train()
    return out


@script_main
def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.backend:
        tinylm.set_backend(args.backend)
    text = read_text(args.data) if args.data else python_docs_text()
    tok = CharTokenizer.from_text(text)
    data = np.asarray(tok.encode(text), dtype=np.int64)
    n = int(0.9 * len(data))
    splits = {"train": data[:n], "val": data[n:]}
    if len(splits["val"]) <= args.block_size + 1:
        raise DataError(f"--data: text too short ({len(data)} characters) for --block-size {args.block_size}")

    if args.n_embd % args.n_head:
        raise ScriptError(f"--n-head: must divide --n-embd {args.n_embd}, got {args.n_head}")

    tinylm.manual_seed(args.seed)
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=args.block_size, n_layer=args.n_layer,
                    n_head=args.n_head, n_embd=args.n_embd, dropout=args.dropout)
    model = GPT(cfg)
    opt = AdamW(weight_decay_groups(model, args.weight_decay), lr=args.lr, betas=(0.9, 0.99))
    sched = CosineWithWarmup(opt, warmup_steps=args.warmup_iters, total_steps=args.max_iters, min_lr=args.min_lr)
    crit = CrossEntropyLoss()
    args.out.mkdir(parents=True, exist_ok=True)
    ckpt = args.out / "ckpt.safetensors"
    step = 0
    if args.resume:
        if not ckpt.is_file():
            raise ScriptError(f"--resume: no checkpoint {ckpt} (train first with the same --out)")
        state = load_training_state(ckpt, model, opt)
        step = state["step"]
        sched.load_state_dict(state["extra"]["scheduler"])
        print(f"resumed from {ckpt} at step {step}")
    rng = tinylm.random.default_rng()       # batches come from the global generator: resumable
    print(f"{model.num_parameters():,} parameters | vocab {tok.vocab_size} | {len(data):,} characters | "
          f"backend {tinylm.get_backend().name}")

    bar = None
    if not args.no_progress and sys.stderr.isatty():      # in a log file a bar is thousands of \r updates
        try:
            from tqdm import tqdm
            bar = tqdm(total=args.max_iters, initial=step, unit="step", dynamic_ncols=True)
        except ImportError:
            pass
    tokens_per_step = args.batch_size * args.block_size
    last = args.max_iters if args.stop_after is None else min(args.max_iters, step + args.stop_after)
    t_start, t_last, losses, train_seconds, steps_run = time.perf_counter(), time.perf_counter(), {}, 0.0, 0
    while step < last:
        x, y = get_batch(splits["train"], args.block_size, args.batch_size, rng)
        logits = model(x)                                   # (B,T,V)
        loss = crit(logits, y)
        check_finite(loss, step)
        model.zero_grad()
        model.backward(crit.backward())
        if args.grad_clip > 0:
            clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        sched.step()
        step += 1
        steps_run += 1
        now = time.perf_counter()
        train_seconds += now - t_last
        tok_s = tokens_per_step / max(now - t_last, 1e-9)
        if bar is not None:
            bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{tok_s:,.0f}")
            bar.update(1)
        elif step % 50 == 0:
            print(f"step {step:5d} | loss {loss:.4f} | {tok_s:,.0f} tokens/s", flush=True)
        if step % args.eval_interval == 0 or step == last:
            losses = estimate_loss(model, crit, splits, args, rng)
            msg = f"step {step}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}"
            (bar.write if bar is not None else print)(msg)
            save_training_state(ckpt, model, opt, step=step, extra={"scheduler": sched.state_dict()})
        t_last = time.perf_counter()                        # evaluation time is not training time
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - t_start
    context = tinylm.get_backend().asarray(np.asarray([tok.encode(text[:1])], dtype=np.int64))
    sample = model.generate(context, args.sample_tokens, do_sample=True, temperature=0.8, top_k=40,
                            seed=args.seed)
    print("---- sample ----\n" + tok.decode(tinylm.to_numpy(sample)[0].tolist()) + "\n----------------")
    result = {"step": step, **losses, "seconds": round(elapsed, 1),
              "train_tokens_per_s": round(steps_run * tokens_per_step / max(train_seconds, 1e-9))}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
