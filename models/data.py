"""Data helpers shared by train.py, ngram.py and export.py: the vocabulary, the token files and the
training/evaluation windows. Everything runs from the workspace root (/work/main).

The vocabulary comes from models/vocab.json, written by Rust (`cargo xtask vocab`); nothing here
defines tokens of its own.

A tiny synthetic data set, for tests and smoke runs only (never train a shipped model on it):

    models/.venv/bin/python models/data.py --synthetic target/synthetic-dataset
"""

import argparse
import json
import os
from dataclasses import dataclass

import numpy as np

VOCAB_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vocab.json")  # models/vocab.json
IGNORE_INDEX = -1  # target value that the loss (and every metric) skips
# The held-out evaluation: the same windows for every architecture, so bits per token compare.
EVAL_CONTEXT = 512
EVAL_WINDOWS = 256
EVAL_SEED = 1234


@dataclass
class Vocab:
    size: int
    hash: str
    tokens: list  # names in id order
    groups: dict  # group name -> (start, end) id range, end exclusive
    header_length: int

    @property
    def pad(self):
        return self.groups["pad"][0]

    @property
    def bos(self):
        return self.groups["bos"][0]

    @property
    def eos(self):
        return self.groups["eos"][0]

    @property
    def bar(self):
        return self.groups["bar"][0]

    def group_ids(self, name):
        start, end = self.groups[name]
        return np.arange(start, end)


def load_vocab(path=VOCAB_PATH):
    with open(path) as f:
        raw = json.load(f)
    groups = {name: (int(r[0]), int(r[1])) for name, r in raw["groups"].items()}
    vocab = Vocab(int(raw["size"]), str(raw["hash"]), list(raw["tokens"]), groups, int(raw["header_length"]))
    assert len(vocab.tokens) == vocab.size, "vocab.json: tokens and size disagree"
    for name in ("pad", "bos", "eos", "bar"):
        start, end = groups[name]
        assert end - start == 1, f"vocab.json: group {name} should hold exactly one token"
    return vocab


def load_tokens(path):
    """A token file: little-endian uint16 ids, songs concatenated. Memory-mapped, so the full
    12-transposition training set never has to fit in RAM twice."""
    return np.memmap(path, dtype="<u2", mode="r")


def check_manifest(data_dir, vocab):
    """Refuse a data set made with a different vocabulary, when its manifest says which one."""
    path = os.path.join(data_dir, "manifest.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        manifest = json.load(f)
    data_hash = manifest.get("vocab_hash")
    if data_hash is not None and data_hash != vocab.hash:
        raise SystemExit(f"{path}: vocabulary hash {data_hash} differs from models/vocab.json ({vocab.hash}); "
                         "rebuild the data set (cargo xtask dataset)")
    return manifest


class Windows:
    """Cuts training/evaluation windows out of one token file.

    A window starts at a BAR token b and is prefixed with its song's header (BOS TEMPO KEY MOOD),
    which is how the plugin prefills too: header + the latest bars. It never crosses into the next
    song: after the song's EOS the inputs are PAD and the targets IGNORE_INDEX.
    """

    def __init__(self, tokens, vocab, context_length):
        self.tokens = tokens
        self.vocab = vocab
        self.context_length = context_length
        self.header_length = vocab.header_length
        assert context_length > self.header_length
        self.bars = np.flatnonzero(tokens == vocab.bar)
        bos_at = np.flatnonzero(tokens == vocab.bos)
        eos_at = np.flatnonzero(tokens == vocab.eos)
        assert len(self.bars) > 0 and len(bos_at) > 0, "token file has no BAR or no BOS"
        # The song of bar b opens at the last BOS at or before b ...
        song = np.searchsorted(bos_at, self.bars, side="right") - 1
        assert (song >= 0).all(), "token file has BAR tokens before its first BOS"
        self.bar_song_start = bos_at[song]
        # ... and ends at the first EOS after b (or the end of the file, for a last song without EOS).
        next_eos = np.searchsorted(eos_at, self.bars, side="left")
        eos_or_end = np.append(eos_at, len(tokens) - 1)
        self.bar_song_end = eos_or_end[np.minimum(next_eos, len(eos_at))]  # inclusive index

    def window(self, bar_index):
        """(inputs, targets), both int64 [context_length], for the bar at self.bars[bar_index]."""
        b = int(self.bars[bar_index])
        start = int(self.bar_song_start[bar_index])
        last = int(self.bar_song_end[bar_index])  # the EOS (inclusive)
        n = self.context_length + 1  # one more than the inputs, for the shifted targets
        header = np.asarray(self.tokens[start:start + self.header_length], dtype=np.int64)
        body_len = min(n - self.header_length, last + 1 - b)
        body = np.asarray(self.tokens[b:b + body_len], dtype=np.int64)
        seq = np.full(n, IGNORE_INDEX, dtype=np.int64)
        used = self.header_length + body_len
        seq[:self.header_length] = header
        seq[self.header_length:used] = body
        inputs = seq[:-1].copy()
        targets = seq[1:].copy()
        inputs[inputs == IGNORE_INDEX] = self.vocab.pad
        return inputs, targets

    def batch(self, bar_indices):
        pairs = [self.window(i) for i in bar_indices]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])

    def random_bars(self, rng, count):
        return rng.integers(0, len(self.bars), size=count)


def eval_bar_indices(windows, count=EVAL_WINDOWS, seed=EVAL_SEED):
    """The fixed held-out windows: the same seed and count give the same windows for every
    architecture (transformer, LSTM, n-gram), so their bits per token compare."""
    rng = np.random.default_rng(seed)
    count = min(count, len(windows.bars))
    return np.sort(rng.choice(len(windows.bars), size=count, replace=False))


# --- synthetic fixture (tests and smoke runs only) --------------------------------------------

def synthetic_song(vocab, rng, bars=8):
    """One grammatical song from the vocabulary's group ranges: header, bars (controls drawn at random) of onsets with
    optional chords, parts in order (lead, arp, bass) with descending pitches, then EOS. A little
    regular (scale tones, chords on the beat) so that a model has something to learn."""
    g = vocab.groups
    tempo = rng.integers(*g["tempo"])
    key_offset = int(rng.integers(0, 12))
    key = g["key"][0] + key_offset
    mood = rng.integers(*g["mood"])
    style = rng.integers(*g["style"])
    song = [vocab.bos, tempo, key, mood, style]
    scale = np.array([0, 2, 4, 5, 7, 9, 11]) + key_offset
    n_positions = g["position"][1] - g["position"][0]
    part_ids = vocab.group_ids("part")
    part_range = {0: (60, 84), 1: (48, 72), 2: (28, 52)}  # lead, arp, bass registers
    n_dur = g["duration"][1] - g["duration"][0]
    n_vel = g["velocity"][1] - g["velocity"][0]
    density_bins = (g["density"][1] - g["density"][0]) // 3
    for _ in range(bars):
        song.append(vocab.bar)
        # The bar's controls, in the grammar's order: lead, arp, bass density; arp motion; bass drive.
        song += [g["density"][0] + p * density_bins + int(rng.integers(density_bins)) for p in range(3)]
        song += [int(rng.integers(*g["arp_motion"])), int(rng.integers(*g["bass_drive"]))]
        step = n_positions // 4  # a beat
        onsets = sorted(set([0] + list(rng.choice(np.arange(0, n_positions, step // 2), size=3))))
        for t in onsets:
            song.append(g["position"][0] + int(t))
            if t % (2 * step) == 0:
                song.append(int(rng.integers(*g["chord"])))
            for p, part in enumerate(part_ids):
                if p > 0 and rng.random() < 0.4:
                    continue
                lo, hi = part_range[p]
                pitches = [q for q in range(lo, hi) if (q % 12) in scale % 12]
                chosen = sorted(set(rng.choice(pitches, size=int(rng.integers(1, 3)))), reverse=True)
                song.append(int(part))
                for pitch in chosen:
                    song.append(g["pitch"][0] + int(pitch))
                    song.append(g["duration"][0] + int(rng.integers(2, min(10, n_dur))))
                    song.append(g["velocity"][0] + int(rng.integers(3, min(6, n_vel))))
    song.append(vocab.eos)
    return song


def write_synthetic_dataset(out_dir, vocab, train_songs=24, valid_songs=6, bars=8, seed=0):
    """train.bin / valid.bin / manifest.json in the real data set's format."""
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    counts = {}
    for split, n_songs in (("train", train_songs), ("valid", valid_songs)):
        ids = [t for _ in range(n_songs) for t in synthetic_song(vocab, rng, bars)]
        np.asarray(ids, dtype="<u2").tofile(os.path.join(out_dir, f"{split}.bin"))
        counts[split] = {"songs": n_songs, "tokens": len(ids)}
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump({"synthetic": True, "vocab_hash": vocab.hash, **counts}, f, indent=2)
    return counts


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synthetic", metavar="DIR", required=True, help="write a synthetic data set here")
    parser.add_argument("--train-songs", type=int, default=200)
    parser.add_argument("--valid-songs", type=int, default=20)
    parser.add_argument("--bars", type=int, default=64)
    args = parser.parse_args()
    counts = write_synthetic_dataset(args.synthetic, load_vocab(), args.train_songs, args.valid_songs, args.bars)
    print(f"wrote {args.synthetic}: {counts}")
