import itertools
import json

import numpy as np

import data

# What may follow each token group in a song (the grammar: models/README.md, "Vocabulary"; plugin tokens.rs).
FOLLOWS = {
    "bos": {"tempo"}, "tempo": {"key"}, "key": {"mood"}, "mood": {"style"}, "style": {"bar", "eos"},
    # After BAR its five controls: three densities (lead, arp, bass), the arp's motion, the bass's drive.
    "bar": {"density"}, "density": {"density", "arp_motion"}, "arp_motion": {"bass_drive"},
    "bass_drive": {"bar", "position", "eos"}, "position": {"chord", "part"},
    "chord": {"part", "position", "bar", "eos"},  # a chord change may have no note with it
    "part": {"pitch"}, "pitch": {"duration"}, "duration": {"velocity"},
    "velocity": {"pitch", "part", "position", "bar", "eos"},
}


def group_of(vocab, token):
    return next(name for name, (start, end) in vocab.groups.items() if start <= token < end)


def test_vocab_json_is_read_and_consistent(vocab):
    with open(data.VOCAB_PATH) as f:
        raw = json.load(f)
    assert vocab.size == raw["size"] == len(vocab.tokens)
    assert vocab.hash == raw["hash"] and vocab.header_length == 5
    # The groups tile [0, size) without gaps or overlaps ...
    ranges = sorted(vocab.groups.values())
    assert ranges[0][0] == 0 and ranges[-1][1] == vocab.size
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    # ... and name the tokens they hold.
    prefixes = {"pad": "PAD", "bos": "BOS", "eos": "EOS", "bar": "BAR", "tempo": "TEMPO_", "key": "KEY_",
                "mood": "MOOD_", "position": "POS_", "chord": "CHORD_", "part": "PART_", "pitch": "PITCH_",
                "duration": "DUR_", "velocity": "VEL_", "style": "STYLE_", "density": "DENSITY_", "arp_motion": "ARP_",
                "bass_drive": "BASS_"}
    assert set(prefixes) == set(vocab.groups)
    for name, (start, end) in vocab.groups.items():
        assert all(vocab.tokens[i].startswith(prefixes[name]) for i in range(start, end)), name
    assert vocab.tokens[vocab.bar] == "BAR" and vocab.tokens[vocab.bos] == "BOS"


def test_synthetic_songs_are_grammatical(vocab):
    rng = np.random.default_rng(1)
    for _ in range(20):
        song = data.synthetic_song(vocab, rng, bars=6)
        groups = [group_of(vocab, t) for t in song]
        assert groups[:6] == ["bos", "tempo", "key", "mood", "style", "bar"] and groups[-1] == "eos"
        assert groups[6:11] == ["density"] * 3 + ["arp_motion", "bass_drive"]
        assert groups.count("bos") == 1 and groups.count("eos") == 1 and groups.count("bar") == 6
        for a, b in itertools.pairwise(groups):
            assert b in FOLLOWS[a], f"{a} -> {b}"
        # Positions rise within a bar; pitches fall within a part's chord.
        last_pos, last_pitch = -1, 1 << 30
        for t, g in zip(song, groups):
            if g == "bar":
                last_pos = -1
            elif g == "position":
                assert t > last_pos
                last_pos = t
            elif g == "part":
                last_pitch = 1 << 30
            elif g == "pitch":
                assert t < last_pitch
                last_pitch = t


def test_windows_keep_their_song(vocab, tmp_path):
    data.write_synthetic_dataset(str(tmp_path), vocab, train_songs=3, valid_songs=1, bars=4, seed=3)
    tokens = data.load_tokens(str(tmp_path / "train.bin"))
    song_starts = np.flatnonzero(tokens == vocab.bos)
    context = 40
    windows = data.Windows(tokens, vocab, context)
    assert len(windows.bars) == 12
    for i, b in enumerate(windows.bars):
        inputs, targets = windows.window(i)
        assert inputs.shape == targets.shape == (context,)
        song_start = song_starts[np.searchsorted(song_starts, b, side="right") - 1]
        song_end = int(np.flatnonzero(np.asarray(tokens[b:]) == vocab.eos)[0]) + b
        # The header of its own song, then the song from bar b on.
        h = vocab.header_length
        assert list(inputs[:h]) == list(tokens[song_start:song_start + h])
        body = np.asarray(tokens[b:song_end + 1], dtype=np.int64)
        n = min(len(body), context + 1 - h)
        assert list(inputs[h:h + min(n, context - h)]) == list(body[:min(n, context - h)])
        assert list(targets[h - 1:h - 1 + n]) == list(body[:n])
        # Never into the next song: after EOS only ignored targets and PAD inputs.
        if data.IGNORE_INDEX in targets:
            cut = int(np.flatnonzero(targets == data.IGNORE_INDEX)[0])
            assert targets[cut - 1] == vocab.eos
            assert (targets[cut:] == data.IGNORE_INDEX).all() and (inputs[cut + 1:] == vocab.pad).all()
            assert vocab.bos not in inputs[1:]


def test_eval_windows_are_fixed(vocab, synthetic_dir):
    windows = data.Windows(data.load_tokens(f"{synthetic_dir}/valid.bin"), vocab, 64)
    a = data.eval_bar_indices(windows, 20, seed=5)
    assert (a == data.eval_bar_indices(windows, 20, seed=5)).all()
    assert not (a == data.eval_bar_indices(windows, 20, seed=6)).all()
    assert len(set(a.tolist())) == 20
