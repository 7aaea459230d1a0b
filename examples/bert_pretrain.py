"""Pre-train a tiny BERT from scratch with masked-language modelling, and report MLM loss and accuracy.

    python examples/bert_pretrain.py                          # built-in corpus, 300 steps, no download
    python examples/bert_pretrain.py --steps 1500 --backend numba # longer, on the Numba kernels
    python examples/bert_pretrain.py --data corpus.txt --steps 3000 --out runs/bert

Without ``--data`` it trains on the prose of Python's own documentation (``pydoc_data.topics``,
about 465 kB), which every CPython install carries. The default run (300 steps) shows the loss
and the masked-token accuracy moving off the baseline; the fill-in-the-blank answers need longer
runs (``--steps 1500`` or more) before they stop being the most frequent words. The steps, all
spelled out below:

1. a WordPiece vocabulary is trained on the text (``WordPieceTokenizer.train``; a word-level
   vocabulary when tinylm's WordPiece is not available, or with ``--tokenizer word``);
2. the token stream is cut into windows ``[CLS] w_1 .. w_{T-2} [SEP]``; the last 5% is held out;
3. every batch is corrupted afresh (dynamic masking, tinylm.data.mlm): 15% of the tokens are
   chosen, 80% of those become [MASK], 10% a random token, 10% stay; labels are -100 elsewhere;
4. BertForMaskedLM (decoder tied to the word embeddings) is trained with cross-entropy on the
   chosen positions, AdamW, warm-up and cosine decay, gradient clipping;
5. held-out MLM loss and masked-token accuracy are measured with a fixed masking, next to the
   baseline of always guessing the most frequent token; a few fill-in-the-blank sentences show
   what the model learned; the model and vocabulary are saved in Hugging Face's format.
"""
from __future__ import annotations

import argparse
import collections
import json
import pathlib
import re
import time

import numpy as np

import tinylm
from tinylm.data.builtin import python_docs_text
from tinylm.data.files import DataError, read_text
from tinylm.data.mlm import IGNORE_INDEX, DynamicMasking, mask_tokens
from tinylm.models.bert import BertConfig, BertForMaskedLM
from tinylm.nn.loss import CrossEntropyLoss
from tinylm.optim import AdamW, CosineWithWarmup, check_finite, clip_grad_norm_, weight_decay_groups
from tinylm.scripting import ScriptError, nonnegative_float, nonnegative_int, positive_float, positive_int, script_main

# Fill-in-the-blank sentences and the word the documentation would put there. Early on the top
# guesses are frequent words; the rank of the expected word shows the learning before they change.
PROMPTS = [("the [MASK] statement leaves the current function call .", "return"),
           ("a list is a [MASK] sequence of items .", "mutable"),
           ("if the condition is true , the [MASK] is executed .", "suite")]


class WordLevelTokenizer:
    """Fallback vocabulary: lower-cased words and punctuation marks, the most frequent ``vocab_size - 5``
    of them, after [PAD] [UNK] [CLS] [SEP] [MASK] (ids 0..4, WordPiece's order). Same calls as
    WordPieceTokenizer where this script uses them."""

    SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
    _WORD = re.compile(r"\[MASK\]|\w+|[^\w\s]")

    def __init__(self, vocab):
        self._tokens = list(vocab)
        self._ids = {t: i for i, t in enumerate(self._tokens)}
        self.pad_token_id, self.unk_token_id, self.cls_token_id, self.sep_token_id, self.mask_token_id = range(5)
        self.special_tokens = {t: i for i, t in enumerate(self.SPECIALS)}

    @classmethod
    def train(cls, text: str, vocab_size: int):
        counts = collections.Counter(cls._WORD.findall(text.lower()))
        return cls(list(cls.SPECIALS) + [w for w, _ in counts.most_common(vocab_size - len(cls.SPECIALS))])

    @property
    def vocab_size(self) -> int:
        return len(self._tokens)

    def encode(self, text: str, add_special_tokens: bool = True, **_):
        ids = [self._ids.get(w if w == "[MASK]" else w.lower(), self.unk_token_id) for w in self._WORD.findall(text)]
        return [self.cls_token_id] + ids + [self.sep_token_id] if add_special_tokens else ids

    def id_to_token(self, i: int) -> str:
        return self._tokens[i]


def make_tokenizer(kind: str, text: str, vocab_size: int, min_frequency: int):
    if kind in ("auto", "wordpiece"):
        try:
            from tinylm.tokenizers.wordpiece import WordPieceTokenizer
        except ImportError:
            if kind == "wordpiece":
                raise
            print("tinylm.tokenizers.wordpiece is not available: using a word-level vocabulary")
        else:
            # No length limit while encoding the corpus: windows are cut from the stream afterwards.
            return (WordPieceTokenizer.train(text, vocab_size, min_frequency=min_frequency, model_max_length=None),
                    "wordpiece")
    return WordLevelTokenizer.train(text, vocab_size), "word"


def encode_stream(tok, text: str) -> np.ndarray:
    """The whole text as one stream of ids (no special tokens), paragraph by paragraph."""
    ids: list[int] = []
    for para in text.split("\n"):
        if para.strip():
            ids.extend(tok.encode(para, add_special_tokens=False, truncation=False, max_length=None))
    return np.asarray(ids, dtype=np.int64)


def windows(stream: np.ndarray, starts: np.ndarray, width: int, cls_id: int, sep_id: int) -> np.ndarray:
    """Rows ``[CLS] stream[s : s + width] [SEP]`` for each start s: (len(starts), width + 2)."""
    body = np.stack([stream[s:s + width] for s in starts])
    col = np.full((len(starts), 1), 0, dtype=np.int64)
    return np.concatenate([col + cls_id, body, col + sep_id], axis=1)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=pathlib.Path, help="a UTF-8 text file (default: built-in corpus)")
    p.add_argument("--out", type=pathlib.Path, default=None,
                   help="save model (config.json, model.safetensors) and vocab.txt here")
    p.add_argument("--tokenizer", choices=("auto", "wordpiece", "word"), default="auto")
    p.add_argument("--vocab-size", type=positive_int, default=4000,
                   help="largest vocabulary (WordPiece stops earlier when no pair reaches --min-frequency)")
    p.add_argument("--min-frequency", type=positive_int, default=10,
                   help="WordPiece merges only pairs seen this often; higher keeps frequent words whole")
    p.add_argument("--hidden-size", type=positive_int, default=128)
    p.add_argument("--layers", type=positive_int, default=2)
    p.add_argument("--heads", type=positive_int, default=4, help="attention heads (must divide --hidden-size)")
    p.add_argument("--intermediate-size", type=positive_int, default=512, help="feed-forward width")
    p.add_argument("--seq-len", type=positive_int, default=64, help="tokens per example, [CLS] and [SEP] included")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--steps", type=positive_int, default=300, help="training steps")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="peak AdamW learning rate")
    p.add_argument("--warmup", type=nonnegative_int, default=100, help="linear warm-up steps")
    p.add_argument("--weight-decay", type=nonnegative_float, default=0.01)
    p.add_argument("--dropout", type=nonnegative_float, default=0.1)
    p.add_argument("--grad-clip", type=nonnegative_float, default=1.0, help="clip the gradient norm (0: off)")
    p.add_argument("--eval-interval", type=positive_int, default=100, help="evaluate every N steps")
    p.add_argument("--eval-batches", type=positive_int, default=16, help="held-out batches per evaluation")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--backend", default=None, choices=tinylm.backend.BACKEND_NAMES,
                   help="numpy (default, the reference; or env TINYLM_BACKEND), numba (faster once its kernels "
                        "are compiled, about a minute the first time), cupy (a GPU)")
    return p.parse_args(argv)


def evaluate(model, crit, batches) -> dict[str, float]:
    """MLM loss (mean over the chosen positions) and the share of them predicted exactly."""
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    for inputs, labels in batches:
        logits = model(inputs)                                          # (B,T,V)
        n = int((labels != IGNORE_INDEX).sum())
        total_loss += crit(logits, labels) * n
        pred = tinylm.to_numpy(logits.argmax(axis=-1))
        lab = tinylm.to_numpy(labels)
        correct += int(((pred == lab) & (lab != IGNORE_INDEX)).sum())
        count += n
    model.train()
    return {"loss": total_loss / count, "accuracy": correct / count}


def fill_mask(model, tok, sentence: str, k: int = 5) -> tuple[list[str], np.ndarray]:
    """The ``k`` most likely tokens at the [MASK], and every vocabulary id ranked, best first."""
    ids = np.asarray([tok.encode(sentence)], dtype=np.int64)
    pos = int(np.argmax(ids[0] == tok.mask_token_id))
    model.eval()
    logits = tinylm.to_numpy(model(tinylm.get_backend().asarray(ids)))[0, pos]
    model.train()
    ranked = np.argsort(-logits)
    return [tok.id_to_token(int(i)) for i in ranked[:k]], ranked


@script_main
def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.hidden_size % args.heads:
        raise ScriptError(f"--heads: must divide --hidden-size {args.hidden_size}, got {args.heads}")
    if args.backend:
        tinylm.set_backend(args.backend)
    xp = tinylm.get_backend()
    tinylm.manual_seed(args.seed)
    text = read_text(args.data) if args.data else python_docs_text()

    t0 = time.perf_counter()
    tok, kind = make_tokenizer(args.tokenizer, text, args.vocab_size, args.min_frequency)
    stream = encode_stream(tok, text)
    width = args.seq_len - 2
    split = int(0.95 * len(stream))
    train, held_out = stream[:split], stream[split:]
    if len(held_out) < width + 1 or len(train) < width + 1:
        raise DataError(f"--data: {len(stream)} tokens are too few for --seq-len {args.seq_len}")
    print(f"{kind} vocabulary of {tok.vocab_size} tokens, {len(stream):,} tokens "
          f"({len(text) / len(stream):.1f} characters each), built in {time.perf_counter() - t0:.1f} s")

    specials = list(tok.special_tokens.values())
    masking = DynamicMasking(mask_token_id=tok.mask_token_id, vocab_size=tok.vocab_size, special_ids=specials,
                             seed=args.seed)
    # Held-out windows, masked once with a fixed seed, so every evaluation scores the same positions.
    starts = np.arange(0, len(held_out) - width, width)[: args.eval_batches * args.batch_size]
    eval_ids = windows(held_out, starts, width, tok.cls_token_id, tok.sep_token_id)
    eval_inputs, eval_labels = mask_tokens(eval_ids, mask_token_id=tok.mask_token_id, vocab_size=tok.vocab_size,
                                           special_ids=specials, rng=12345)
    eval_batches = [(xp.asarray(eval_inputs[i:i + args.batch_size]), xp.asarray(eval_labels[i:i + args.batch_size]))
                    for i in range(0, len(eval_ids), args.batch_size)]
    chosen = eval_labels[eval_labels != IGNORE_INDEX]
    freq = np.bincount(train, minlength=tok.vocab_size).astype(np.float64)
    unigram = freq / freq.sum()
    baseline = {"accuracy": float(np.mean(chosen == np.argmax(freq))),                # most frequent token
                "loss": float(-np.mean(np.log(np.maximum(unigram[chosen], 1e-12))))}  # unigram cross-entropy

    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=args.hidden_size, num_hidden_layers=args.layers,
                     num_attention_heads=args.heads, intermediate_size=args.intermediate_size,
                     max_position_embeddings=args.seq_len, hidden_dropout_prob=args.dropout,
                     attention_probs_dropout_prob=args.dropout, pad_token_id=tok.pad_token_id)
    model = BertForMaskedLM(cfg)
    opt = AdamW(weight_decay_groups(model, args.weight_decay), lr=args.lr, betas=(0.9, 0.999), eps=1e-6)
    sched = CosineWithWarmup(opt, warmup_steps=min(args.warmup, args.steps), total_steps=args.steps,
                             min_lr=args.lr / 10)
    crit = CrossEntropyLoss()                                           # ignore_index=-100
    rng = tinylm.random.default_rng()
    print(f"{model.num_parameters():,} parameters | {args.layers} layers, {args.hidden_size} wide | "
          f"baseline (most frequent token): accuracy {baseline['accuracy']:.3f}, "
          f"unigram loss {baseline['loss']:.3f}")

    t_start, history, recent = time.perf_counter(), [], []
    for step in range(1, args.steps + 1):
        ids = windows(train, rng.integers(0, len(train) - width, size=args.batch_size), width,
                      tok.cls_token_id, tok.sep_token_id)               # (B,T)
        inputs, labels = masking(ids)                                   # a new corruption every step
        logits = model(xp.asarray(inputs))                              # (B,T,V)
        loss = crit(logits, xp.asarray(labels))
        check_finite(loss, step)
        model.zero_grad()
        model.backward(crit.backward())
        if args.grad_clip > 0:
            clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        sched.step()
        recent.append(loss)
        if step % args.eval_interval == 0 or step == args.steps:
            ev = evaluate(model, crit, eval_batches)
            elapsed = time.perf_counter() - t_start
            history.append({"step": step, "train_loss": float(np.mean(recent)), "eval_loss": ev["loss"],
                            "eval_accuracy": ev["accuracy"], "seconds": round(elapsed, 1)})
            print(f"step {step:5d} | train loss {np.mean(recent):.3f} | held-out MLM loss {ev['loss']:.3f}, "
                  f"accuracy {ev['accuracy']:.3f} | {elapsed:.0f} s", flush=True)
            recent = []

    for s, answer in PROMPTS:
        if len(tok.encode(s)) <= cfg.max_position_embeddings:
            top, ranked = fill_mask(model, tok, s)
            answer_ids = tok.encode(answer, add_special_tokens=False)
            rank = (f"'{answer}' ranked {int(np.argmax(ranked == answer_ids[0])) + 1} of {tok.vocab_size}"
                    if len(answer_ids) == 1 else f"'{answer}' is not one token")
            print(f"{s!r}: {top} ({rank})")
    if args.out is not None:
        model.save_pretrained(args.out)
        if hasattr(tok, "save_pretrained"):
            tok.save_pretrained(args.out)
        print(f"saved to {args.out}")
    result = {"tokenizer": kind, "vocab_size": tok.vocab_size, "steps": args.steps,
              "eval_loss": round(history[-1]["eval_loss"], 4), "eval_accuracy": round(history[-1]["eval_accuracy"], 4),
              "baseline_accuracy": round(baseline["accuracy"], 4), "baseline_loss": round(baseline["loss"], 4),
              "seconds": round(time.perf_counter() - t_start, 1)}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
