//! A worker's side of its conversations with the control thread and the admin thread, free of
//! DPDK so that tests and stress runs drive it exactly as the appliance does.
//!
//! Each conversation is a pair of single-producer single-consumer rings (wait-free; polling an
//! empty ring is one load). At its quiescent point — between bursts, holding no reference into
//! published state — the worker hands DNS answers to control, gives back what it no longer uses
//! (the previous policy, the previous FQDN table) so that control frees it, takes in what
//! control publishes, and serves admin requests, a bounded chunk at a time so that listing a
//! million flows never stalls traffic. Everything it reports is copied out (names included):
//! nothing the admin thread holds points into the worker's tables.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;

use crate::counter::Gauge;
use crate::flow::FlowState;
use crate::fqdn::FqdnMap;
use crate::pipeline::{DnsHandoff, Effects, Pipeline};
use crate::policy::{Policy, RuleInfo};
use crate::side::Side;

/// A message from the control thread to a worker.
#[derive(Debug)]
pub enum ToWorker {
    /// Put this policy in force.
    Policy(Arc<Policy>),
    /// Read this FQDN table from now on (hand the previous one back).
    Fqdn(Box<FqdnMap>),
    /// Release held DNS answer `token` once every worker reads table version `version` or
    /// newer (0: at once).
    Hold {
        /// The hold's token ([`DnsHandoff::hold`]).
        token: u64,
        /// The table version that makes its addresses visible everywhere.
        version: u64,
    },
}

/// A message from a worker to the control thread.
#[derive(Debug)]
pub enum FromWorker {
    /// The worker no longer uses this policy: control drops it.
    Retired(Arc<Policy>),
    /// The FQDN table the worker no longer reads: control's spare copy again.
    FqdnReturned(Box<FqdnMap>),
    /// The rules of an old policy the worker no longer names flows by: control drops them.
    RetiredRules(Arc<[RuleInfo]>),
    /// A DNS answer to learn from.
    Dns(DnsHandoff),
}

/// A request of the admin thread to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminRequest {
    /// Flows from slot `from` on: at most `max` rows, looking at most `max_slots` slots.
    Flows {
        /// Echoed in the reply, so that a reply to an abandoned listing is recognised.
        id: u64,
        /// Where to start.
        from: usize,
        /// Rows at most.
        max: usize,
        /// Slots examined at most (bounds the work of a sparse table).
        max_slots: usize,
    },
}

/// One flow, copied out of a worker's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRow {
    /// The worker that owns it.
    pub worker: usize,
    /// IP protocol.
    pub proto: u8,
    /// The initiator's address and port (ICMP: echo identifier).
    pub src: (IpAddr, u16),
    /// The responder's address and port.
    pub dst: (IpAddr, u16),
    /// The port the initiator's first packet came in on.
    pub side: Side,
    /// State.
    pub state: FlowState,
    /// The deciding rule's name (`None`: the default action), shared with the policy that
    /// decided it (immutable; no copy needed).
    pub rule: Option<Arc<str>>,
    /// The name an FQDN rule matched, copied.
    pub fqdn: Option<String>,
    /// Packets in both directions.
    pub packets: u64,
    /// Bytes in both directions.
    pub bytes: u64,
    /// Data path time of the first packet (ns).
    pub created: u64,
    /// Data path time of the last packet (ns).
    pub last_seen: u64,
}

/// A worker's answer to an [`AdminRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminReply {
    /// A chunk of flows and where the next one starts (`None`: that was the last).
    Flows {
        /// The request's id.
        id: u64,
        /// The rows.
        rows: Vec<FlowRow>,
        /// The slot to continue from.
        next: Option<usize>,
    },
}

/// Messages in flight between control and one worker, each way.
pub const LINK_CAPACITY: usize = 1024;
/// Admin requests (and replies) in flight per worker.
pub const ADMIN_CAPACITY: usize = 4;

/// The worker's ends of its rings.
#[derive(Debug)]
pub struct WorkerLink {
    /// Messages from control.
    pub inbox: rtrb::Consumer<ToWorker>,
    /// Messages to control.
    pub outbox: rtrb::Producer<FromWorker>,
    /// Requests from the admin thread.
    pub admin_in: rtrb::Consumer<AdminRequest>,
    /// Replies to the admin thread.
    pub admin_out: rtrb::Producer<AdminReply>,
}

/// Control's ends of one worker's rings.
#[derive(Debug)]
pub struct ControlLink {
    /// Messages to the worker.
    pub to_worker: rtrb::Producer<ToWorker>,
    /// Messages from the worker.
    pub from_worker: rtrb::Consumer<FromWorker>,
}

/// The admin thread's ends of one worker's rings.
#[derive(Debug)]
pub struct AdminLink {
    /// Requests to the worker.
    pub requests: rtrb::Producer<AdminRequest>,
    /// Replies from the worker.
    pub replies: rtrb::Consumer<AdminReply>,
}

/// The share of a worker's time that serving admin requests may take, in percent: after a
/// request that took `t`, the next is served no sooner than `t * (100 / ADMIN_DUTY_PERCENT - 1)`
/// later. Listings get slower on a busy table; traffic does not.
pub const ADMIN_DUTY_PERCENT: u64 = 2;

/// Rows a worker copies out per admin request (between two bursts).
pub const FLOW_CHUNK_ROWS: usize = 256;
/// Flow table slots a worker examines per admin request at most.
pub const FLOW_CHUNK_SLOTS: usize = 4096;
/// Policies before the current one whose rule names a worker keeps for listing idle flows
/// they decided; a flow older than all of them is listed as "rule N of policy generation G".
pub const PAST_POLICIES: usize = 64;

/// Why a listing stopped short.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    /// The worker did not answer while the caller waited (stopped or stuck).
    #[error("worker did not answer")]
    NoAnswer,
}

impl AdminLink {
    /// Lists every flow of the worker, a chunk per request ([`FLOW_CHUNK_ROWS`] rows,
    /// [`FLOW_CHUNK_SLOTS`] slots), calling `each` with every row. While a reply is awaited,
    /// `wait()` is called; when it returns `false` the listing is abandoned. Flows created or
    /// ended during the listing may or may not appear; none appears twice unless the table
    /// moved it.
    pub fn list_flows(
        &mut self,
        id: u64,
        mut each: impl FnMut(FlowRow),
        mut wait: impl FnMut() -> bool,
    ) -> Result<(), ListError> {
        let mut from = Some(0);
        while let Some(start) = from {
            let mut req = AdminRequest::Flows {
                id,
                from: start,
                max: FLOW_CHUNK_ROWS,
                max_slots: FLOW_CHUNK_SLOTS,
            };
            loop {
                match self.requests.push(req) {
                    Ok(()) => break,
                    Err(rtrb::PushError::Full(r)) => {
                        req = r;
                        // Replies to an abandoned listing are still queued: drop them.
                        while self.replies.pop().is_ok() {}
                        if !wait() {
                            return Err(ListError::NoAnswer);
                        }
                    }
                }
            }
            from = loop {
                match self.replies.pop() {
                    Ok(AdminReply::Flows {
                        id: got,
                        rows,
                        next,
                    }) if got == id => {
                        rows.into_iter().for_each(&mut each);
                        break next;
                    }
                    Ok(_) => {} // for an earlier, abandoned listing
                    Err(_) => {
                        if !wait() {
                            return Err(ListError::NoAnswer);
                        }
                    }
                }
            };
        }
        Ok(())
    }
}

/// A worker's rings: the worker's ends, control's ends, the admin thread's ends.
pub fn link() -> (WorkerLink, ControlLink, AdminLink) {
    let (to_worker, inbox) = rtrb::RingBuffer::new(LINK_CAPACITY);
    let (outbox, from_worker) = rtrb::RingBuffer::new(LINK_CAPACITY);
    let (requests, admin_in) = rtrb::RingBuffer::new(ADMIN_CAPACITY);
    let (admin_out, replies) = rtrb::RingBuffer::new(ADMIN_CAPACITY);
    (
        WorkerLink {
            inbox,
            outbox,
            admin_in,
            admin_out,
        },
        ControlLink {
            to_worker,
            from_worker,
        },
        AdminLink { requests, replies },
    )
}

/// The FQDN table version each worker reads: written by that worker, read by all (a held DNS
/// answer leaves once the smallest of them reached the version it needs).
#[derive(Debug)]
pub struct FleetVersions(Box<[Gauge]>);

impl FleetVersions {
    /// Versions for `workers` workers, all 0.
    pub fn new(workers: usize) -> Self {
        FleetVersions((0..workers.max(1)).map(|_| Gauge::default()).collect())
    }

    /// Records the version worker `w` reads. Only worker `w` may call this.
    pub fn set(&self, w: usize, version: u64) {
        if let Some(g) = self.0.get(w) {
            g.set(version);
        }
    }

    /// The smallest version any worker reads.
    pub fn min(&self) -> u64 {
        self.0.iter().map(Gauge::get).min().unwrap_or(0)
    }
}

/// A worker's conversations.
#[derive(Debug)]
pub struct Agent {
    /// The worker's index.
    pub id: usize,
    /// Its rings.
    pub link: WorkerLink,
    /// Every worker's FQDN table version.
    pub fleet: Arc<FleetVersions>,
    /// The policy generation the worker applies (written here, read by stats).
    pub generation: Arc<Gauge>,
    /// What waits for room in the outbox to go back to control.
    retired: Vec<FromWorker>,
    /// The rules of the policies in force before the current one, newest last, with their
    /// generations (at most [`PAST_POLICIES`]): a flow decided under one of them and idle
    /// since is listed with the name of the rule that decided it.
    past_rules: VecDeque<(u64, Arc<[RuleInfo]>)>,
    /// Data path time before which no admin request is served (pacing).
    admin_ready_at: u64,
}

impl Agent {
    /// The agent of worker `id`.
    pub fn new(
        id: usize,
        link: WorkerLink,
        fleet: Arc<FleetVersions>,
        generation: Arc<Gauge>,
    ) -> Self {
        Agent {
            id,
            link,
            fleet,
            generation,
            retired: Vec::new(),
            past_rules: VecDeque::with_capacity(PAST_POLICIES + 1),
            admin_ready_at: 0,
        }
    }

    /// The quiescent point's conversations (after `pipeline.maintain`): DNS answers go to
    /// control (if its ring is full, an answer is not learned and its packet goes on at once),
    /// retired state goes back, control's messages are applied, one admin request is served.
    pub fn quiescent<H: AsRef<[u8]>>(
        &mut self,
        pipeline: &mut Pipeline<H>,
        fx: &mut Effects<H>,
        now: u64,
    ) {
        for h in fx.dns.drain(..) {
            let token = h.hold;
            if self.link.outbox.push(FromWorker::Dns(h)).is_err() {
                pipeline.stats().dns_handoff_full.inc();
                if let Some(t) = token {
                    pipeline.resolve_hold(t, 0);
                }
            }
        }
        // Give back what control has to free before taking anything new.
        while let Some(old) = self.retired.pop() {
            if let Err(rtrb::PushError::Full(old)) = self.link.outbox.push(old) {
                self.retired.push(old);
                break;
            }
        }
        while let Ok(msg) = self.link.inbox.pop() {
            match msg {
                ToWorker::Policy(p) => {
                    let generation = p.generation;
                    let old = pipeline.set_policy(p);
                    self.past_rules
                        .push_back((old.generation, Arc::clone(&old.rules)));
                    if self.past_rules.len() > PAST_POLICIES {
                        if let Some((_, rules)) = self.past_rules.pop_front() {
                            self.retired.push(FromWorker::RetiredRules(rules));
                        }
                    }
                    self.retired.push(FromWorker::Retired(old));
                    self.generation.set(generation);
                }
                ToWorker::Fqdn(table) => {
                    let version = table.version();
                    self.retired
                        .push(FromWorker::FqdnReturned(pipeline.set_fqdn(table)));
                    self.fleet.set(self.id, version);
                }
                ToWorker::Hold { token, version } => pipeline.resolve_hold(token, version),
            }
        }
        if now >= self.admin_ready_at && self.link.admin_out.slots() > 0 {
            if let Ok(req) = self.link.admin_in.pop() {
                let t0 = std::time::Instant::now();
                let reply = self.serve(pipeline, &req);
                // A free slot was checked above and only this thread pushes.
                let _ = self.link.admin_out.push(reply);
                // Pace admin work to at most ADMIN_DUTY_PERCENT of this worker's time.
                let cost = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
                self.admin_ready_at =
                    now.saturating_add(cost.saturating_mul(100 / ADMIN_DUTY_PERCENT - 1));
            }
        }
    }

    fn serve<H: AsRef<[u8]>>(&self, pipeline: &Pipeline<H>, req: &AdminRequest) -> AdminReply {
        match *req {
            AdminRequest::Flows {
                id,
                from,
                max,
                max_slots,
            } => {
                let policy = pipeline.policy();
                let rules_of = |generation: u64| {
                    if generation == policy.generation {
                        return Some(&policy.rules);
                    }
                    self.past_rules
                        .iter()
                        .rev()
                        .find(|(g, _)| *g == generation)
                        .map(|(_, rules)| rules)
                };
                let (chunk, next) = pipeline.flows().chunk_bounded(from, max, max_slots);
                let rows = chunk
                    .into_iter()
                    .map(|(_, f)| FlowRow {
                        worker: self.id,
                        proto: f.key.proto(),
                        src: f.initiator(),
                        dst: f.responder(),
                        side: f.init_side,
                        state: f.state,
                        rule: f.decided_by.rule().map(|i| {
                            match rules_of(f.generation).and_then(|r| r.get(i as usize)) {
                                Some(r) => Arc::clone(&r.name),
                                None => Arc::from(format!(
                                    "rule {} of policy generation {}",
                                    i + 1,
                                    f.generation
                                )),
                            }
                        }),
                        fqdn: f.fqdn.as_ref().map(|a| a.name().to_owned()),
                        packets: f.packets,
                        bytes: f.bytes,
                        created: f.created,
                        last_seen: f.last_seen,
                    })
                    .collect();
                AdminReply::Flows { id, rows, next }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::PipelineConfig;
    use crate::{PipelineStats, Side};

    const PORTS: &str =
        "[ports.inside]\ndevice = \"net_null0\"\n[ports.outside]\ndevice = \"net_null1\"\n";
    const WEB: &str =
        "[[rule]]\nname = \"web\"\naction = \"allow\"\nproto = \"tcp\"\ndst_ports = [\"443\"]\n";
    const FIRST: &str =
        "[[rule]]\nname = \"first\"\naction = \"allow\"\nproto = \"udp\"\ndst_ports = [\"9\"]\n";

    fn policy(rules: &str, generation: u64) -> Arc<Policy> {
        let cfg = config::parse(&format!("{PORTS}{rules}"), "t.toml").expect("valid");
        Arc::new(Policy::compile(&cfg, generation, 1))
    }

    /// A TCP SYN 10.0.0.2:40000 -> 192.0.2.10:443.
    fn syn() -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        f.extend_from_slice(&[0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 2]);
        f.extend_from_slice(&[
            192, 0, 2, 10, 0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0,
        ]);
        f.extend_from_slice(&[0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
        f.resize(60, 0);
        f
    }

    /// Every row the worker lists (the agent served in the listing's waits).
    fn listed(agent: &mut Agent, admin: &mut AdminLink, p: &mut Pipeline<Vec<u8>>) -> Vec<FlowRow> {
        let mut rows = Vec::new();
        let mut fx = Effects::default();
        admin
            .list_flows(
                1,
                |r| rows.push(r),
                || {
                    agent.admin_ready_at = 0;
                    agent.quiescent(p, &mut fx, 0);
                    true
                },
            )
            .expect("listed");
        rows
    }

    #[test]
    fn an_idle_flow_is_listed_with_the_rule_that_decided_it_across_reloads() {
        let cfg = config::parse(&format!("{PORTS}{WEB}"), "t.toml").expect("valid");
        let mut p: Pipeline<Vec<u8>> = Pipeline::new(
            PipelineConfig::from_config(&cfg, 0, 1),
            policy(WEB, 1),
            Arc::new(PipelineStats::default()),
        );
        let (wl, mut cl, mut al) = link();
        let mut agent = Agent::new(0, wl, Arc::new(FleetVersions::new(1)), Arc::default());
        let mut fx = Effects::default();
        let (_, d) = p.process(syn(), Side::Inside, 1, &mut fx);
        assert_eq!(d.rule, Some(0));
        let rule = |rows: &[FlowRow]| {
            rows.iter()
                .map(|r| r.rule.as_deref().map(str::to_owned))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            rule(&listed(&mut agent, &mut al, &mut p)),
            [Some("web".to_owned())]
        );

        // A rule inserted before it: the idle flow still names "web", not the rule now at its
        // index.
        cl.to_worker
            .push(ToWorker::Policy(policy(&format!("{FIRST}{WEB}"), 2)))
            .expect("room");
        agent.quiescent(&mut p, &mut fx, 2);
        assert_eq!(p.policy().generation, 2);
        assert_eq!(
            rule(&listed(&mut agent, &mut al, &mut p)),
            [Some("web".to_owned())]
        );

        // Reloads beyond what the worker remembers: the row says which rule of which
        // generation, and the retired rules went back to control.
        for g in 3..3 + PAST_POLICIES as u64 {
            cl.to_worker
                .push(ToWorker::Policy(policy(&format!("{FIRST}{WEB}"), g)))
                .expect("room");
            agent.quiescent(&mut p, &mut fx, g);
        }
        assert_eq!(
            rule(&listed(&mut agent, &mut al, &mut p)),
            [Some("rule 1 of policy generation 1".to_owned())]
        );
        let mut returned = 0;
        while let Ok(m) = cl.from_worker.pop() {
            returned += usize::from(matches!(m, FromWorker::RetiredRules(_)));
        }
        assert_eq!(returned, 1, "generation 1 fell out of the history");
        assert_eq!(agent.past_rules.len(), PAST_POLICIES);
    }
}
