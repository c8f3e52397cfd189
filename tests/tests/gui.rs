//! The editor, opened headless through the CLAP GUI extension under an X server (Xvfb in CI):
//! it shows the three parts and the playhead, it reopens, and its size persists with the project.
//!
//! Needs `DISPLAY`; without one the test fails and says how to get one (`cargo xtask test` starts
//! Xvfb). The screenshot goes to `target/gui/editor.png`, and to `assets/editor.png` (the README's)
//! when `TRIO_SAVE_SCREENSHOT=1`.

use std::time::Duration;
use trio_tests::gui::{
    capture_editor_until, close_editor, editor_size, editor_window, open_editor, resize_editor, Screenshot, X11Display,
};
use trio_tests::host::{HostOptions, RenderMode, TrioHost};
use trio_tests::timeline::Timeline;

const SR: f64 = 48_000.0;
const BLOCK: u32 = 256;

/// The colours the editor paints notes still to come and the playhead in (plugin/src/editor/mod.rs).
const LEAD: [u8; 3] = [255, 138, 31];
const ARP: [u8; 3] = [43, 217, 200];
const BASS: [u8; 3] = [180, 92, 255];
const PLAYHEAD: [u8; 3] = [255, 240, 60];
/// The lighter shade of the lead colour its register band's handles are drawn in.
const LEAD_TINT: [u8; 3] = [255, 179, 109];
/// Per-channel slack for GL rounding.
const TOLERANCE: u8 = 3;
/// The smallest count that is a drawn note rather than stray anti-aliased pixels (a 16th note in a
/// default-sized editor is about 12 × 5 pixels).
const MIN_NOTE_PIXELS: usize = 20;
/// The playhead is a 2-pixel column over the roll's height.
const MIN_PLAYHEAD_PIXELS: usize = 300;

fn counts(shot: &Screenshot) -> [usize; 4] {
    [LEAD, ARP, BASS, PLAYHEAD].map(|c| shot.count_near(c, TOLERANCE))
}

fn complete(c: &[usize; 4]) -> bool {
    c[..3].iter().all(|&n| n >= MIN_NOTE_PIXELS) && c[3] >= MIN_PLAYHEAD_PIXELS
}

/// Processes a few stopped blocks (the plugin applies editor changes to its parameters when it sends
/// them to the host) until `accept` holds for the parameter's CLAP value; returns the last value.
fn settle_param(host: &mut TrioHost, name: &str, accept: impl Fn(f64) -> bool) -> f64 {
    let mut timeline = Timeline::new(SR, BLOCK, 120.0);
    timeline.seek(6.0);
    let mut value = host.param_value(name).unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..50 {
        if accept(value) {
            break;
        }
        timeline.stop_blocks(2);
        host.run(&timeline.take(), None).unwrap_or_else(|e| panic!("processing failed: {e}"));
        std::thread::sleep(Duration::from_millis(40));
        value = host.param_value(name).unwrap_or_else(|e| panic!("{e}"));
    }
    value
}

fn new_host(state: Option<Vec<u8>>) -> TrioHost {
    let bundle = trio_tests::require_trio_clap();
    TrioHost::new(
        &bundle,
        HostOptions {
            sample_rate: SR,
            max_block: BLOCK,
            render: RenderMode::Offline,
            initial_state: state,
            ..HostOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("hosting {}: {e}", bundle.display()))
}

#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn editor_shows_the_parts_and_playhead_reopens_and_keeps_its_size() {
    let display = X11Display::connect().unwrap_or_else(|e| panic!("{e}"));
    let mut host = new_host(None);

    // Six beats of the default 4-bar loop, offline (the audio thread waits for every bar): the
    // playhead stops in bar 2, so the roll shows heard notes dimmed and 2½ bars still to come.
    let mut timeline = Timeline::new(SR, BLOCK, 120.0);
    timeline.play_beats(6.0);
    let run = host.run(&timeline.take(), None).unwrap_or_else(|e| panic!("processing failed: {e}"));
    assert!(run.events.iter().any(|e| e.on), "the plugin played no notes in six beats");

    let editor = open_editor(&mut host, &display).unwrap_or_else(|e| panic!("opening the editor: {e}"));
    assert_eq!(editor.size, (1040, 640), "a new instance opens its editor at the default size");
    let shot = capture_editor_until(&mut host, &display, &editor, Duration::from_secs(30), |s| complete(&counts(s)))
        .unwrap_or_else(|e| panic!("capturing the editor: {e}"));

    let target = trio_tests::workspace_root().join("target/gui/editor.png");
    shot.save_png(&target).unwrap_or_else(|e| panic!("writing {}: {e}", target.display()));
    if std::env::var("TRIO_SAVE_SCREENSHOT").as_deref() == Ok("1") {
        let asset = trio_tests::workspace_root().join("assets/editor.png");
        shot.save_png(&asset).unwrap_or_else(|e| panic!("writing {}: {e}", asset.display()));
    }
    let c = counts(&shot);
    println!(
        "editor {}x{}: {} colours; pixels of lead {}, arp {}, bass {}, playhead {}; screenshot {}",
        shot.width,
        shot.height,
        shot.distinct_colours(),
        c[0],
        c[1],
        c[2],
        c[3],
        target.display()
    );
    assert_eq!((shot.width, shot.height), editor.size, "the editor fills the size it asked for");
    assert!(shot.distinct_colours() > 50, "the editor window looks blank (see {})", target.display());
    for (name, n) in ["lead", "arp", "bass"].iter().zip(c) {
        assert!(
            n >= MIN_NOTE_PIXELS,
            "{name} notes are not visible ({n} pixels of its colour; see {})",
            target.display()
        );
    }
    assert!(c[3] >= MIN_PLAYHEAD_PIXELS, "the playhead is not visible ({} pixels; see {})", c[3], target.display());

    // Dragging the top of the lead's register band lowers the automatable "Lead High" through the
    // host; a double-click on the band puts the default register back.
    let window = editor_window(&display, &editor).unwrap_or_else(|e| panic!("{e}"));
    let handles = shot.find(LEAD_TINT, 2, (20, 150, 120, shot.height));
    assert!(!handles.is_empty(), "the lead's register band is not visible (see {})", target.display());
    let top = handles.iter().map(|p| p.1).min().unwrap() as i32;
    let bottom = handles.iter().map(|p| p.1).max().unwrap() as i32;
    let x = (handles.iter().map(|p| p.0 as u64).sum::<u64>() / handles.len() as u64) as i32;
    let high_before = host.param_value("Lead High").unwrap_or_else(|e| panic!("{e}"));
    display.drag(window, (x, top + 1), (x, top + 41)).unwrap_or_else(|e| panic!("dragging: {e}"));
    let high_dragged = settle_param(&mut host, "Lead High", |v| v < high_before);
    println!("Lead High: {high_before} before, {high_dragged} after dragging the band's top 40 pixels down");
    assert!(
        high_dragged <= high_before - 3.0,
        "dragging the lead band's top did not lower Lead High ({high_before} → {high_dragged})"
    );
    display.double_click(window, (x, (top + 41 + bottom) / 2)).unwrap_or_else(|e| panic!("double-clicking: {e}"));
    let high_reset = settle_param(&mut host, "Lead High", |v| (v - high_before).abs() < 0.5);
    assert!(
        (high_reset - high_before).abs() < 0.5,
        "double-clicking the lead band did not restore its default register ({high_reset})"
    );

    // The host resizes the editor (a user dragging its frame); the size is kept in the plugin's state.
    resize_editor(&mut host, 1200, 720).unwrap_or_else(|e| panic!("resizing: {e}"));
    let resized = capture_editor_until(&mut host, &display, &editor, Duration::from_secs(10), |s| {
        (s.width, s.height) == (1200, 720)
    })
    .unwrap_or_else(|e| panic!("capturing the resized editor: {e}"));
    assert_eq!((resized.width, resized.height), (1200, 720), "the editor window took the new size");
    // Wait for the editor to see its new size (it records it when egui handles the resize).
    let mut size = (0, 0);
    for _ in 0..40 {
        host.service_main_thread();
        size = editor_size(&mut host).unwrap_or_else(|e| panic!("{e}"));
        if size == (1200, 720) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(size, (1200, 720), "the editor reports its new size");
    close_editor(&mut host, &display, editor).unwrap_or_else(|e| panic!("closing the editor: {e}"));

    // Reopening: same size, same notes and playhead (nothing lived in the closed window).
    let editor = open_editor(&mut host, &display).unwrap_or_else(|e| panic!("reopening the editor: {e}"));
    assert_eq!(editor.size, (1200, 720), "the editor reopens at the size it was left at");
    let again = capture_editor_until(&mut host, &display, &editor, Duration::from_secs(20), |s| complete(&counts(s)))
        .unwrap_or_else(|e| panic!("capturing the reopened editor: {e}"));
    assert!(complete(&counts(&again)), "after reopening: lead/arp/bass/playhead pixels {:?}", counts(&again));
    close_editor(&mut host, &display, editor).unwrap_or_else(|e| panic!("closing the editor: {e}"));

    // The size travels with the project: a new instance loading the saved state opens at it.
    let state = host.save_state().unwrap_or_else(|e| panic!("saving state: {e}"));
    drop(host);
    let mut restored = new_host(Some(state));
    let editor = open_editor(&mut restored, &display).unwrap_or_else(|e| panic!("opening the restored editor: {e}"));
    assert_eq!(editor.size, (1200, 720), "a reloaded project opens its editor at the saved size");
    close_editor(&mut restored, &display, editor).unwrap_or_else(|e| panic!("closing the editor: {e}"));
}
