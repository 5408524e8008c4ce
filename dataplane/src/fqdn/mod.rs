//! FQDN rules: names learned from snooped DNS answers, bound to addresses, in per-worker tables
//! that the control thread publishes without ever changing one a worker reads (see [`table`]).

pub mod learner;
pub mod names;
pub mod reasm;
pub mod snoop;
pub mod table;
pub mod wheel;

pub use learner::{AnswerResult, BindingView, Eviction, Learner, LearnerStats, Limits};
pub use names::NameMatcher;
pub use table::{Attribution, EntryNames, EntryRules, FqdnMap, IpEntry, IpKey, Op, Replica};
