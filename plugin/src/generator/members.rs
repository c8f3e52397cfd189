//! The generator's side of its group: every member's `Link`, what each has been sent, which
//! member's settings the group plays, and the host as the group hears it. A group of one (Link
//! Off) is what a single instance always was.

use super::group::{self, Group, GroupKey, Member, SpawnGenerator};
use super::resources::ModelChoice;
use crate::link::{Command, EngineStatus, GeneratorEnd, GroupPlayback, PhraseSnapshot, PlayedNote, Problem};
use crate::music::{Note, Part};
use crate::params::{GroupKnobs, PartOutput, TrioParams};
use crate::persist::PersistedSession;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A member that has not processed a block for this long is set aside (its track may be frozen,
/// disabled or left out of a bounce): it leads no timing and is sent nothing until it plays again.
const STALE_AFTER: Duration = Duration::from_millis(500);
/// The group's knobs a member was last told, kept so its editor turning them late is not an edit.
const KNOBS_TOLD: usize = 8;

struct MemberState {
    member: Member,
    /// (its settings revision, the group revision) each bar was last sent under.
    published: BTreeMap<i64, (u32, u32)>,
    /// Its settings revision, read at the start of this step.
    rev: u32,
    discontinuities: u32,
    regenerate_presses: u32,
    /// The Capture switch as last seen: switching it on (or finding it on) arms a capture.
    capture_switch: bool,
    /// Its generation knobs as last seen: a change (to values it was never told) makes it the source.
    knobs: GroupKnobs,
    /// The group's knobs as its status last said (None for the source itself: its editor leads).
    knobs_shown: Option<GroupKnobs>,
    /// The group's knobs it was told lately, newest last.
    knobs_told: Vec<GroupKnobs>,
    /// Its project said it led the group when saved (`link_leads`), as read when it joined.
    led_when_saved: bool,
    /// Not processing lately: set aside until it plays again.
    stale: bool,
    /// Its processed-block count and when it last changed: members that stopped processing do not lead.
    blocks: (u32, Instant),
    /// The Linked line of its status, as last written.
    linked_line: Option<String>,
    /// Its model choice's revision as last read.
    model_revision: u32,
}

impl MemberState {
    fn new(member: Member) -> Self {
        let link = &member.link;
        MemberState {
            published: BTreeMap::new(),
            rev: link.settings_rev(),
            discontinuities: link.playhead().pass,
            regenerate_presses: link.regenerate_presses(),
            capture_switch: false,
            knobs: member.params.knobs(),
            knobs_shown: None,
            knobs_told: Vec::new(),
            led_when_saved: member.params.link_leads.read().map(|l| *l).unwrap_or(false),
            stale: false,
            blocks: (link.processed_blocks(), Instant::now()),
            linked_line: None,
            // Read before the choice itself (`Members::sync`): a change after it is seen next time.
            model_revision: member.params.model.revision(),
            member,
        }
    }

    fn link(&self) -> &GeneratorEnd {
        &self.member.link
    }

    fn has_transport(&self) -> bool {
        self.link().playhead().has_transport
    }
}

/// The host as the group hears it, read once per step.
#[derive(Debug, Clone, Copy)]
pub struct HostView {
    pub has_transport: bool,
    pub playing: bool,
    /// Any member renders offline (or faster than real time).
    pub offline: bool,
    pub tempo_bpm: f64,
    /// The leading member's playhead.
    pub playhead_beats: f64,
    /// The furthest any member's latest block reaches.
    pub block_end_beats: f64,
    /// The furthest bar an Offline block of any member waits for, or `i64::MIN`.
    pub waiting_for_bar: i64,
    /// The first tick some member has not played: what a regeneration keeps ends there.
    pub first_unplayed_tick: i64,
    /// The leading member's discontinuity count.
    pub pass: u32,
}

/// What the members' switches asked for since the last look.
#[derive(Debug, Default)]
pub struct Switches {
    /// Times Regenerate was switched on, in any member.
    pub regenerate_presses: u32,
    /// Capture switched on (Some(true)) or off (Some(false)) in some member.
    pub capture: Option<bool>,
}

pub struct Members {
    group: Arc<Group>,
    list: Vec<MemberState>,
    /// The member whose settings changed last: the group plays its parameters.
    source: u64,
    /// No member has been edited or loaded as the leader yet: the first member leads by default.
    source_by_default: bool,
    /// Bumped whenever any member's settings revision changes.
    group_rev: u32,
    /// The status every member shows (each adds its own Linked line).
    status: EngineStatus,
    phrase: PhraseSnapshot,
    /// The group's chord progression as text: what every member's `progression` field holds.
    progression: String,
    group_playback: u64,
    /// The members and what each outputs, and the source, as the Linked lines last said.
    lines_key: (Vec<(u64, PartOutput)>, u64),
    ready: bool,
    /// The problem shown stops generation.
    failed: bool,
    /// The generator makes nothing new (the project's model is missing) and every member has what it
    /// has: an Offline block must not wait either.
    nothing_coming: bool,
    capture_armed: bool,
    /// The model the group plays (or asks for), and whether the choice came with a project load: a
    /// member whose choice changed sets it for every member, as the progression.
    model: (ModelChoice, bool),
}

impl Members {
    pub fn new(group: Arc<Group>) -> Self {
        Members {
            group,
            list: Vec::new(),
            source: 0,
            source_by_default: true,
            group_rev: 0,
            status: EngineStatus::default(),
            phrase: PhraseSnapshot::default(),
            progression: String::new(),
            group_playback: 0,
            lines_key: (Vec::new(), 0),
            ready: false,
            failed: false,
            nothing_coming: false,
            capture_armed: false,
            model: (ModelChoice::Shipped, false),
        }
    }

    pub fn is_closed(&self) -> bool {
        self.group.is_closed()
    }

    /// Follows the registry: members whose Link now names another group move there, newcomers get
    /// everything the others have (status, phrase, progression; `has_phrase`: the group's phrase wins
    /// over a project state the newcomer brought), leavers are forgotten. True when some joined.
    pub fn sync(&mut self, spawn: SpawnGenerator, has_phrase: bool) -> bool {
        let mut joined = false;
        for state in &self.list {
            if state.member.wanted_group() != self.group.key {
                group::move_member(state.member.clone(), self.group.key, spawn);
            }
        }
        let now = self.group.members();
        self.list.retain(|s| now.iter().any(|m| m.id == s.member.id));
        for member in now {
            if self.list.iter().any(|s| s.member.id == member.id) {
                continue;
            }
            let first = self.list.is_empty();
            if !first {
                if has_phrase {
                    member.params.session.take_loaded();
                }
                if let Ok(mut text) = member.params.progression.write() {
                    text.clone_from(&self.progression);
                }
                member.params.model.write(self.model.0.clone(), self.model.1);
            }
            let state = MemberState::new(member);
            self.welcome(&state);
            if first {
                self.source = state.member.id;
                self.progression = read_progression(&state.member.params);
                self.model = state.member.params.model.read();
            }
            if state.led_when_saved && self.source_by_default {
                // The member that led when the project was saved leads again.
                self.source = state.member.id;
                self.source_by_default = false;
            }
            self.list.push(state);
            joined = true;
        }
        self.list.sort_by_key(|s| s.member.id);
        if !self.list.iter().any(|s| s.member.id == self.source) {
            self.source = self.list.first().map_or(0, |s| s.member.id);
            self.source_by_default = true;
        }
        self.follow_parameters();
        joined
    }

    /// Everything published so far is stale for every member (offline blocks wait for it again).
    fn bump_group_rev(&mut self) {
        self.group_rev = self.group_rev.wrapping_add(1);
        for state in &self.list {
            state.link().set_group_rev(self.group_rev);
        }
    }

    /// A newcomer's link gets the group's state; its old bars (another group's) are dropped.
    fn welcome(&self, state: &MemberState) {
        let link = state.link();
        link.new_epoch();
        link.set_group_rev(self.group_rev);
        link.set_group_playback(self.group_playback);
        link.set_serving_group(self.group.key.code());
        link.set_capture_armed(self.capture_armed);
        link.set_failed(self.failed || self.nothing_coming);
        link.set_ready(self.ready);
        // Busy until this generator's next look says otherwise: an Offline block waits for its bars.
        link.set_idle(false);
        link.set_phrase(&self.phrase);
        link.update_status(|status| status.clone_from(&self.status));
    }

    /// The source follows the last member whose settings changed; the others are told its knobs, the
    /// Linked lines what the group is.
    fn follow_parameters(&mut self) {
        let source_before = self.source;
        let group_knobs = self.source_params().knobs();
        for state in &mut self.list {
            // An editor following the group's knobs turns them to values it was told (late, one knob at
            // a time): not an edit. Any other change is.
            let knobs = state.member.params.knobs();
            let old = std::mem::replace(&mut state.knobs, knobs);
            if is_edit(&old, &knobs, &group_knobs, &state.knobs_told) {
                self.source = state.member.id;
                self.source_by_default = false;
            }
            let blocks = state.link().processed_blocks();
            if blocks != state.blocks.0 {
                state.blocks = (blocks, Instant::now());
                if std::mem::take(&mut state.stale) {
                    // Playing again: its table may miss what changed meanwhile; it gets everything.
                    state.published.clear();
                }
            } else if state.blocks.1.elapsed() > STALE_AFTER && state.link().playhead().waiting_for_bar.is_none() {
                // (A block waiting for its bars is not stale, however long the model takes to open.)
                state.stale = true;
            }
        }
        if self.source != source_before {
            // Other knobs play now: every member's bars are stale until made (or found) under them.
            self.bump_group_rev();
        }
        // What each member's project will say about who leads (a newcomer's old flag included).
        for state in &self.list {
            let leads = state.member.id == self.source && matches!(self.group.key, GroupKey::Linked(_));
            if state.member.params.link_leads.read().is_ok_and(|l| *l != leads) {
                if let Ok(mut flag) = state.member.params.link_leads.write() {
                    *flag = leads;
                }
            }
        }
        // The text the group plays: a member whose field differs was just edited (the editor, a capture
        // there, a state load), and every other member takes it.
        if let Some(edited) =
            self.list.iter().map(|s| read_progression(&s.member.params)).find(|text| *text != self.progression)
        {
            self.set_progression(edited);
        }
        let playback = match self.group.key {
            GroupKey::Solo(_) => 0,
            GroupKey::Linked(_) => {
                let params = self.source_params();
                let structure = params.structure();
                GroupPlayback {
                    loop_bars: structure.loop_length(),
                    parts: Part::ALL.map(|p| {
                        let (low, high) = params.part(p).register();
                        (params.part(p).on.value(), low, high)
                    }),
                }
                .pack()
            }
        };
        let knobs = self.source_params().knobs();
        let linked = matches!(self.group.key, GroupKey::Linked(_)) && self.list.len() > 1;
        for state in &mut self.list {
            let shown = (linked && state.member.id != self.source).then_some(knobs);
            if state.knobs_shown != shown {
                state.knobs_shown = shown;
                state.member.link.update_status(|s| s.group_knobs = shown);
                if let Some(told) = shown {
                    state.knobs_told.push(told);
                    if state.knobs_told.len() > KNOBS_TOLD {
                        state.knobs_told.remove(0);
                    }
                }
            }
        }
        if playback != self.group_playback {
            self.group_playback = playback;
            for state in &self.list {
                state.link().set_group_playback(playback);
            }
            self.bump_group_rev();
        }
        let lines_key =
            (self.list.iter().map(|s| (s.member.id, s.member.params.part_output.value())).collect(), self.source);
        if lines_key != self.lines_key {
            self.lines_key = lines_key;
            self.write_linked_lines();
        }
    }

    /// Each member's Linked line: the group, its members and what each plays, and whose settings play.
    fn write_linked_lines(&mut self) {
        let GroupKey::Linked(group) = self.group.key else { return };
        let plays = |params: &TrioParams| match params.part_output.value() {
            PartOutput::All => "all parts",
            PartOutput::LeadOnly => "the lead",
            PartOutput::ArpOnly => "the arp",
            PartOutput::BassOnly => "the bass",
        };
        let source = self.source;
        let lines: Vec<String> = self
            .list
            .iter()
            .map(|me| {
                if self.list.len() == 1 {
                    return format!(
                        "Link {group:?}: no other member in this process. A host that runs each plugin in its \
                         own process (a sandbox, a bridge) cannot link them: the fallback is to give every \
                         member the same Seed and settings (they play the same trio until one is edited)."
                    );
                }
                let others: Vec<String> = self
                    .list
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let who = if s.member.id == me.member.id { " (this one)" } else { "" };
                        let from = if s.member.id == source { ", settings from here" } else { "" };
                        format!("#{} plays {}{who}{from}", i + 1, plays(&s.member.params))
                    })
                    .collect();
                format!("Link {group:?}: {} members: {}", self.list.len(), others.join("; "))
            })
            .collect();
        for (state, line) in self.list.iter_mut().zip(lines) {
            if state.linked_line.as_ref() != Some(&line) {
                state.linked_line = Some(line.clone());
                state.member.link.update_status(|s| s.linked = Some(line.clone()));
            }
        }
    }

    /// Regenerate presses and Capture switched in any member since the last look (after the
    /// revisions: a press bumps its member's revision after counting).
    pub fn switches(&mut self) -> Switches {
        let mut switches = Switches::default();
        for state in &mut self.list {
            let presses = state.link().regenerate_presses();
            switches.regenerate_presses += presses.wrapping_sub(state.regenerate_presses);
            state.regenerate_presses = presses;
            let capture = state.member.params.capture.value();
            if std::mem::replace(&mut state.capture_switch, capture) != capture {
                switches.capture = Some(capture);
            }
        }
        switches
    }

    /// The group's model choice, and whether it came with a project load. A member whose choice
    /// changed since the last look (its editor, a load into it) sets it for every member. Read after
    /// the settings revisions: bars published under them were made by the model chosen then.
    pub fn follow_model_choice(&mut self) -> (ModelChoice, bool) {
        let mut changed = None;
        for state in &mut self.list {
            let revision = state.member.params.model.revision();
            if std::mem::replace(&mut state.model_revision, revision) != revision {
                let read = state.member.params.model.read();
                if read.0 != self.model.0 {
                    changed = Some(read);
                }
            }
        }
        if let Some((choice, by_load)) = changed {
            // (The revisions our writes move are read again next time: a value equal to the group's
            // is no change.)
            for state in &self.list {
                state.member.params.model.write(choice.clone(), by_load);
            }
            self.model = (choice, by_load);
        }
        self.model.clone()
    }

    /// Replaces the group's model choice `asked` (the generator's correction: the hash filled in, or
    /// the model that plays put back), in every member whose field still holds it: a choice made
    /// meanwhile (a load, the editor) stays, and is followed next.
    pub fn replace_model_choice(&mut self, asked: &ModelChoice, choice: ModelChoice) {
        for state in &self.list {
            state.member.params.model.replace(asked, choice.clone(), self.model.1);
        }
        if self.model.0 == *asked {
            self.model.0 = choice;
        }
    }

    /// Whose parameters the group plays.
    pub fn source_params(&self) -> Arc<TrioParams> {
        self.list
            .iter()
            .find(|s| s.member.id == self.source)
            .or(self.list.first())
            .map(|s| s.member.params.clone())
            .unwrap_or_default()
    }

    /// After a project load: the member that led when it was saved leads again; failing that (a
    /// project from before linking), one whose knobs made the loaded phrase.
    pub fn lead_after_load(&mut self, made_it: impl Fn(&TrioParams) -> bool) {
        let leader = self
            .list
            .iter()
            .find(|s| s.led_when_saved)
            .or_else(|| self.list.iter().find(|s| made_it(&s.member.params)));
        if let Some(state) = leader {
            self.source = state.member.id;
            self.source_by_default = false;
        }
    }

    /// Reads every member's settings revision (before the played notes: bars published under these
    /// have heard them all). A change in any member makes every member's bars stale.
    pub fn read_revisions(&mut self) {
        let mut changed = false;
        for state in &mut self.list {
            let rev = state.link().settings_rev();
            changed |= std::mem::replace(&mut state.rev, rev) != rev;
        }
        if changed {
            self.bump_group_rev();
        }
    }

    /// The member that leads timing: the first that processes with a timeline.
    fn leader(&self) -> Option<&MemberState> {
        self.timed().next()
    }

    /// The members with a timeline; those set aside only when no other has one.
    fn timed(&self) -> impl Iterator<Item = &MemberState> {
        let with_transport = self.list.iter().filter(|s| s.has_transport());
        let any_live = self.list.iter().any(|s| s.has_transport() && !s.stale);
        with_transport.filter(move |s| !(any_live && s.stale))
    }

    pub fn host(&self) -> HostView {
        let Some(leader) = self.leader() else {
            let tempo_bpm = self.list.first().map_or(120.0, |s| s.link().playhead().tempo_bpm);
            return HostView {
                has_transport: false,
                playing: false,
                offline: false,
                tempo_bpm,
                playhead_beats: 0.0,
                block_end_beats: 0.0,
                waiting_for_bar: i64::MIN,
                first_unplayed_tick: 0,
                pass: 0,
            };
        };
        let timed = || self.timed().map(|s| s.link().playhead());
        let lead = leader.link().playhead();
        HostView {
            has_transport: true,
            playing: timed().any(|p| p.playing),
            offline: timed().any(|p| p.offline),
            tempo_bpm: lead.tempo_bpm,
            playhead_beats: lead.start_beats,
            block_end_beats: timed().map(|p| p.end_beats).fold(f64::MIN, f64::max),
            waiting_for_bar: timed().filter_map(|p| p.waiting_for_bar).max().unwrap_or(i64::MIN),
            first_unplayed_tick: timed().map(|p| p.first_unplayed_tick).max().unwrap_or(0),
            pass: lead.pass,
        }
    }

    /// Members whose discontinuity count moved (a seek, a loop wrap) may hold other bars in these
    /// bars' slots: everything is sent to them again. Returns whether any moved.
    pub fn follow_discontinuities(&mut self, resend: bool) -> bool {
        let mut any = false;
        for state in &mut self.list {
            let count = state.link().playhead().pass;
            if std::mem::replace(&mut state.discontinuities, count) != count {
                any = true;
                if resend {
                    state.published.clear();
                }
            }
        }
        any
    }

    /// The notes played into any member since the last call. The leading member's notes keep their
    /// pass; another member's count as played in the leader's current pass.
    pub fn played_notes(&self, mut hear: impl FnMut(PlayedNote)) {
        let leader = self.leader().map(|s| s.member.id);
        let pass = self.host().pass;
        for state in &self.list {
            while let Some(mut note) = state.link().next_played() {
                if Some(state.member.id) != leader {
                    note.pass = pass;
                }
                hear(note);
            }
        }
    }

    /// The next command from any member's editor.
    pub fn next_command(&self) -> Option<Command> {
        self.list.iter().find_map(|s| s.link().next_command())
    }

    /// Some member has not been sent bar `index` as it is now.
    pub fn needs(&self, index: i64) -> bool {
        self.list.iter().any(|s| !s.stale && s.published.get(&index) != Some(&(s.rev, self.group_rev)))
    }

    /// Sends bar `index` to every member that lacks it; members waiting for a bar go last, so when
    /// their wait ends the others have it too. False when a queue was full (an audio thread is not
    /// draining).
    pub fn publish(&mut self, index: i64, notes: &[Note]) -> bool {
        let group_rev = self.group_rev;
        let mut order: Vec<usize> = (0..self.list.len()).collect();
        order.sort_by_key(|&i| self.list[i].link().playhead().waiting_for_bar.is_some());
        let mut all = true;
        for i in order {
            let state = &mut self.list[i];
            let revs = (state.rev, group_rev);
            if state.stale || state.published.get(&index) == Some(&revs) {
                continue;
            }
            if state.link().publish_bar(revs, index, notes) {
                state.published.insert(index, revs);
            } else {
                all = false;
            }
        }
        all
    }

    /// Bar `index` changed: every member needs it again.
    pub fn unpublish(&mut self, index: i64) {
        for state in &mut self.list {
            state.published.remove(&index);
        }
    }

    /// The bars every member holds are stale (another phrase, another structure).
    pub fn new_epoch(&mut self) {
        for state in &mut self.list {
            state.link().new_epoch();
            state.published.clear();
        }
    }

    pub fn update_status(&mut self, f: impl Fn(&mut EngineStatus)) {
        f(&mut self.status);
        for state in &self.list {
            state.member.link.update_status(&f);
        }
    }

    pub fn share_phrase(&mut self, phrase: PhraseSnapshot) {
        for state in &self.list {
            state.link().set_phrase(&phrase);
        }
        self.phrase = phrase;
    }

    /// What a project save of any member holds.
    pub fn store_session(&self, session: &PersistedSession) {
        for state in &self.list {
            state.member.params.session.store(session.clone());
        }
    }

    /// The phrase the group's first member already played (its Link was just switched on): the new
    /// group goes on with it rather than starting over from the seed.
    pub fn first_phrase(&self) -> Option<PersistedSession> {
        let session = self.list.first()?.member.params.session.read();
        (!session.bars.is_empty()).then_some(session)
    }

    /// A project state a host loaded into some member since the last look (the others' are taken too).
    pub fn take_loaded(&self) -> Option<PersistedSession> {
        let loaded: Vec<PersistedSession> =
            self.list.iter().filter_map(|s| s.member.params.session.take_loaded()).collect();
        loaded.into_iter().next()
    }

    pub fn progression(&self) -> &str {
        &self.progression
    }

    /// The group's progression (typed in some member, captured, or loaded) in every member's field.
    pub fn set_progression(&mut self, text: String) {
        for state in &self.list {
            if let Ok(mut field) = state.member.params.progression.write() {
                if *field != text {
                    field.clone_from(&text);
                }
            }
        }
        self.progression = text;
    }

    pub fn set_ready(&mut self, ready: bool) {
        self.ready = ready;
        self.list.iter().for_each(|s| s.link().set_ready(ready));
    }

    /// Shows a problem, or clears it (None); while one that stops generation lasts, Offline blocks
    /// do not wait for bars.
    pub fn set_problem(&mut self, problem: Option<Problem>) {
        if self.status.problem == problem {
            return;
        }
        self.failed = problem.as_ref().is_some_and(Problem::stops_generation);
        let failed = self.failed || self.nothing_coming;
        self.update_status(|s| s.problem = problem.clone());
        self.list.iter().for_each(|s| s.link().set_failed(failed));
    }

    /// The generator makes nothing new and every member has what it has (or, false, bars are coming
    /// again): while it lasts, Offline blocks do not wait.
    pub fn set_nothing_coming(&mut self, nothing: bool) {
        if self.nothing_coming == nothing {
            return;
        }
        self.nothing_coming = nothing;
        let failed = self.failed || nothing;
        self.list.iter().for_each(|s| s.link().set_failed(failed));
    }

    /// Clears the problem shown if it is of the kind that went away.
    pub fn clear_problem(&mut self, went_away: impl Fn(&Problem) -> bool) {
        if self.status.problem.as_ref().is_some_and(went_away) {
            self.set_problem(None);
        }
    }

    pub fn set_idle(&self, idle: bool) {
        self.list.iter().for_each(|s| s.link().set_idle(idle));
    }

    pub fn set_capture_armed(&mut self, armed: bool) {
        self.capture_armed = armed;
        self.list.iter().for_each(|s| s.link().set_capture_armed(armed));
    }
}

/// A member's knobs changed from `old` to `new`: an edit of its own when some knob took a value
/// that is neither the group's now nor one the member was told lately.
fn is_edit(old: &GroupKnobs, new: &GroupKnobs, group: &GroupKnobs, told: &[GroupKnobs]) -> bool {
    let (old, new, group) = (old.values(), new.values(), group.values());
    (0..new.len()).any(|i| new[i] != old[i] && new[i] != group[i] && !told.iter().any(|t| t.values()[i] == new[i]))
}

fn read_progression(params: &TrioParams) -> String {
    params.progression.read().map(|t| t.clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::group::tests::set_param;
    use crate::link::{AudioEnd, EditorEnd};
    use crate::params::LinkGroup;

    /// A member with the audio thread's and the editor's ends of its link, which the test plays.
    struct Instance {
        member: Member,
        audio: AudioEnd,
        editor: EditorEnd,
    }

    fn linked_pair() -> (Members, [Instance; 2]) {
        let pair = [0, 1].map(|_| {
            let params = Arc::new(TrioParams::default());
            set_param(&params, "link", 1.0);
            let (audio, generator, editor) = crate::link::channel();
            Instance { member: Member::new(generator, params), audio, editor }
        });
        let group =
            Group::unregistered(GroupKey::Linked(LinkGroup::H), pair.iter().map(|i| i.member.clone()).collect());
        let mut members = Members::new(group);
        members.sync(|_| unreachable!("no member changes group"), false);
        (members, pair)
    }

    fn sync(members: &mut Members) {
        members.sync(|_| unreachable!("no member changes group"), true);
    }

    #[test]
    fn the_member_edited_last_leads_and_an_editor_following_it_does_not_take_over() {
        let (mut members, [a, b]) = linked_pair();
        assert_eq!(members.source, a.member.id, "the first member leads a new group");
        assert_eq!(a.editor.status().group_knobs, None, "the source's editor follows no one");

        set_param(&b.member.params, "temperature", 0.0);
        sync(&mut members);
        assert_eq!(members.source, b.member.id, "an edit in the second member");
        let knobs = a.editor.status().group_knobs.expect("the first member's editor is told the group's knobs");
        assert_eq!(knobs.temperature, b.member.params.temperature.value());
        assert_eq!(b.editor.status().group_knobs, None);

        // The second member's knob moves on; the first member's editor turns its knob to the value it
        // was told before (late, as a host applies it): still the second leads.
        set_param(&b.member.params, "temperature", 0.5);
        sync(&mut members);
        set_param(&a.member.params, "temperature", 0.0);
        sync(&mut members);
        assert_eq!(members.source, b.member.id, "following the group is not an edit");
        assert!(
            *b.member.params.link_leads.read().unwrap() && !*a.member.params.link_leads.read().unwrap(),
            "who leads is saved"
        );
        set_param(&a.member.params, "seed", 0.5);
        sync(&mut members);
        assert_eq!(members.source, a.member.id, "an edit of its own");
        assert_eq!(members.source_params().seed.value(), a.member.params.seed.value());
    }

    #[test]
    fn a_change_in_one_member_makes_every_members_bars_stale_and_presses_are_heard() {
        let (mut members, [a, b]) = linked_pair();
        members.read_revisions();
        let bar = [Note { start_tick: 0, part: Part::Bass, pitch: 40, duration_ticks: 12, velocity: 90 }];
        assert!(members.publish(0, &bar));
        assert!(!members.needs(0), "both members have bar 0");
        b.audio.bump_settings_rev();
        b.audio.press_regenerate();
        sync(&mut members);
        members.read_revisions();
        assert_eq!(members.switches().regenerate_presses, 1);
        assert!(members.needs(0), "bar 0 is stale after a change in the second member");
        assert_eq!(a.audio.group_rev(), b.audio.group_rev());
        assert!(members.publish(0, &bar));
        let sent =
            |link: &AudioEnd| std::iter::from_fn(|| link.next_bar()).map(|b| (b.settings_rev, b.group_rev)).last();
        let group_rev = a.audio.group_rev();
        assert_eq!(sent(&a.audio), Some((0, group_rev)), "the first member's bar carries the new group revision");
        assert_eq!(sent(&b.audio), Some((1, group_rev)));
    }

    #[test]
    fn a_member_that_stops_processing_is_set_aside_and_gets_everything_when_it_plays_again() {
        let (mut members, [a, b]) = linked_pair();
        for state in &mut members.list {
            state.blocks.1 = Instant::now() - STALE_AFTER * 2;
        }
        a.audio.count_block();
        sync(&mut members);
        members.read_revisions();
        let bar = [Note { start_tick: 0, part: Part::Lead, pitch: 72, duration_ticks: 12, velocity: 90 }];
        // The second member's queue is never drained: the first still gets every bar.
        for index in 0..crate::link::BAR_QUEUE_CAPACITY as i64 + 8 {
            assert!(members.publish(index, &bar), "bar {index}: a stale member held the group up");
            assert!(!members.needs(index));
            assert!(a.audio.next_bar().is_some(), "the member that plays got bar {index}");
        }
        assert!(b.audio.next_bar().is_none(), "nothing was sent to the member that does not play");
        b.audio.count_block();
        sync(&mut members);
        assert!(members.needs(0), "playing again, it needs the bars");
    }

    #[test]
    fn a_problem_is_shown_to_every_member_and_cleared_when_it_goes_away() {
        let (mut members, [a, b]) = linked_pair();
        members.set_problem(Some(Problem::Variations("out of memory".into())));
        assert_eq!(b.editor.status().problem, Some(Problem::Variations("out of memory".into())));
        assert!(!a.audio.generator_failed(), "a failed Variations stops nothing: offline blocks still wait");
        members.clear_problem(|p| matches!(p, Problem::ModelFailing(_)));
        assert!(a.editor.status().problem.is_some(), "only the kind that went away is cleared");

        members.set_problem(Some(Problem::ModelFailing("device reset".into())));
        assert!(a.audio.generator_failed() && b.audio.generator_failed(), "no bars come: offline blocks must not wait");
        members.clear_problem(|p| matches!(p, Problem::ModelFailing(_)));
        assert_eq!(a.editor.status().problem, None);
        assert!(!a.audio.generator_failed() && !b.audio.generator_failed(), "bars come again");
    }
}
