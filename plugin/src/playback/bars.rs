//! The audio thread's copy of the bars it may play, filled from the generator's queue.

use crate::link::{AudioEnd, BarNotes};

/// Slots, indexed by phrase bar modulo this; enough for a 16-bar loop plus Endless lookahead.
pub const BAR_SLOTS: usize = 64;

pub struct BarTable {
    slots: Box<[Option<BarNotes>]>,
}

impl Default for BarTable {
    fn default() -> Self {
        BarTable { slots: vec![None; BAR_SLOTS].into_boxed_slice() }
    }
}

impl BarTable {
    /// Moves every queued bar of the current epoch into its slot; older epochs are dropped.
    pub fn drain(&mut self, link: &AudioEnd, epoch: u32) {
        while let Some(bar) = link.next_bar() {
            // A bar of a newer epoch (the generator started one after this block read it) is kept for
            // the next block; only older ones are stale.
            if bar.epoch.wrapping_sub(epoch) as i32 >= 0 && bar.index >= 0 {
                self.slots[bar.index as usize % BAR_SLOTS] = Some(bar);
            }
        }
    }

    pub fn get(&self, index: i64, epoch: u32) -> Option<&BarNotes> {
        if index < 0 {
            return None;
        }
        self.slots[index as usize % BAR_SLOTS].as_ref().filter(|b| b.index == index && b.epoch == epoch)
    }

    /// Like `get`, but only a bar published under settings revision `rev` and group revision `group_rev`.
    pub fn get_current(&self, index: i64, epoch: u32, (rev, group_rev): (u32, u32)) -> Option<&BarNotes> {
        self.get(index, epoch).filter(|b| b.settings_rev == rev && b.group_rev == group_rev)
    }
}
