//! What a project saves besides parameter values: the generated bars (as tokens, so they decode to
//! the same notes and can condition further generation), locks, the variation counter and the
//! identity of the model that made them. Garbage is refused at deserialization, so a bad state
//! never replaces a good one.

use crate::generator::settings::GenSettings;
use crate::music::tokens::Decoder;
use crate::music::vocab::VOCAB_SIZE;
use serde::{Deserialize, Serialize};

/// Bumped when the layout changes; older layouts are refused with a message, not misread.
pub const SESSION_FORMAT: u32 = 1;
/// At most this many stored bars (Loop mode needs 16; Endless keeps a recent window).
pub const MAX_STORED_BARS: usize = 64;

/// One bar's tokens, starting with BAR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBar {
    /// Phrase bar index (Loop: 0..length; Endless: the host bar).
    pub index: i64,
    pub tokens: Vec<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "SessionFile", into = "SessionFile")]
pub struct PersistedSession {
    /// "<model_version>/<vocab hash>" of the model that generated the bars; empty if none.
    pub model_id: String,
    /// Bumped by every Regenerate, so the same seed can give new material and still reload exactly.
    pub variation: u32,
    /// Locked parts keep their notes when the others are regenerated.
    pub locked: [bool; 3],
    /// The conditioning tokens the bars were generated under (BOS TEMPO KEY MOOD), if any.
    pub header: Option<[u32; 4]>,
    /// The parameter values the bars were generated under, so a reload does not regenerate them.
    pub settings: Option<GenSettings>,
    pub bars: Vec<StoredBar>,
    /// Changes whenever the generator stores new bars; lets it tell its own writes from a host's
    /// state load. Not meaningful across sessions.
    pub stamp: u64,
}

/// The on-disk shape, checked before it becomes a `PersistedSession`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionFile {
    format: u32,
    model_id: String,
    variation: u32,
    locked: [bool; 3],
    header: Option<[u32; 4]>,
    settings: Option<GenSettings>,
    bars: Vec<StoredBar>,
    stamp: u64,
}

impl From<PersistedSession> for SessionFile {
    fn from(s: PersistedSession) -> Self {
        SessionFile {
            format: SESSION_FORMAT,
            model_id: s.model_id,
            variation: s.variation,
            locked: s.locked,
            header: s.header,
            settings: s.settings,
            bars: s.bars,
            stamp: s.stamp,
        }
    }
}

impl TryFrom<SessionFile> for PersistedSession {
    type Error = String;

    fn try_from(f: SessionFile) -> Result<Self, String> {
        if f.format != SESSION_FORMAT {
            return Err(format!("saved phrase has format {}, this build reads {}", f.format, SESSION_FORMAT));
        }
        if f.bars.len() > MAX_STORED_BARS {
            return Err(format!("saved phrase has {} bars, at most {MAX_STORED_BARS}", f.bars.len()));
        }
        if let Some(header) = f.header {
            let mut decoder = Decoder::new();
            for id in header {
                decoder.push(id).map_err(|e| format!("saved phrase header is invalid: {e}"))?;
            }
        }
        for bar in &f.bars {
            validate_bar_tokens(&bar.tokens).map_err(|e| format!("saved bar {} is invalid: {e}", bar.index))?;
        }
        Ok(PersistedSession {
            model_id: f.model_id,
            variation: f.variation,
            locked: f.locked,
            header: f.header,
            settings: f.settings,
            bars: f.bars,
            stamp: f.stamp,
        })
    }
}

/// A bar's tokens must start with BAR and follow the grammar.
pub fn validate_bar_tokens(tokens: &[u32]) -> Result<(), String> {
    if tokens.len() > 4096 {
        return Err("too many tokens".into());
    }
    let mut decoder = Decoder::at_bar_start(0);
    if tokens.first() != Some(&crate::music::vocab::Token::Bar.id()) {
        return Err("does not start with BAR".into());
    }
    for (i, &id) in tokens.iter().enumerate() {
        if id as usize >= VOCAB_SIZE {
            return Err(format!("token {id} is outside the vocabulary"));
        }
        if i > 0 && id == crate::music::vocab::Token::Bar.id() {
            return Err("holds more than one bar".into());
        }
        decoder.push(id)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::music::vocab::Token;
    use crate::music::Part;

    fn bar() -> Vec<u32> {
        vec![
            Token::Bar.id(),
            Token::Position(0).id(),
            Token::Part(Part::Bass).id(),
            Token::Pitch(36).id(),
            Token::Duration(3).id(),
            Token::Velocity(5).id(),
        ]
    }

    #[test]
    fn round_trips_and_serializes_identically() {
        let session = PersistedSession {
            model_id: "m/h".into(),
            variation: 2,
            locked: [false, true, false],
            header: None,
            settings: None,
            bars: vec![StoredBar { index: 0, tokens: bar() }],
            stamp: 7,
        };
        let a = serde_json::to_string(&session).unwrap();
        let b = serde_json::to_string(&session).unwrap();
        assert_eq!(a, b);
        assert_eq!(serde_json::from_str::<PersistedSession>(&a).unwrap(), session);
    }

    #[test]
    fn refuses_garbage() {
        assert!(serde_json::from_str::<PersistedSession>("{\"format\":1}").is_err());
        assert!(serde_json::from_str::<PersistedSession>("[1,2,3]").is_err());
        let mut bad = bar();
        bad.swap(1, 2);
        let json = format!(
            "{{\"format\":1,\"model_id\":\"\",\"variation\":0,\"locked\":[false,false,false],\"header\":null,\"settings\":null,\"bars\":[{{\"index\":0,\"tokens\":{bad:?}}}],\"stamp\":0}}"
        );
        let err = serde_json::from_str::<PersistedSession>(&json).unwrap_err().to_string();
        assert!(err.contains("invalid"), "{err}");
        let json = json.replace("\"format\":1", "\"format\":9");
        assert!(serde_json::from_str::<PersistedSession>(&json).is_err());
    }
}
