"""The evaluation (models/eval.py and the eval_*.py beside it) on tiny hand-made phrases, and one end-to-end
report."""

import json
import math

import numpy as np
import pytest

import eval as ev
import eval_metrics as em
import eval_serve
import eval_stats as es

C_MAJOR_SCALE = [60, 62, 64, 65, 67, 69, 71, 72]
LEAD, ARP, BASS = 0, 1, 2


def phrase(*notes):
    """Notes as (tick, part, pitch, duration[, velocity]) → the [n, 5] array eval uses."""
    return np.array([tuple(n) + (64,) * (5 - len(n)) for n in notes], dtype=int).reshape(-1, 5)


def scale_phrase(pitches, part=LEAD, step=6):
    return phrase(*[(i * step, part, p, step) for i, p in enumerate(pitches)])


def test_scale_consistency():
    assert em.scale_consistency(C_MAJOR_SCALE) == 1.0
    assert em.scale_consistency([p + 3 for p in C_MAJOR_SCALE]) == 1.0  # E-flat major
    # Chromatic: the best major scale holds 7 of 12 pitch classes.
    assert em.scale_consistency(range(60, 72)) == pytest.approx(7 / 12)
    assert math.isnan(em.scale_consistency([]))


def test_pitch_class_entropy():
    assert em.pitch_class_entropy(range(60, 72)) == pytest.approx(math.log2(12))
    assert em.pitch_class_entropy([60, 72, 48]) == pytest.approx(0.0)
    assert em.pitch_class_entropy([60, 62]) == pytest.approx(1.0)


def test_groove_consistency():
    bar = [0, 12, 24, 36]
    same = [t + b * 48 for b in range(4) for t in bar]
    assert em.groove_consistency(same, 4) == 1.0
    # Bar 2 adds two onsets: two consecutive-bar pairs differ in 2 of 48 slots.
    changed = same + [48 + 6, 48 + 18]
    assert em.groove_consistency(changed, 4) == pytest.approx(1 - (2 / 48 + 2 / 48 + 0) / 3)
    assert math.isnan(em.groove_consistency(same, 1))


def test_empty_beats_polyphony_density_range():
    # Two bars: a C-major triad held for bar 0, nothing in bar 1.
    triad = phrase((0, ARP, 72, 48), (0, ARP, 67, 48), (0, ARP, 64, 48))
    starts, pitches, durations = triad[:, 0], triad[:, 2], triad[:, 3]
    assert em.empty_beat_rate(starts, durations, 2) == 0.5
    assert em.polyphony(starts, durations, 2, pitches) == 3.0
    # The same pitch struck again while it sounds is one sounding pitch (a piano roll, as MusPy).
    assert em.polyphony([0, 6], [12, 12], 1, [60, 60]) == 1.0
    assert em.polyphony([0, 6], [12, 12], 1, [60, 64]) == pytest.approx((6 + 2 * 6 + 6) / 18)
    assert em.note_density(starts, 2) == 1.5
    assert em.pitch_range(pitches) == 8
    # A note ringing past the end is cut there; a staccato note still fills its beat.
    assert em.empty_beat_rate([84], [96], 2) == pytest.approx(1 - 1 / 8)
    assert em.empty_beat_rate([0], [2], 1) == 0.75
    assert math.isnan(em.polyphony([], [], 2))


def test_key_and_register():
    assert em.in_key_rate(C_MAJOR_SCALE, 0) == 1.0  # C major
    assert em.in_key_rate(C_MAJOR_SCALE, 12 + 9) == 1.0  # A minor, the same notes
    assert em.in_key_rate([61, 63, 66], 0) == 0.0
    assert em.in_key_rate([60, 61], 0) == 0.5
    assert em.register_compliance([59, 60, 96, 97], (60, 96)) == 0.5


def test_part_metrics_separate_parts():
    notes = np.vstack([scale_phrase(C_MAJOR_SCALE, LEAD), scale_phrase([36, 37, 38], BASS)])
    lead = em.part_metrics(notes, LEAD, 1, 0, (60, 96))
    bass = em.part_metrics(notes, BASS, 1, 0, (24, 55))
    arp = em.part_metrics(notes, ARP, 1, 0, (45, 81))
    assert lead["scale_consistency"] == 1.0 and lead["note_density"] == 8
    assert bass["pitch_range"] == 2 and bass["register_compliance"] == 1.0
    assert arp["note_density"] == 0 and arp["empty_beat_rate"] == 1.0 and math.isnan(arp["scale_consistency"])


def test_mode_correlations():
    # Long tonic and fifth, the major third: major. The same with a minor third: minor.
    major_r, minor_r = em.mode_correlations([60, 64, 67, 62, 65, 69, 71], [8, 4, 6, 1, 1, 1, 1])
    assert major_r > minor_r
    major_r, minor_r = em.mode_correlations([57, 60, 64, 59, 62, 65, 67], [8, 4, 6, 1, 1, 1, 1])
    assert minor_r > major_r


def test_overlap_area():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 400)
    same, _ = es.kde_overlap(a, rng.normal(0, 1, 400))
    apart, kl = es.kde_overlap(a, rng.normal(20, 1, 400))
    assert same > 0.85 and apart < 0.01 and kl > 1


def test_grouped_bootstrap_band():
    values = np.array([1.0, 1.0, 3.0, 3.0, 2.0, 2.0, np.nan])
    groups = np.array([1, 1, 2, 2, 3, 3, 3])
    lo, hi = es.grouped_bootstrap(values, groups, seed=0)
    assert 1.0 <= lo <= 2.0 <= hi <= 3.0
    lo, hi = es.grouped_bootstrap(np.full(6, 0.5), np.arange(6), seed=0)
    assert lo == pytest.approx(0.5) and hi == pytest.approx(0.5)


def test_two_sample_test_tells_apart_only_what_differs():
    rng = np.random.default_rng(1)
    real = rng.normal(0, 1, (60, 4))
    groups = np.repeat(np.arange(20), 3)
    far = es.two_sample_test(real, groups, rng.normal(3, 1, (60, 4)), np.arange(60), seed=0)
    near = es.two_sample_test(real, groups, rng.normal(0, 1, (60, 4)), np.arange(60), seed=0)
    for name in far:
        assert far[name]["accuracy"] > 0.9 and far[name]["p_value"] < 1e-6
        assert near[name]["accuracy"] < 0.7 and near[name]["p_value"] > 1e-3


def test_report_end_to_end(tmp_path):
    """A tiny phrases.json in the format xtask writes → report, results section, metrics. (Plots are
    skipped here for speed; `cargo xtask eval --quick` in CI draws them.)"""
    rng = np.random.default_rng(2)

    def random_phrase(shift):
        notes = []
        for bar in range(2):
            for beat in range(4):
                tick = bar * 48 + beat * 12
                notes.append([tick, LEAD, 72 + int(rng.integers(0, 12)) + shift, 12, 80])
                notes.append([tick, ARP, 60 + int(rng.integers(0, 7)), 6, 64])
                notes.append([tick, BASS, 36 + int(rng.integers(0, 5)), 12, 90])
        return sorted(notes)

    copy = {"exact": [3, 4, 5], "pitch": [5, 6, 7]}
    real = [{"song": 819 + i // 2, "start_bar": 2 * (i % 2), "key": 0, "mood": em.MOODS[i % 4], "tempo_bin": 4,
             "effective_bpm": 120.0, "half_time": False, "notes": random_phrase(0), "copy": copy} for i in range(12)]
    settings = [{"name": "T=1", "group": "temperature", "temperature": 1.0, "top_p": 0.95, "key_lock": False, "mood": None, "phrases": 6},
                {"name": "T=1 key lock", "group": "key_lock", "temperature": 1.0, "top_p": 0.95, "key_lock": True, "mood": None, "phrases": 6}]
    settings += [{"name": f"T=1 mood {m}", "group": "mood", "temperature": 1.0, "top_p": 0.95, "key_lock": False, "mood": m, "phrases": 3}
                 for m in em.MOODS]
    auto = {"density": [None, None, None], "arp_motion": None, "bass_drive": None}
    dance = {"temperature": 1.0, "top_p": 0.95, "key_lock": False, "mood": None, "style": "dance", "tempo_bpm": 128.0}
    settings += [dict(dance, name="Dance T=1", group="dance", phrases=6, controls=auto),
                 dict(dance, name="Dance arp motion arpeggio", group="adherence", phrases=3, controls=dict(auto, arp_motion="arpeggio")),
                 dict(dance, name="Dance arp density 3", group="adherence", phrases=3, controls=dict(auto, density=[None, 3, None]))]
    written = [{"density": [3, 2, 3], "arp_motion": "broken", "bass_drive": "pulse"}] * 2
    generated = []
    for s, setting in enumerate(settings):
        for i in range(setting["phrases"]):
            generated.append({"setting": s, "index": i, "seed": 1 + i, "tempo_bin": 4, "key": 12 * (i % 2), "key_locked": False,
                              "mood": setting["mood"] or "happy", "mood_asked": setting["mood"], "notes": random_phrase(1),
                              "style": setting.get("style", "pop"), "controls_asked": setting.get("controls", auto),
                              "bar_controls": written, "chords": [[0, 0, 0b000010010001]],
                              "tokens": 100, "seconds": 0.1, "copy": {"exact": [17, 2, 2], "pitch": [17, 3, 3]} if i == 0 else copy})
    data = {"format": 1, "command": "cargo xtask eval --test", "quick": True, "seed": 1, "bars": 2, "threads": 1,
            "ticks_per_bar": 48, "ticks_per_beat": 12, "parts": list(em.PARTS), "registers": [[60, 96], [45, 81], [24, 55]],
            "model": {"path": "m.onnx", "version": "test", "vocab_hash": "0", "context_length": 64, "n_layer": 1,
                      "training_data": "", "licence": ""},
            "held_out_songs": [819, 820, 821, 822, 823, 824], "held_out_skipped": [], "train_songs": 3, "train_skipped": 0,
            "settings": settings, "generated": generated, "real": real,
            "baselines": [{"name": "LSTM", "measured": False, "why": "test"}], "timing": {"generate_s": 1.0}}
    path = tmp_path / "phrases.json"
    path.write_text(json.dumps(data))
    assert ev.main(["--data", str(path), "--out", str(tmp_path), "--seed", "3", "--no-plots"]) == 0
    report = (tmp_path / "report.md").read_text()
    section = (tmp_path / "results-section.md").read_text()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert "## Goals" in report and "not measured yet" in report
    assert "## Texture and coherence" in report and "texture and coherence at T = 1" in section
    assert metrics["texture"]["real"]["lead_notes_per_bar"] == 4.0
    # Dance: its column, its targets met or missed, the adherence table.
    assert "| Dance T=1 | Dance target |" in report and "## Dance targets (issue #11)" in report
    assert "## Control adherence" in report and "Dance arp density 3" in report
    assert "- Dance targets (issue #11):" in section
    targets = {(t["key"], t["judged_on"]): t for t in metrics["dance_targets"]}
    # 4 lead notes per bar: short of 4.5 by 0.5; no part is ever empty, in either style.
    assert targets[("lead_notes_per_bar", "Dance T=1")]["words"] == "missed by 0.5"
    assert targets[("part_empty", "Dance T=1")]["met"] and targets[("part_empty", "Pop T=1")]["met"]
    # The arp plays 4 onsets a bar (bin 2): within ±1 of 3 in every bar, never 8 onsets.
    assert targets[("density_adherence", next(k for d, k in targets if d == "density_adherence"))]["figure"] == 1.0
    assert metrics["adherence"][0]["rows"][0]["drive_bars"] == 0.0
    assert metrics["texture"]["settings"][6]["chord_tone_strong"] is not None
    assert not metrics["classifier"][6]  # Dance is not judged against POP909
    assert "top-p 0.95," in report  # the nucleus the phrases.json settings name
    assert "`cargo xtask eval --test`" in section and "nproc" in section
    # One of six T=1 phrases has a 17-note copied run.
    t1 = metrics["settings"][0]
    assert t1["copy"]["share_exact"] == pytest.approx(1 / 6)
    assert t1["metrics"]["lead"]["note_density"] == 4.0


def test_ngram_logits_are_a_distribution(synthetic_dir):
    source = eval_serve.NgramLogits(order=3, data_dir=synthetic_dir, max_train_tokens=0, seed=0)
    logits = source.logits(np.array([1, 3, 11, 35, 39], dtype=np.int64))
    assert logits.shape == (source.size,)
    assert np.exp(logits).sum() == pytest.approx(1.0, abs=1e-6)


def test_lstm_logits_keep_state_across_calls(tmp_path, vocab):
    import torch

    from model import build_model

    config = dict(vocab_size=vocab.size, n_layer=1, hidden=16, context_length=64)
    model = build_model("lstm", config)
    path = tmp_path / "lstm.pt"
    torch.save(dict(arch="lstm", model_config=config, model=model.state_dict(), vocab_hash=vocab.hash), path)
    source = eval_serve.LstmLogits(str(path))
    source.logits([1, 5, 20])
    extended = source.logits([1, 5, 20, 40])  # fed incrementally
    with torch.no_grad():
        reference = model(torch.tensor([[1, 5, 20, 40]]))[0][0, -1].numpy()
    assert np.abs(extended - reference).max() < 1e-5
    assert np.abs(source.logits([1, 7]) - model(torch.tensor([[1, 7]]))[0][0, -1].detach().numpy()).max() < 1e-5


def test_style_comparison_tells_a_near_model_from_a_far_one(tmp_path):
    """models/eval_style.py (run by `cargo xtask finetune`): a model that plays like the user's files
    scores near 0.5, one that does not near 1, on the parts the files have (here: lead only)."""
    import eval_style

    rng = np.random.default_rng(4)

    def lead_phrase(low, step):
        return [[tick, LEAD, low + int(rng.integers(0, 8)), step, 80] for tick in range(0, 96, step)]

    real = [{"notes": lead_phrase(72, 6), "key": 0, "song": i // 2} for i in range(40)]
    near = [{"notes": lead_phrase(72, 6), "key": 0, "index": i} for i in range(40)]
    far = [{"notes": lead_phrase(60, 24), "key": 0, "index": i} for i in range(40)]
    data = {"bars": 2, "registers": [[60, 96], [45, 81], [24, 55]], "parts": ["lead"], "real": real,
            "models": {"near": near, "far": far}}
    (tmp_path / "style.json").write_text(json.dumps(data))
    eval_style.main(["--data", str(tmp_path / "style.json"), "--out", str(tmp_path / "figures.json")])
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert figures["parts"] == ["lead"] and figures["real_windows"] == 40 and figures["real_files"] == 20
    for kind in ("logistic regression", "gradient boosting"):
        assert figures["models"]["far"]["classifier"][kind]["accuracy"] > 0.9
        assert figures["models"]["near"]["classifier"][kind]["accuracy"] < 0.75
    assert figures["real_metrics"]["lead"]["note_density"] == 8.0
    assert figures["models"]["far"]["metrics"]["lead"]["note_density"] == 2.0
    assert "arp" not in figures["real_metrics"]


def test_texture_figures_of_hand_made_phrases():
    import eval_texture as tx

    # Two bars: a lead of straight 16ths in bar 0 only, an 8-onset broken-chord arp, a bass on every beat.
    lead = [(t, LEAD, 76 + (t // 3) % 2 * 12, 3) for t in range(0, 48, 3)]
    arp = [(t, ARP, [60, 64, 67, 72][(t // 6) % 4], 6) for t in range(0, 96, 6)]
    bass = [(t, BASS, 36, 12) for t in range(0, 96, 12)]
    notes = phrase(*lead, *arp, *bass)
    figures = tx.texture(notes, 2, 0)
    assert figures["lead_notes_per_bar"] == 8.0
    assert figures["lead_silent_beats"] == 0.5  # bar 1 is empty
    assert figures["odd_16ths_lead"] == 0.5 and figures["odd_16ths_arp"] == 0.0
    assert figures["lead_high_share"] == 0.5 and figures["lead_median_pitch"] == 82.0
    assert figures["arp_drive_bars"] == 1.0 and figures["arp_chord_onsets"] == 0.0
    assert figures["bass_pulse_bars"] == 1.0
    assert figures["lead_out_of_key"] == 0.0 and figures["lead_empty"] == 0.0
    # E5 and E6 over C4, E4, G4, C5: never a semitone or major 7th from the arp or bass; the lead is on top.
    assert figures["clash_rate"] == 0.0 and figures["lead_above_arp"] == 1.0

    # A C#5 lead over a held C major chord: a clash with C, and above the chord.
    clash = phrase((0, ARP, 60, 48), (0, ARP, 64, 48), (12, LEAD, 73, 12), (0, BASS, 36, 48))
    figures = tx.texture(clash, 1, 0)
    # Pairs: C-C2 and E-C2 at the downbeat, then C# with C, E and C2: C#-C and C#-C2 clash.
    assert figures["clash_rate"] == pytest.approx(2 / 5)
    assert figures["lead_out_of_key"] == 1.0 and figures["lead_above_arp"] == 1.0
    assert tx.texture(phrase((0, ARP, 60, 48)), 1, 0)["lead_empty"] == 1.0


def test_a_lead_rhythm_repeated_two_bars_later_is_found():
    import eval_texture as tx

    cell = [0, 6, 12, 21, 36]
    repeated = phrase(*[(b * 48 + t, LEAD, 72, 3) for b in range(8) for t in (cell if b % 2 == 0 else cell[:3])])
    varied = phrase(*[(b * 48 + t + b % 3 * 3, LEAD, 72, 3) for b in range(8) for t in cell])
    assert tx.rhythm_repeats(repeated, LEAD, 8) == 1.0
    assert tx.rhythm_repeats(varied, LEAD, 8) == 0.0
    assert np.isnan(tx.rhythm_repeats(phrase((0, LEAD, 72, 3)), LEAD, 8))


def test_nesmdb_songs_are_read_on_the_beat_of_their_frames(tmp_path):
    """A NES-MDB-like file (120 BPM at 22,050 ticks per beat, the music at 150 BPM on 60 Hz frames):
    the beat comes back from the onsets, the voices become lead / arp / bass, the notes land on the grid."""
    import pretty_midi

    import eval_nesmdb as nes

    song = pretty_midi.PrettyMIDI(resolution=22050, initial_tempo=120.0)
    sixteenth = 6 / 60  # 6 frames: 150 BPM
    voices = {"p1": (80, 76, 1), "p2": (81, 64, 2), "tr": (38, 45, 4), "no": (121, 5, 1)}
    for name, (program, pitch, every) in voices.items():
        instrument = pretty_midi.Instrument(program=program, name=name, is_drum=name == "no")
        for i in range(0, 128, every):
            start = 0.5 + i * sixteenth
            instrument.notes.append(pretty_midi.Note(100, pitch + (i // every) % 3, start, start + every * sixteenth * 0.9))
        song.instruments.append(instrument)
    path = tmp_path / "001_Game_00_01Title.mid"
    song.write(str(path))
    beats = nes.song_beats([n.start for i in song.instruments[:3] for n in i.notes])
    assert np.allclose(np.diff(beats), 4 * sixteenth)
    assert np.isclose(beats[0], 0.5)
    windows = nes.read_song(str(path), 2, 0)
    assert len(windows) == 4  # 32 beats of music: four 2-bar windows
    notes = windows[0]["notes"]
    lead, arp, bass = (notes[notes[:, 1] == p] for p in range(3))
    assert set(lead[:, 2]) == {76, 77, 78} and set(arp[:, 2]) == {64, 65, 66} and set(bass[:, 2]) == {33, 34, 35}
    assert np.array_equal(lead[:, 0], np.arange(0, 96, 3))  # every 16th of two bars
    assert np.all(bass[:, 0] % 12 == 0)
    summary = nes.reference(str(tmp_path), 2)
    assert summary["songs"] == 1 and summary["phrases"] == 4 and summary["odd_16ths_lead"] == 0.5


def _bar(part, ticks, per_onset):
    """The notes of controls.rs's tests: `per_onset` notes (a major third apart) at each tick."""
    return phrase(*[(t, part, 48 + 4 * i, 3) for t in ticks for i in range(per_onset)])


def test_bar_controls_are_measured_as_the_plugin_measures_them():
    """The cases of plugin/src/music/controls.rs's tests, with the answers Rust gives."""
    import eval_texture as tx

    assert [tx.density_bin(n) for n in (0, 2, 8, 16, 48)] == [0, 1, 4, 7, 7]
    sixteenths = list(range(0, 48, 3))
    assert tx.measure_bar(phrase())["arp_motion"] == "rest"
    assert tx.measure_bar(_bar(ARP, [0, 12, 24, 36], 3))["arp_motion"] == "block"
    assert tx.measure_bar(_bar(ARP, [0, 6, 12, 18], 1))["arp_motion"] == "broken"
    assert tx.measure_bar(_bar(ARP, sixteenths, 1))["arp_motion"] == "arpeggio"
    assert tx.measure_bar(_bar(LEAD, sixteenths, 1))["arp_motion"] == "rest"  # lead notes never count for the arp

    def drive(ticks):
        return tx.measure_bar(_bar(BASS, ticks, 1))["bass_drive"]

    assert drive([]) == "rest"
    assert drive([0, 24]) == "held"
    assert drive([0, 6, 12, 18, 24, 30, 36, 42]) == "pulse"
    assert drive([6, 18, 30, 42]) == "offbeat"
    assert drive([0, 9, 18, 24, 33, 42]) == "sixteenths"
    assert tx.measure_bar(_bar(BASS, [0, 6, 12, 18, 24, 30, 36, 42], 1))["density"] == [0, 0, 4]
    # Eight onsets, one of them a chord: more than 10 % chords, so broken, not an arpeggio.
    assert tx.measure_bar(np.vstack([_bar(ARP, sixteenths[:7], 1), _bar(ARP, [45], 2)]))["arp_motion"] == "broken"
    # Bars of a phrase are measured from their own start.
    two = np.vstack([_bar(BASS, [0, 24], 1), _bar(BASS, [48 + 6, 48 + 18, 48 + 30, 48 + 42], 1)])
    assert [b["bass_drive"] for b in tx.measure_phrase(two, 2)] == ["held", "offbeat"]


def test_targets_say_met_or_missed_by_how_much():
    import eval_texture as tx

    assert tx.check_target((">=", 4.5), 5.0) == (True, "met")
    assert tx.check_target((">=", 4.5), 4.5) == (True, "met")
    assert tx.check_target((">=", 4.5), 4.2) == (False, "missed by 0.3")
    assert tx.check_target(("<=", 0.015), 0.02) == (False, "missed by 0.005")
    assert tx.check_target(("==", 0), 0.0) == (True, "met")
    assert tx.check_target(("==", 0), 0.25) == (False, "missed by 0.25")
    assert tx.check_target(("<", 0.88), 0.9) == (False, "missed by 0.02")
    assert tx.check_target(("<", 0.88), None) == (False, "not measured")
    assert tx.check_target((">=", 0.5), float("nan")) == (False, "not measured")
    assert tx.target_text(("<=", 0.015)) == "≤ 0.015"
    # Every target is machine-checkable.
    for target in tx.DANCE_TARGETS.values():
        assert target[0] in tx.OPS and isinstance(target[1], (int, float))


def test_chord_tones_on_beats_one_and_three():
    import eval_texture as tx

    c_major = 0b000010010001  # C E G
    chords = [[0, 0, c_major], [48, -1, 0]]  # C major for bar 0, no chord in bar 1
    notes = phrase((0, LEAD, 64, 6), (0, BASS, 37, 12), (12, LEAD, 61, 6), (24, ARP, 67, 6), (24, LEAD, 62, 6),
                   (48, LEAD, 61, 6))
    # Beats 1 and 3 of bar 0: E, C#, G, D → 2 of 4; beat 2 is not counted; bar 1 has no chord.
    assert tx.chord_tone_strong(notes, chords) == 0.5
    assert np.isnan(tx.chord_tone_strong(notes, []))
    assert tx.texture(notes, 2, 0, chords)["chord_tone_strong"] == 0.5
    assert tx.texture(notes, 2, 0)["part_empty"] == 0.0
    assert tx.texture(phrase((0, LEAD, 72, 3), (0, BASS, 36, 3)), 1, 0)["part_empty"] == 1.0


def test_adherence_of_asked_controls():
    import types

    import eval_texture as tx

    # Bar 0: arp 16ths (arpeggio), bass on the offbeats; bar 1: arp block chords, bass held.
    bar0 = np.vstack([_bar(ARP, range(0, 48, 3), 1), _bar(BASS, [6, 18, 30, 42], 1)])
    bar1 = _bar(ARP, [48, 72], 3)
    bar1 = np.vstack([bar1, _bar(BASS, [48], 1)])
    notes = np.vstack([bar0, bar1])
    written = [{"density": [0, 7, 2], "arp_motion": "arpeggio", "bass_drive": "offbeat"}] * 2
    item = {"key": 0, "bar_controls": written}
    phrases = types.SimpleNamespace(items=[item], notes=[notes], bars=2)
    asked = {"density": [None, 7, None], "arp_motion": "arpeggio", "bass_drive": "offbeat"}
    rows = {r["kind"]: r for r in tx.adherence(phrases, asked)["rows"]}
    # Arp density: bin 7 (16 onsets) in bar 0, bin 1 (2 onsets) in bar 1.
    assert rows["density"]["adherence"] == 0.5 and rows["density"]["exact"] == 0.5 and rows["density"]["written"] == 1.0
    assert rows["arp_motion"]["adherence"] == 0.5 and rows["arp_motion"]["drive_bars"] == 0.5
    assert rows["arp_motion"]["single_onsets"] == pytest.approx(16 / 18)
    assert rows["bass_drive"]["adherence"] == 0.5 and rows["bass_drive"]["pulse_bars"] == 0.5
    auto = tx.auto_agreement(phrases)
    assert auto["arp_motion"] == 0.5 and auto["bass_drive"] == 0.5 and auto["lead_density"] == 1.0
    assert auto["arp_density"] == 0.5
