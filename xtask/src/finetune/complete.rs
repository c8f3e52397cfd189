//! The parts a file lacks, written by the base model around the parts it has, so the fine-tuned
//! model still writes all three (a folder of lead melodies teaches the lead; the arp and the bass it
//! learns from are the base model's, made to fit the user's leads). Bar by bar through the
//! plugin's own composer: the file's notes are forced where they fall, its chords (when it has an
//! accompaniment) are forced too, and only the missing parts are sampled.

use super::import::Imported;
use neural_trio::generator::composer::{generate_bar, BarRequest};
use neural_trio::generator::model::TokenModel;
use neural_trio::generator::sampler::{Constraints, Rng};
use neural_trio::music::harmony::BarHarmony;
use neural_trio::music::tokens::encode_phrase;
use neural_trio::music::vocab::Token;
use neural_trio::music::{Chord, Note, Part, TICKS_PER_BAR};

/// Sampling temperature of the completion: a little below 1 keeps the base model's parts plain.
const COMPLETION_TEMPERATURE: f32 = 0.9;

/// The song's token stream (header, bars, EOS) with every missing part written by `model`; the
/// file's own stream when it has all three.
pub fn complete(model: &mut dyn TokenModel, song: &Imported, seed: u32) -> Result<Vec<u32>, String> {
    if song.found.iter().all(|&f| f) {
        return Ok(encode_phrase(&song.header, &song.phrase, true));
    }
    let header = song.header.tokens();
    let constraints = Constraints {
        temperature: COMPLETION_TEMPERATURE,
        top_p: 1.0,
        parts_allowed: song.found.map(|found| !found),
        registers: Part::ALL.map(Part::default_register),
        scale_mask: 0x0fff,
        chord_tones: 0,
        controls: neural_trio::music::controls::ControlChoice::AUTO,
        ..Constraints::default()
    };
    let mut bars: Vec<Vec<u32>> = Vec::with_capacity(song.phrase.bars as usize);
    for bar in 0..song.phrase.bars {
        let (start, end) = (bar * TICKS_PER_BAR, (bar + 1) * TICKS_PER_BAR);
        let forced_notes: Vec<Note> = song
            .phrase
            .notes
            .iter()
            .filter(|n| (start..end).contains(&n.start_tick))
            .map(|n| Note { start_tick: n.start_tick - start, ..*n })
            .collect();
        let harmony = bar_harmony(&song.phrase.chords, start, end);
        let history: Vec<&[u32]> = bars.iter().map(Vec::as_slice).collect();
        let tokens = generate_bar(
            model,
            BarRequest {
                header,
                history: &history,
                history_first_bar: 0,
                forced_prefix: &[Token::Bar.id()],
                resume_tick: 0,
                forced_notes: &forced_notes,
                harmony: harmony.as_ref(),
                constraints,
                // A song, not a loop: nothing is owed.
                owed_parts: [false; 3],
                rng: Rng::for_bar(seed, bar as i64, 0),
            },
        )?;
        bars.push(tokens);
    }
    let mut stream: Vec<u32> = header.to_vec();
    stream.extend(bars.into_iter().flatten());
    stream.push(Token::Eos.id());
    Ok(stream)
}

/// The file's chords over one bar (the one sounding at its start restated at tick 0), or None when
/// the file has none there: the model writes its own.
fn bar_harmony(chords: &[Chord], start: u32, end: u32) -> Option<BarHarmony> {
    let changes = crate::eval::chords_of_span(chords, start, end);
    let from_tick = changes.first()?.start_tick;
    Some(BarHarmony { from_tick, changes, scale: None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finetune::import::{import, tests::midi_file};
    use crate::finetune::roles::RolesFile;
    use neural_trio::generator::model::fake::FakeModel;
    use neural_trio::music::tokens::decode_phrase;

    #[test]
    fn a_lead_only_file_gets_arp_and_bass_around_its_own_lead() {
        let lead: Vec<(f64, f64, u8)> = (0..16).map(|i| (i as f64, 1.0, 67 + (i % 5) as u8)).collect();
        let file = midi_file(480, None, &[("Lead", None, 0, &lead)]);
        let song = import(&file, "lead.mid", &RolesFile::default()).unwrap();
        assert_eq!(song.found, [true, false, false]);
        let stream = complete(&mut FakeModel::new(), &song, 1).unwrap();
        let (header, phrase) = decode_phrase(&stream).unwrap();
        assert_eq!(header, song.header);
        let notes_of = |part| phrase.notes.iter().filter(|n: &&Note| n.part == part).count();
        assert!(notes_of(Part::Arp) > 0 && notes_of(Part::Bass) > 0, "arp and bass were written");
        let lead_of = |notes: &[Note]| notes.iter().filter(|n| n.part == Part::Lead).copied().collect::<Vec<_>>();
        assert_eq!(lead_of(&phrase.notes), lead_of(&song.phrase.notes), "the file's lead is kept note for note");
    }
}
