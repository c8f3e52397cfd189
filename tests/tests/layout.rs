//! Ports and audio layouts: a MIDI effect with no audio by default, a stereo pass-through layout
//! through audio-ports-config, and the parameter list the tests rely on.

mod common;

use common::*;
use trio_tests::host::{HostOptions, Layout, RenderMode, TrioHost};

#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn default_ports_and_params() {
    let mut h = offline_host();
    assert_eq!(h.note_port_counts(), Some((1, 1)), "one note input, one note output");
    assert_eq!(h.audio_port_counts(), Some((0, 0)), "no audio ports by default");
    let configs = h.audio_port_configs();
    assert!(
        configs.iter().any(|c| c.main_in == Some(2) && c.main_out == Some(2)),
        "a stereo in/out audio-ports-config is offered: {configs:?}"
    );

    // The parameters of the spec, by display name, with their ranges.
    for (name, min, max) in [("Seed", 1, 9999), ("Loop Length", 1, 16), ("Key Lock", 0, 24)] {
        h.int_param(name, min, max).unwrap();
    }
    assert_eq!(h.int_param("Loop Length", 1, 16).unwrap().default, 4);
    for p in ["Lead", "Arp", "Bass"] {
        h.int_param(&format!("{p} Low"), 0, 127).unwrap();
        h.int_param(&format!("{p} High"), 0, 127).unwrap();
        h.int_param(&format!("{p} Channel"), 1, 16).unwrap();
        let on = h.param(&format!("{p} On")).unwrap();
        assert!(on.stepped && on.max == 1.0, "{p} On is a bool: {on:?}");
    }
    for (name, variants) in [
        ("Mode", &["Loop", "Endless", "Hold"][..]),
        ("Mood", &["Auto", "Happy", "Sad", "Calm", "Tense"][..]),
        ("Part Output", &["All Parts", "Lead Only", "Arp Only", "Bass Only"][..]),
    ] {
        for (i, v) in variants.iter().enumerate() {
            assert_eq!(h.enum_value(name, v).unwrap(), i as f64, "{name} variant {v}");
        }
        assert_eq!(h.param(name).unwrap().max, (variants.len() - 1) as f64, "{name} has {} variants", variants.len());
    }
    let t = h.param("Temperature").unwrap().clone();
    let one = h.text_to_value("Temperature", "1.0").unwrap();
    assert!((t.default - one).abs() < 1e-6, "Temperature defaults to 1.0");
    for (name, lo, hi) in [("Temperature", "0.1", "2.0"), ("Top-p", "0.5", "1.0")] {
        let p = h.param(name).unwrap().clone();
        assert!(
            (h.text_to_value(name, lo).unwrap() - p.min).abs() < 1e-6
                && (h.text_to_value(name, hi).unwrap() - p.max).abs() < 1e-6,
            "{name} spans {lo}..{hi}"
        );
    }
}

/// With the stereo layout selected, audio passes through bit for bit while notes are generated.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn stereo_pass_through() {
    let bundle = trio_tests::require_trio_clap();
    let mut h = TrioHost::new(
        &bundle,
        HostOptions {
            sample_rate: SR,
            max_block: BLOCK,
            render: RenderMode::Offline,
            layout: Layout::StereoPassThrough,
            ..HostOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("stereo layout: {e}"));
    assert_eq!(h.audio_port_counts(), Some((1, 1)), "one stereo port in, one out");
    let mut tl = timeline();
    tl.play_bars(4.0);
    tl.stop_blocks(1);
    let blocks = tl.take();
    let r = run(&mut h, &blocks);
    assert_clean("stereo layout", &r, true);
    assert!(!r.events.is_empty(), "no notes with the stereo layout");
    assert_eq!(r.audio_out.len(), 2);
    for ch in 0..2 {
        assert_eq!(r.audio_out[ch].len(), r.audio_in[ch].len());
        let diff = r.audio_in[ch].iter().zip(&r.audio_out[ch]).position(|(a, b)| a.to_bits() != b.to_bits());
        if let Some(i) = diff {
            panic!(
                "channel {ch}: output differs from input at sample {i}: in {} out {}",
                r.audio_in[ch][i], r.audio_out[ch][i]
            );
        }
    }
    // Also with odd block sizes (the host may shorten blocks).
    let mut odd = blocks[..8].to_vec();
    for (i, b) in odd.iter_mut().enumerate() {
        b.frames = [1, 17, 255, 100, 3, 256, 64, 7][i];
        b.transport = None;
    }
    let r = run(&mut h, &odd);
    for ch in 0..2 {
        assert!(
            r.audio_in[ch].iter().zip(&r.audio_out[ch]).all(|(a, b)| a.to_bits() == b.to_bits()),
            "odd blocks, channel {ch}"
        );
    }
}
