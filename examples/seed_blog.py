"""The blog post's Keras LSTM program, run on lstmkit with real speech data.

The program below is the seed recipe with ``keras`` replaced by ``lstmkit``. Data: UCI Japanese
Vowels (bundled in sktime): nine male speakers saying /ae/, 12 LPC cepstrum coefficients per
frame, 7-29 frames per utterance; 270 utterances to train on and 370 to test. Sequences are
zero-padded at the front (Keras's ``pad_sequences`` default) to 29 steps, and each of the 12
coefficients is standardised with the mean and spread of the training frames (padding stays 0).

Writes to ``runs/seed_blog/``: ``model.lstmkit`` (the trained model) and ``curves.png``.
Run it with ``make demo``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from lstmkit.data import load_japanese_vowels
from lstmkit.layers import LSTM, Dense
from lstmkit.models import Sequential, load_model
from lstmkit.utils import set_random_seed, to_categorical


def standardize(X: np.ndarray, lengths: np.ndarray, stats=None):
    """Z-score each feature over the real (unpadded) frames; returns (X, (mean, std))."""
    real = np.arange(X.shape[1])[None, :] >= X.shape[1] - lengths[:, None]  # pre-padded
    mean, std = stats if stats is not None else (X[real].mean(0), X[real].std(0))
    return np.where(real[..., None], (X - mean) / std, 0.0).astype("float32"), (mean, std)


def plot_curves(history: dict[str, list[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for key, ax in (("loss", ax_loss), ("accuracy", ax_acc)):
        ax.plot(epochs, history[key], label=f"train {key}")
        ax.plot(epochs, history[f"val_{key}"], label=f"validation {key}")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend()
    fig.suptitle("lstmkit: LSTM(128) -> Dense(softmax) on Japanese Vowels")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/seed_blog"))
    args = parser.parse_args()
    set_random_seed(args.seed)

    X_all, labels_all, lengths_all = load_japanese_vowels("train", return_lengths=True)
    X_test, labels_test, lengths_test = load_japanese_vowels("test", return_lengths=True)
    output_dim = int(labels_all.max()) + 1
    y_all = to_categorical(labels_all, output_dim)
    y_test = to_categorical(labels_test, output_dim)
    # 20% of the training utterances for validation; the test set stays unseen until the end
    order = np.random.permutation(len(X_all))
    val, train = order[:54], order[54:]
    X_train, stats = standardize(X_all[train], lengths_all[train])
    X_val, _ = standardize(X_all[val], lengths_all[val], stats)
    X_test, _ = standardize(X_test, lengths_test, stats)
    y_train, y_val = y_all[train], y_all[val]
    time_steps, input_dim = X_train.shape[1:]
    num_epochs, batch_size = args.epochs, args.batch_size

    # --- the seed program, unchanged but for the import ---------------------------------
    model = Sequential()
    model.add(LSTM(units=128, input_shape=(time_steps, input_dim)))
    model.add(Dense(units=output_dim, activation="softmax"))
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    history = model.fit(
        X_train,
        y_train,
        validation_data=(X_val, y_val),
        epochs=num_epochs,
        batch_size=batch_size,
    )
    # ------------------------------------------------------------------------------------

    model.summary()
    loss, accuracy = model.evaluate(X_test, y_test, verbose=0)
    print(f"Test accuracy on {len(X_test)} unseen utterances: {accuracy:.4f} (loss {loss:.4f})")

    args.out.mkdir(parents=True, exist_ok=True)
    model_path, plot_path = args.out / "model.lstmkit", args.out / "curves.png"
    model.save(model_path, overwrite=True)  # the demo's own output: each run replaces it
    reloaded = load_model(model_path)
    same = np.array_equal(reloaded.predict(X_test, verbose=0), model.predict(X_test, verbose=0))
    print(f"Saved {model_path} (reloaded model predicts identically: {same})")
    plot_curves(history.history, plot_path)
    print(f"Wrote training curves to {plot_path}")


if __name__ == "__main__":
    main()
