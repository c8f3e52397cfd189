//! Which part each voice of a user's MIDI file plays: the roles file first, then the track's and
//! instrument's names, then its General MIDI program; what none of them says is left to the
//! skyline split (`import::assign_parts`).

use std::collections::BTreeMap;
use std::path::Path;

/// What a voice (a track, or a channel of a format-0 file) becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Lead,
    /// Accompaniment: arp, and bass when no voice is the bass (its lowest notes below G3).
    Arp,
    Bass,
    /// Left out (a roles file said so).
    Skip,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Lead => "lead",
            Role::Arp => "arp",
            Role::Bass => "bass",
            Role::Skip => "skip",
        }
    }

    fn parse(text: &str) -> Option<Role> {
        match text.to_ascii_lowercase().as_str() {
            "lead" | "melody" => Some(Role::Lead),
            "arp" | "chords" | "accompaniment" => Some(Role::Arp),
            "bass" => Some(Role::Bass),
            "skip" | "none" | "drop" => Some(Role::Skip),
            _ => None,
        }
    }
}

/// Words in a track or instrument name, checked in this order (a "Bass Synth Lead" is bass).
const NAME_RULES: [(&[&str], Role); 3] = [
    (&["bass", "808", "sub"], Role::Bass),
    (&["lead", "melody", "melodie", "vocal", "voice", "vox", "sing", "solo", "hook", "topline"], Role::Lead),
    (
        &["arp", "pad", "keys", "piano", "chord", "comp", "rhodes", "organ", "guitar", "string", "pluck", "synth"],
        Role::Arp,
    ),
];

/// The role a name says, if any.
pub fn role_by_name(name: &str) -> Option<Role> {
    let lower = name.to_ascii_lowercase();
    NAME_RULES.iter().find(|(words, _)| words.iter().any(|w| lower.contains(w))).map(|&(_, role)| role)
}

/// The role a General MIDI program (0-based) says, if any: basses; synth leads, brass, reeds and
/// pipes; pianos, organs, guitars, strings, ensembles and pads.
pub fn role_by_program(program: u8) -> Option<Role> {
    match program {
        32..=39 => Some(Role::Bass),
        56..=87 => Some(Role::Lead),
        0..=31 | 40..=55 | 88..=95 => Some(Role::Arp),
        _ => None,
    }
}

/// A roles file: per MIDI file (its path relative to the folder, or its file name), which voice
/// plays what. One file per line, then `VOICE=ROLE` pairs, `#` starts a comment:
///
/// ```text
/// song01.mid  1=lead  Strings=arp  3=bass  Drums=skip
/// ```
///
/// A voice is a track number (from 0, as the model card lists them) or a track name (any case).
#[derive(Debug, Default)]
pub struct RolesFile {
    files: BTreeMap<String, Vec<(String, Role)>>,
}

impl RolesFile {
    pub fn read(path: &Path) -> Result<RolesFile, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read the roles file {}: {e}", path.display()))?;
        RolesFile::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<RolesFile, String> {
        let mut files = BTreeMap::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            let mut fields = line.split_whitespace();
            let Some(file) = fields.next() else { continue };
            let mut pairs = Vec::new();
            for field in fields {
                let (voice, role) =
                    field.split_once('=').ok_or_else(|| format!("line {}: '{field}' is not VOICE=ROLE", number + 1))?;
                let role = Role::parse(role)
                    .ok_or_else(|| format!("line {}: '{role}' is not lead, arp, bass or skip", number + 1))?;
                pairs.push((voice.to_ascii_lowercase(), role));
            }
            files.insert(file.to_string(), pairs);
        }
        Ok(RolesFile { files })
    }

    /// The role the file gives voice `index` (named `name`) of `relative_path`, if any.
    pub fn role(&self, relative_path: &str, index: usize, name: &str) -> Option<Role> {
        let file_name = Path::new(relative_path).file_name().and_then(|n| n.to_str()).unwrap_or(relative_path);
        let pairs = self.files.get(relative_path).or_else(|| self.files.get(file_name))?;
        let name = name.to_ascii_lowercase();
        pairs.iter().find(|(voice, _)| *voice == index.to_string() || (!name.is_empty() && *voice == name)).map(|p| p.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_programs_say_the_role() {
        assert_eq!(role_by_name("MELODY"), Some(Role::Lead));
        assert_eq!(role_by_name("Bass Synth Lead"), Some(Role::Bass));
        assert_eq!(role_by_name("Piano"), Some(Role::Arp));
        assert_eq!(role_by_name("Track 3"), None);
        assert_eq!(role_by_program(33), Some(Role::Bass));
        assert_eq!(role_by_program(81), Some(Role::Lead));
        assert_eq!(role_by_program(0), Some(Role::Arp));
        assert_eq!(role_by_program(118), None);
    }

    #[test]
    fn a_roles_file_overrides_by_number_or_name() {
        let roles = RolesFile::parse("# mine\nsongs/a.mid 1=lead Strings=ARP\nb.mid 0=skip\n").unwrap();
        assert_eq!(roles.role("songs/a.mid", 1, "x"), Some(Role::Lead));
        assert_eq!(roles.role("songs/a.mid", 4, "strings"), Some(Role::Arp));
        assert_eq!(roles.role("other/b.mid", 0, ""), Some(Role::Skip), "a file name alone matches in any folder");
        assert_eq!(roles.role("songs/a.mid", 2, ""), None);
        assert!(RolesFile::parse("a.mid 1=drums").unwrap_err().contains("not lead, arp, bass or skip"));
        assert!(RolesFile::parse("a.mid lead").unwrap_err().contains("not VOICE=ROLE"));
    }
}
