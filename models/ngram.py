"""A smoothed n-gram baseline: interpolated Kneser-Ney (one discount per order) over the same tokens,
scored on the same held-out windows as train.py, so its bits per token compare with the networks'.

Run from the workspace root (/work/main):

    models/.venv/bin/python models/ngram.py                        # order 6, all of train.bin
    models/.venv/bin/python models/ngram.py --order 5 --max-train-tokens 20000000

On POP909 x 12 transpositions (60.6M tokens) a full fit takes ~15 s and ~2.5 GB here; orders 4/5/6/7
gave 2.86/2.71/2.50/2.58 held-out bits per token, hence order 6.

Writes models/checkpoints/ngram/metrics.json, including how many songs and tokens it counted.

Counting is numpy on integer-coded n-grams (356^7 < 2^63, so up to order 7 fits an int64). When
train.bin is over the token budget, whole songs are drawn at random (seeded) until it is reached,
so the subset still covers every song and transposition evenly in expectation. An n-gram never
spans two songs, and each held-out target sees only the tokens of its own window before it,
exactly like the networks.
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data


def select_songs(tokens, vocab, max_tokens, seed):
    """Whole songs, in a seeded random order, up to max_tokens (0 = all). Returns (tokens, songs)."""
    starts = np.flatnonzero(np.asarray(tokens) == vocab.bos)
    ends = np.append(starts[1:], len(tokens))
    if max_tokens <= 0 or len(tokens) <= max_tokens:
        return np.asarray(tokens, dtype=np.int64), len(starts)
    order = np.random.default_rng(seed).permutation(len(starts))
    lengths = (ends - starts)[order]
    take = order[:max(1, int(np.searchsorted(np.cumsum(lengths), max_tokens, side="right")))]
    take.sort()
    return np.concatenate([np.asarray(tokens[starts[i]:ends[i]], dtype=np.int64) for i in take]), len(take)


class KneserNey:
    def __init__(self, order, vocab_size, bos):
        assert 1 <= order and vocab_size ** order < 2 ** 63
        self.order, self.V, self.bos = order, vocab_size, bos

    def fit(self, tokens):
        V, n = self.V, len(tokens)
        # codes[k] = sorted unique k-gram codes and their raw counts, for k = 1..order.
        raw = {}
        code = tokens.copy()
        crosses = np.zeros(n, dtype=bool)  # k-gram at i holds a BOS after its first token: spans two songs
        for k in range(1, self.order + 1):
            if k > 1:
                code = code[:-1] * V + tokens[k - 1:]
                crosses = crosses[:-1] | (tokens[k - 1:] == self.bos)
            raw[k] = np.unique(code[~crosses], return_counts=True)
        del code, crosses
        # Adjusted counts: the top order keeps raw counts; a lower order counts how many distinct
        # tokens precede each k-gram (its continuation count), except k-grams that open a song
        # (start with BOS), which have nothing before them and keep their raw counts.
        self.tables = {}
        for k in range(1, self.order + 1):
            grams, counts = raw[k]
            if k < self.order:
                longer = raw[k + 1][0]
                suffixes, continuation = np.unique(longer % V ** k, return_counts=True)
                first_token = grams // V ** (k - 1)
                idx = np.minimum(np.searchsorted(suffixes, grams), len(suffixes) - 1)
                cont = np.where(suffixes[idx] == grams, continuation[idx], 0)
                counts = np.where(first_token == self.bos, counts, cont)
            counts = counts.astype(np.float64)
            n1, n2 = np.sum(counts == 1), np.sum(counts == 2)
            discount = n1 / (n1 + 2 * n2) if n1 > 0 else 0.5
            contexts, first, types = np.unique(grams // V, return_index=True, return_counts=True)
            totals = np.add.reduceat(counts, first) if len(counts) else np.zeros(0)
            self.tables[k] = dict(grams=grams, counts=counts, discount=float(discount),
                                  contexts=contexts, totals=totals, types=types.astype(np.float64))
        return self

    @staticmethod
    def _lookup(keys, values, queries, default=0.0):
        idx = np.minimum(np.searchsorted(keys, queries), max(len(keys) - 1, 0))
        found = (keys[idx] == queries) if len(keys) else np.zeros(len(queries), dtype=bool)
        return np.where(found, values[idx] if len(keys) else default, default), found

    def log2_probs(self, histories, targets, history_lengths):
        """log2 P(target | history) for a batch: histories [M, order-1] (most recent last),
        history_lengths [M] = how many of those tokens are real (the rest is ignored)."""
        V = self.V
        t1 = self.tables[1]
        unigram_counts, _ = self._lookup(t1["grams"], t1["counts"], targets)
        total1 = t1["counts"].sum()
        # Lowest order, interpolated with the uniform distribution so an unseen token stays possible.
        prob = (np.maximum(unigram_counts - t1["discount"], 0) + t1["discount"] * len(t1["grams"]) / V) / total1
        for k in range(2, self.order + 1):
            t = self.tables[k]
            usable = history_lengths >= k - 1
            context = np.zeros(len(targets), dtype=np.int64)
            for j in range(k - 1):  # the last k-1 tokens of the history
                context = context * V + histories[:, self.order - k + j]
            total, seen = self._lookup(t["contexts"], t["totals"], context)
            types, _ = self._lookup(t["contexts"], t["types"], context)
            count, _ = self._lookup(t["grams"], t["counts"], context * V + targets)
            seen &= usable
            safe_total = np.where(seen, total, 1.0)
            higher = (np.maximum(count - t["discount"], 0) + t["discount"] * types * prob) / safe_total
            prob = np.where(seen, higher, prob)
        return np.log2(prob)


def window_queries(windows, bar_indices, order):
    """Every scored target of the given windows, with the (order-1) tokens before it in its window."""
    histories, targets, lengths = [], [], []
    for i in bar_indices:
        inputs, window_targets = windows.window(i)
        padded = np.concatenate([np.zeros(order - 1, dtype=np.int64), inputs])
        for pos in np.flatnonzero(window_targets != data.IGNORE_INDEX):
            histories.append(padded[pos + 1:pos + order])  # inputs[pos-order+2 .. pos]
            targets.append(window_targets[pos])
            lengths.append(pos + 1)
    return (np.array(histories, dtype=np.int64).reshape(-1, order - 1), np.array(targets, dtype=np.int64),
            np.array(lengths, dtype=np.int64))


def held_out_bits(model, windows, bar_indices):
    histories, targets, lengths = window_queries(windows, bar_indices, model.order)
    return float(-model.log2_probs(histories, targets, lengths).mean()), len(targets)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--order", type=int, default=6)
    parser.add_argument("--data-dir", default="target/dataset")
    parser.add_argument("--out-dir", default="models/checkpoints/ngram")
    parser.add_argument("--max-train-tokens", type=int, default=0, help="0 = all of train.bin")
    parser.add_argument("--context-length", type=int, default=data.EVAL_CONTEXT)
    parser.add_argument("--eval-windows", type=int, default=data.EVAL_WINDOWS)
    parser.add_argument("--eval-seed", type=int, default=data.EVAL_SEED)
    parser.add_argument("--seed", type=int, default=1337, help="which songs make the training subset")
    args = parser.parse_args(argv)

    vocab = data.load_vocab()
    manifest = data.check_manifest(args.data_dir, vocab)
    start = time.time()
    train_all = data.load_tokens(os.path.join(args.data_dir, "train.bin"))
    train_tokens, train_songs = select_songs(train_all, vocab, args.max_train_tokens, args.seed)
    model = KneserNey(args.order, vocab.size, vocab.bos).fit(train_tokens)
    fit_seconds = time.time() - start

    valid = data.Windows(data.load_tokens(os.path.join(args.data_dir, "valid.bin")), vocab, args.context_length)
    eval_indices = data.eval_bar_indices(valid, args.eval_windows, args.eval_seed)
    bits, eval_tokens = held_out_bits(model, valid, eval_indices)

    total_songs = int(np.sum(np.asarray(train_all) == vocab.bos))
    metrics = dict(
        arch="ngram", smoothing="interpolated Kneser-Ney", order=args.order,
        train_songs=train_songs, train_songs_available=total_songs,
        train_tokens=len(train_tokens), train_tokens_available=len(train_all),
        discounts={k: t["discount"] for k, t in model.tables.items()},
        best_valid_bits_per_token=bits, final_valid_bits_per_token=bits,
        eval=dict(windows=len(eval_indices), tokens=eval_tokens, context_length=args.context_length,
                  seed=args.eval_seed),
        uniform_bits_per_token=math.log2(vocab.size), fit_seconds=round(fit_seconds, 1),
        data_manifest=manifest, vocab_hash=vocab.hash,
    )
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    print(f"{args.order}-gram on {len(train_tokens):,} tokens ({train_songs}/{total_songs} songs): "
          f"held-out {bits:.4f} bits/token over {eval_tokens:,} tokens (uniform {math.log2(vocab.size):.2f})")
    return metrics


if __name__ == "__main__":
    main()
