//! Linked instances through the built plugin, several in one host process: three members of one
//! group (Lead Only, Arp Only, Bass Only) play what one instance plays with All Parts, note for
//! note; a Regenerate in one member changes every part at the same bar; a member can leave without
//! a gap; a saved project of three members reloads to one trio; two groups stay apart.

mod common;

use common::*;
use trio_tests::host::{run_together, RenderMode, TrioHost};
use trio_tests::render::{read_midi, render, render_linked, RenderOptions, PARTS};
use trio_tests::timeline::{BlockSpec, ParamChange, Timeline};
use trio_tests::{NoteEvent, TempDir};

/// A note event as compared between renders: (sample, channel, key, on, velocity in 1/127).
type Key = (u64, i16, i16, bool, i64);

fn keys(events: &[NoteEvent]) -> Vec<Key> {
    let mut keys: Vec<Key> =
        events.iter().map(|e| (e.time, e.channel, e.key, e.on, (e.velocity * 127.0).round() as i64)).collect();
    keys.sort();
    keys
}

#[track_caller]
fn assert_same(what: &str, got: &[NoteEvent], want: &[NoteEvent]) {
    let (got, want) = (keys(got), keys(want));
    if got != want {
        let first = got.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
        panic!(
            "{what}: {} events vs {} expected; first difference at {first}: {:?} vs {:?}",
            got.len(),
            want.len(),
            got.get(first),
            want.get(first)
        );
    }
}

fn options(block: u32, params: &[(&str, &str)]) -> RenderOptions {
    RenderOptions {
        plugin: trio_tests::require_trio_clap(),
        bars: 8.0,
        block,
        params: params.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
        ..RenderOptions::default()
    }
}

#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn three_linked_members_play_what_one_instance_plays_at_two_block_sizes() {
    for (block, mode) in [(64, "Endless"), (1000, "Loop")] {
        let dirs = [TempDir::new("trio-single").unwrap(), TempDir::new("trio-linked").unwrap()];
        let mut opts = options(block, &[("Mode", mode), ("Seed", "77")]);
        opts.out = Some(dirs[0].path().to_path_buf());
        let single = render(&opts).unwrap_or_else(|e| panic!("single render: {e}"));
        assert!(single.failures.is_empty(), "{}", single.summary());
        opts.out = Some(dirs[1].path().to_path_buf());
        let linked = render_linked(&opts).unwrap_or_else(|e| panic!("linked render: {e}"));
        assert!(linked.failures().is_empty(), "{}", linked.summary());
        for (member, part) in linked.members.iter().zip(PARTS) {
            let channels: Vec<i16> = member.run.events.iter().map(|e| e.channel).collect();
            assert!(channels.iter().all(|&c| c == 0), "{part} Only sent on other channels than 1: {channels:?}");
            assert!(!member.run.events.is_empty(), "{part} Only played nothing (block {block}, {mode})");
        }
        assert_same(&format!("block {block}, {mode}"), &linked.union.run.events, &single.run.events);
        // The files a bounce of the three tracks gives, read back: the same notes, part by part (the
        // notes of a chord, all at one sample, in any order).
        for file in ["trio.mid", "lead.mid", "arp.mid", "bass.mid"] {
            let [one, three] = dirs.each_ref().map(|d| {
                let mut tracks = read_midi(&d.path().join(file)).expect("a MIDI file").1;
                tracks
                    .iter_mut()
                    .for_each(|(_, notes)| notes.sort_by_key(|&(ch, key, start, end)| (start, key, ch, end)));
                tracks
            });
            assert_eq!(three, one, "{file} of the linked members differs from one instance's");
        }
    }
}

/// The group plays one set of settings: with other knobs in the arp and bass members (never touched
/// since they joined), the three play what the first member's settings make alone.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn members_with_other_knobs_play_the_groups_settings() {
    let song = blocks(4.0);
    let lead_settings = [("Seed", "77"), ("Temperature", "0.8")];
    let mut hosts = vec![host(
        RenderMode::Offline,
        [("Link", "A"), ("Part Output", "Lead Only")].iter().chain(&lead_settings).map(|(n, v)| text(n, v)).collect(),
    )];
    for part in ["Arp", "Bass"] {
        let only = format!("{part} Only");
        let initial = [("Link", "A"), ("Part Output", only.as_str()), ("Seed", "5"), ("Loop Length", "2")];
        hosts.push(host(RenderMode::Offline, initial.iter().map(|(n, v)| text(n, v)).collect()));
    }
    let played = play(&mut hosts, &song, |_, _| {});
    let union: Vec<NoteEvent> = played
        .iter()
        .enumerate()
        .flat_map(|(i, events)| events.iter().map(move |e| NoteEvent { channel: i as i16, ..*e }))
        .collect();
    assert_same("the group with other knobs in two members", &union, &single(&lead_settings, &song));
}

/// Three members of group `group` (and the given parameters), offline.
fn members(group: &str, params: &[(&str, &str)]) -> Vec<TrioHost> {
    members_in(RenderMode::Offline, group, params)
}

fn members_in(mode: RenderMode, group: &str, params: &[(&str, &str)]) -> Vec<TrioHost> {
    PARTS
        .iter()
        .map(|part| {
            let mut initial = vec![text("Link", group), text("Part Output", &format!("{part} Only"))];
            initial.extend(params.iter().map(|(n, v)| text(n, v)));
            host(mode, initial)
        })
        .collect()
}

/// The blocks of `bars` bars from bar 0, then one with the transport stopped.
fn blocks(bars: f64) -> Vec<BlockSpec> {
    let mut tl = Timeline::new(SR, BLOCK, BPM);
    tl.play_bars(bars);
    tl.stop_blocks(1);
    tl.take()
}

/// Plays the blocks with every member (`edit` may change member i's), returns each one's events.
fn play(
    hosts: &mut [TrioHost],
    blocks: &[BlockSpec],
    edit: impl Fn(usize, &mut Vec<BlockSpec>),
) -> Vec<Vec<NoteEvent>> {
    let lists: Vec<Vec<BlockSpec>> = (0..hosts.len())
        .map(|i| {
            let mut list = blocks.to_vec();
            edit(i, &mut list);
            list
        })
        .collect();
    let runs = run_together(hosts, &lists, None).unwrap_or_else(|e| panic!("running the members: {e}"));
    runs.into_iter().map(|r| r.events).collect()
}

#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn regenerate_in_the_arp_member_changes_every_part_at_the_same_bar() {
    let params = [("Mode", "Endless"), ("Seed", "77")];
    let mut before = members("B", &params);
    let reference = play(&mut before, &blocks(8.0), |_, _| {});
    drop(before);

    let mut hosts = members("B", &params);
    let regenerate = hosts[1].param("Regenerate").expect("a Regenerate parameter").id;
    // Pressed (and released a block later) in the arp member only, in the middle of bar 3.
    let press_block = (3.5 * 4.0 * 60.0 / BPM * SR / BLOCK as f64) as usize;
    let pressed = play(&mut hosts, &blocks(8.0), |i, blocks| {
        if i == 1 {
            blocks[press_block].params.push(ParamChange { offset: 0, param_id: regenerate, value: 1.0 });
            blocks[press_block + 1].params.push(ParamChange { offset: 0, param_id: regenerate, value: 0.0 });
        }
    });
    // Before the press every part is as it was; from the bar it was pressed in (where the first
    // member had played to) every part is new: one regeneration for the whole group.
    let press_sample = (press_block as u64) * BLOCK as u64;
    for ((part, old), new) in PARTS.iter().zip(&reference).zip(&pressed) {
        assert!(!old.is_empty(), "the {part} plays nothing with this seed: pick another");
        let before =
            |events: &[NoteEvent]| -> Vec<Key> { keys(events).into_iter().filter(|k| k.0 < press_sample).collect() };
        assert_eq!(before(new), before(old), "the {part} changed before the press");
        let (old, new) = (keys(old), keys(new));
        let first = old.iter().zip(&new).position(|(a, b)| a != b).unwrap_or(old.len().min(new.len()));
        let bar = |k: Option<&Key>| k.map_or(u64::MAX, |k| (k.0 as f64 / (SR * 60.0 / BPM * 4.0)).floor() as u64);
        let changed_at = bar(old.get(first)).min(bar(new.get(first)));
        assert!((3..=4).contains(&changed_at), "the {part} changed from bar {changed_at}; the press was in bar 3");
        let in_bars = |keys: &[Key], from: u64| -> Vec<Key> {
            keys.iter().copied().filter(|k| k.3 && bar(Some(k)) >= from).collect()
        };
        assert_ne!(in_bars(&new, 4), in_bars(&old, 4), "the {part} plays its old bars after the press");
    }
}

#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn the_first_member_leaves_mid_song_and_the_others_play_on_without_a_gap() {
    let params = [("Mode", "Endless"), ("Seed", "5")];
    let song = blocks(8.0);
    let mut whole = members("C", &params);
    let reference = play(&mut whole, &song, |_, _| {});
    drop(whole);

    let mut hosts = members("C", &params);
    let half = song.len() / 2;
    let first_half = play(&mut hosts, &song[..half], |_, _| {});
    // The lead member goes: the first of the group, whose activation started the group's generator.
    drop(hosts.remove(0));
    let second_half = play(&mut hosts, &song[half..], |_, _| {});
    for (i, part) in ["arp", "bass"].iter().enumerate() {
        let mut played = first_half[i + 1].clone();
        played.extend(second_half[i].iter().copied());
        assert!(second_half[i].iter().any(|e| e.on), "the {part} stopped when the lead member left");
        assert_same(&format!("the {part} with the lead member leaving half way"), &played, &reference[i + 1]);
        let analysis = trio_tests::check(&played, &[]);
        assert!(analysis.violations.is_empty(), "{part}: {:?}", analysis.violations);
        assert!(analysis.hanging.is_empty(), "{part}: notes left sounding {:?}", analysis.hanging);
    }
}

/// Three members' saved states, reloaded into three new instances.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn a_saved_project_with_three_linked_members_reloads_to_one_trio() {
    let song = blocks(8.0);
    let mut hosts = members("D", &[("Seed", "3")]);
    let regenerate = hosts[2].param("Regenerate").expect("a Regenerate parameter").id;
    // A phrase of its own (Regenerate in the bass member at bar 1), played twice round the loop.
    let played = play(&mut hosts, &song, |i, blocks| {
        if i == 2 {
            blocks[40].params.push(ParamChange { offset: 0, param_id: regenerate, value: 1.0 });
            blocks[41].params.push(ParamChange { offset: 0, param_id: regenerate, value: 0.0 });
        }
    });
    let states: Vec<Vec<u8>> = hosts.iter_mut().map(|h| h.save_state().expect("state save")).collect();
    drop(hosts);

    let mut reloaded: Vec<TrioHost> = states.iter().map(|state| reopened(state)).collect();
    let again = play(&mut reloaded, &blocks(4.0), |_, _| {});
    let fresh = single(&[("Seed", "3")], &blocks(4.0));
    let again_union: Vec<NoteEvent> = again
        .iter()
        .enumerate()
        .flat_map(|(i, events)| events.iter().map(move |e| NoteEvent { channel: i as i16, ..*e }))
        .collect();
    assert_ne!(
        keys(&again_union),
        keys(&fresh),
        "the reloaded members play the seed's first phrase, not the saved one"
    );
    // The loop as it was saved: the second time round before the save, bar for bar.
    let loop_samples = 4 * 4 * 22_500;
    for ((part, before), after) in PARTS.iter().zip(&played).zip(&again) {
        let second_pass: Vec<NoteEvent> = before
            .iter()
            .filter(|e| e.on && e.time >= loop_samples && e.time < 2 * loop_samples)
            .map(|e| NoteEvent { time: e.time - loop_samples, ..*e })
            .collect();
        let after: Vec<NoteEvent> = after.iter().filter(|e| e.on && e.time < loop_samples).copied().collect();
        assert!(!after.is_empty(), "the reloaded {part} member plays nothing");
        assert_same(&format!("the reloaded {part}"), &after, &second_pass);
    }
}

/// One instance with All Parts (and the given parameters) playing the blocks on its own.
fn single(params: &[(&str, &str)], blocks: &[BlockSpec]) -> Vec<NoteEvent> {
    let mut one = host(RenderMode::Offline, params.iter().map(|(n, v)| text(n, v)).collect());
    run(&mut one, blocks).events
}

#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn two_groups_and_an_unlinked_instance_in_one_process_stay_apart() {
    let song = blocks(4.0);
    let (e, f, off) = ([("Seed", "21"), ("Mode", "Endless")], [("Seed", "22"), ("Mode", "Loop")], [("Seed", "23")]);
    let mut hosts = members("E", &e);
    hosts.extend(members("F", &f));
    hosts.push(host(RenderMode::Offline, off.iter().map(|(n, v)| text(n, v)).collect()));
    let played = play(&mut hosts, &song, |_, _| {});
    // A member's part on channel 1 goes back to the channel its knob names (1, 2, 3) for the union.
    let union = |members: &[Vec<NoteEvent>]| -> Vec<NoteEvent> {
        members
            .iter()
            .enumerate()
            .flat_map(|(i, events)| events.iter().map(move |e| NoteEvent { channel: i as i16, ..*e }))
            .collect()
    };
    assert_same("group E", &union(&played[0..3]), &single(&e, &song));
    assert_same("group F", &union(&played[3..6]), &single(&f, &song));
    assert_same("the instance with Link Off", &played[6], &single(&off, &song));
}

#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn a_member_added_mid_song_plays_the_groups_phrase_from_where_it_joins() {
    let params = [("Mode", "Endless"), ("Seed", "9")];
    let song = blocks(8.0);
    let mut whole = members("G", &params);
    let reference = play(&mut whole, &song, |_, _| {});
    drop(whole);

    // The arp and bass members play the first half; the lead member is added at bar 4.
    let mut hosts = members("G", &params);
    drop(hosts.remove(0));
    let half = song.len() / 2;
    play(&mut hosts, &song[..half], |_, _| {});
    let join_sample: u64 = song[..half].iter().map(|b| b.frames as u64).sum();
    let mut initial = vec![text("Link", "G"), text("Part Output", "Lead Only")];
    initial.extend(params.iter().map(|(n, v)| text(n, v)));
    hosts.insert(0, host(RenderMode::Offline, initial));
    let second_half = play(&mut hosts, &song[half..], |_, _| {});
    // The newcomer's clock starts at 0 where the others' stands at the join.
    let joined: Vec<NoteEvent> =
        second_half[0].iter().filter(|e| e.on).map(|e| NoteEvent { time: e.time + join_sample, ..*e }).collect();
    let want: Vec<NoteEvent> = reference[0].iter().filter(|e| e.on && e.time >= join_sample).copied().collect();
    assert!(!want.is_empty(), "the lead plays nothing in the second half with this seed");
    assert_same("the lead added at bar 4", &joined, &want);
}

/// Live (real time, nobody waits): Regenerate pressed in the bass member is heard in every part within
/// the bars that follow, and nothing before the press changes.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn live_a_press_in_one_member_is_followed_by_every_part() {
    let params = [("Mode", "Endless"), ("Seed", "77")];
    let song = blocks(4.0);
    let mut offline = members("H", &params);
    let reference = play(&mut offline, &song, |_, _| {});
    drop(offline);

    let mut live = members_in(RenderMode::Realtime, "H", &params);
    // Let the group's generator open its model and write the first bars before the song starts.
    let mut tl = Timeline::new(SR, BLOCK, BPM);
    tl.stop_blocks(1);
    let parked = tl.take();
    run_together(&mut live, &[parked.clone(), parked.clone(), parked], None).expect("a stopped block");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let start = live[0].sample_position();
    let regenerate = live[2].param("Regenerate").expect("a Regenerate parameter").id;
    let press_block = (1.5 * 4.0 * 60.0 / BPM * SR / BLOCK as f64) as usize;
    let lists: Vec<Vec<BlockSpec>> = (0..3)
        .map(|i| {
            let mut list = song.clone();
            if i == 2 {
                list[press_block].params.push(ParamChange { offset: 0, param_id: regenerate, value: 1.0 });
                list[press_block + 1].params.push(ParamChange { offset: 0, param_id: regenerate, value: 0.0 });
            }
            list
        })
        .collect();
    let runs = run_together(&mut live, &lists, Some(1.0)).expect("the live run");
    let bar_samples = SR * 60.0 / BPM * 4.0;
    let press_sample = (press_block * BLOCK as usize) as u64;
    for ((part, run), old) in PARTS.iter().zip(&runs).zip(&reference) {
        let new: Vec<NoteEvent> = run.events.iter().map(|e| NoteEvent { time: e.time - start, ..*e }).collect();
        let (old, new) = (keys(old), keys(&new));
        let first = old.iter().zip(&new).position(|(a, b)| a != b).unwrap_or(old.len().min(new.len()));
        let changed_at = old.get(first).map_or(u64::MAX, |k| k.0).min(new.get(first).map_or(u64::MAX, |k| k.0));
        assert!(changed_at >= press_sample, "the {part} changed before the press");
        let bars_after = (changed_at - press_sample) as f64 / bar_samples;
        println!("live: the {part} changed {bars_after:.2} bars after the press");
        assert!(bars_after < 2.0, "the {part} changed {bars_after:.2} bars after the press in another member");
    }
}

/// Link switched on mid-song in an instance that plays a phrase of its own: the new group goes on
/// with that phrase, note for note.
#[test]
#[ignore = "drives the built bundle: run by cargo xtask test"]
fn linking_an_instance_mid_song_keeps_its_phrase() {
    let song = blocks(8.0);
    let play_one = |link_at: Option<usize>| -> (Vec<NoteEvent>, bool) {
        let mut one = host(RenderMode::Offline, vec![text("Seed", "14")]);
        let regenerate = one.param("Regenerate").expect("a Regenerate parameter").id;
        let link = one.param("Link").expect("a Link parameter").id;
        let mut list = song.clone();
        list[40].params.push(ParamChange { offset: 0, param_id: regenerate, value: 1.0 });
        list[41].params.push(ParamChange { offset: 0, param_id: regenerate, value: 0.0 });
        if let Some(block) = link_at {
            // Group A: the first step of Off, A … H.
            list[block].params.push(ParamChange { offset: 0, param_id: link, value: 1.0 });
        }
        let events = run(&mut one, &list).events;
        let state = one.save_state().expect("state save");
        (events, String::from_utf8_lossy(&state).contains(r#""link":{"string":"a"}"#))
    };
    let (unlinked, _) = play_one(None);
    let (linked, in_a) = play_one(Some(song.len() / 2));
    assert!(in_a, "the Link change was not applied");
    assert_same("linked half way", &linked, &unlinked);
}
