import json

import numpy as np
import pretty_midi
import pytest
import soundfile

import transcribe

BPM = 100.0


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A melody over a bass line rendered to audio, silence, and a file that is not audio."""
    root = tmp_path_factory.mktemp("audio")
    song = pretty_midi.PrettyMIDI(initial_tempo=BPM)
    beat = 60.0 / BPM
    melody = pretty_midi.Instrument(program=0, name="melody")
    scale = [72, 74, 76, 77, 79, 77, 76, 74]
    for i in range(32):
        melody.notes.append(pretty_midi.Note(velocity=100, pitch=scale[i % 8], start=i * beat, end=(i + 0.9) * beat))
    bass = pretty_midi.Instrument(program=33, name="bass")
    for i in range(8):
        bass.notes.append(pretty_midi.Note(velocity=100, pitch=36 + 5 * (i % 2), start=4 * i * beat, end=(4 * i + 3.8) * beat))
    song.instruments += [melody, bass]
    song.write(str(root / "song.mid"))
    transcribe.main(["synthesize", "--midi", str(root / "song.mid"), "--wav", str(root / "song.wav")])
    soundfile.write(str(root / "silence.flac"), np.zeros(3 * transcribe.SAMPLE_RATE, dtype=np.float32), transcribe.SAMPLE_RATE)
    (root / "noise.mp3").write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    # The same song as stems: each instrument alone, and a silent one.
    (root / "stems").mkdir()
    for instrument, stem in ((melody, "lead"), (bass, "bass")):
        alone = pretty_midi.PrettyMIDI(initial_tempo=BPM)
        alone.instruments.append(instrument)
        alone.write(str(root / f"{stem}.mid"))
        transcribe.main(["synthesize", "--midi", str(root / f"{stem}.mid"), "--wav", str(root / "stems" / f"{stem}.wav")])
    soundfile.write(str(root / "stems" / "pad.wav"), np.zeros(transcribe.SAMPLE_RATE * 2, dtype=np.float32), transcribe.SAMPLE_RATE)
    files = [{"audio": str(root / name), "midi": str(root / "out" / (name + ".mid"))} for name in ("song.wav", "silence.flac", "noise.mp3")]
    stems = [str(root / "stems" / f"{stem}.wav") for stem in ("bass", "lead", "pad")]
    files.append({"audio": stems, "midi": str(root / "out" / "stems.mid")})
    (root / "files.json").write_text(json.dumps(files))
    transcribe.main(["run", "--list", str(root / "files.json"), "--report", str(root / "report.json")])
    return root, json.loads((root / "report.json").read_text())


def test_a_song_is_transcribed_on_its_beats(folder):
    _, report = folder
    song = report[0]
    assert song["status"] == "ok", song
    assert abs(song["bpm"] - BPM) / BPM < 0.04, song
    midi = pretty_midi.PrettyMIDI(song["midi"])
    notes = midi.instruments[0].notes
    # Melody and bass both heard: the melody's scale (C5 shares its spectrum with the bass's C2
    # an octave ladder below, and may be missed) and the bass roots.
    pitches = {n.pitch for n in notes}
    assert len({72, 74, 76, 77, 79} & pitches) >= 4, sorted(pitches)
    assert {36, 41} & pitches, sorted(pitches)
    # Written on the tracked beats: the melody's notes start on whole beats of the file's tempo.
    beat = 60.0 / midi.get_tempo_changes()[1][0]
    melody_starts = np.array([n.start for n in notes if n.pitch >= 72]) / beat
    off_beat = np.abs(melody_starts - np.round(melody_starts))
    assert np.mean(off_beat < 0.15) > 0.9, np.round(melody_starts, 2)


def test_silence_and_unreadable_files_are_skipped_with_the_reason(folder):
    _, report = folder
    silence, noise = report[1], report[2]
    assert silence["status"] == "skipped" and silence["reason"].startswith("silence"), silence
    assert noise["status"] == "skipped" and noise["reason"].startswith("not readable audio"), noise


def test_tempo_is_folded_into_range_and_beats_interpolate():
    assert transcribe.fold_tempo(62.0) == 124.0
    assert transcribe.fold_tempo(200.0) == 100.0
    to_beats, bpm = transcribe.beat_clock(np.array([1.0, 1.5, 2.0, 2.6, 3.1]))
    assert bpm == pytest.approx(120.0)
    assert to_beats(1.0) == 0.0 and to_beats(2.3) == pytest.approx(2.5)
    assert to_beats(0.5) == pytest.approx(-1.0) and to_beats(3.6) == pytest.approx(5.0)


def test_stems_of_one_song_become_one_file_with_a_track_each(folder):
    _, report = folder
    stems = report[3]
    assert stems["status"] == "ok", stems
    assert abs(stems["bpm"] - BPM) / BPM < 0.04, stems
    assert set(stems["stems"]) == {"lead", "bass"}
    assert stems["stems_left_out"] == ["pad.wav: silence (loudest sample -240 dBFS)"]
    tracks = {i.name: {n.pitch for n in i.notes} for i in pretty_midi.PrettyMIDI(stems["midi"]).instruments}
    assert max(tracks["bass"]) < 60 and min(tracks["lead"]) >= 60, tracks
