//! trio-render: renders Neural Trio headless and writes the result as MIDI files.
//!
//! trio-render --plugin PATH [--bars 16] [--bpm 128] [--block 256] [--rate 48000] [--seed N]
//!             [--offline|--realtime] [--pace X] [--param NAME=VALUE]... [--input FILE.mid]
//!             [--progression TEXT] [--at BAR NAME=VALUE]... [--model FILE.onnx] [--linked]
//!             [--allow-silence] [--out DIR]
//!
//! Exit codes: 0 clean, 1 an invariant failed, 2 usage or host error.

use std::path::PathBuf;
use std::process::ExitCode;
use trio_tests::render::{render, render_linked, RenderOptions};
use trio_tests::RenderMode;

const USAGE: &str = "usage: trio-render --plugin PATH [--bars 16] [--bpm 128] [--block 256] [--rate 48000] \
[--seed N] [--offline|--realtime] [--pace X] [--param NAME=VALUE]... [--input FILE.mid] \
[--progression TEXT] [--at BAR NAME=VALUE]... [--model FILE.onnx] [--linked] [--allow-silence] [--out DIR]

Renders the given bars with a playing transport from bar 0 and writes DIR/trio.mid (tempo track +
one track per part) and DIR/lead.mid, DIR/arp.mid, DIR/bass.mid. Offline (the default) sets the CLAP
render mode to offline; --realtime processes in realtime mode, as fast as possible unless --pace X
limits it to X times real time. --param sets any parameter by its name as the host shows it (any case,
`_` for a space) to a value as its text reads, e.g. --param Mode=Endless --param \"Key Lock=Am\"
--param compute=GPU. --input plays a MIDI file into the plugin while rendering (from bar 0, read in
beats, on its own channels): with --param Follow=Chords the trio follows its chords, with
--param \"Follow=Part: Bass\" the file is the bass. --progression forces a chord progression
(\"Am F C G\" or \"| Am | F | C G |\"), as typed in the editor. --at BAR NAME=VALUE automates a
parameter: it takes the value at that bar (0-based, fractions allowed: --at 4 Regenerate=On --at 4.25
Regenerate=Off makes a new phrase from bar 4). --model renders with that model file (a fine-tuned
model of your own, e.g. from `cargo xtask finetune`) instead of the shipped one; --at BAR model=FILE
switches to another model file mid-render (it takes over at the next bar line). --linked renders with three linked
instances in one process (Link A; Lead Only, Arp Only, Bass Only; the input file played into the
first) and writes what they played together. Exit code 1 when an invariant fails (unsorted events, unbalanced
notes, a note outside its part's register, no notes unless --allow-silence), 2 on usage or host errors.";

fn parse() -> Result<(RenderOptions, bool), String> {
    let mut o = RenderOptions::default();
    let mut linked = false;
    let mut plugin = None;
    let mut args = std::env::args().skip(1);
    fn value<T: std::str::FromStr>(flag: &str, v: Option<String>) -> Result<T, String> {
        let v = v.ok_or_else(|| format!("{flag} needs a value"))?;
        v.parse().map_err(|_| format!("{flag}: cannot parse {v:?}"))
    }
    while let Some(a) = args.next() {
        match a.as_str() {
            "--plugin" => plugin = Some(PathBuf::from(value::<String>(&a, args.next())?)),
            "--bars" => o.bars = value(&a, args.next())?,
            "--bpm" => o.bpm = value(&a, args.next())?,
            "--block" => o.block = value(&a, args.next())?,
            "--rate" => o.rate = value(&a, args.next())?,
            "--seed" => o.seed = Some(value(&a, args.next())?),
            "--out" => o.out = Some(PathBuf::from(value::<String>(&a, args.next())?)),
            "--pace" => o.pace = Some(value(&a, args.next())?),
            "--offline" => o.mode = RenderMode::Offline,
            "--realtime" => o.mode = RenderMode::Realtime,
            "--allow-silence" => o.allow_silence = true,
            "--linked" => linked = true,
            "--input" => o.input = Some(PathBuf::from(value::<String>(&a, args.next())?)),
            "--progression" => o.progression = Some(value(&a, args.next())?),
            "--model" => o.model = Some(PathBuf::from(value::<String>(&a, args.next())?)),
            "--at" => {
                let bar: f64 = value(&a, args.next())?;
                let setting: String = value(&a, args.next())?;
                let (name, text) =
                    setting.split_once('=').ok_or(format!("--at {bar} {setting:?}: expected NAME=VALUE"))?;
                match name.trim().eq_ignore_ascii_case("model") {
                    true => o.model_switches.push((bar, PathBuf::from(text.trim()))),
                    false => o.automation.push((bar, name.trim().to_string(), text.trim().to_string())),
                }
            }
            "--param" => {
                let setting: String = value(&a, args.next())?;
                let (name, text) =
                    setting.split_once('=').ok_or(format!("--param {setting:?}: expected NAME=VALUE"))?;
                o.params.push((name.trim().to_string(), text.trim().to_string()));
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    o.plugin = plugin.ok_or("--plugin is required")?;
    if !(o.bars > 0.0 && o.bpm > 0.0 && o.rate > 0.0 && o.block > 0) {
        return Err("--bars, --bpm, --rate and --block must be positive".into());
    }
    Ok((o, linked))
}

fn main() -> ExitCode {
    let (opts, linked) = match parse() {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("trio-render: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if !opts.plugin.is_file() {
        eprintln!(
            "trio-render: {} does not exist; build it with `cargo xtask bundle neural_trio --release`",
            opts.plugin.display()
        );
        return ExitCode::from(2);
    }
    let rendered = match linked {
        false => render(&opts).map(|report| (report.summary(), report.failures.is_empty())),
        true => render_linked(&opts).map(|linked| (linked.summary(), linked.failures().is_empty())),
    };
    match rendered {
        Ok((summary, clean)) => {
            print!("{summary}");
            if clean {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("trio-render: {e}");
            ExitCode::from(2)
        }
    }
}
