"""NES-MDB as a texture reference for the Dance style: evaluation only (no licence is stated for it, so
it never trains a shipped model). Its files carry no tempo (every file says 120 BPM at 22,050 ticks
per beat; the timing is the chip's, on 60 Hz video frames), so the beat is read from the note
onsets (the most common gap between onsets is a 16th, four a beat, the phase where most onsets fall
on the beat) and the notes are placed on the plugin's grid (16ths and 16th triplets, 12 ticks a
beat, the first beat taken as a downbeat). General beat trackers (librosa's) read these songs at
three 16ths a beat too often to use. Parts: the lead is
the pulse voice with the higher mean pitch, the arp the other pulse, the bass the triangle an
octave down (an EDM register); the noise voice is left out.
"""

import os
import types

import numpy as np

from eval_metrics import KK_ROTATIONS, TICKS_PER_BAR, TICKS_PER_BEAT
from eval_texture import summarize
from transcribe import beat_clock

# Settings
FILES = 200  # songs sampled from the folder (QUICK_FILES for a quick eval)
QUICK_FILES = 30
WINDOWS_PER_SONG = 4  # so long songs do not outweigh short ones
CHIP_HZ = 60  # NES music advances on video frames
MIN_UNIT_FRAMES = 3  # gaps shorter than this are grace notes and arpeggio flourishes, not the pulse
GRID_TICKS = np.array([0, 2, 3, 4, 6, 8, 9, 10, 12])  # 16ths and 16th triplets in a beat (12 = next beat)
SEED = 0


def default_dir():
    """`shared/datasets/nesmdb/nesmdb_midi/all` beside the workspace, when it is there."""
    workspace = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(os.path.dirname(workspace), "shared", "datasets", "nesmdb", "nesmdb_midi", "all")
    return path if os.path.isdir(path) else None


def to_grid(beats):
    """A position in beats → the nearest grid tick."""
    whole = np.floor(beats)
    ticks = (beats - whole) * TICKS_PER_BEAT
    nearest = GRID_TICKS[np.argmin(np.abs(GRID_TICKS[None, :] - np.atleast_1d(ticks)[:, None]), axis=1)]
    return (whole * TICKS_PER_BEAT + nearest).astype(int)


def key_index(pitches, durations):
    """Krumhansl–Kessler key of the duration-weighted pitch classes: 0–11 major, 12–23 minor."""
    histogram = np.bincount(pitches % 12, weights=durations, minlength=12)
    return int(np.argmax([np.corrcoef(histogram, profile)[0, 1] for profile in KK_ROTATIONS]))


def song_beats(starts):
    """Beat times of a song from its note onsets (seconds), or None. The chip plays on 60 Hz frames: the
    most common gap between onsets (in frames, at least MIN_UNIT_FRAMES) is taken as a 16th, four of
    them a beat, the phase the one that puts most onsets (of all voices) on beats."""
    all_frames = np.round(np.asarray(starts) * CHIP_HZ).astype(int)
    frames = np.unique(all_frames)
    gaps = np.diff(frames)
    gaps = gaps[gaps >= MIN_UNIT_FRAMES]
    if len(gaps) < 8:
        return None
    unit = int(np.bincount(gaps).argmax())
    beat = 4 * unit
    # Every onset counts (a bass note under a lead note weighs in), so even a line of constant 16ths
    # over a slower bass finds its beat.
    phase = int(np.argmax([np.sum((all_frames - p) % beat == 0) for p in range(beat)]))
    first = frames[0] - (frames[0] - phase) % beat
    return np.arange(first, frames[-1] + beat, beat) / CHIP_HZ


def read_song(path, bars, song):
    """Up to WINDOWS_PER_SONG windows of `bars` bars, as eval items; [] when the song lacks a voice."""
    import pretty_midi

    pretty_midi.pretty_midi.MAX_TICK = 1e10  # NES-MDB's resolution is 22,050 ticks per beat
    voices = {i.name: i.notes for i in pretty_midi.PrettyMIDI(path).instruments}
    pulses = [v for name, v in voices.items() if name in ("p1", "p2") and len(v) >= 16]
    triangle = voices.get("tr", [])
    if len(pulses) < 2 or len(triangle) < 16:
        return []
    lead, arp = sorted(pulses, key=lambda v: -np.mean([n.pitch for n in v]))
    parts = [(0, lead, 0), (1, arp, 0), (2, triangle, -12)]
    starts = np.array([n.start for _, v, _ in parts for n in v])
    beats = song_beats(starts)
    if beats is None:
        return []
    to_beats, _ = beat_clock(beats)
    rows = []
    for part, notes, shift in parts:
        for n in notes:
            start = to_grid(to_beats(n.start))[0]
            end = max(to_grid(to_beats(n.end))[0], start + 1)
            if start >= 0 and 0 <= n.pitch + shift <= 127:
                rows.append([start, part, n.pitch + shift, end - start, n.velocity])
    notes = np.array(sorted(rows), dtype=int).reshape(-1, 5)
    key = key_index(notes[:, 2], notes[:, 3])
    window = bars * TICKS_PER_BAR
    items = []
    for first in range(0, int(notes[:, 0].max()) + 1, window):
        inside = notes[(notes[:, 0] >= first) & (notes[:, 0] < first + window)].copy()
        inside[:, 0] -= first
        if len(np.unique(inside[:, 1])) == 3:
            items.append({"notes": inside, "key": key, "song": song})
        if len(items) == WINDOWS_PER_SONG:
            break
    return items


def reference(folder, bars, quick=False, seed=SEED):
    """Texture figures (eval_texture.summarize) of windows from sampled NES-MDB songs, plus how many
    songs and windows they came from."""
    names = sorted(f for f in os.listdir(folder) if f.endswith(".mid"))
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(names), min(QUICK_FILES if quick else FILES, len(names)), replace=False)
    items = []
    for song, i in enumerate(sorted(chosen)):
        items += read_song(os.path.join(folder, names[i]), bars, song)
    phrases = types.SimpleNamespace(items=items, notes=[item["notes"] for item in items], bars=bars)
    summary = summarize(phrases)
    summary["songs"] = len({item["song"] for item in items})
    return summary
