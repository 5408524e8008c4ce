//! FQDN rules: names learned from snooped DNS answers, bound to addresses, in per-worker tables
//! that the control thread publishes without ever changing one a worker reads (see [`table`]).

pub mod learner;
pub mod names;
pub mod reasm;
pub mod snoop;
pub mod table;
pub mod wheel;

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

/// Makes every page of `map`'s table resident now: fills it to its capacity with placeholder
/// entries (`key` gives distinct keys), then empties it. The allocation stays, so entries
/// that arrive later land on pages already there instead of each taking a page fault (and the
/// kernel zeroing 4 KiB) on the thread that writes them. An empty map only; never grows it.
pub(crate) fn prefault<K: Eq + Hash, V: Clone, S: BuildHasher>(
    map: &mut HashMap<K, V, S>,
    key: impl Fn(u64) -> K,
    placeholder: &V,
) {
    if !map.is_empty() {
        return;
    }
    let room = map.capacity();
    for i in 0..room as u64 {
        map.insert(key(i), placeholder.clone());
    }
    debug_assert_eq!(map.capacity(), room, "filling to capacity never grows");
    map.clear();
}

pub use learner::{AnswerResult, BindingView, Eviction, Learner, LearnerStats, Limits};
pub use names::NameMatcher;
pub use table::{Attribution, EntryNames, EntryRules, FqdnMap, IpEntry, IpKey, Op, Replica};
