//! Linked instances: the instances of one process with the same Link group play one trio. A group
//! has one generator thread (one model, one phrase, one history) that serves every member's `Link`;
//! an instance with Link Off is a group of its own. Only main and generator threads touch the
//! registry (behind a mutex); audio threads never see it.

use crate::link::GeneratorEnd;
use crate::params::{LinkGroup, TrioParams};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// One instance as its group sees it.
#[derive(Clone)]
pub struct Member {
    /// Unique in the process, in order of creation: the lowest is the group's timing reference.
    pub id: u64,
    pub link: GeneratorEnd,
    pub params: Arc<TrioParams>,
}

impl Member {
    pub fn new(link: GeneratorEnd, params: Arc<TrioParams>) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Member { id: NEXT_ID.fetch_add(1, Ordering::Relaxed), link, params }
    }

    /// The group its Link parameter asks for.
    pub fn wanted_group(&self) -> GroupKey {
        match self.params.link.value() {
            LinkGroup::Off => GroupKey::Solo(self.id),
            group => GroupKey::Linked(group),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GroupKey {
    /// Link Off: the instance with this id, alone.
    Solo(u64),
    Linked(LinkGroup),
}

impl GroupKey {
    /// The Link parameter's value for this group, as `LinkGroup::code` writes it.
    pub fn code(self) -> u8 {
        match self {
            GroupKey::Solo(_) => LinkGroup::Off.code(),
            GroupKey::Linked(group) => group.code(),
        }
    }
}

/// A group's members, shared with its generator thread.
pub struct Group {
    pub key: GroupKey,
    /// Sorted by id.
    members: Mutex<Vec<Member>>,
    /// The last member left: the generator thread ends.
    closed: AtomicBool,
}

impl Group {
    fn new(key: GroupKey) -> Self {
        Group { key, members: Mutex::new(Vec::new()), closed: AtomicBool::new(false) }
    }

    /// A group that is not in the registry (unit tests drive its generator by hand).
    #[cfg(test)]
    pub fn unregistered(key: GroupKey, members: Vec<Member>) -> Arc<Self> {
        let group = Group::new(key);
        lock(&group.members).extend(members);
        Arc::new(group)
    }

    pub fn members(&self) -> Vec<Member> {
        lock(&self.members).clone()
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

struct Registry {
    groups: Vec<(Arc<Group>, Option<JoinHandle<()>>)>,
    /// Threads of groups whose last member left, joined by the next instance that leaves (the
    /// library must not be unloaded while one runs).
    ended: Vec<JoinHandle<()>>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry { groups: Vec::new(), ended: Vec::new() });

/// A poisoned lock (a panic elsewhere) still guards consistent data here: every change is one push or remove.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Starts a group's generator thread.
pub type SpawnGenerator = fn(Arc<Group>) -> std::io::Result<JoinHandle<()>>;

/// Puts the member in the group its Link parameter names (leaving any other), starting the group's
/// generator when it is the first. Main thread (activation) or a generator thread (a Link change).
pub fn join(member: Member, spawn: SpawnGenerator) {
    join_locked(&mut lock(&REGISTRY), member, spawn);
}

/// Moves a member whose Link now names another group, if it is still in group `from` (it may have
/// been destroyed since its generator last looked: a member that left never comes back).
pub fn move_member(member: Member, from: GroupKey, spawn: SpawnGenerator) {
    let mut registry = lock(&REGISTRY);
    let still_there =
        registry.groups.iter().any(|(g, _)| g.key == from && lock(&g.members).iter().any(|m| m.id == member.id));
    if still_there {
        join_locked(&mut registry, member, spawn);
    }
}

fn join_locked(registry: &mut Registry, member: Member, spawn: SpawnGenerator) {
    let key = member.wanted_group();
    remove_member(registry, member.id, Some(key));
    let index = match registry.groups.iter().position(|(g, _)| g.key == key) {
        Some(index) => index,
        None => {
            let group = Arc::new(Group::new(key));
            registry.groups.push((group.clone(), None));
            registry.groups.len() - 1
        }
    };
    let (group, thread) = &mut registry.groups[index];
    {
        let mut members = lock(&group.members);
        if !members.iter().any(|m| m.id == member.id) {
            members.push(member);
            members.sort_by_key(|m| m.id);
        }
    }
    // A generator that ended (it panicked: its members were told) is started again for the newcomer.
    if thread.as_ref().is_none_or(|t| t.is_finished()) {
        registry.ended.extend(thread.take());
        let (group, thread) = &mut registry.groups[index];
        match spawn(group.clone()) {
            Ok(handle) => *thread = Some(handle),
            // No thread, no bars: the member's audio thread plays silence, as with no model.
            Err(e) => nice_plug::nice_log!("Neural Trio cannot start its generator: {e}"),
        }
    }
}

/// Takes the member out of its group; a group left empty ends, and its thread (and those of groups
/// that ended before) is joined. Main thread only (an instance being destroyed).
pub fn leave(id: u64) {
    let ended = {
        let mut registry = lock(&REGISTRY);
        remove_member(&mut registry, id, None);
        std::mem::take(&mut registry.ended)
    };
    for handle in ended {
        let _ = handle.join();
    }
}

/// Removes the member from every group but `keep`; empty groups close.
fn remove_member(registry: &mut Registry, id: u64, keep: Option<GroupKey>) {
    let mut index = 0;
    while index < registry.groups.len() {
        let group = &registry.groups[index].0;
        let empty = {
            let mut members = lock(&group.members);
            if Some(group.key) != keep {
                members.retain(|m| m.id != id);
            }
            members.is_empty()
        };
        if empty {
            let (group, thread) = registry.groups.remove(index);
            group.closed.store(true, Ordering::Release);
            registry.ended.extend(thread);
        } else {
            index += 1;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use nice_plug::prelude::Params;
    use std::sync::atomic::AtomicUsize;

    static SPAWNED: AtomicUsize = AtomicUsize::new(0);

    /// A stand-in generator: runs until its group closes.
    fn idle_generator(group: Arc<Group>) -> std::io::Result<JoinHandle<()>> {
        SPAWNED.fetch_add(1, Ordering::SeqCst);
        std::thread::Builder::new().spawn(move || {
            while !group.is_closed() {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
    }

    /// Sets a parameter by its id as a host does (normalized), through the parameter's pointer.
    pub fn set_param(params: &TrioParams, id: &str, normalized: f32) {
        let (_, param, _) = params.param_map().into_iter().find(|(i, _, _)| i == id).expect("a parameter with that id");
        // SAFETY: the pointer is to a field of `params`, alive here.
        unsafe { param._internal_set_normalized_value(normalized) };
    }

    /// A new instance whose Link is Off or H.
    fn member(linked: bool) -> Member {
        let params = Arc::new(TrioParams::default());
        set_param(&params, "link", if linked { 1.0 } else { 0.0 });
        Member::new(crate::link::channel().1, params)
    }

    fn groups_of(ids: &[u64]) -> Vec<(GroupKey, Vec<u64>)> {
        let registry = lock(&REGISTRY);
        registry
            .groups
            .iter()
            .map(|(g, _)| (g.key, g.members().iter().map(|m| m.id).collect::<Vec<_>>()))
            .filter(|(_, members)| members.iter().any(|id| ids.contains(id)))
            .collect()
    }

    #[test]
    fn members_of_a_group_share_one_generator_and_the_last_to_leave_ends_it() {
        let spawned = SPAWNED.load(Ordering::SeqCst);
        let (a, b, solo) = (member(true), member(true), member(false));
        let ids = [a.id, b.id, solo.id];
        join(a.clone(), idle_generator);
        join(b.clone(), idle_generator);
        join(solo.clone(), idle_generator);
        assert_eq!(SPAWNED.load(Ordering::SeqCst) - spawned, 2, "one generator for H, one for the solo instance");
        assert_eq!(
            groups_of(&ids),
            [(GroupKey::Linked(LinkGroup::H), vec![a.id, b.id]), (GroupKey::Solo(solo.id), vec![solo.id])]
        );
        let h = lock(&REGISTRY).groups.iter().find(|(g, _)| g.key == GroupKey::Linked(LinkGroup::H)).unwrap().0.clone();
        leave(a.id);
        assert!(!h.is_closed(), "the group ended with a member left");
        assert_eq!(h.members().iter().map(|m| m.id).collect::<Vec<_>>(), [b.id]);
        leave(b.id);
        leave(solo.id);
        assert!(h.is_closed());
        assert_eq!(groups_of(&ids), []);
    }
}
