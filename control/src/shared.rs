//! What the admin socket and the metrics endpoint read while the appliance runs.
//!
//! Counters stay where they are written: each worker's in its own structures (one writer, plain
//! loads and stores), the learner's on the control thread. Readers sum them when asked; nothing
//! on the packet path writes anything shared. The only locks are between control-plane threads
//! (port snapshots, rule totals), never taken by a worker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};

use dataplane::counter::{Counter, Gauge};
use dataplane::fqdn::{BindingView, IpKey, LearnerStats};
use dataplane::worker::{Clock, WorkerStats};
use dataplane::{PipelineStats, Policy, Side};
use dpdk::PortStats;

/// One port's DPDK counters as last read by the control thread.
#[derive(Debug, Clone)]
pub struct PortSnapshot {
    /// Which port.
    pub side: Side,
    /// Its DPDK device name.
    pub device: String,
    /// Its counters.
    pub stats: PortStats,
}

/// A request the admin thread makes of the control thread (which owns the learner and the
/// configuration).
#[derive(Debug)]
pub enum Call {
    /// Re-read the configuration; answers the new generation or the error.
    Reload(mpsc::Sender<Result<u64, String>>),
    /// A copy of the learned bindings.
    Fqdn(mpsc::Sender<FqdnSnapshot>),
}

/// The learned bindings at one moment, copied out by the control thread.
#[derive(Debug)]
pub struct FqdnSnapshot {
    /// Every address with its bindings, most recent first.
    pub bindings: Vec<(IpKey, Vec<BindingView>)>,
    /// The policy they were matched under.
    pub policy: Arc<Policy>,
    /// Data path time of the copy (ns).
    pub now: u64,
}

/// A rule's name (`None`: the default action).
pub type RuleName = Option<Arc<str>>;
/// Packets and bytes by rule name.
pub type RuleCounts = HashMap<RuleName, (u64, u64)>;

/// Packets and bytes per rule, across reloads.
///
/// Workers count into the policy they run. A policy stays `live` until every worker has handed
/// it back; then its counts are final and are folded into per-name totals. A rule that keeps its
/// name across reloads keeps counting up.
#[derive(Debug, Default)]
pub struct RuleTotals {
    /// Final counts of retired policies, by rule name (`None`: the default action).
    folded: RuleCounts,
    /// Policies some worker may still count into, oldest first, with how many workers handed
    /// each back. The last one is the policy in force.
    live: Vec<(Arc<Policy>, usize)>,
    workers: usize,
}

impl RuleTotals {
    /// Totals for `workers` workers starting with `policy`.
    pub fn new(policy: Arc<Policy>, workers: usize) -> Self {
        RuleTotals {
            folded: HashMap::new(),
            live: vec![(policy, 0)],
            workers: workers.max(1),
        }
    }

    /// The policy in force.
    pub fn current(&self) -> Option<&Arc<Policy>> {
        self.live.last().map(|(p, _)| p)
    }

    /// A new policy is in force.
    pub fn publish(&mut self, policy: Arc<Policy>) {
        self.live.push((policy, 0));
    }

    /// A worker handed back the policy of `generation`.
    pub fn retired(&mut self, generation: u64) {
        let Some(i) = self
            .live
            .iter()
            .position(|(p, _)| p.generation == generation)
        else {
            return;
        };
        self.live[i].1 += 1;
        if self.live[i].1 < self.workers || i + 1 == self.live.len() {
            return;
        }
        let (policy, _) = self.live.remove(i);
        for (name, counts) in per_rule(&policy) {
            let t = self.folded.entry(name).or_default();
            t.0 += counts.0;
            t.1 += counts.1;
        }
    }

    /// Packets and bytes by rule name (`None`: the default action), every generation summed.
    pub fn totals(&self) -> RuleCounts {
        let mut out = self.folded.clone();
        for (p, _) in &self.live {
            for (name, counts) in per_rule(p) {
                let t = out.entry(name).or_default();
                t.0 += counts.0;
                t.1 += counts.1;
            }
        }
        out
    }
}

/// One policy's counts by rule name, summed over workers.
fn per_rule(p: &Policy) -> Vec<(RuleName, (u64, u64))> {
    let names = p
        .rules
        .iter()
        .map(|r| Some(Arc::clone(&r.name)))
        .chain(std::iter::once(None));
    names
        .enumerate()
        .map(|(i, name)| {
            let mut t = (0, 0);
            for c in &p.counters {
                let (packets, bytes) = c.get(i);
                t.0 += packets;
                t.1 += bytes;
            }
            (name, t)
        })
        .collect()
}

/// Reload outcomes.
#[derive(Debug, Default)]
pub struct Reloads {
    /// Reloads that put a new policy in force.
    pub ok: Counter,
    /// Reloads refused (the running policy stayed).
    pub error: Counter,
}

/// Everything the admin and metrics threads read.
#[derive(Debug)]
pub struct Shared {
    /// The version of this build.
    pub version: &'static str,
    /// Per-worker loop counters.
    pub workers: Vec<Arc<WorkerStats>>,
    /// Per-worker pipeline counters.
    pub pipelines: Vec<Arc<PipelineStats>>,
    /// The policy generation each worker applies.
    pub worker_generations: Vec<Arc<Gauge>>,
    /// The learner's counters.
    pub learner: Arc<LearnerStats>,
    /// Port counters, refreshed by the control thread.
    ports: Mutex<Vec<PortSnapshot>>,
    /// Rule counters across reloads.
    rules: Mutex<RuleTotals>,
    /// The generation of the policy in force.
    pub generation: Gauge,
    /// Reload outcomes.
    pub reloads: Reloads,
    /// The data path's clock.
    pub clock: Clock,
}

impl Shared {
    /// State for `workers` workers under `policy`.
    pub fn new(
        policy: Arc<Policy>,
        workers: usize,
        learner: Arc<LearnerStats>,
        clock: Clock,
    ) -> Self {
        let generation = Gauge::default();
        generation.set(policy.generation);
        Shared {
            version: env!("CARGO_PKG_VERSION"),
            workers: (0..workers).map(|_| Arc::default()).collect(),
            pipelines: (0..workers).map(|_| Arc::default()).collect(),
            worker_generations: (0..workers).map(|_| Arc::default()).collect(),
            learner,
            ports: Mutex::new(Vec::new()),
            rules: Mutex::new(RuleTotals::new(policy, workers)),
            generation,
            reloads: Reloads::default(),
            clock,
        }
    }

    /// The latest port counters.
    pub fn ports(&self) -> Vec<PortSnapshot> {
        lock(&self.ports).clone()
    }

    /// Replaces the port counters (control thread).
    pub fn set_ports(&self, ports: Vec<PortSnapshot>) {
        *lock(&self.ports) = ports;
    }

    /// The rule totals, locked (control-plane threads only).
    pub fn rules(&self) -> MutexGuard<'_, RuleTotals> {
        lock(&self.rules)
    }
}

/// A lock that a panicking holder can not make unusable: every value behind these locks is
/// replaced whole, so a poisoned one is still consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::flow::DecidedBy;

    fn policy(generation: u64, rules: &[&str]) -> Arc<Policy> {
        let mut text =
            String::from("[ports.inside]\ndevice = \"a\"\n[ports.outside]\ndevice = \"b\"\n");
        for r in rules {
            text.push_str(&format!("[[rule]]\nname = \"{r}\"\naction = \"allow\"\n"));
        }
        let cfg = config::parse(&text, "t.toml").unwrap();
        Arc::new(Policy::compile(&cfg, generation, 2))
    }

    #[test]
    fn rule_counts_survive_reloads_by_name() {
        let p1 = policy(1, &["a", "b"]);
        let mut t = RuleTotals::new(Arc::clone(&p1), 2);
        p1.counters[0].count(DecidedBy::Rule(0), 100);
        p1.counters[1].count(DecidedBy::Rule(1), 10);
        p1.counters[1].count(DecidedBy::Default, 1);
        let p2 = policy(2, &["b", "c"]);
        t.publish(Arc::clone(&p2));
        // Worker 0 retired generation 1; worker 1 still counts into it.
        t.retired(1);
        p1.counters[1].count(DecidedBy::Rule(1), 10);
        p2.counters[0].count(DecidedBy::Rule(0), 5);
        let name = |s: &str| Some(Arc::<str>::from(s));
        assert_eq!(t.totals()[&name("b")], (3, 25));
        t.retired(1);
        assert_eq!(
            t.live.len(),
            1,
            "generation 1 folded once every worker handed it back"
        );
        let totals = t.totals();
        assert_eq!(totals[&name("a")], (1, 100));
        assert_eq!(totals[&name("b")], (3, 25));
        assert_eq!(totals[&name("c")], (0, 0));
        assert_eq!(totals[&None], (1, 1));
        assert_eq!(t.current().map(|p| p.generation), Some(2));
    }
}
