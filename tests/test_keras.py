import re
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinylm
from tinylm.gradcheck import check_module, numerical_grad, rel_error
from tinylm.keras.callbacks import Callback, EarlyStopping
from tinylm.keras.layers import (GRU, LSTM, Bidirectional, Conv1D, Dense, Dropout, Embedding, GlobalAveragePooling1D,
                                 GlobalMaxPooling1D, SimpleRNN)
from tinylm.keras.models import Sequential, load_model
from tinylm.nn.loss import CrossEntropyLoss
from tinylm.optim import SGD, Adam, NonFiniteLossError


def ids_and_labels(rng, n=64, T=8, vocab=50):
    x = rng.integers(1, vocab, (n, T))
    return x, (x[:, -1] > vocab // 2).astype(np.int64)


# --- the source article's Section 5 program ----------------------------------------------------

def test_article_section_5_program_runs_with_only_its_imports_changed(rng):
    x, y = ids_and_labels(rng, n=40, T=6, vocab=10000)
    train_data, test_data = (x[:32], y[:32]), (x[32:], y[32:])

    # --- the article's code; only the three import lines differ ---
    import tinylm as tf  # noqa: F401  (was: import tensorflow as tf)
    from tinylm.keras.layers import Embedding, LSTM, Dense
    from tinylm.keras.models import Sequential

    # 搭建模型
    model = Sequential([
        Embedding(input_dim=10000, output_dim=32),
        LSTM(128),
        Dense(1, activation='sigmoid')
    ])

    # 编译模型
    model.compile(optimizer='adam', loss='binary_crossentropy', metrics=['accuracy'])

    # 训练模型 (epochs=1 instead of 10: a test)
    model.fit(train_data, epochs=1, batch_size=32, validation_data=test_data)
    # --- end of the article's code ---

    assert set(model.history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert model.predict(test_data[0]).shape == (8, 1)


def test_fit_accepts_arrays_a_pair_and_batches(rng):
    x, y = ids_and_labels(rng, n=20, T=5)
    batches = [(x[:10], y[:10]), (x[10:], y[10:])]

    class Loader:                                            # re-iterable, like a tf.data.Dataset
        def __iter__(self):
            return iter(batches)

    for data, kwargs in [((x, y), {}), (((x, y),), {}), ((batches,), {}), ((Loader(),), {}),
                         ((x,), {"y": y}), ((x.tolist(), y.tolist()), {})]:
        model = Sequential([Embedding(50, 4), SimpleRNN(3), Dense(1, activation="sigmoid")])
        model.compile("sgd", "binary_crossentropy", ["accuracy"])
        history = model.fit(*data, epochs=2, batch_size=8, verbose=0, validation_data=batches, **kwargs)
        assert [len(v) for v in history.history.values()] == [2, 2, 2, 2]
        assert history.epoch == [0, 1]


def test_fit_learns(rng):
    x, y = ids_and_labels(rng, n=256, T=6)
    model = Sequential([Embedding(50, 8), LSTM(16), Dense(1, activation="sigmoid")])
    model.compile(lambda params: Adam(params, lr=1e-2), "binary_crossentropy", ["accuracy"])
    history = model.fit(x, y, epochs=6, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert model.evaluate(x, y, verbose=0)[1] > 0.9


def test_a_generator_lasts_one_epoch(rng):
    x, y = ids_and_labels(rng, n=8)
    model = Sequential([Embedding(50, 4), GlobalAveragePooling1D(), Dense(1, activation="sigmoid")])
    model.compile("sgd", "binary_crossentropy")
    with pytest.raises(ValueError, match="yielded no batch in epoch 2"):
        model.fit(((x, y) for _ in range(1)), epochs=2, verbose=0)


# --- gradient checks: every layer's backward, and the losses ------------------------------------

def masked_batch(rng, B=3, T=6, vocab=9):
    ids = rng.integers(1, vocab, (B, T))
    ids[0, :2] = 0                                           # padded in front (pad_sequences' default) ...
    ids[1, 4:] = 0                                           # ... and behind
    return ids


MODELS = {
    "conv_birnn_gru_pool": lambda: [
        Embedding(9, 3, mask_zero=True), Conv1D(3, 2, padding="same", activation="tanh"),
        Bidirectional(LSTM(2, return_sequences=True)), GRU(2, return_sequences=True),
        GlobalMaxPooling1D(), Dropout(0.5), Dense(3, activation="tanh"), Dense(1, activation="sigmoid")],
    "valid_conv_simple_rnn": lambda: [
        Embedding(9, 3, mask_zero=True), Conv1D(2, 3, activation="relu"), SimpleRNN(2, return_sequences=True),
        GlobalAveragePooling1D(), Dense(2, activation="softmax")],
    "bigru_last_state": lambda: [
        Embedding(9, 3, mask_zero=True), Bidirectional(GRU(2)), Dense(2)],
    "unmasked_lstm_sequence": lambda: [
        Embedding(9, 3), LSTM(2, return_sequences=True), Dense(2, activation="relu")],
    # the option branches: no biases, a strided and dilated "valid" convolution (T 6 -> 2), ReLU recurrence
    "strided_dilated_no_bias_birnn_relu": lambda: [
        Embedding(9, 3, mask_zero=True), Conv1D(3, 2, strides=2, dilation_rate=2, use_bias=False),
        Bidirectional(SimpleRNN(2, activation="relu", return_sequences=True)), GlobalAveragePooling1D(),
        Dense(2, activation="tanh", use_bias=False)],
}


# Per model, the tightest of 1e-7, 1e-6, 1e-5 at least 100x above the achieved error. The errors
# are rounding-limited (they fall as eps grows): some recurrent weights' gradients are small next to L.
MODEL_TOL = {"conv_birnn_gru_pool": 1e-5, "valid_conv_simple_rnn": 1e-5, "bigru_last_state": 1e-6,
             "unmasked_lstm_sequence": 1e-7, "strided_dilated_no_bias_birnn_relu": 1e-6}


@pytest.mark.parametrize("name", MODELS)
def test_gradcheck_through_every_layer(rng, name):
    model = Sequential(MODELS[name]())
    ids = masked_batch(rng)
    model.build((None, ids.shape[1]))
    model.double()
    report = check_module(model, ids, tol=MODEL_TOL[name])   # model(ids) runs in inference mode: dropout off
    assert set(report.errors) == {n for n, _ in model.named_parameters()}


LOSS_CASES = {
    "fused_bce": (lambda: [Embedding(9, 3, mask_zero=True), LSTM(2), Dense(1, activation="sigmoid")],
                  "binary_crossentropy", lambda rng: rng.integers(0, 2, 3).astype(float)),
    "clipped_bce": (lambda: [Embedding(9, 3), Dense(1, activation="sigmoid"), GlobalAveragePooling1D()],
                    "binary_crossentropy", lambda rng: rng.random(3)),
    "fused_sparse_ce": (lambda: [Embedding(9, 3, mask_zero=True), GRU(2), Dense(3, activation="softmax")],
                        "sparse_categorical_crossentropy", lambda rng: rng.integers(0, 3, 3)),
    "clipped_sparse_ce": (lambda: [Embedding(9, 3), GRU(2), Dense(3, activation="softmax"), Dropout(0.0)],
                          "sparse_categorical_crossentropy", lambda rng: rng.integers(0, 3, (3, 1))),
    "mse": (lambda: [Embedding(9, 3), SimpleRNN(2), Dense(1)], "mse", lambda rng: rng.standard_normal(3)),
    "module_loss": (lambda: [Embedding(9, 3), GRU(2), Dense(4)], CrossEntropyLoss(), lambda rng: rng.integers(0, 4, 3)),
}


@pytest.mark.parametrize("name", LOSS_CASES)
def test_gradcheck_loss_and_model(rng, name):
    layers, loss, targets = LOSS_CASES[name]
    model = Sequential(layers())
    model.compile("sgd", loss)
    ids, y = masked_batch(rng), targets(rng)
    model.build((None, ids.shape[1]))
    model.double().eval()
    assert model._loss.from_logits == name.startswith("fused")
    model.zero_grad()
    model._forward_loss(ids, y)
    model._backward_loss()
    for n, p in model.named_parameters():
        numeric = numerical_grad(lambda: model._forward_loss(ids, y)[0], p.data)
        assert rel_error(p.grad, numeric) < 1e-6, n


def test_fused_bce_equals_clipped_bce_where_both_are_exact(rng):
    layers = lambda: [Embedding(9, 3), LSTM(2), Dense(1, activation="sigmoid")]      # noqa: E731
    fused = Sequential(layers())
    clipped = Sequential(layers() + [Dropout(0.0)])          # not ending in the Dense: Keras' clipped formula
    ids, y = masked_batch(rng), np.array([1.0, 0.0, 1.0])
    fused.build((None, 6))
    clipped.build((None, 6))
    clipped.load_state_dict(fused.state_dict())
    fused.compile("sgd", "binary_crossentropy")
    clipped.compile("sgd", "binary_crossentropy")
    p = fused.predict(ids)[:, 0]
    expected = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert fused.test_on_batch(ids, y) == pytest.approx(expected, rel=1e-5)
    assert clipped.test_on_batch(ids, y) == pytest.approx(expected, rel=1e-5)


# --- layers: Keras semantics --------------------------------------------------------------------

@pytest.mark.parametrize("layer", [lambda: LSTM(3, return_sequences=True), lambda: GRU(3, return_sequences=True),
                                   lambda: SimpleRNN(3, return_sequences=True),
                                   lambda: Bidirectional(LSTM(3, return_sequences=True)), lambda: LSTM(3),
                                   lambda: Bidirectional(GRU(3))])
def test_masked_recurrence_equals_the_unpadded_sequence(rng, layer):
    model = Sequential([Embedding(9, 4, mask_zero=True), layer()])
    seq = rng.integers(1, 9, 4)
    alone = model(seq[None, :])[0]
    for padded, real in [(np.r_[0, 0, 0, seq], slice(3, 7)), (np.r_[seq, 0, 0], slice(0, 4))]:
        out = model(np.stack([padded, rng.integers(1, 9, padded.size)]))[0]
        if out.ndim == 1:                                    # the final state
            np.testing.assert_allclose(out, alone, rtol=1e-5, atol=1e-6)
        else:                                                # the sequence: real steps as alone, zeros elsewhere
            np.testing.assert_allclose(out[real], alone, rtol=1e-5, atol=1e-6)
            assert not np.delete(out, np.arange(out.shape[0])[real], axis=0).any()


def test_global_max_pooling_ignores_padding(rng):
    model = Sequential([Embedding(9, 4, mask_zero=True), GlobalMaxPooling1D()])
    ids = np.array([[0, 0, 3, 5]])
    emb = model.layers[0]
    out = model(ids)
    np.testing.assert_allclose(out[0], emb.embedding.weight.data[[3, 5]].max(axis=0))


@pytest.mark.parametrize("kernel_size", [1, 2, 3, 4])
def test_conv1d_same_padding_is_keras(rng, kernel_size):
    layer = Conv1D(2, kernel_size, padding="same", dilation_rate=1)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    y = layer(x)
    assert y.shape == (2, 5, 2)
    # TensorFlow's "same": (k - 1) zeros in all, the extra one of an even kernel behind
    left = (kernel_size - 1) // 2
    xp = np.pad(x, ((0, 0), (left, kernel_size - 1 - left), (0, 0)))
    w, b = layer.conv.weight.data, layer.conv.bias.data      # (F, C, K)
    expected = np.stack([np.einsum("btc,fct->bf", xp[:, l:l + kernel_size], w) for l in range(5)], axis=1) + b
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_conv1d_valid_output_and_mask(rng):
    model = Sequential([Embedding(9, 3, mask_zero=True), Conv1D(2, 3, strides=2)])
    model(np.array([[1, 2, 3, 0, 0, 0, 0]]))
    conv = model.layers[1]
    assert conv.output_shape == (None, 3, 2)
    # windows start at 0, 2, 4 and cover 3 steps: only the first two reach the three real ones
    np.testing.assert_array_equal(conv.compute_mask(None), [[True, True, False]])


def test_keras_initialisation():
    model = Sequential([Embedding(100, 8), LSTM(4), Dense(2)])
    model.build((None, 5))
    assert np.abs(model.layers[0].embedding.weight.data).max() <= 0.05
    rnn = model.layers[1].rnn
    np.testing.assert_array_equal(rnn.bias_ih_l0.data, np.r_[np.zeros(4), np.ones(4), np.zeros(8)])
    np.testing.assert_allclose(rnn.weight_hh_l0.data.T @ rnn.weight_hh_l0.data, np.eye(4), atol=1e-6)
    assert not model.layers[2].linear.bias.data.any()


def test_summary_names_shapes_and_counts():
    model = Sequential([Embedding(1000, 16, input_length=10), Bidirectional(LSTM(8)), Dense(1, activation="sigmoid"),
                        Dense(1)])
    lines = []
    model.summary(print_fn=lines.append)
    text = lines[0]
    assert re.search(r"\n embedding \(Embedding\) +\(None, 10, 16\) +16,000\n", text)
    # tinylm's LSTM has PyTorch's two bias vectors: 4 * (16*8 + 8*8 + 2*8) per direction
    assert re.search(r"\n bidirectional \(Bidirectional\) +\(None, 16\) +1,664\n", text)
    assert 2 * 4 * (16 * 8 + 8 * 8 + 2 * 8) == 1664
    assert "dense_1 (Dense)" in text and f"Total params: {model.num_parameters():,}" in text
    unbuilt = Sequential([Dense(2)])
    unbuilt.summary(print_fn=lines.append)
    assert "? (unbuilt)" in lines[1]


def test_save_and_load_model(rng, tmp_path):
    x, y = ids_and_labels(rng, n=16)
    model = Sequential([Embedding(50, 4, mask_zero=True), Bidirectional(GRU(3)), Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.safetensors")
    back = load_model(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(back.predict(x), model.predict(x))
    assert [type(layer) for layer in back.layers] == [type(layer) for layer in model.layers]
    assert back.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0))
    tinylm.io.save(tmp_path / "plain.safetensors", {"w": np.zeros(2)})
    with pytest.raises(ValueError, match="is not a saved tinylm.keras model"):
        load_model(tmp_path / "plain.safetensors")
    with pytest.raises(ValueError, match="save: the model is not built yet"):
        Sequential([Dense(1)]).save(tmp_path / "x.safetensors")


@given(B=st.integers(1, 3), T=st.integers(3, 8), k=st.integers(1, 3), strides=st.integers(1, 2),
       units=st.integers(1, 4), seq=st.booleans())
def test_output_shapes_match_compute_output_shape(B, T, k, strides, units, seq):
    model = Sequential([Embedding(9, 3), Conv1D(2, k, strides=strides), GRU(units, return_sequences=seq),
                        Dense(units + 1)])
    y = model(np.ones((B, T), dtype=np.int64))
    assert y.shape == (B,) + model.layers[-1].output_shape[1:]
    assert model.backward(np.ones_like(y)) is None           # token ids get no gradient


# --- compile, fit, callbacks, progress ----------------------------------------------------------

def test_optimizer_forms(rng):
    x, y = ids_and_labels(rng, n=8)
    model = Sequential([Embedding(50, 4), GRU(2), Dense(1, activation="sigmoid")])
    model.build((None, 8))
    model.compile(SGD(model.parameters(), lr=0.1), "binary_crossentropy")
    model.fit(x, y, verbose=0)
    other = Sequential([Embedding(50, 4), GRU(2), Dense(1, activation="sigmoid")])
    other.compile(SGD(model.parameters(), lr=0.1), "binary_crossentropy")
    with pytest.raises(ValueError, match="optimizer: does not hold the model's parameters"):
        other.fit(x, y, verbose=0)


def test_early_stopping_and_restore_best_weights(rng):
    x, y = ids_and_labels(rng, n=16)
    model = Sequential([Embedding(50, 4), GRU(2), Dense(1, activation="sigmoid")])
    model.compile(lambda params: SGD(params, lr=0.0), "binary_crossentropy")    # nothing can improve
    history = model.fit(x, y, epochs=10, verbose=0, validation_data=(x, y),
                        callbacks=[EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)])
    assert history.epoch == [0, 1, 2]                        # epoch 0 sets the best; 2 epochs of patience
    with pytest.raises(ValueError, match="monitor 'val_loss' is not in the epoch logs.*pass validation_data"):
        model.fit(x, y, epochs=2, verbose=0, callbacks=[EarlyStopping()])


def test_callbacks_see_every_batch_and_epoch(rng):
    x, y = ids_and_labels(rng, n=20)

    class Recorder(Callback):
        def __init__(self):
            super().__init__()
            self.events = []

        def on_train_batch_end(self, batch, logs=None):
            self.events.append(("batch", batch, sorted(logs)))

        def on_epoch_end(self, epoch, logs=None):
            self.events.append(("epoch", epoch, sorted(logs)))

    rec = Recorder()
    model = Sequential([Embedding(50, 4), GRU(2), Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", ["accuracy"])
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[rec])
    assert rec.model is model
    assert [e[:2] for e in rec.events] == [("batch", 0), ("batch", 1), ("batch", 2), ("epoch", 0)]
    assert rec.events[0][2] == ["accuracy", "loss"]


def test_accuracy_metric_and_evaluate(rng):
    x, y = ids_and_labels(rng, n=30)
    model = Sequential([Embedding(50, 4), GRU(2), Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", ["accuracy"])
    loss, acc = model.evaluate(x, y, batch_size=7, verbose=0)
    assert acc == pytest.approx(np.mean((model.predict(x)[:, 0] > 0.5) == y))
    assert model.evaluate(x, y, verbose=0, return_dict=True) == pytest.approx({"loss": loss, "accuracy": acc})
    assert model.train_on_batch(x, y)[0] == pytest.approx(loss, rel=1e-5)


def test_verbose_modes(rng, capsys, monkeypatch):
    x, y = ids_and_labels(rng, n=16)
    model = Sequential([Embedding(50, 4), GRU(2), Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", ["accuracy"])
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    model.fit(x, y, epochs=2, batch_size=8, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[1].startswith("2/2 - ") and "loss: " in lines[1]
    pytest.importorskip("tqdm")
    model.fit(x, y, epochs=1, batch_size=8, verbose=1)       # tqdm's bar, with the running loss and metrics
    out = capsys.readouterr().out
    assert out.startswith("Epoch 1/1\n") and "2/2" in out and "loss: " in out and "accuracy: " in out
    monkeypatch.setitem(sys.modules, "tqdm", None)           # no tqdm: a plain line, redrawn in place
    model.fit(x, y, epochs=1, batch_size=8, verbose=1)
    out = capsys.readouterr().out
    assert out.startswith("Epoch 1/1\n") and "\r2/2 - " in out and "accuracy: " in out


def test_nan_loss_stops_with_the_step():
    model = Sequential([Dense(1, activation="sigmoid")])
    model.compile("sgd", "binary_crossentropy")
    x = np.ones((6, 2))
    x[3, 0] = np.nan                                         # second batch of 3
    with pytest.raises(NonFiniteLossError, match="loss is nan at step 2"):
        model.fit(x, np.ones(6), batch_size=3, shuffle=False, verbose=0)


# --- bad input ----------------------------------------------------------------------------------

def article_model():
    model = Sequential([Embedding(input_dim=50, output_dim=4), LSTM(3), Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", ["accuracy"])
    return model


@pytest.mark.parametrize("bad, error, match", [
    (lambda m, x, y: m.fit(x[:, 0], y, verbose=0), ValueError,
     r"lstm \(LSTM\): input: expected 3 dims \(batch, steps, features\), got shape \(None, 4\)"),
    (lambda m, x, y: m.fit(x + 100, y, verbose=0), ValueError,
     r"embedding \(Embedding\): x: token ids must lie in \[0, input_dim=50\), got 1\d\d"),
    (lambda m, x, y: m.fit(x, y[:-1], verbose=0), ValueError, r"y: expected 10 targets, one per sample of x, got 9"),
    (lambda m, x, y: m.fit(x.astype(float), y, verbose=0), TypeError, r"x: expected an integer array"),
    (lambda m, x, y: m.fit(x, y + 1, verbose=0), ValueError,
     r"y: loss 'binary_crossentropy' needs targets in \[0, 1\]"),
    (lambda m, x, y: m.fit(x, verbose=0), ValueError, r"y: targets are missing"),
    (lambda m, x, y: m.fit([[1, 2], [3]], y[:2], verbose=0), ValueError, r"x: sequences of different lengths"),
    (lambda m, x, y: m.fit(x, np.c_[y, y], verbose=0), ValueError, r"y: expected shape \(10, 1\)"),
    (lambda m, x, y: m.fit(x, y, epochs=0), ValueError, r"epochs: expected a positive int"),
    (lambda m, x, y: m.fit(x, y, verbose=3), ValueError, r"verbose: expected one of \(0, 1, 2\)"),
    (lambda m, x, y: m.compile("rmsprop", "binary_crossentropy"), ValueError, r"optimizer: expected one of"),
    (lambda m, x, y: m.compile("adam", "hinge"), ValueError, r"loss: expected one of"),
    (lambda m, x, y: m.compile("adam", "mse", ["auc"]), ValueError, r"metrics: expected one of"),
    (lambda m, x, y: m.fit(x, y, verbose=0, shuffle="yes"), TypeError, r"shuffle: expected a bool, got 'yes'"),
    (lambda m, x, y: m.fit(x, y, verbose=0, validation_data=x), ValueError,
     r"validation_data: targets are missing; pass an \(x, y\) pair"),
    (lambda m, x, y: m(x, training="no"), TypeError, r"training: expected a bool, got 'no'"),
])
def test_bad_input(rng, bad, error, match):
    x, y = ids_and_labels(rng, n=10, T=4)
    with pytest.raises(error, match=match):
        bad(article_model(), x, y)


def test_wrong_rank_after_building(rng):
    model = article_model()
    x, y = ids_and_labels(rng, n=10, T=4)
    model.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match=r"x: expected 2 dims, like the input shape \(None, 4\) the model was built "
                                         r"for, got shape \(10, 4, 1\)"):
        model.predict(x[..., None])


def test_mask_errors(rng):
    model = Sequential([Embedding(9, 3, mask_zero=True), LSTM(2)])
    with pytest.raises(ValueError, match=r"lstm \(LSTM\): mask: the real steps of sequence 1 are not contiguous"):
        model(np.array([[1, 2, 3], [1, 0, 2]]))
    with pytest.raises(ValueError, match=r"mask: sequence 0 has no real step \(all padding\)"):
        model(np.array([[0, 0, 0], [1, 2, 3]]))


def test_sparse_targets_out_of_range(rng):
    model = Sequential([Embedding(9, 3), GRU(2), Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"y: class ids must lie in \[0, 3\) \(the model's 3 outputs\)"):
        model.fit(np.ones((4, 2), dtype=np.int64), np.array([0, 1, 3, 0]), verbose=0)


def test_structure_errors():
    with pytest.raises(TypeError, match="layer: expected a SimpleRNN, LSTM or GRU layer, got Dense"):
        Bidirectional(Dense(2))
    with pytest.raises(RuntimeError, match="compile the model first"):
        Sequential([Dense(1)]).fit(np.ones((2, 2)), np.ones(2))
    with pytest.raises(ValueError, match="the name 'a' is already used"):
        Sequential([Dense(1, name="a"), Dense(1, name="a")])
    with pytest.raises(ValueError, match="reserved by Sequential"):
        Sequential([Dense(1, name="layers")])
    with pytest.raises(ValueError, match=r"padding: 'same' is supported with strides=1 only"):
        Conv1D(2, 3, strides=2, padding="same")
    with pytest.raises(RuntimeError, match=r"dense \(Dense\): backward called before forward"):
        Dense(2).backward(np.ones((1, 2)))
    with pytest.raises(ValueError, match="activation: expected one of"):
        Dense(2, activation="gelu")
    names = [layer.name for layer in Sequential([Dense(1), Dense(1), Conv1D(1, 1), GlobalMaxPooling1D()]).layers]
    assert names == ["dense", "dense_1", "conv1d", "global_max_pooling1d"]




def test_embedding_input_length_is_enforced(rng):
    emb = Embedding(10, 4, input_length=5)
    with pytest.raises(ValueError, match=r"embedding \(Embedding\): x: expected shape \(batch, input_length=5\), "
                                         r"got shape \(2, 3\)"):
        emb(np.ones((2, 3), int))
    model = Sequential([Embedding(10, 4, input_length=5), LSTM(3), Dense(2)])
    model.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"x: expected shape \(batch, input_length=5\), got shape \(6, 3\)"):
        model.fit(rng.integers(0, 10, (6, 3)), np.zeros(6, int), verbose=0)
    model.fit(rng.integers(0, 10, (6, 5)), np.zeros(6, int), verbose=0)       # the right length trains


@pytest.mark.parametrize("make, error, match", [
    (lambda: Dense(3, input_shape=3), ValueError, r"input_shape: expected a tuple of positive ints or None .*got 3"),
    (lambda: Dense(3, input_shape=(0,)), ValueError, r"input_shape: .*got \(0,\)"),
    (lambda: Embedding(10, 4, input_length=0), ValueError, r"input_length: expected a positive int, got 0"),
    (lambda: Embedding(10, 4, mask_zero="yes"), TypeError, r"mask_zero: expected a bool, got 'yes'"),
    (lambda: LSTM(3, return_sequences=1), TypeError, r"return_sequences: expected a bool, got 1"),
    (lambda: Dense(3, use_bias="no"), TypeError, r"use_bias: expected a bool, got 'no'"),
    (lambda: Sequential(Dense(3)), TypeError, r"layers: expected a list of layers, got Dense \(wrap it in a list"),
    (lambda: Sequential([Dense(1)]).build(None), ValueError,
     r"input_shape: expected a tuple of positive ints or None \(batch dimension first\), e\.g\. \(None, 3\)"),
    (lambda: Sequential([Dense(1)]).build(3), ValueError, r"input_shape: .*got 3"),
])
def test_bad_construction(make, error, match):
    with pytest.raises(error, match=match):
        make()
