//! Copy detection: the longest transposition-invariant run of notes a phrase shares with any
//! training song.
//!
//! A part's notes, in the tokenizer's order (onset, then high to low inside a chord), become a
//! sequence of symbols, one per note after the first:
//!
//! - **exact**: (pitch interval to the previous note, onset distance in grid ticks) — the same line
//!   in the same rhythm, in any key;
//! - **pitch**: the pitch interval alone — the same contour in any rhythm (looser, so longer runs).
//!
//! A run of `k` shared notes is a run of `k - 1` shared symbols. Every line of every training song
//! (lead, arp and bass, untransposed: intervals do not change under transposition) goes into one
//! suffix automaton per symbol kind, each line closed by a separator symbol of its own that no
//! query holds, so no match crosses two lines. A query's longest common substring with all of them
//! is then one left-to-right walk (matching statistics), linear in its length. Matches may cross
//! parts (a generated arp that copies a training lead counts).

use neural_trio::music::{Note, Part};

/// The symbol sequence of one part's notes, `notes` in tokenizer order (as `Phrase::normalize`
/// leaves them). `exact` picks the (interval, onset distance) kind, else interval only.
pub fn symbols(notes: &[Note], part: Part, exact: bool) -> Vec<u32> {
    let line: Vec<&Note> = notes.iter().filter(|n| n.part == part).collect();
    line.windows(2)
        .map(|w| {
            let interval = (w[1].pitch as i32 - w[0].pitch as i32 + 128) as u32; // 1..=255
            if exact {
                let delta = (w[1].start_tick - w[0].start_tick).min(0xffff);
                interval << 16 | delta
            } else {
                interval
            }
        })
        .collect()
}

/// Longest shared run in notes, from a symbol match length and the line's note count.
pub fn run_in_notes(matched_symbols: usize, notes_in_line: usize) -> usize {
    if notes_in_line == 0 {
        0
    } else {
        matched_symbols + 1
    }
}

/// A suffix automaton over the concatenation of many lines (each ended by a unique separator).
/// Transitions are kept per state as a vector sorted by symbol (binary search): compact, and the
/// clone step of the construction can copy a state's transitions.
pub struct Index {
    len: Vec<u32>,
    link: Vec<u32>,
    next: Vec<Vec<(u32, u32)>>,
    last: u32,
    lines: u32,
    pub symbols: usize,
}

const NO_LINK: u32 = u32::MAX;
/// Separators live above every note symbol (intervals fill at most bits 16..24).
const SEPARATOR: u32 = 1 << 31;

impl Default for Index {
    fn default() -> Self {
        Index { len: vec![0], link: vec![NO_LINK], next: vec![Vec::new()], last: 0, lines: 0, symbols: 0 }
    }
}

impl Index {
    /// Appends one line (a symbol sequence) and its separator.
    pub fn add_line(&mut self, line: &[u32]) {
        for &s in line {
            debug_assert!(s < SEPARATOR);
            self.extend(s);
        }
        self.extend(SEPARATOR | self.lines);
        self.lines += 1;
        self.symbols += line.len();
    }

    pub fn states(&self) -> usize {
        self.len.len()
    }

    fn get(&self, state: u32, symbol: u32) -> Option<u32> {
        let edges = &self.next[state as usize];
        edges.binary_search_by_key(&symbol, |e| e.0).ok().map(|i| edges[i].1)
    }

    fn set(&mut self, state: u32, symbol: u32, target: u32) {
        let edges = &mut self.next[state as usize];
        match edges.binary_search_by_key(&symbol, |e| e.0) {
            Ok(i) => edges[i].1 = target,
            Err(i) => edges.insert(i, (symbol, target)),
        }
    }

    fn new_state(&mut self, len: u32, link: u32, edges: Vec<(u32, u32)>) -> u32 {
        self.len.push(len);
        self.link.push(link);
        self.next.push(edges);
        (self.len.len() - 1) as u32
    }

    fn extend(&mut self, c: u32) {
        let cur = self.new_state(self.len[self.last as usize] + 1, NO_LINK, Vec::new());
        let mut p = self.last;
        while p != NO_LINK && self.get(p, c).is_none() {
            self.set(p, c, cur);
            p = self.link[p as usize];
        }
        if p == NO_LINK {
            self.link[cur as usize] = 0;
        } else {
            let q = self.get(p, c).expect("found above");
            if self.len[p as usize] + 1 == self.len[q as usize] {
                self.link[cur as usize] = q;
            } else {
                let edges = self.next[q as usize].clone();
                let clone = self.new_state(self.len[p as usize] + 1, self.link[q as usize], edges);
                while p != NO_LINK && self.get(p, c) == Some(q) {
                    self.set(p, c, clone);
                    p = self.link[p as usize];
                }
                self.link[q as usize] = clone;
                self.link[cur as usize] = clone;
            }
        }
        self.last = cur;
    }

    /// Length (in symbols) of the longest substring of `query` that occurs in the index.
    pub fn longest_match(&self, query: &[u32]) -> usize {
        let (mut state, mut length, mut best) = (0u32, 0u32, 0u32);
        for &c in query {
            loop {
                if let Some(target) = self.get(state, c) {
                    state = target;
                    length += 1;
                    break;
                }
                if state == 0 {
                    length = 0;
                    break;
                }
                state = self.link[state as usize];
                length = self.len[state as usize];
            }
            best = best.max(length);
        }
        best as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn longest_common_substring(a: &[u32], b: &[u32]) -> usize {
        let mut best = 0;
        for i in 0..a.len() {
            for j in 0..b.len() {
                let mut k = 0;
                while i + k < a.len() && j + k < b.len() && a[i + k] == b[j + k] {
                    k += 1;
                }
                best = best.max(k);
            }
        }
        best
    }

    #[test]
    fn automaton_finds_the_longest_shared_run() {
        let mut rng = neural_trio::generator::sampler::Rng::new(5);
        let mut lines: Vec<Vec<u32>> = Vec::new();
        let mut index = Index::default();
        for _ in 0..20 {
            let line: Vec<u32> = (0..60).map(|_| (rng.next_u64() % 4) as u32).collect();
            index.add_line(&line);
            lines.push(line);
        }
        for _ in 0..50 {
            let query: Vec<u32> = (0..30).map(|_| (rng.next_u64() % 4) as u32).collect();
            let expected = lines.iter().map(|l| longest_common_substring(&query, l)).max().unwrap();
            assert_eq!(index.longest_match(&query), expected);
        }
        // A run never crosses two lines: the end of line 0 followed by the start of line 1.
        let mut index = Index::default();
        index.add_line(&[1, 2, 3]);
        index.add_line(&[4, 5, 6]);
        assert_eq!(index.longest_match(&[2, 3, 4, 5]), 2);
        assert_eq!(index.longest_match(&[9, 9]), 0);
    }

    #[test]
    fn symbols_are_transposition_invariant() {
        let note = |t: u32, p: u8| Note { start_tick: t, part: Part::Lead, pitch: p, duration_ticks: 3, velocity: 64 };
        let a = [note(0, 60), note(3, 62), note(6, 64), note(12, 60)];
        let b: Vec<Note> = a.iter().map(|n| Note { pitch: n.pitch + 5, start_tick: n.start_tick + 48, ..*n }).collect();
        assert_eq!(symbols(&a, Part::Lead, true), symbols(&b, Part::Lead, true));
        assert_eq!(symbols(&a, Part::Lead, true).len(), 3);
        assert!(symbols(&a, Part::Bass, true).is_empty());
        let slower: Vec<Note> = a.iter().map(|n| Note { start_tick: n.start_tick * 2, ..*n }).collect();
        assert_ne!(symbols(&a, Part::Lead, true), symbols(&slower, Part::Lead, true));
        assert_eq!(symbols(&a, Part::Lead, false), symbols(&slower, Part::Lead, false));
        assert_eq!(run_in_notes(3, 4), 4);
        assert_eq!(run_in_notes(0, 0), 0);
    }
}
