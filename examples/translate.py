"""Train a French -> English translator, report corpus BLEU on held-out sentences, draw attention.

    python examples/translate.py                         # built-in toy set, 30 s of training (no download)
    python examples/translate.py --data ../shared/data/translation/tatoeba-fra-eng/fra-eng.zip --minutes 20
    python examples/translate.py --data fra-eng.zip --model transformer --minutes 20   # the Transformer
    python examples/translate.py --data fra-eng.zip --minutes 5 --beam 1               # shorter, greedy only

Data: ``--data`` (Tatoeba's ``fra-eng.zip`` or its ``fra.txt``); without it, or with ``--data toy``,
a small built-in toy set generated from a phrase grammar, so the script runs anywhere. The default
budget (``--minutes 0.5``) suits the toy set; the real one needs minutes (see the README).

1. Pairs with at most ``--max-words`` words (whitespace-separated, punctuation attached) on both
   sides are kept. French is tokenised lowercased with elisions split (``l'homme`` -> ``l' homme``),
   English keeps its case, so BLEU is the usual case-sensitive score.
2. Held-out split: the distinct French sentences (compared after tokenisation) are shuffled with
   ``--seed`` and ``--test-frac`` (5%) of them are held out, with ALL their English translations
   as references; no held-out French sentence appears in training. Training uses every (French,
   English) pair of the other sentences.
3. Training: teacher forcing, cross-entropy with label smoothing, AdamW, gradient clipping at
   norm 1, a warm-up + cosine schedule (tinylm.optim). The number of steps is fitted to the
   ``--minutes`` budget from the speed of the steps in its first tenth (or set with ``--steps``);
   training stops at the budget whatever happens.
4. Evaluation: greedy and beam search (GNMT length penalty, alpha ``--alpha``) on the held-out
   sentences; corpus BLEU (tinylm.bleu, sacrebleu's 13a tokenisation, no smoothing) against all
   references (multi-reference BLEU) and against the first reference only.
5. Attention heatmaps of a few held-out sentences go to ``--out``/attention.png (needs matplotlib).
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import time

# One BLAS thread unless told otherwise (set before NumPy loads its BLAS). The matrix products
# here are small; on a busy machine, OpenBLAS threads that spin while waiting for each other made
# them 10-40x slower than one thread in our measurements. OPENBLAS_NUM_THREADS=2 overrides it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import tinylm  # noqa: E402
from tinylm.bleu import corpus_bleu  # noqa: E402
from tinylm.data.files import check_file, reading  # noqa: E402
from tinylm.data.translation import (BOS_ID, EOS_ID, PAD_ID, Vocab, WordTokenizer, pad_batch, read_tatoeba)
from tinylm.io import load_with_metadata, save
from tinylm.models.seq2seq import LSTMSeq2Seq, TransformerSeq2Seq, beam_search, greedy_decode
from tinylm.nn.loss import CrossEntropyLoss
from tinylm.optim import AdamW, CosineWithWarmup, check_finite, clip_grad_norm_  # noqa: E402
from tinylm.scripting import (ScriptError, nonnegative_float, nonnegative_int,  # noqa: E402
                              positive_float, positive_int, script_main)

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=None,
                   help="Tatoeba's fra-eng.zip or fra.txt, e.g. ../shared/data/translation/tatoeba-fra-eng/"
                        "fra-eng.zip, or 'toy' (default: the built-in toy set)")
    p.add_argument("--model", choices=("lstm", "transformer"), default="lstm")
    p.add_argument("--max-words", type=positive_int, default=8, help="longest sentence kept, in words")
    p.add_argument("--test-frac", type=positive_float, default=0.05, help="share of French sources held out")
    p.add_argument("--min-freq", type=positive_int, default=2, help="rarer words become <unk>")
    p.add_argument("--minutes", type=positive_float, default=0.5, help="training time budget (wall clock)")
    p.add_argument("--steps", type=positive_int, default=None, help="training steps (default: fitted to --minutes)")
    p.add_argument("--batch-size", type=positive_int, default=96)
    p.add_argument("--lr", type=positive_float, default=2e-3, help="peak learning rate")
    p.add_argument("--warmup", type=positive_int, default=300, help="warm-up steps")
    p.add_argument("--weight-decay", type=nonnegative_float, default=0.01)
    p.add_argument("--label-smoothing", type=nonnegative_float, default=0.1)
    p.add_argument("--dropout", type=nonnegative_float, default=0.1)
    p.add_argument("--d-model", type=positive_int, default=256,
                   help="Transformer width / LSTM embedding and hidden size")
    p.add_argument("--layers", type=positive_int, default=None,
                   help="LSTM layers (default 1) / Transformer encoder and decoder layers (default 2)")
    p.add_argument("--heads", type=positive_int, default=4, help="Transformer attention heads")
    p.add_argument("--ff", type=positive_int, default=512, help="Transformer feed-forward width")
    p.add_argument("--beam", type=positive_int, default=4, help="beam size (1: greedy only)")
    p.add_argument("--alpha", type=nonnegative_float, default=0.6, help="GNMT length-penalty exponent")
    p.add_argument("--max-test", type=positive_int, default=None,
                   help="evaluate on at most this many held-out sentences")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/translate"),
                   help="folder for model.safetensors and attention.png")
    p.add_argument("--load", type=pathlib.Path, default=None, help="skip training: evaluate this saved model")
    p.add_argument("--log-every", type=positive_int, default=50, help="print the running loss every N steps")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------

def toy_pairs() -> list[tuple[str, str]]:
    """(English, French) pairs from a small phrase grammar: subject, verb, object, optional negation."""
    subjects = [("I", "je"), ("You", "tu"), ("He", "il"), ("She", "elle"), ("We", "nous"), ("They", "ils")]
    verbs = [  # English base form, 3rd person; French forms for je, tu, il/elle, nous, ils
        ("see", "sees", ["vois", "vois", "voit", "voit", "voyons", "voient"]),
        ("eat", "eats", ["mange", "manges", "mange", "mange", "mangeons", "mangent"]),
        ("want", "wants", ["veux", "veux", "veut", "veut", "voulons", "veulent"]),
        ("like", "likes", ["aime", "aimes", "aime", "aime", "aimons", "aiment"]),
        ("have", "has", ["ai", "as", "a", "a", "avons", "ont"]),
    ]
    objects = [("the apple", "la pomme"), ("the bread", "le pain"), ("the cat", "le chat"), ("the car", "la voiture"),
               ("the book", "le livre"), ("the house", "la maison"), ("the dog", "le chien")]

    def elide(word: str, nxt: str) -> str:               # je aime -> j'aime, ne ont -> n'ont
        return word[:-1] + "'" if word in ("je", "ne") and nxt[0] in "aeiou" else word + " "

    pairs = []
    for i, (en_s, fr_s) in enumerate(subjects):
        for base, third, fr_forms in verbs:
            en_v = third if en_s in ("He", "She") else base
            fr_v = fr_forms[i]
            for en_o, fr_o in objects:
                pairs.append((f"{en_s} {en_v} {en_o}.", f"{elide(fr_s, fr_v)}{fr_v} {fr_o}.".capitalize()))
                neg = "doesn't" if en_s in ("He", "She") else "don't"
                fr_neg = f"{fr_s} {elide('ne', fr_v)}{fr_v} pas {fr_o}."
                pairs.append((f"{en_s} {neg} {base} {en_o}.", fr_neg.capitalize()))
    return pairs


def load_pairs(args) -> tuple[list[tuple[str, str]], str]:
    if args.data is None or args.data == "toy":
        return toy_pairs(), "built-in toy set"
    expected = "Tatoeba's fra-eng.zip or fra.txt (english<TAB>french lines)"
    path = check_file(args.data, "--data", expected)
    with reading("--data", path, expected):
        return read_tatoeba(path), str(path)


def prepare(args):
    """Tokenise, filter, split (held-out by distinct French sentence) and build vocabularies."""
    pairs, source = load_pairs(args)
    fr_tok, en_tok = WordTokenizer(lowercase=True, split_elision=True), WordTokenizer()
    groups: dict[tuple, dict] = {}                 # French tokens -> its English translations
    for en, fr in pairs:
        if len(en.split()) > args.max_words or len(fr.split()) > args.max_words:
            continue
        g = groups.setdefault(tuple(fr_tok(fr)), {"fr": fr, "en": []})
        g["en"].append(en)
    keys = list(groups)
    rng = np.random.default_rng(args.seed)
    rng.shuffle(keys)
    n_test = max(1, int(round(args.test_frac * len(keys))))
    test_keys, train_keys = keys[:n_test], keys[n_test:]
    train = [(list(k), en_tok(en)) for k in train_keys for en in groups[k]["en"]]
    test = [(list(k), groups[k]["en"]) for k in test_keys]
    if not train:
        raise ScriptError(f"--test-frac {args.test_frac} (with --max-words {args.max_words}) leaves no training pair; "
                          "expected a fraction well below 1")
    print(f"data: {source}: {len(pairs)} pairs, {sum(len(g['en']) for g in groups.values())} with <= "
          f"{args.max_words} words, {len(keys)} distinct French sentences; train {len(train)} pairs "
          f"({len(train_keys)} sources), test {len(test)} sources "
          f"({sum(len(r) for _, r in test)} references)")
    return train, test, fr_tok, en_tok


def batches(train, src_vocab: Vocab, tgt_vocab: Vocab, batch_size: int, rng: np.random.Generator):
    """One epoch of (src, tgt_in, tgt_out) batches: shuffled, then grouped by length to cut padding."""
    order = rng.permutation(len(train))
    chunk = batch_size * 50
    out = []
    for start in range(0, len(order), chunk):
        idx = sorted(order[start:start + chunk], key=lambda i: (len(train[i][0]), len(train[i][1])))
        out += [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]
    rng.shuffle(out)
    xp = tinylm.get_backend()
    for idx in out:
        src = pad_batch([src_vocab.encode(train[i][0]) for i in idx])
        tgt = [tgt_vocab.encode(train[i][1]) for i in idx]
        tgt_in = pad_batch([[BOS_ID] + t for t in tgt])
        tgt_out = pad_batch([t + [EOS_ID] for t in tgt])
        yield xp.asarray(src), xp.asarray(tgt_in), xp.asarray(tgt_out)


# ----------------------------------------------------------------------------------------------
# Model, training, evaluation
# ----------------------------------------------------------------------------------------------

def build_model(args, n_src: int, n_tgt: int):
    if args.model == "lstm":
        return LSTMSeq2Seq(n_src, n_tgt, embed_dim=args.d_model, hidden_size=args.d_model,
                           num_layers=args.layers or 1, dropout=args.dropout, rng=args.seed)
    layers = args.layers or 2
    return TransformerSeq2Seq(n_src, n_tgt, d_model=args.d_model, nhead=args.heads, num_encoder_layers=layers,
                              num_decoder_layers=layers, dim_feedforward=args.ff, dropout=args.dropout,
                              tie_output=True, rng=args.seed)


def make_schedule(opt, lr: float, warmup: int, total: int, step: int) -> CosineWithWarmup:
    """Linear warm-up to ``lr``, then cosine decay to ``lr / 20`` at step ``total``, resumed at ``step``."""
    for g in opt.param_groups:
        g["lr"] = lr                                 # the schedule reads its peak rate from the groups
    sched = CosineWithWarmup(opt, warmup_steps=min(warmup, total // 4), total_steps=total, min_lr=lr / 20)
    sched.load_state_dict({"last_step": step, "base_lrs": sched.base_lrs})
    return sched


def train_model(model, train, src_vocab, tgt_vocab, args) -> None:
    """Teacher-forced training until ``--steps`` steps or the ``--minutes`` budget, whichever comes first.

    Without ``--steps`` the first tenth of the budget runs a linear warm-up while timing the steps;
    then the number of steps is fitted to the rest of the budget and the cosine schedule takes over.
    """
    params = list(model.parameters())
    lr = args.lr
    opt = AdamW(params, lr=lr, betas=(0.9, 0.98), weight_decay=args.weight_decay)
    crit = CrossEntropyLoss(ignore_index=PAD_ID, label_smoothing=args.label_smoothing)
    rng = np.random.default_rng(args.seed)
    budget = args.minutes * 60.0
    sched = None if args.steps is None else make_schedule(opt, lr, args.warmup, args.steps, 0)
    step = tokens = 0
    t0 = time.perf_counter()
    t_log, tok_log, loss_sum, loss_n = t0, 0, 0.0, 0
    model.train()
    while True:                                      # epochs
        for src, tgt_in, tgt_out in batches(train, src_vocab, tgt_vocab, args.batch_size, rng):
            elapsed = time.perf_counter() - t0
            if sched is None and step > 0 and elapsed >= budget / 10:
                total = step + int(0.98 * (budget - elapsed) * step / elapsed)
                print(f"timing: {elapsed / step:.3f} s/step -> {total} steps in {args.minutes:g} min")
                sched = make_schedule(opt, lr, args.warmup, total, step)
            elif sched is None:
                for g in opt.param_groups:           # warm-up while timing
                    g["lr"] = lr * min(1.0, (step + 1) / args.warmup)
            model.zero_grad()
            logits = model(src, tgt_in)              # (B,T,V)
            loss = check_finite(crit(logits, tgt_out), step)
            model.backward(crit.backward())          # dlogits (B,T,V) -> every parameter's .grad
            clip_grad_norm_(params, 1.0)
            opt.step()
            if sched is not None:
                sched.step()
            step += 1
            n_tok = int((tgt_out != PAD_ID).sum())
            tokens, tok_log = tokens + n_tok, tok_log + n_tok
            loss_sum, loss_n = loss_sum + loss, loss_n + 1
            elapsed = time.perf_counter() - t0
            if step % args.log_every == 0:
                now = time.perf_counter()
                total = sched.total_steps if sched is not None else "?"
                print(f"step {step:5d}/{total}  loss {loss_sum / loss_n:.3f}  lr {opt.param_groups[0]['lr']:.2e}  "
                      f"{tok_log / (now - t_log):6.0f} tgt tok/s  {elapsed / 60:5.1f} min", flush=True)
                t_log, tok_log, loss_sum, loss_n = now, 0, 0.0, 0
            if (sched is not None and step >= sched.total_steps) or elapsed >= budget:
                print(f"trained {step} steps, {tokens} target tokens in {elapsed / 60:.1f} min "
                      f"({tokens / elapsed:.0f} tok/s)")
                return


def translate(model, sources, src_vocab, tgt_vocab, en_tok, beam: int, alpha: float, batch_size: int = 200):
    """Detokenised English for each tokenised French sentence, decoded in length-sorted batches
    (a progress line every 10 s: beam search over thousands of sentences takes minutes)."""
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    out = [None] * len(sources)
    xp = tinylm.get_backend()
    last = time.perf_counter()
    for start in range(0, len(order), batch_size):
        if time.perf_counter() - last > 10:
            print(f"  decoding (beam {beam}): {start}/{len(order)} sentences", flush=True)
            last = time.perf_counter()
        idx = order[start:start + batch_size]
        src = xp.asarray(pad_batch([src_vocab.encode(sources[i]) for i in idx]))
        max_len = src.shape[1] * 2 + 5
        ids = (greedy_decode(model, src, max_len=max_len) if beam == 1
               else beam_search(model, src, beam_size=beam, max_len=max_len, length_norm="gnmt", alpha=alpha))
        for i, hyp in zip(idx, ids):
            out[i] = en_tok.detokenize(tgt_vocab.decode(hyp))
    return out


def evaluate(model, test, src_vocab, tgt_vocab, en_tok, args) -> dict:
    sources = [fr for fr, _ in test]
    refs = [r for _, r in test]
    results = {}
    for beam in sorted({1, args.beam}):
        t = time.perf_counter()
        hyps = translate(model, sources, src_vocab, tgt_vocab, en_tok, beam, args.alpha)
        multi = corpus_bleu(hyps, refs)
        single = corpus_bleu(hyps, [r[0] for r in refs])
        name = "greedy" if beam == 1 else f"beam {beam}"
        print(f"{name:8s} multi-reference {multi}\n{'':8s} first reference {single}  "
              f"({time.perf_counter() - t:.0f} s)")
        results[name] = {"bleu": multi.score, "bleu_single_ref": single.score, "hyps": hyps}
    return results


def save_heatmaps(model, test, src_vocab, tgt_vocab, path: pathlib.Path, n: int = 4) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no attention heatmaps (pip install matplotlib)")
        return
    xp = tinylm.get_backend()
    mid = [p for p in test if 6 <= len(p[0]) <= 9] or test       # long enough to be interesting, short enough to read
    picks = mid[:: max(1, len(mid) // n)][:n]
    fig, axes = plt.subplots(1, len(picks), figsize=(4.2 * len(picks), 4.2))
    for ax, (fr, _) in zip(np.atleast_1d(axes), picks):
        src = xp.asarray(pad_batch([src_vocab.encode(fr)]))
        hyp = greedy_decode(model, src, max_len=2 * len(fr) + 5)[0]
        tgt_in = xp.asarray(pad_batch([[BOS_ID] + hyp]))
        w = tinylm.to_numpy(model.attention_map(src, tgt_in))[0]     # (T, S): step t attends to source s
        out_tokens = tgt_vocab.decode(hyp) + ["<eos>"]
        ax.imshow(w, cmap="viridis", vmin=0.0, vmax=1.0)
        ax.set_xticks(range(len(fr)), fr, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(out_tokens)), out_tokens, fontsize=8)
        ax.set_xlabel("source (French)")
    np.atleast_1d(axes)[0].set_ylabel("output (English), one row per step")
    fig.suptitle(f"{type(model).__name__}: cross-attention" +
                 (" (last decoder layer, mean over heads)" if isinstance(model, TransformerSeq2Seq) else ""))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"attention heatmaps: {path}")


def save_model(model, src_vocab, tgt_vocab, args, path: pathlib.Path) -> None:
    meta = {"args": json.dumps({k: (str(v) if isinstance(v, pathlib.Path) else v) for k, v in vars(args).items()}),
            "src_vocab": json.dumps(src_vocab.itos), "tgt_vocab": json.dumps(tgt_vocab.itos)}
    path.parent.mkdir(parents=True, exist_ok=True)
    save(path, {n: tinylm.to_numpy(a) for n, a in model.state_dict().items()}, meta)


def load_model(path: pathlib.Path, args):
    tensors, meta = load_with_metadata(path)
    saved = json.loads(meta["args"])
    for k in ("model", "d_model", "layers", "heads", "ff", "dropout", "seed", "max_words", "test_frac", "min_freq"):
        setattr(args, k, saved[k])
    src_vocab, tgt_vocab = (Vocab(json.loads(meta[k])[4:]) for k in ("src_vocab", "tgt_vocab"))
    model = build_model(args, len(src_vocab), len(tgt_vocab))
    model.load_state_dict(tensors)
    return model, src_vocab, tgt_vocab


@script_main
def main(argv=None):
    args = parse_args(argv)
    tinylm.manual_seed(args.seed)
    if args.load is not None:
        check_file(args.load, "--load", "a model.safetensors written by this script")
        model, src_vocab, tgt_vocab = load_model(args.load, args)
        _, test, _, en_tok = prepare(args)
    else:
        train, test, _, en_tok = prepare(args)
        src_vocab = Vocab.build((fr for fr, _ in train), min_freq=args.min_freq)
        tgt_vocab = Vocab.build((en for _, en in train), min_freq=args.min_freq)
        model = build_model(args, len(src_vocab), len(tgt_vocab))
        print(f"vocabularies: French {len(src_vocab)}, English {len(tgt_vocab)} (min count {args.min_freq}); "
              f"{type(model).__name__} with {model.num_parameters() / 1e6:.2f}M parameters")
        train_model(model, train, src_vocab, tgt_vocab, args)
        save_model(model, src_vocab, tgt_vocab, args, args.out / "model.safetensors")
    if args.max_test is not None:
        test = test[:args.max_test]
    model.eval()
    results = evaluate(model, test, src_vocab, tgt_vocab, en_tok, args)
    for (fr, refs), hyp in list(zip(test, list(results.values())[-1]["hyps"]))[:8]:
        print(f"  {' '.join(fr)}\n    -> {hyp}\n    ref: {refs[0]}")
    save_heatmaps(model, test, src_vocab, tgt_vocab, args.out / "attention.png")
    return results


if __name__ == "__main__":
    main()
