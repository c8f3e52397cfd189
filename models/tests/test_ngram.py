import math

import numpy as np

import data
import ngram


def test_ngram_beats_uniform_on_the_shared_windows(synthetic_dir, tmp_path):
    metrics = ngram.main(["--data-dir", synthetic_dir, "--out-dir", str(tmp_path), "--order", "5",
                          "--context-length", "64", "--eval-windows", "16"])
    bits = metrics["best_valid_bits_per_token"]
    assert math.isfinite(bits) and 0 < bits < math.log2(356) - 1.0
    assert (tmp_path / "metrics.json").exists()
    # The same targets as train.py's evaluation: every non-ignored target of the shared windows.
    vocab = data.load_vocab()
    windows = data.Windows(data.load_tokens(f"{synthetic_dir}/valid.bin"), vocab, 64)
    indices = data.eval_bar_indices(windows, 16, data.EVAL_SEED)
    _, targets = windows.batch(indices)
    assert metrics["eval"]["tokens"] == int((targets != data.IGNORE_INDEX).sum())


def test_kneser_ney_is_a_distribution(vocab, synthetic_dir):
    tokens = np.asarray(data.load_tokens(f"{synthetic_dir}/train.bin"), dtype=np.int64)
    model = ngram.KneserNey(4, vocab.size, vocab.bos).fit(tokens)
    windows = data.Windows(data.load_tokens(f"{synthetic_dir}/valid.bin"), vocab, 64)
    histories, _, lengths = ngram.window_queries(windows, [0, 3], 4)
    for i in (0, 1, 2, 5, 40):  # short histories (window start) and full ones
        h = np.repeat(histories[i:i + 1], vocab.size, axis=0)
        probs = 2.0 ** model.log2_probs(h, np.arange(vocab.size), np.repeat(lengths[i:i + 1], vocab.size))
        assert abs(probs.sum() - 1.0) < 1e-9 and (probs > 0).all()


def test_subset_takes_whole_songs(vocab, synthetic_dir):
    tokens = data.load_tokens(f"{synthetic_dir}/train.bin")
    subset, songs = ngram.select_songs(tokens, vocab, max_tokens=len(tokens) // 3, seed=0)
    assert 0 < len(subset) <= len(tokens) // 3 and songs < 40
    assert subset[0] == vocab.bos and subset[-1] == vocab.eos
    assert (subset == vocab.bos).sum() == (subset == vocab.eos).sum() == songs
