"""Sequence-to-sequence models and decoding (tinylm/models/seq2seq.py) and the translation data
utilities (tinylm/data/translation.py): float64 gradient checks of every parameter, teacher forcing
vs step-by-step decoding, greedy vs beam search (beam 1 = greedy; a wide beam = brute force),
padding invariance, argument errors."""
import itertools
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tinylm.data.translation import (BOS_ID, EOS_ID, PAD_ID, UNK_ID, Vocab, WordTokenizer, pad_batch,
                                     read_multi30k, read_tatoeba)
from tinylm.gradcheck import check_module
from tinylm.models.seq2seq import (LSTMSeq2Seq, TransformerSeq2Seq, beam_search, greedy_decode, length_penalty)
from tinylm.ops.softmax import log_softmax

V = 9          # 4 specials + 5 words


def _lstm(seed=0, **kw):
    return LSTMSeq2Seq(V, V, **{"embed_dim": 4, "hidden_size": 3, "attn_dim": 4, "rng": seed, **kw})


def _transformer(seed=0, **kw):
    return TransformerSeq2Seq(V, V, **{"d_model": 4, "nhead": 2, "num_encoder_layers": 1, "num_decoder_layers": 1,
                                       "dim_feedforward": 4, "dropout": 0.0, "rng": seed, **kw})


def _randomise(m, seed, scale=0.5, attention_scale=2.5):
    """Random parameters, larger in the additive attention: with small weights its tanh is nearly
    linear, the query term cancels in the softmax, and dW_q becomes too small to check."""
    rng = np.random.default_rng(seed)
    for name, p in m.named_parameters():
        p.data = (rng.standard_normal(p.shape) * (attention_scale if name.startswith("attention") else scale)
                  ).astype(p.dtype)
    return m


SRC = np.array([[5, 6, 7, 8], [8, 4, PAD_ID, PAD_ID], [7, PAD_ID, PAD_ID, PAD_ID]])
TGT_IN = np.array([[BOS_ID, 5, 6], [BOS_ID, 7, 4], [BOS_ID, 8, 8]])   # no padding: see the gradcheck note


# --- gradient checks -------------------------------------------------------------------------
# Targets carry no <pad>: an Embedding's padding row never receives gradient (PyTorch's rule),
# although a padded target position's logits do depend on it (those positions are ignored by the
# loss). Padded SOURCE positions are in SRC: neither model lets them influence anything.

@pytest.mark.parametrize("make", [
    lambda: _lstm(), lambda: _lstm(num_layers=2, hidden_size=2, embed_dim=2, attn_dim=3),
    lambda: _transformer(), lambda: _transformer(tie_output=False, norm_first=False),
    lambda: _transformer(share_embeddings=True, num_decoder_layers=2),
], ids=["lstm", "lstm-2-layers", "transformer-tied-preLN", "transformer-untied-postLN", "transformer-shared"])
def test_model_gradcheck(make):
    m = _randomise(make().double(), seed=2)
    report = check_module(m, SRC[:2, :3], TGT_IN[:2])          # rows of 3 and 2 real tokens
    assert len(report.errors) == len(list(m.parameters()))      # every parameter was checked


def test_tied_weights_are_one_parameter():
    m = _transformer(share_embeddings=True)
    assert m.src_embed.weight is m.tgt_embed.weight is m.output_weight
    assert m.output_proj is None
    names = [n for n, _ in m.named_parameters()]
    assert "src_embed.weight" in names and "tgt_embed.weight" not in names    # listed once
    assert _transformer(tie_output=False).output_weight is not _transformer().output_weight


# --- decoding --------------------------------------------------------------------------------

MODELS = [lambda s: _randomise(_lstm(s), s, scale=1.0), lambda s: _randomise(_transformer(s), s, scale=1.0)]


@pytest.mark.parametrize("make", MODELS, ids=["lstm", "transformer"])
def test_greedy_matches_teacher_forcing(make):
    """Feeding the greedy output back as tgt_in, the teacher-forced logits pick the same tokens:
    step-by-step decoding and the parallel forward compute the same function."""
    m = make(3)
    out = greedy_decode(m, SRC, max_len=6)
    tgt_in = pad_batch([[BOS_ID] + o for o in out], length=7)
    logp = log_softmax(m.eval()(SRC, tgt_in))
    logp[..., [PAD_ID, BOS_ID]] = -np.inf
    for row, o in zip(logp.argmax(-1), out):
        full = o + [EOS_ID] if len(o) < 6 else o
        assert row[:len(full)].tolist() == full


@pytest.mark.parametrize("make", MODELS, ids=["lstm", "transformer"])
def test_beam_one_is_greedy(make):
    for seed in range(4):
        m = make(seed)
        assert beam_search(m, SRC, beam_size=1, max_len=7) == greedy_decode(m, SRC, max_len=7)


def _brute_force(m, src_row, max_len, norm, alpha):
    """Score every token sequence of length <= max_len exactly (teacher forcing) and return the best."""
    words = [t for t in range(V) if t not in (PAD_ID, BOS_ID, EOS_ID)]
    best = (-np.inf, None)
    for n in range(max_len + 1):
        for seq in itertools.product(words, repeat=n):
            ended = n < max_len                                  # shorter ones end in <eos>
            out = list(seq) + ([EOS_ID] if ended else [])
            logp = log_softmax(m(src_row, np.array([[BOS_ID] + out[:-1]])))[0]
            logp[:, [PAD_ID, BOS_ID]] = -np.inf
            total = float(sum(logp[t, tok] for t, tok in enumerate(out)))
            score = total / length_penalty(len(out), norm, alpha)
            best = max(best, (score, list(seq)))
    return best[1]


@pytest.mark.parametrize("norm, alpha", [("none", 0.0), ("average", 0.0), ("gnmt", 1.0)])
def test_wide_beam_finds_the_best_sequence(norm, alpha):
    """A beam as wide as the whole search space never prunes: it must find the brute-force optimum."""
    m = _randomise(_transformer(1), 1, scale=1.0).eval()
    max_len = 3
    for row in SRC[:2]:
        src = row[None, row != PAD_ID]
        got = beam_search(m, src, beam_size=6 ** max_len, max_len=max_len, length_norm=norm, alpha=alpha)[0]
        assert got == _brute_force(m, src, max_len, norm, alpha)


@pytest.mark.parametrize("make", MODELS, ids=["lstm", "transformer"])
def test_padding_and_batching_do_not_change_results(make):
    m = make(2).eval()
    logits = m(SRC, TGT_IN)
    wider = np.concatenate([SRC, np.full((3, 2), PAD_ID)], axis=1)          # two more padding columns
    np.testing.assert_allclose(m(wider, TGT_IN), logits, rtol=1e-5, atol=1e-6)
    alone = [beam_search(m, SRC[i:i + 1, :n], beam_size=3, max_len=5)[0] for i, n in enumerate((4, 2, 1))]
    assert beam_search(m, SRC, beam_size=3, max_len=5) == alone


def test_length_penalty():
    assert length_penalty(7, "none") == 1.0 and length_penalty(7, "average") == 7.0
    assert length_penalty(1, "gnmt", 0.6) == 1.0                        # ((5 + 1) / 6)^alpha
    assert length_penalty(13, "gnmt", 0.5) == pytest.approx(3 ** 0.5)   # ((5 + 13) / 6)^0.5
    assert length_penalty(13, "gnmt", 0.0) == 1.0


def test_decoding_restores_training_mode():
    m = _transformer(dropout=0.2).train()
    greedy_decode(m, SRC, max_len=2)
    beam_search(m, SRC, beam_size=2, max_len=2)
    assert m.training and all(sub.training for _, sub in m.named_modules())



# --- property tests (hypothesis): random small sizes ---------------------------------------------

@st.composite
def _models(draw, kinds=("lstm", "transformer")):
    """A float64 LSTMSeq2Seq or TransformerSeq2Seq of random small sizes, every parameter random.
    Vocabularies of 5..9 (4 specials): few candidates per step, so greedy decoding often meets <eos>.
    d_model >= 3: a LayerNorm over 2 features has 2 outputs, and a changed token could leave logits as they were."""
    kind, seed = draw(st.sampled_from(kinds)), draw(st.integers(0, 2 ** 16))
    Vs, Vt = draw(st.integers(5, 9)), draw(st.integers(5, 9))
    if kind == "lstm":
        m = LSTMSeq2Seq(Vs, Vt, embed_dim=draw(st.integers(1, 4)), hidden_size=draw(st.integers(1, 4)),
                        num_layers=draw(st.integers(1, 2)), attn_dim=draw(st.integers(1, 4)), rng=seed)
    else:
        d = draw(st.sampled_from([3, 4, 6]))
        share = draw(st.booleans())
        m = TransformerSeq2Seq(Vs, Vs if share else Vt, d_model=d, nhead=draw(st.sampled_from([h for h in (1, 2, 3)
                                                                                               if d % h == 0])),
                               num_encoder_layers=draw(st.integers(1, 2)), num_decoder_layers=draw(st.integers(1, 2)),
                               dim_feedforward=draw(st.integers(1, 6)), dropout=0.0, norm_first=draw(st.booleans()),
                               tie_output=share or draw(st.booleans()), share_embeddings=share, max_len=12, rng=seed)
    return _randomise(m.double(), seed, scale=1.0).eval()


@st.composite
def _sources(draw, m, max_S=5):
    """src (B, S): rows of random lengths 1..S of non-pad ids, right-padded with pad_idx."""
    B, S = draw(st.integers(1, 3)), draw(st.integers(1, max_S))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    lengths = rng.integers(1, S + 1, size=B)
    src = rng.integers(0, m.src_vocab_size - 1, size=(B, S))
    src = src + (src >= m.pad_idx)                                      # any id but pad_idx
    src[np.arange(S)[None, :] >= lengths[:, None]] = m.pad_idx
    return src, lengths


def _targets(rng, m, B, T):
    """tgt_in (B, T): <bos> then random ids (no pad: see the gradient-check note above)."""
    tgt = rng.integers(0, m.tgt_vocab_size - 1, size=(B, T))
    tgt = tgt + (tgt >= m.pad_idx)
    tgt[:, 0] = m.bos_idx
    return tgt


@settings(max_examples=40, deadline=None)
@given(_models(), st.data(), st.sampled_from([np.float32, np.float64]))
def test_property_logits_shape_and_dtype(m, data, dtype):
    m.to(dtype)
    src, _ = data.draw(_sources(m))
    T = data.draw(st.integers(1, 5))
    tgt = _targets(np.random.default_rng(T), m, src.shape[0], T)
    logits = m(src, tgt)
    assert logits.shape == (src.shape[0], T, m.tgt_vocab_size) and logits.dtype == dtype
    assert m.backward(np.ones_like(logits)) == (None, None)
    assert all(p.grad.shape == p.shape and p.grad.dtype == dtype for p in m.parameters())


@settings(max_examples=40, deadline=None)
@given(_models(), st.data())
def test_property_source_padding_invariance(m, data):
    """Each row's logits are those of its real source tokens alone: neither its own padding, nor
    extra padding columns, nor the other rows change them."""
    src, lengths = data.draw(_sources(m))
    extra = data.draw(st.integers(1, 3))
    tgt = _targets(np.random.default_rng(int(lengths.sum())), m, src.shape[0], data.draw(st.integers(1, 4)))
    logits = m(src, tgt)
    wider = np.concatenate([src, np.full((src.shape[0], extra), m.pad_idx)], axis=1)
    np.testing.assert_allclose(m(wider, tgt), logits, rtol=1e-10, atol=1e-12)
    for b, n in enumerate(lengths):
        np.testing.assert_allclose(m(src[b:b + 1, :n], tgt[b:b + 1]), logits[b:b + 1], rtol=1e-10, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(_models(), st.data())
def test_property_decoder_causality(m, data):
    """Changing target token (b, t) changes no logits of row b before t, and changes those at t."""
    src, _ = data.draw(_sources(m))
    T = data.draw(st.integers(2, 5))
    tgt = _targets(np.random.default_rng(T), m, src.shape[0], T)
    b, t = data.draw(st.integers(0, src.shape[0] - 1)), data.draw(st.integers(1, T - 1))
    changed = tgt.copy()
    changed[b, t] = (tgt[b, t] + data.draw(st.integers(1, m.tgt_vocab_size - 1))) % m.tgt_vocab_size
    base, out = m(src, tgt), m(src, changed)
    np.testing.assert_allclose(out[b, :t], base[b, :t], rtol=1e-12, atol=1e-12)
    assert not np.allclose(out[b, t], base[b, t], rtol=1e-9, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(_models(), st.data())
def test_property_greedy_decode_lengths_and_eos(m, data):
    """Every output has at most max_len tokens and no <eos>; each token is the most probable one
    (teacher forcing on the row alone, <pad> and <bos> excluded) and a row shorter than max_len
    stopped because <eos> was the most probable next token."""
    src, lengths = data.draw(_sources(m))
    max_len = data.draw(st.integers(1, 6))
    out = greedy_decode(m, src, max_len=max_len)
    assert len(out) == src.shape[0]
    for b, o in enumerate(out):
        assert len(o) <= max_len and m.eos_idx not in o
        logp = log_softmax(m(src[b:b + 1, :lengths[b]], np.array([[m.bos_idx] + o])))[0]
        logp[:, [m.pad_idx, m.bos_idx]] = -np.inf
        want = o + [m.eos_idx] if len(o) < max_len else o
        assert logp.argmax(-1)[:len(want)].tolist() == want


# --- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [_lstm, _transformer], ids=["lstm", "transformer"])
@pytest.mark.parametrize("src, tgt, err, match", [
    (np.array([[5, PAD_ID, 6]]), np.array([[BOS_ID]]), ValueError, "src: padding .* must come after every real token"),
    (np.array([[PAD_ID, PAD_ID]]), np.array([[BOS_ID]]), ValueError, "src: row 0 is all padding"),
    (np.array([[5, 9]]), np.array([[BOS_ID]]), ValueError, r"src: token ids must lie in \[0, 9\), got 9"),
    (np.array([[5, 6]]), np.array([[BOS_ID], [BOS_ID]]), ValueError, r"tgt_in: expected shape \(B, T\) with B=1"),
    (np.array([[5.0, 6.0]]), np.array([[BOS_ID]]), TypeError, "src: expected an integer array"),
    (np.array([5, 6]), np.array([[BOS_ID]]), ValueError, r"src: expected shape \(B, S\)"),
])
def test_bad_input(make, src, tgt, err, match):
    with pytest.raises(err, match=match):
        make()(src, tgt)


def test_bad_construction_and_decoding_arguments():
    with pytest.raises(ValueError, match="share_embeddings: needs one joint vocabulary"):
        TransformerSeq2Seq(9, 10, share_embeddings=True)
    with pytest.raises(ValueError, match="pad_idx, bos_idx, eos_idx: must differ"):
        LSTMSeq2Seq(9, 9, bos_idx=0)
    with pytest.raises(ValueError, match=r"eos_idx: expected an int in \[0, 9\)"):
        LSTMSeq2Seq(9, 9, eos_idx=9)
    with pytest.raises(ValueError, match="tgt_in: sequence length 5 exceeds max_len=4 of TransformerSeq2Seq"):
        _transformer(max_len=4)(SRC, np.full((3, 5), 5))
    with pytest.raises(ValueError, match="src: sequence length 4 exceeds max_len=3 of TransformerSeq2Seq"):
        _transformer(max_len=3)(SRC, TGT_IN)
    with pytest.raises(ValueError, match="length_norm: expected one of"):
        beam_search(_lstm(), SRC, length_norm="sqrt")
    with pytest.raises(ValueError, match="beam_size: expected a positive int"):
        beam_search(_lstm(), SRC, beam_size=0)
    with pytest.raises(RuntimeError, match="before forward"):
        _lstm().backward(np.zeros((1, 1, V), np.float32))


@pytest.mark.parametrize("decode", [greedy_decode, beam_search], ids=["greedy", "beam"])
def test_decode_max_len_must_fit_the_transformer(decode):
    """The default max_len=50 on a model with 6 positions: one clear error up front, naming max_len."""
    m = _transformer(max_len=6)
    with pytest.raises(ValueError, match=r"max_len: decoding up to 50 tokens needs 50 target positions, but the "
                                         r"model was built with max_len=6; pass max_len <= 6"):
        decode(m, SRC)
    decode(m, SRC, max_len=6)                                  # exactly the model's positions: fine
    decode(_lstm(), SRC, max_len=60)                           # the LSTM has no position limit
    with pytest.raises(ValueError, match=r"max_len: expected a positive int, got 0"):
        decode(m, SRC, max_len=0)
    with pytest.raises(TypeError, match=r"model: expected an LSTMSeq2Seq or TransformerSeq2Seq, got NoneType"):
        decode(None, SRC)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(d_model=6, nhead=4), ValueError, r"d_model: must be divisible by nhead=4 .* got d_model=6"),
    (dict(nhead=0), ValueError, r"nhead: expected a positive int, got 0"),
    (dict(num_encoder_layers=0), ValueError, r"num_encoder_layers: expected a positive int, got 0"),
    (dict(num_decoder_layers=-1), ValueError, r"num_decoder_layers: expected a positive int, got -1"),
    (dict(dim_feedforward=0), ValueError, r"dim_feedforward: expected a positive int, got 0"),
    (dict(max_len=0), ValueError, r"max_len: expected a positive int, got 0"),
    (dict(tie_output="no"), TypeError, r"tie_output: expected a bool, got 'no'"),
    (dict(norm_first=1), TypeError, r"norm_first: expected a bool, got 1"),
    (dict(share_embeddings="yes"), TypeError, r"share_embeddings: expected a bool, got 'yes'"),
    (dict(rng=-1), TypeError, r"rng: expected None, a non-negative int or a numpy Generator, got -1"),
])
def test_bad_transformer_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        _transformer(**kwargs)


@pytest.mark.parametrize("make", [
    lambda **kw: LSTMSeq2Seq(7, 9, embed_dim=4, hidden_size=4, **kw),
    lambda **kw: TransformerSeq2Seq(7, 9, d_model=4, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                                    dim_feedforward=4, **kw),
], ids=["lstm", "transformer"])
def test_pad_idx_must_fit_the_source_vocabulary(make):
    with pytest.raises(ValueError, match=r"pad_idx: expected an int in \[0, 7\) \(src_vocab_size: the source is "
                                         r"padded with it too\), got 7"):
        make(pad_idx=7, bos_idx=1, eos_idx=2)
    m = make(pad_idx=np.int64(0), bos_idx=np.int64(1), eos_idx=2)   # NumPy integers are ids too
    assert (m.pad_idx, m.bos_idx) == (0, 1) and type(m.pad_idx) is int


def _decode_state(make, src=SRC[:2]):
    m = make()
    return m, m.encode(src)


@pytest.mark.parametrize("make", [_lstm, _transformer], ids=["lstm", "transformer"])
@pytest.mark.parametrize("call, err, match", [
    (lambda m, st: m.decode_step(st, np.array([1, 2, 3])), ValueError,
     r"tokens: expected shape \(2,\), got shape \(3,\)"),
    (lambda m, st: m.decode_step(st, np.array([[1, 2]])), ValueError,
     r"tokens: expected shape \(2,\), got shape \(1, 2\)"),
    (lambda m, st: m.decode_step(st, np.array([1.0, 2.0])), TypeError,
     r"tokens: expected an integer array, got float64"),
    (lambda m, st: m.decode_step(st, np.array([1, 9])), ValueError, r"tokens: token ids must lie in \[0, 9\), got 9"),
    (lambda m, st: m.decode_step(st, np.array([-1, 2])), ValueError, r"tokens: token ids must lie in \[0, 9\), got -1"),
    (lambda m, st: m.decode_step(st, [1, 2]), TypeError, r"tokens: expected a numpy array, got list"),
    (lambda m, st: m.decode_step(tuple(st), np.array([1, 2])), TypeError, r"state: expected the \w+State of this "
                                                                           r"model's encode\(\), got tuple"),
    (lambda m, st: m.reorder_state(st, np.array([0, 5])), ValueError,
     r"rows: row indices into the state's 2 rows must lie in \[0, 2\), got 5"),
    (lambda m, st: m.reorder_state(st, np.array([0, -1])), ValueError, r"rows: .* must lie in \[0, 2\), got -1"),
    (lambda m, st: m.reorder_state(st, np.array([0.0, 1.0])), TypeError,
     r"rows: expected an integer array, got float64"),
    (lambda m, st: m.reorder_state(st, np.array([[0, 1]])), ValueError,
     r"rows: expected shape \(M,\), got shape \(1, 2\)"),
])
def test_bad_decoding_input(make, call, err, match):
    m, st = _decode_state(make)
    with pytest.raises(err, match=match):
        call(m, st)


def test_decode_step_past_max_len_names_tokens():
    m = _transformer(max_len=2)
    st = m.encode(SRC[:2, :2])
    tok = np.array([BOS_ID, BOS_ID])
    for _ in range(2):
        _, st = m.decode_step(st, tok)
    with pytest.raises(ValueError, match=r"tokens: this step makes the prefix length 3 exceeds max_len=2"):
        m.decode_step(st, tok)


@pytest.mark.parametrize("make", [_lstm, _transformer], ids=["lstm", "transformer"])
@pytest.mark.parametrize("dlogits, err, match", [
    (np.zeros((3, 3, V + 1), np.float32), ValueError, r"dlogits: expected shape \(3, 3, 9\), got shape \(3, 3, 10\)"),
    (None, TypeError, r"dlogits: expected a floating-point array .* got NoneType"),
    (np.zeros((3, 3, V), np.int64), TypeError, r"dlogits: expected a floating-point array .* got int64"),
    (np.zeros((3, 3, V), np.float64), TypeError,
     r"dlogits: expected dtype float32 \(the forward's output\), got float64"),
])
def test_bad_dlogits(make, dlogits, err, match):
    m = make()
    m(SRC, TGT_IN)
    with pytest.raises(err, match=match):
        m.backward(dlogits)


@pytest.mark.parametrize("call, match", [
    (lambda: length_penalty(3, method="x"), r"method: expected one of \('gnmt', 'average', 'none'\), got 'x'"),
    (lambda: length_penalty(0), r"length: expected a positive int, got 0"),
    (lambda: length_penalty(-2, alpha=0.6), r"length: expected a positive int, got -2"),
    (lambda: length_penalty(3, alpha=-1.0), r"alpha: expected a finite number >= 0 .* got -1.0"),
    (lambda: beam_search(_lstm(), SRC, alpha=-1.0), r"alpha: expected a finite number >= 0 .* got -1.0"),
    (lambda: beam_search(_lstm(), SRC, alpha=float("nan")), r"alpha: .* got nan"),
])
def test_bad_length_penalty(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- data utilities --------------------------------------------------------------------------

def test_word_tokenizer():
    en, fr = WordTokenizer(), WordTokenizer(lowercase=True, split_elision=True)
    assert en("Don't go, Tom!") == ["Don't", "go", ",", "Tom", "!"]
    assert en("It costs 3.50 (really).") == ["It", "costs", "3.50", "(", "really", ")", "."]
    assert fr("L'homme qu'il a vu\u202f!") == ["l'", "homme", "qu'", "il", "a", "vu", "!"]
    assert fr.detokenize(["l'", "homme", "est", "là", "."]) == "l'homme est là."
    assert en.detokenize(["He", "said", '"', "Hi", "!", '"', "to", "me", "."]) == 'He said "Hi!" to me.'


_WORD = st.sampled_from(["I", "don't", "know", "Tom's", "cat", "3.5", "it", "10:30", "ça"])
_PUNCT = st.sampled_from([",", ".", "!", "?", ";", ":"])


@given(st.lists(st.tuples(_WORD, st.one_of(st.none(), _PUNCT)), min_size=1, max_size=8))
def test_detokenize_inverts_tokenize(parts):
    text = " ".join(w + (p or "") for w, p in parts)                  # punctuation attached, as in English
    tok = WordTokenizer()
    assert tok.detokenize(tok(text)) == text


def test_vocab_and_padding():
    v = Vocab.build([["a", "b", "a"], ["c", "a", "b"], ["d"]], min_freq=2)
    assert v.itos == ["<pad>", "<bos>", "<eos>", "<unk>", "a", "b"] and len(v) == 6
    assert v.encode(["a", "z", "b"], add_bos=True, add_eos=True) == [BOS_ID, 4, UNK_ID, 5, EOS_ID]
    assert v.decode([BOS_ID, 4, UNK_ID, 5, EOS_ID, 4]) == ["a", "<unk>", "b"]
    assert Vocab.build([["a", "b", "c"]], max_size=5).itos[4:] == ["a"]
    np.testing.assert_array_equal(pad_batch([[1, 2, 3], [4]]), [[1, 2, 3], [4, PAD_ID, PAD_ID]])
    with pytest.raises(ValueError, match="length: 2 is shorter than the longest sequence"):
        pad_batch([[1, 2, 3]], length=2)
    with pytest.raises(ValueError, match=r"ids: 6 is not in \[0, 6\)"):
        v.decode([6])


def test_readers(tmp_path):
    text = "Go.\tVa !\nHi.\tSalut !\tCC-BY 2.0 (France) Attribution\n\n"
    (tmp_path / "fra.txt").write_text(text, encoding="utf-8")
    with zipfile.ZipFile(tmp_path / "fra-eng.zip", "w") as zf:
        zf.writestr("fra.txt", text)
    expected = [("Go.", "Va !"), ("Hi.", "Salut !")]
    assert read_tatoeba(tmp_path / "fra-eng.zip") == expected == read_tatoeba(tmp_path / "fra.txt")
    with pytest.raises(ValueError, match="member: 'deu.txt' is not in fra-eng.zip"):
        read_tatoeba(tmp_path / "fra-eng.zip", member="deu.txt")
    (tmp_path / "train.de").write_text("Ein Hund.\nZwei Katzen.\n", encoding="utf-8")
    (tmp_path / "train.en").write_text("A dog.\nTwo cats.\n", encoding="utf-8")
    assert read_multi30k(tmp_path, "train") == [("Ein Hund.", "A dog."), ("Zwei Katzen.", "Two cats.")]
    (tmp_path / "val.de").write_text("a\nb\n", encoding="utf-8")
    (tmp_path / "val.en").write_text("a\n", encoding="utf-8")
    with pytest.raises(ValueError, match="val.de has 2 lines but val.en has 1"):
        read_multi30k(tmp_path, "val")
    with pytest.raises(FileNotFoundError, match="split: no file 'test.de'"):
        read_multi30k(tmp_path, "test")
