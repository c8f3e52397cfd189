//! Music as the model and the host see it: parts, notes and phrases on a beat grid, the token
//! vocabulary, and MIDI file I/O. Nothing here knows about threads or plugins.

pub mod controls;
pub mod harmony;
pub mod midi_file;
pub mod phrase;
pub mod tokens;
pub mod vocab;

pub use phrase::{trim_monophonic, Chord, ChordQuality, Note, Part, Phrase, TICKS_PER_BAR, TICKS_PER_BEAT};
