"""Audio to MIDI for `cargo xtask finetune --audio DIR`: Spotify's Basic Pitch (Apache-2.0) with its
ONNX model, run by ONNX Runtime. Basic Pitch hears a mix as one polyphonic line; the parts are
separated afterwards by xtask's importer (highest note of each onset = lead, lowest below G3 =
bass). The beat comes from librosa's beat tracker: the MIDI file is written at the tempo found,
with the first beat at time 0, so the importer's grid falls on the music's beats.

    transcribe.py run --list FILES.json --report REPORT.json
        FILES.json: [{"audio": PATH or [STEM PATHS], "midi": PATH}, ...]; REPORT.json: one entry per
        song, "ok" with the figures, or "skipped" with the reason (silence, unreadable, too long, no
        notes heard). Stems of one song become one MIDI file, a track per stem, on the beats of
        their sum.
    transcribe.py synthesize --midi IN.mid --wav OUT.wav [--seconds S]
        a MIDI file rendered with plain waveforms: test audio whose notes are known
"""

import argparse
import contextlib
import io
import json
import logging
import os
import sys
import warnings

import numpy as np

# Settings
SAMPLE_RATE = 22050
MAX_SECONDS = 20 * 60  # longer files are skipped: an album side is not a song
SILENCE_DBFS = -50.0  # a file whose loudest sample is quieter than this is silence
TEMPO_RANGE_BPM = (70.0, 180.0)  # the beat tracker's tempo is doubled or halved into this range
MIN_NOTES = 8


def unreadable(error):
    said = str(error).strip()[:120] or "no decoder could read it"
    return f"not readable audio ({said})"


def dbfs(peak):
    return 20 * np.log10(max(float(peak), 1e-12))


def fold_tempo(bpm):
    low, high = TEMPO_RANGE_BPM
    while bpm < low:
        bpm *= 2
    while bpm >= high:
        bpm /= 2
    return bpm


def beat_clock(beats):
    """(seconds → beats from the first tracked beat, the tempo in BPM): linear between tracked
    beats, the median beat length outside them; a half- or double-time tracking folded into
    TEMPO_RANGE_BPM."""
    if len(beats) < 4:
        return (lambda t: t * 2.0), 120.0
    period = float(np.median(np.diff(beats)))
    raw_bpm = 60.0 / period
    bpm = fold_tempo(raw_bpm)
    scale = bpm / raw_bpm
    index = np.arange(len(beats), dtype=float)

    def to_beats(t):
        if t < beats[0]:
            position = (t - beats[0]) / period
        elif t > beats[-1]:
            position = index[-1] + (t - beats[-1]) / period
        else:
            position = float(np.interp(t, beats, index))
        return position * scale

    return to_beats, bpm


def load_model():
    # Basic Pitch warns about every backend it does not find (TensorFlow, CoreML, TFLite) on import.
    logging.disable(logging.WARNING)
    from basic_pitch import ICASSP_2022_MODEL_PATH
    from basic_pitch.inference import Model

    logging.disable(logging.NOTSET)
    onnx_path = os.path.join(os.path.dirname(ICASSP_2022_MODEL_PATH), "nmp.onnx")
    return Model(onnx_path)


def load(audio_path):
    """(mono audio at SAMPLE_RATE, its peak in dBFS), or the reason it cannot be used."""
    import librosa

    try:
        seconds = float(librosa.get_duration(path=audio_path))
        if seconds > MAX_SECONDS:
            return f"too long ({seconds / 60:.0f} min; at most {MAX_SECONDS // 60} min)"
        audio, _ = librosa.load(audio_path, sr=SAMPLE_RATE, mono=True)
    except Exception as e:  # noqa: BLE001 — any decoder failure is the file's, said in the report
        return unreadable(e)
    if len(audio) < SAMPLE_RATE:
        return f"too short ({len(audio) / SAMPLE_RATE:.1f} s)"
    peak = dbfs(np.max(np.abs(audio)))
    if peak < SILENCE_DBFS:
        return f"silence (loudest sample {peak:.0f} dBFS)"
    return audio, peak


def transcribe(model, audio_paths, midi_path):
    """One song: a mix, or the stems of one song (one instrument each, all on the beats of their
    sum). The report entry; the MIDI file written when it is usable."""
    import librosa
    import pretty_midi
    from basic_pitch.inference import predict

    stems, left_out = [], []
    for path in audio_paths:
        loaded = load(path)
        if isinstance(loaded, str):
            left_out.append(loaded if len(audio_paths) == 1 else f"{os.path.basename(path)}: {loaded}")
        else:
            stems.append((path, *loaded))
    if not stems:
        return {"status": "skipped", "reason": "; ".join(left_out)}
    length = max(len(audio) for _, audio, _ in stems)
    mix = np.zeros(length, dtype=np.float32)
    for _, audio, _ in stems:
        mix[: len(audio)] += audio

    _, beats = librosa.beat.beat_track(y=mix, sr=SAMPLE_RATE, units="time")
    to_beats, bpm = beat_clock(beats)
    # Written at one tempo on the tracked beats (a tempo map in all but name): the importer's grid
    # then follows the player's timing instead of drifting from one average tempo.
    seconds_per_beat = 60.0 / bpm
    midi = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    for path, _, _ in stems:
        with contextlib.redirect_stdout(io.StringIO()):  # Basic Pitch prints a line per file
            _, _, events = predict(path, model)
        # Named after the file, so a stem called "bass.wav" or "lead vocal.flac" gets its part by name.
        instrument = pretty_midi.Instrument(program=0, name=os.path.splitext(os.path.basename(path))[0])
        for start, end, pitch, amplitude, _ in events:
            start_beats, end_beats = to_beats(start), to_beats(end)
            if start_beats < -0.1:
                continue
            start = max(start_beats, 0.0) * seconds_per_beat
            end = max(end_beats * seconds_per_beat, start + 0.01)
            velocity = int(np.clip(round(127 * amplitude), 1, 127))
            instrument.notes.append(pretty_midi.Note(velocity=velocity, pitch=int(pitch), start=start, end=end))
        instrument.notes.sort(key=lambda n: (n.start, n.pitch))
        if instrument.notes:
            midi.instruments.append(instrument)
    notes = [n for i in midi.instruments for n in i.notes]
    if len(notes) < MIN_NOTES:
        return {"status": "skipped", "reason": f"no notes heard ({len(notes)} notes)"}
    os.makedirs(os.path.dirname(midi_path) or ".", exist_ok=True)
    midi.write(midi_path)
    pitches = np.array([n.pitch for n in notes])
    onsets = np.round(np.array([n.start for n in notes]) / 0.05)
    entry = {
        "status": "ok",
        "midi": midi_path,
        "seconds": round(length / SAMPLE_RATE, 1),
        "bpm": round(bpm, 1),
        "beats_tracked": len(beats),
        "notes": len(notes),
        "lowest": int(pitches.min()),
        "highest": int(pitches.max()),
        "notes_per_onset": round(len(pitches) / len(np.unique(onsets)), 2),
        "peak_dbfs": round(max(peak for _, _, peak in stems), 1),
    }
    if len(audio_paths) > 1:
        entry["stems"] = {i.name: len(i.notes) for i in midi.instruments}
        entry["stems_left_out"] = left_out
    return entry


def run(args):
    # librosa warns when it falls back from libsndfile to audioread; the report says what failed.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    with open(args.list) as f:
        files = json.load(f)
    model = load_model() if files else None
    report = []
    for i, item in enumerate(files, 1):
        paths = item["audio"] if isinstance(item["audio"], list) else [item["audio"]]
        entry = {"audio": item["audio"], **transcribe(model, paths, item["midi"])}
        report.append(entry)
        said = f"{entry['notes']} notes, {entry['bpm']} BPM" if entry["status"] == "ok" else entry["reason"]
        print(f"  [{i}/{len(files)}] {', '.join(os.path.basename(p) for p in paths)}: {said}", flush=True)
    with open(args.report, "w") as f:
        json.dump(report, f, indent=1)


def synthesize(args):
    import pretty_midi
    import soundfile

    midi = pretty_midi.PrettyMIDI(args.midi)
    # Each instrument in its own waveform, so the mix is not one timbre.
    waves = {0: np.sin, 1: lambda phase: np.sign(np.sin(phase)) * 0.5, 2: lambda phase: 2 / np.pi * np.arcsin(np.sin(phase))}
    parts = []
    for i, instrument in enumerate(i for i in midi.instruments if not i.is_drum):
        if args.seconds:
            instrument.notes = [n for n in instrument.notes if n.start < args.seconds]
        parts.append(instrument.synthesize(fs=SAMPLE_RATE, wave=waves[i % 3]))
    length = max((len(p) for p in parts), default=0)
    if args.seconds:
        length = min(length, int(args.seconds * SAMPLE_RATE))
    mix = np.zeros(length)
    for p in parts:
        mix[: min(len(p), length)] += p[:length]
    mix /= max(np.max(np.abs(mix)), 1e-9) / 0.5
    soundfile.write(args.wav, mix.astype(np.float32), SAMPLE_RATE)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run")
    run_parser.add_argument("--list", required=True)
    run_parser.add_argument("--report", required=True)
    synth_parser = commands.add_parser("synthesize")
    synth_parser.add_argument("--midi", required=True)
    synth_parser.add_argument("--wav", required=True)
    synth_parser.add_argument("--seconds", type=float, default=0.0)
    args = parser.parse_args(argv)
    run(args) if args.command == "run" else synthesize(args)


if __name__ == "__main__":
    sys.exit(main())
