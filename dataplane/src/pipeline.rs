//! The per-packet path: bytes, ingress side and time in; verdict out.
//!
//! One `Pipeline` per worker owns that worker's flow table, fragment table and counters. It never
//! reads a clock (`now` is an argument) and never touches DPDK, so the appliance, `ferrowall
//! replay`, the tests, the fuzzers and the benchmarks all run this same code.
//!
//! Order of work for a packet: parse (L2-L4, malformed -> drop); ARP and IPv6 neighbour
//! discovery pass (bridge); a later fragment follows its first fragment; otherwise the flow table
//! is consulted: a packet of a live flow passes (after a re-decision if the policy generation
//! changed), a packet that may open a flow is decided by the rules, anything else is dropped.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;

use crate::counter::{Counter, Gauge, Histogram};
use crate::drop::DropReason;
use crate::flow::{DecidedBy, FlowId, FlowKey, FlowRef, FlowState, FlowTable};
use crate::fqdn::reasm::DnsReassembly;
use crate::fqdn::snoop::{self, Screened};
use crate::fqdn::{AnswerResult, Attribution, FqdnMap, IpEntry, IpKey};
use crate::frag::{DatagramKey, FirstVerdict, FragTable, Later};
use crate::packet::{self, Frame, IpPacket, L4, proto};
use crate::policy::{Policy, Tuple};
use crate::reject::{self, RateLimit};
use crate::side::Side;
use crate::verdict::{Decision, Reason, Verdict};
use crate::wire::{icmp, tcp};

/// Flow slots examined per [`Pipeline::maintain`] call.
pub const SWEEP_BUDGET: usize = 8;

/// A worker's pipeline counters (written by that worker only).
#[derive(Debug, Default)]
pub struct PipelineStats {
    /// Packets dropped, by reason (index: [`DropReason::index`]).
    pub drops: [Counter; DropReason::COUNT],
    /// ARP frames passed.
    pub bridged_arp: Counter,
    /// IPv6 neighbour and router discovery messages passed.
    pub bridged_nd: Counter,
    /// Flows created.
    pub flows_created: Counter,
    /// Flows removed after their idle timeout.
    pub flows_expired: Counter,
    /// Live flows.
    pub flows: Gauge,
    /// Live flows decided again after a policy change.
    pub flows_redecided: Counter,
    /// Answers (RST, ICMP) sent for rejected packets.
    pub rejects_sent: Counter,
    /// Rejected packets not answered because of the rate limit.
    pub rejects_rate_limited: Counter,
    /// Later fragments currently held waiting for their first fragment.
    pub fragments_held: Gauge,
    /// DNS answers this worker screened out, by result (`AnswerResult::index`: no_query,
    /// untrusted, malformed, no_match; `learned` is the learner's).
    pub dns_answers: [Counter; 5],
    /// DNS queries remembered.
    pub dns_queries: Counter,
    /// DNS answers handed to the learner.
    pub dns_handed: Counter,
    /// DNS answers that could not be handed over (the ring to control was full).
    pub dns_handoff_full: Counter,
    /// DNS-over-TCP streams given up (a gap, more data than a message, or more than the
    /// worker's budget for such buffers leaves).
    pub dns_tcp_broken: Counter,
    /// Buffer capacity this worker's DNS-over-TCP streams hold.
    pub dns_tcp_buffered: Gauge,
    /// Fragmented DNS answers given up (no room, inconsistent fragments, timeout).
    pub dns_reassembly_failed: Counter,
    /// DNS answers held now.
    pub dns_held: Gauge,
    /// Held answers forwarded because `hold_timeout` passed.
    pub dns_hold_timeouts: Counter,
    /// Answers forwarded without holding because too many were held already.
    pub dns_hold_overflow: Counter,
    /// How long held answers were held.
    pub dns_hold_latency: Histogram,
    /// New flows allowed by an FQDN rule.
    pub fqdn_flows: Counter,
}

/// What happens to the packet handed to [`Pipeline::process`].
#[derive(Debug)]
pub enum Disposition<H> {
    /// Send it out of the other port.
    Pass(H),
    /// Free it.
    Drop(H),
    /// The pipeline keeps it for now (a fragment waiting for its first fragment); it comes back
    /// in [`Effects::released`].
    Held,
}

/// A held packet whose fate is now known.
#[derive(Debug)]
pub struct Released<H> {
    /// The packet.
    pub packet: H,
    /// The port it came in on.
    pub side: Side,
    /// Its decision (pass: out of the other port).
    pub decision: Decision,
}

/// A packet the pipeline wrote (an answer to a rejected packet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// The port to send it out of (the one the rejected packet came in on).
    pub side: Side,
    /// The frame.
    pub frame: Vec<u8>,
}

/// A DNS answer for the learner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsHandoff {
    /// The DNS message.
    pub message: Vec<u8>,
    /// When the packet carrying it is held: the token to release it with
    /// ([`Pipeline::resolve_hold`]).
    pub hold: Option<u64>,
}

/// Side effects of processing: packets released, packets written, DNS answers to learn from.
/// The caller drains them.
#[derive(Debug)]
pub struct Effects<H> {
    /// Held packets whose fate is now known.
    pub released: Vec<Released<H>>,
    /// Frames to send.
    pub generated: Vec<Generated>,
    /// DNS answers for the learner.
    pub dns: Vec<DnsHandoff>,
    timed_out: Vec<(H, Side)>,
}

impl<H> Default for Effects<H> {
    fn default() -> Self {
        Effects {
            released: Vec::new(),
            generated: Vec::new(),
            dns: Vec::new(),
            timed_out: Vec::new(),
        }
    }
}

/// Most DNS answers one worker holds at once; beyond, answers pass without waiting (counted).
pub const MAX_HELD_DNS: usize = 1024;

/// A DNS answer held until every worker can see what it teaches.
#[derive(Debug)]
struct HeldDns<H> {
    token: u64,
    packet: H,
    side: Side,
    decision: Decision,
    since: u64,
    /// The table version every worker must reach, once the learner said.
    until: Option<u64>,
}

/// Settings fixed for a pipeline's life (table sizes); the rest comes with each [`Policy`].
#[derive(Debug, Clone, Copy)]
pub struct PipelineConfig {
    /// The worker this pipeline belongs to (its index into per-worker policy counters).
    pub worker: usize,
    /// Flow table slots.
    pub flow_capacity: usize,
    /// Datagrams the fragment table tracks.
    pub fragment_capacity: usize,
    /// Hash seed.
    pub seed: u64,
}

impl PipelineConfig {
    /// From the configuration, for worker `worker`.
    pub fn from_config(cfg: &config::Config, worker: usize, seed: u64) -> Self {
        PipelineConfig {
            worker,
            flow_capacity: cfg.flows.capacity as usize,
            fragment_capacity: cfg.flows.fragment_capacity as usize,
            seed,
        }
    }
}

/// The packet path of one worker. `H` is the packet handle: an mbuf in the appliance, owned bytes
/// in replay and tests.
#[derive(Debug)]
pub struct Pipeline<H> {
    worker: usize,
    policy: Arc<Policy>,
    flows: FlowTable,
    frags: FragTable<(H, Side), Decision>,
    rejects: RateLimit,
    stats: Arc<PipelineStats>,
    answer: Vec<u8>,
    /// A burst's packets between stages...
    staged: Vec<H>,
    /// ...and what stage 1 found out about them (read in place by stage 3, not moved).
    staged_meta: Vec<Staged>,
    /// Stage 1's parses of the packets that are not on [`Path::Fast`], in order.
    staged_full: Vec<Result<Frame, DropReason>>,
    /// This worker's FQDN table (see `crate::fqdn::table`).
    fqdn: Box<FqdnMap>,
    held_dns: VecDeque<HeldDns<H>>,
    next_token: u64,
    /// Fragmented DNS answers being put together.
    reasm: DnsReassembly,
    /// Rules a packet's destination satisfies by name, for the matcher.
    fqdn_ok: Vec<u32>,
    /// Scratch for the names of a DNS message being screened (read as text, not decoded).
    dns_text: Vec<u8>,
    /// The flow the last packet processed belonged to (for logs).
    last_flow: Option<FlowId>,
}

/// How stage 3 of a burst treats a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// The commonest packet (TCP or UDP over IPv4 or IPv6, no options that matter): the fast
    /// path is tried first.
    Fast,
    /// Anything else (DNS included), parsed in stage 1 (the parse is the next one in
    /// `staged_full`), with a flow key.
    Full,
    /// Parsed in stage 1, without a flow key (ARP, later fragments, ICMP errors, malformed).
    FullNoKey,
}

/// What stage 1 of a burst found out about a packet: one cache line, written once and read
/// once per packet (a [`Probe`] is made of it only for packets the fast path does not decide).
#[derive(Debug, Clone, Copy)]
#[repr(align(64))]
struct Staged {
    /// The flow key (meaningless for [`Path::FullNoKey`]).
    key: FlowKey,
    /// Its hash.
    hash: u64,
    /// The slot stage 2 saw the index name for the key, or [`NO_HINT`].
    hint: FlowId,
    /// IP protocol (on [`Path::Fast`]; 0 otherwise, the parse has it). The key holds it too;
    /// reading it from there instead measured 10 instructions more per established packet.
    proto: u8,
    /// TCP flags (on [`Path::Fast`], 0 for UDP; 0 otherwise).
    tcp_flags: u8,
    /// The packet's source is the key's `a` end.
    fwd: bool,
    path: Path,
}

// One cache line: a bigger record costs stage 1 more stores on every packet, and one not
// aligned to a line (the key alone asks for 16 bytes) would straddle two.
const _: () = assert!(std::mem::size_of::<Staged>() == 64 && std::mem::align_of::<Staged>() == 64);

/// [`Staged::hint`] when the index named no slot.
const NO_HINT: FlowId = FlowId::MAX;

impl Staged {
    fn of_probe(probe: Option<Probe>) -> Staged {
        match probe {
            Some(p) => Staged {
                key: p.key,
                hash: p.hash,
                hint: NO_HINT,
                proto: 0,
                tcp_flags: 0,
                fwd: p.fwd,
                path: Path::Full,
            },
            None => Staged {
                key: FlowKey::default(),
                hash: 0,
                hint: NO_HINT,
                proto: 0,
                tcp_flags: 0,
                fwd: false,
                path: Path::FullNoKey,
            },
        }
    }

    #[inline(always)]
    fn hint(&self) -> Option<FlowId> {
        (self.hint != NO_HINT).then_some(self.hint)
    }

    /// The probe of a packet with a key, with what the table answered for it, if it was asked.
    #[inline(always)]
    fn probe(&self, found: Option<Option<FlowId>>) -> Option<Probe> {
        (self.path != Path::FullNoKey).then_some(Probe {
            key: self.key,
            fwd: self.fwd,
            hash: self.hash,
            found,
            hint: self.hint(),
        })
    }
}

/// A packet's flow key and its hash, computed once per packet, and the flow table's answer
/// once it has been asked.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    key: FlowKey,
    fwd: bool,
    hash: u64,
    /// `Some(found)` once the table was searched for the key (expired flows removed).
    found: Option<Option<FlowId>>,
    /// The slot stage 2 of a burst saw the index name for the key, if any: stage 3 checks it
    /// first.
    hint: Option<FlowId>,
}

fn decided_by(rule: Option<u32>) -> DecidedBy {
    rule.map_or(DecidedBy::Default, DecidedBy::Rule)
}

fn is_syn_only(flags: u8) -> bool {
    flags & (tcp::flags::SYN | tcp::flags::ACK | tcp::flags::RST) == tcp::flags::SYN
}

impl<H: AsRef<[u8]>> Pipeline<H> {
    /// A pipeline with `policy`, its tables allocated now.
    pub fn new(cfg: PipelineConfig, policy: Arc<Policy>, stats: Arc<PipelineStats>) -> Self {
        Pipeline {
            worker: cfg.worker,
            rejects: RateLimit::new(policy.reject_rate),
            flows: FlowTable::new(cfg.flow_capacity, cfg.seed),
            frags: FragTable::new(cfg.fragment_capacity, cfg.seed ^ 0x5bd1_e995),
            policy,
            stats,
            answer: Vec::with_capacity(2048),
            staged: Vec::new(),
            staged_meta: Vec::new(),
            staged_full: Vec::new(),
            fqdn: Box::default(),
            held_dns: VecDeque::new(),
            next_token: 0,
            reasm: DnsReassembly::default(),
            fqdn_ok: Vec::new(),
            dns_text: Vec::new(),
            last_flow: None,
        }
    }

    /// Puts a new FQDN table in force and returns the previous one (to hand back to control).
    pub fn set_fqdn(&mut self, table: Box<FqdnMap>) -> Box<FqdnMap> {
        std::mem::replace(&mut self.fqdn, table)
    }

    /// The FQDN table in force.
    pub fn fqdn(&self) -> &FqdnMap {
        &self.fqdn
    }

    /// The learner's answer about a held DNS answer: release it once every worker's table
    /// version is at least `version` (0: at once).
    pub fn resolve_hold(&mut self, token: u64, version: u64) {
        if let Some(h) = self.held_dns.iter_mut().find(|h| h.token == token) {
            h.until = Some(version);
        }
    }

    /// The FQDN name attributed to the flow of the last packet processed, if any.
    pub fn last_attribution(&self) -> Option<&Attribution> {
        self.last_flow
            .and_then(|id| self.flows.get(id).fqdn.as_ref())
    }

    /// The policy in force.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// The flow table (for listings).
    pub fn flows(&self) -> &FlowTable {
        &self.flows
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<PipelineStats> {
        &self.stats
    }

    /// Puts `policy` in force and returns the previous one. Live flows are decided again on
    /// their next packet.
    pub fn set_policy(&mut self, policy: Arc<Policy>) -> Arc<Policy> {
        self.rejects.set_rate(policy.reject_rate);
        std::mem::replace(&mut self.policy, policy)
    }

    /// Housekeeping between bursts: held DNS answers are released once every worker's FQDN
    /// table reached the version they need (`fleet_version`: the smallest version any worker
    /// reads, asked only while answers are held) or their hold timed out; fragments whose
    /// first fragment never came are released as drops; a few flow slots are swept.
    pub fn maintain(&mut self, now: u64, fleet_version: impl FnOnce() -> u64, fx: &mut Effects<H>) {
        if !self.held_dns.is_empty() {
            self.release_holds(now, fleet_version(), fx);
        }
        self.frags
            .expire(now, self.policy.timeouts.fragment, &mut fx.timed_out);
        let g = self.policy.generation;
        for (packet, side) in fx.timed_out.drain(..) {
            self.stats.drops[DropReason::FragmentNoFirst.index()].inc();
            fx.released.push(Released {
                packet,
                side,
                decision: Decision::dropped(DropReason::FragmentNoFirst, g),
            });
        }
        self.stats.fragments_held.set(self.frags.held() as u64);
        let lost = self.reasm.expire(now, self.policy.timeouts.fragment);
        self.stats.dns_reassembly_failed.add(lost as u64);
        let expired = self.flows.sweep(now, &self.policy.timeouts, SWEEP_BUDGET);
        self.stats.flows_expired.add(expired as u64);
        self.stats.flows.set(self.flows.len() as u64);
        self.stats
            .dns_tcp_buffered
            .set(self.flows.dns_buffered() as u64);
    }

    /// Lets every held DNS answer go now, as released packets (when the worker stops: an
    /// answer the policy allowed is never lost).
    pub fn release_all_holds(&mut self, fx: &mut Effects<H>) {
        for h in self.held_dns.drain(..) {
            fx.released.push(Released {
                packet: h.packet,
                side: h.side,
                decision: h.decision,
            });
        }
        self.stats.dns_held.set(0);
    }

    fn release_holds(&mut self, now: u64, fleet_version: u64, fx: &mut Effects<H>) {
        let timeout = self.policy.dns.hold_timeout;
        let mut i = 0;
        while i < self.held_dns.len() {
            let h = &self.held_dns[i];
            let ready = h.until.is_some_and(|v| fleet_version >= v);
            let late = now.saturating_sub(h.since) >= timeout;
            if ready || late {
                if !ready {
                    self.stats.dns_hold_timeouts.inc();
                }
                if let Some(h) = self.held_dns.remove(i) {
                    self.stats
                        .dns_hold_latency
                        .observe(now.saturating_sub(h.since));
                    fx.released.push(Released {
                        packet: h.packet,
                        side: h.side,
                        decision: h.decision,
                    });
                }
            } else {
                i += 1;
            }
        }
        self.stats.dns_held.set(self.held_dns.len() as u64);
    }

    fn drop(&self, pkt: H, reason: DropReason) -> (Disposition<H>, Decision) {
        self.stats.drops[reason.index()].inc();
        (
            Disposition::Drop(pkt),
            Decision::dropped(reason, self.policy.generation),
        )
    }

    fn bridge(&self, pkt: H, neighbour_discovery: bool) -> (Disposition<H>, Decision) {
        if neighbour_discovery {
            self.stats.bridged_nd.inc();
        } else {
            self.stats.bridged_arp.inc();
        }
        (
            Disposition::Pass(pkt),
            Decision {
                verdict: Verdict::Allow,
                reason: Reason::Bridge,
                rule: None,
                generation: self.policy.generation,
            },
        )
    }

    /// Decides the fate of one packet that entered on `side` at time `now` (ns).
    pub fn process(
        &mut self,
        pkt: H,
        side: Side,
        now: u64,
        fx: &mut Effects<H>,
    ) -> (Disposition<H>, Decision) {
        let parsed = packet::parse(pkt.as_ref());
        let probe = match &parsed {
            Ok(Frame::Ip(ip)) => self.probe(ip),
            _ => None,
        };
        self.process_parsed(pkt, &parsed, probe.as_ref(), side, now, fx)
    }

    /// Decides a burst of packets that entered on `side`, in order, handing each packet's fate
    /// to `sink`. Equivalent to calling [`Pipeline::process`] on each in turn; it only works in
    /// stages (parse all, then look up all) so that memory for later packets is fetched while
    /// earlier ones are decided.
    pub fn process_burst<I, F>(
        &mut self,
        pkts: I,
        side: Side,
        now: u64,
        fx: &mut Effects<H>,
        mut sink: F,
    ) where
        I: IntoIterator<Item = H>,
        F: FnMut(Disposition<H>, Decision),
    {
        let mut staged = std::mem::take(&mut self.staged);
        let mut meta = std::mem::take(&mut self.staged_meta);
        let mut full = std::mem::take(&mut self.staged_full);
        staged.clear();
        meta.clear();
        full.clear();
        // Stage 1: parse, make the flow key and its hash, prefetch the flow index line.
        for pkt in pkts {
            let bytes = pkt.as_ref();
            // IPv4 is read from fixed offsets and hashed the IPv4 way (the same key and hash
            // as below, for less work); IPv6 the general fast way.
            let fast = match packet::read_v4(bytes) {
                Some(v) => (v.sport != DNS_PORT && v.dport != DNS_PORT).then(|| {
                    let (key, fwd) = FlowKey::from_v4(v.src, v.dst, v.sport, v.dport, v.proto);
                    (key, fwd, self.flows.hash_v4(&key), v.proto, v.tcp_flags)
                }),
                None => packet::parse_fast(bytes)
                    .and_then(|ip| match ip.l4 {
                        L4::Tcp {
                            sport,
                            dport,
                            flags,
                            ..
                        } => Some((ip, sport, dport, flags)),
                        L4::Udp { sport, dport } => Some((ip, sport, dport, 0)),
                        _ => None,
                    })
                    .filter(|&(_, sport, dport, _)| sport != DNS_PORT && dport != DNS_PORT)
                    .map(|(ip, sport, dport, flags)| {
                        let (key, fwd) =
                            FlowKey::from_bits(ip.src, ip.dst, ip.v6, sport, dport, ip.proto);
                        (key, fwd, self.flows.hash(&key), ip.proto, flags)
                    }),
            };
            if let Some((key, fwd, hash, proto, tcp_flags)) = fast {
                self.flows.prefetch_index(hash);
                meta.push(Staged {
                    key,
                    hash,
                    hint: NO_HINT,
                    proto,
                    tcp_flags,
                    fwd,
                    path: Path::Fast,
                });
            } else {
                meta.push(self.stage_general(bytes, &mut full));
            }
            staged.push(pkt);
        }
        // Stage 2: prefetch the flow slots the index names (or the free slots new flows will
        // take).
        let mut new = 0;
        for m in &mut meta {
            if m.path != Path::FullNoKey {
                let (hint, predicted_new) = self.flows.prefetch_flow(m.hash, new);
                m.hint = hint.unwrap_or(NO_HINT);
                new += usize::from(predicted_new);
            }
        }
        // Stage 3: decide, in order (the stage 1 results are read in place, not moved).
        let mut full_parses = full.iter();
        // The flow of the last packet the fast path decided, if no packet after it went the
        // general way (which sets `last_flow` itself): `last_flow` is written once at the end
        // rather than for every packet.
        let mut last_fast = None;
        for (pkt, m) in staged.drain(..).zip(meta.iter()) {
            let (disp, decision) = match m.path {
                Path::Fast => {
                    let len = pkt.as_ref().len() as u64;
                    match self.fast_established(m, len, now) {
                        Ok((d, id)) => {
                            last_fast = Some(id);
                            (Disposition::Pass(pkt), d)
                        }
                        Err(found) => {
                            last_fast = None;
                            self.fast_missed(pkt, m, found, side, now, fx)
                        }
                    }
                }
                Path::Full | Path::FullNoKey => {
                    last_fast = None;
                    self.staged_parsed(pkt, m, full_parses.next(), side, now, fx)
                }
            };
            sink(disp, decision);
        }
        if last_fast.is_some() {
            self.last_flow = last_fast;
        }
        self.staged = staged;
        self.staged_meta = meta;
        self.staged_full = full;
    }

    /// Stage 1 for a packet the fast path does not take: DNS, which the general path reads
    /// (read the fast way again, which costs less than parse and gives the same), and what the
    /// fast reader does not read. Its parse goes to `full`. Out of line, for the same reason as
    /// [`Pipeline::fast_missed`].
    #[inline(never)]
    fn stage_general(&self, bytes: &[u8], full: &mut Vec<Result<Frame, DropReason>>) -> Staged {
        let parsed =
            packet::parse_fast(bytes).map_or_else(|| packet::parse(bytes), |ip| Ok(Frame::Ip(ip)));
        let probe = match &parsed {
            Ok(Frame::Ip(ip)) => self.probe(ip),
            _ => None,
        };
        if let Some(p) = &probe {
            self.flows.prefetch_index(p.hash);
        }
        full.push(parsed);
        Staged::of_probe(probe)
    }

    /// Stage 3 for a fast-path packet the fast path did not decide: the general path, which
    /// reuses the lookup just made (and reads the packet the fast way again rather than parse
    /// it in full). Out of line, like [`Pipeline::staged_parsed`], so that the loop of the
    /// fast path keeps its registers.
    #[inline(never)]
    fn fast_missed(
        &mut self,
        pkt: H,
        m: &Staged,
        found: Option<FlowId>,
        side: Side,
        now: u64,
        fx: &mut Effects<H>,
    ) -> (Disposition<H>, Decision) {
        // As in `stage_general` (written out in both: a shared helper, inlined just the same,
        // measured 25 instructions more on a new flow's first packet).
        let parsed = packet::parse_fast(pkt.as_ref())
            .map_or_else(|| packet::parse(pkt.as_ref()), |ip| Ok(Frame::Ip(ip)));
        let probe = m.probe(Some(found));
        self.process_parsed(pkt, &parsed, probe.as_ref(), side, now, fx)
    }

    /// Stage 3 for a packet stage 1 parsed in full (`parsed`: its parse).
    #[inline(never)]
    fn staged_parsed(
        &mut self,
        pkt: H,
        m: &Staged,
        parsed: Option<&Result<Frame, DropReason>>,
        side: Side,
        now: u64,
        fx: &mut Effects<H>,
    ) -> (Disposition<H>, Decision) {
        let probe = m.probe(None);
        match parsed {
            Some(parsed) => self.process_parsed(pkt, parsed, probe.as_ref(), side, now, fx),
            // Stage 1 pushed one parse per such packet; parse again rather than trust it.
            None => {
                let parsed = packet::parse(pkt.as_ref());
                self.process_parsed(pkt, &parsed, probe.as_ref(), side, now, fx)
            }
        }
    }

    #[inline(always)]
    fn process_parsed(
        &mut self,
        pkt: H,
        parsed: &Result<Frame, DropReason>,
        probe: Option<&Probe>,
        side: Side,
        now: u64,
        fx: &mut Effects<H>,
    ) -> (Disposition<H>, Decision) {
        self.last_flow = None;
        let ip = match parsed {
            Ok(Frame::Ip(ip)) => ip,
            Ok(Frame::Arp) => return self.bridge(pkt, false),
            Err(reason) => return self.drop(pkt, *reason),
        };
        if let L4::Icmp { ty, .. } = ip.l4 {
            if ip.proto == proto::ICMPV6 && icmp::v6::is_neighbour_discovery(ty) {
                return self.bridge(pkt, true);
            }
        }
        match ip.frag {
            Some(f) if !f.is_first() => {
                let key = datagram_key(ip, f.ident);
                let (disp, decision) = self.later_fragment(key, pkt, side, now);
                match disp {
                    Disposition::Pass(p) if self.reasm.tracks(&key) => {
                        let s = self.reassemble(&key, p.as_ref(), ip, fx);
                        let decision = screened_reason(decision, s);
                        self.hold_if(s == Screened::Learnable, p, side, decision, now, fx)
                    }
                    disp => (disp, decision),
                }
            }
            Some(f) => {
                let key = datagram_key(ip, f.ident);
                let len = pkt.as_ref().len() as u64;
                let (disp, decision, flow) = self.classify(pkt, side, ip, probe, len, now, fx);
                self.last_flow = flow;
                // A fragmented DNS answer: collect it (with the fragments that came first).
                let dns_answer = matches!(
                    ip.l4,
                    L4::Udp {
                        sport: DNS_PORT,
                        ..
                    }
                );
                let mut screened = Screened::Ignored;
                let flow = flow.map(|id| self.flows.flow_ref(id));
                if let (Disposition::Pass(p), Some(flow), true) = (&disp, flow, dns_answer) {
                    if self.reasm.start(key, flow, now).is_ok() {
                        screened = self.reassemble(&key, p.as_ref(), ip, fx);
                    } else {
                        self.stats.dns_reassembly_failed.inc();
                    }
                }
                let handed = self.first_fragment(key, decision, flow, now, fx)
                    | (screened == Screened::Learnable);
                let decision = screened_reason(decision, screened);
                match disp {
                    Disposition::Pass(p) => self.hold_if(handed, p, side, decision, now, fx),
                    disp => (disp, decision),
                }
            }
            None => {
                let len = pkt.as_ref().len() as u64;
                let (disp, decision, flow) = self.classify(pkt, side, ip, probe, len, now, fx);
                self.last_flow = flow;
                match (disp, flow) {
                    (Disposition::Pass(pkt), Some(id)) if is_dns(ip) => {
                        self.snoop(pkt, side, ip, id, decision, now, fx)
                    }
                    (disp, _) => (disp, decision),
                }
            }
        }
    }

    /// Records a first fragment's decision and releases the later fragments that waited for
    /// it. Returns whether they completed a DNS answer that was handed to the learner.
    fn first_fragment(
        &mut self,
        key: DatagramKey,
        decision: Decision,
        flow: Option<FlowRef>,
        now: u64,
        fx: &mut Effects<H>,
    ) -> bool {
        let (held, _) = self.frags.first(key, FirstVerdict { decision, flow }, now);
        let mut handed = false;
        for (packet, side) in held {
            let mut d = self.follow(decision, flow, packet.as_ref().len() as u64, now);
            if d.verdict == Verdict::Allow && self.reasm.tracks(&key) {
                if let Ok(Frame::Ip(ip)) = packet::parse(packet.as_ref()) {
                    let s = self.reassemble(&key, packet.as_ref(), &ip, fx);
                    handed |= s == Screened::Learnable;
                    d = screened_reason(d, s);
                }
            }
            fx.released.push(Released {
                packet,
                side,
                decision: d,
            });
        }
        handed
    }

    fn later_fragment(
        &mut self,
        key: DatagramKey,
        pkt: H,
        side: Side,
        now: u64,
    ) -> (Disposition<H>, Decision) {
        match self.frags.later(key, (pkt, side), now) {
            Later::Follow((pkt, _), first) => {
                let d = self.follow(first.decision, first.flow, pkt.as_ref().len() as u64, now);
                let disp = if d.verdict == Verdict::Allow {
                    Disposition::Pass(pkt)
                } else {
                    Disposition::Drop(pkt)
                };
                (disp, d)
            }
            Later::Held => (
                Disposition::Held,
                Decision {
                    verdict: Verdict::Drop,
                    reason: Reason::Fragment,
                    rule: None,
                    generation: self.policy.generation,
                },
            ),
            Later::TableFull((pkt, _)) => self.drop(pkt, DropReason::FragmentTableFull),
        }
    }

    /// The decision of a later fragment whose first fragment decided `first`.
    fn follow(&mut self, first: Decision, flow: Option<FlowRef>, len: u64, now: u64) -> Decision {
        // The rule (or default) that decided the first fragment counts the rest of the
        // datagram (while its policy is in force: a reload renumbers the rules); a first
        // fragment dropped for another reason (no flow, malformed, ...) counts for none.
        if first.generation == self.policy.generation && !matches!(first.reason, Reason::Dropped(_))
        {
            self.count_rule(decided_by(first.rule), len);
        }
        if first.verdict == Verdict::Allow {
            // The flow, if it still lives (its slot may have gone to another flow since).
            if let Some(id) = flow.and_then(|r| self.flows.resolve(r)) {
                let f = self.flows.get_mut(id);
                f.packets += 1;
                f.bytes += len;
                f.last_seen = f.last_seen.max(now);
            }
        } else {
            self.stats.drops[drop_reason(first).index()].inc();
        }
        Decision {
            // A later fragment is never answered: only the first fragment was.
            verdict: if first.verdict == Verdict::Allow {
                Verdict::Allow
            } else {
                Verdict::Drop
            },
            reason: Reason::Fragment,
            rule: first.rule,
            generation: first.generation,
        }
    }

    /// The flow key of a packet that belongs to a flow of its own (TCP, UDP, ICMP echo, other
    /// protocols; first fragments included), with its hash; `None` for later fragments, ICMP
    /// errors and other ICMP messages.
    #[inline(always)]
    pub fn probe(&self, ip: &IpPacket) -> Option<Probe> {
        let (sport, dport) = match ip.l4 {
            L4::Tcp { sport, dport, .. } | L4::Udp { sport, dport } => (sport, dport),
            L4::Icmp { ty, ident, .. } => {
                let echo = if ip.proto == proto::ICMPV6 {
                    ty == icmp::v6::ECHO_REQUEST || ty == icmp::v6::ECHO_REPLY
                } else {
                    ty == icmp::v4::ECHO_REQUEST || ty == icmp::v4::ECHO_REPLY
                };
                if !echo {
                    return None;
                }
                (ident, ident)
            }
            L4::Other => (0, 0),
            L4::Fragment => return None,
        };
        let (key, fwd) = FlowKey::from_bits(ip.src, ip.dst, ip.v6, sport, dport, ip.proto);
        Some(Probe {
            key,
            fwd,
            hash: self.flows.hash(&key),
            found: None,
            hint: None,
        })
    }

    /// Flow lookup and, for a packet that may open a flow, the rules.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn classify(
        &mut self,
        pkt: H,
        side: Side,
        ip: &IpPacket,
        probe: Option<&Probe>,
        len: u64,
        now: u64,
        fx: &mut Effects<H>,
    ) -> (Disposition<H>, Decision, Option<FlowId>) {
        let Some(probe) = probe else {
            return match ip.l4 {
                L4::Icmp { ty, .. } => {
                    let v6 = ip.proto == proto::ICMPV6;
                    if (v6 && icmp::v6::is_error(ty)) || (!v6 && icmp::v4::is_error(ty)) {
                        // An error goes back to the sender of the packet it quotes: one addressed
                        // to anybody else relates to no flow of theirs.
                        let quoted = packet::quoted(pkt.as_ref(), ip).filter(|q| q.src == ip.dst);
                        self.icmp_error(pkt, quoted, len, now)
                    } else {
                        // Other informational messages are decided one by one, without a flow.
                        let t = self.tuple(side, ip, 0, 0, ty);
                        let (verdict, rule, _) = self.decide(&t, now, None);
                        self.apply_stateless(pkt, ip, side, verdict, rule, len, now, fx)
                    }
                }
                _ => {
                    let (d, dec) = self.drop(pkt, DropReason::NoFlow);
                    (d, dec, None)
                }
            };
        };
        let found = match probe.found {
            Some(found) => found,
            None => self.flows.lookup_hinted(
                &probe.key,
                probe.hash,
                probe.hint,
                now,
                &self.policy.timeouts,
            ),
        };
        let state = match ip.l4 {
            L4::Tcp { flags, .. } => {
                if let Some(id) = found {
                    let closed = matches!(
                        self.flows.get(id).state,
                        FlowState::Closed | FlowState::TimeWait
                    );
                    if !(closed && is_syn_only(flags)) {
                        return self.established(pkt, ip, id, probe.fwd, len, now);
                    }
                    // A new connection on a closed flow's ports: decide it afresh.
                    self.flows.remove(id);
                }
                if is_syn_only(flags) {
                    FlowState::SynSent
                } else if self.policy.tcp_midstream && flags & tcp::flags::RST == 0 {
                    FlowState::Established
                } else {
                    let (d, dec) = self.drop(pkt, DropReason::NoFlow);
                    return (d, dec, None);
                }
            }
            L4::Icmp { ty, .. } => {
                if let Some(id) = found {
                    return self.established(pkt, ip, id, probe.fwd, len, now);
                }
                if ty == icmp::v4::ECHO_REPLY || ty == icmp::v6::ECHO_REPLY {
                    let (d, dec) = self.drop(pkt, DropReason::NoFlow);
                    return (d, dec, None);
                }
                FlowState::Active
            }
            _ => {
                if let Some(id) = found {
                    return self.established(pkt, ip, id, probe.fwd, len, now);
                }
                FlowState::Active
            }
        };
        self.new_flow(pkt, side, ip, probe, state, len, now, fx)
    }

    fn tuple(&self, side: Side, ip: &IpPacket, sport: u16, dport: u16, icmp_type: u8) -> Tuple {
        Tuple {
            side,
            proto: ip.proto,
            src: ip.src_ip(),
            dst: ip.dst_ip(),
            sport,
            dport,
            icmp_type,
        }
    }

    /// The rules' verdict for a flow's first packet at `now`, and the name that let an FQDN
    /// rule match. `kept` is the entry a live flow was attributed to, which keeps counting for
    /// it when it is decided again (an expired address stays valid for the flows using it).
    fn decide(
        &mut self,
        t: &Tuple,
        now: u64,
        kept: Option<&Attribution>,
    ) -> (Verdict, Option<u32>, Option<Attribution>) {
        let mut entries: [Option<Arc<IpEntry>>; 2] = [None, None];
        self.fqdn_ok.clear();
        if !self.policy.names.is_empty() {
            entries[0] = self
                .fqdn
                .get(&IpKey::new(t.dst))
                .filter(|e| e.expires > now)
                .cloned();
            entries[1] = kept.map(|a| Arc::clone(a.entry()));
            for e in entries.iter().flatten() {
                if e.generation == self.policy.generation {
                    self.fqdn_ok.extend_from_slice(&e.rules);
                } else {
                    for n in e.names.iter() {
                        self.policy.names.matches_into(n, &mut self.fqdn_ok);
                    }
                }
            }
            // Rules that match by name only through SNI or Host wait for the L7 classifier.
            let rules = &self.policy.rules;
            self.fqdn_ok.retain(|&r| {
                rules
                    .get(r as usize)
                    .is_some_and(|r| r.fqdn_match == config::FqdnMatch::Dns)
            });
            self.fqdn_ok.sort_unstable();
            self.fqdn_ok.dedup();
        }
        let Some(i) = self.policy.matcher.first_match(t, &self.fqdn_ok) else {
            return (self.policy.default, None, None);
        };
        let Some(rule) = self.policy.rules.get(i as usize) else {
            return (Verdict::Drop, Some(i), None);
        };
        let attribution = if rule.has_fqdn {
            entries.into_iter().flatten().find_map(|e| {
                let at = e
                    .names
                    .iter()
                    .position(|n| self.policy.names.rule_matches(n, i))?;
                Attribution::new(e, at)
            })
        } else {
            None
        };
        (rule.action, Some(i), attribution)
    }

    fn decision(&self, verdict: Verdict, rule: Option<u32>) -> Decision {
        Decision {
            verdict,
            reason: if rule.is_some() {
                Reason::Rule
            } else {
                Reason::Default
            },
            rule,
            generation: self.policy.generation,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn new_flow(
        &mut self,
        pkt: H,
        side: Side,
        ip: &IpPacket,
        probe: &Probe,
        state: FlowState,
        len: u64,
        now: u64,
        fx: &mut Effects<H>,
    ) -> (Disposition<H>, Decision, Option<FlowId>) {
        let (sport, dport, icmp_type) = match ip.l4 {
            L4::Tcp { sport, dport, .. } | L4::Udp { sport, dport } => (sport, dport, 0),
            L4::Icmp { ty, .. } => (0, 0, ty),
            _ => (0, 0, 0),
        };
        let t = self.tuple(side, ip, sport, dport, icmp_type);
        let (verdict, rule, attribution) = self.decide(&t, now, None);
        if verdict != Verdict::Allow {
            return self.apply_stateless(pkt, ip, side, verdict, rule, len, now, fx);
        }
        let Ok(id) = self
            .flows
            .insert_hashed(probe.key, probe.hash, probe.fwd, side, state, now)
        else {
            let (d, dec) = self.drop(pkt, DropReason::FlowTableFull);
            return (d, dec, None);
        };
        let generation = self.policy.generation;
        let by = decided_by(rule);
        let f = self.flows.get_mut(id);
        f.icmp_type = icmp_type;
        f.decided_by = by;
        f.generation = generation;
        f.packets = 1;
        f.bytes = len;
        if attribution.is_some() {
            self.stats.fqdn_flows.inc();
        }
        f.fqdn = attribution;
        self.stats.flows_created.inc();
        self.count_rule(by, len);
        (
            Disposition::Pass(pkt),
            self.decision(Verdict::Allow, rule),
            Some(id),
        )
    }

    /// A drop or reject decided by the rules without creating a flow.
    #[allow(clippy::too_many_arguments)]
    fn apply_stateless(
        &mut self,
        pkt: H,
        ip: &IpPacket,
        side: Side,
        verdict: Verdict,
        rule: Option<u32>,
        len: u64,
        now: u64,
        fx: &mut Effects<H>,
    ) -> (Disposition<H>, Decision, Option<FlowId>) {
        self.count_rule(decided_by(rule), len);
        let dec = self.decision(verdict, rule);
        if verdict == Verdict::Allow {
            return (Disposition::Pass(pkt), dec, None);
        }
        self.stats.drops[drop_reason(dec).index()].inc();
        if verdict == Verdict::Reject {
            self.answer.clear();
            if reject::answer(pkt.as_ref(), ip, &mut self.answer) {
                if self.rejects.allow(now) {
                    self.stats.rejects_sent.inc();
                    fx.generated.push(Generated {
                        side,
                        frame: self.answer.clone(),
                    });
                } else {
                    self.stats.rejects_rate_limited.inc();
                }
            }
        }
        (Disposition::Drop(pkt), dec, None)
    }

    #[inline(always)]
    fn count_rule(&self, by: DecidedBy, len: u64) {
        if let Some(c) = self.policy.counters.get(self.worker) {
            c.count(by, len);
        }
    }

    /// The fast path: an ordinary packet (no SYN, FIN or RST) of an established flow decided
    /// under the current policy. For anything else it returns what the flow table holds for the
    /// key, for the general path to decide with; where it returns a decision it is the one the
    /// general path would have made.
    #[inline(always)]
    fn fast_established(
        &mut self,
        m: &Staged,
        len: u64,
        now: u64,
    ) -> Result<(Decision, FlowId), Option<FlowId>> {
        use tcp::flags::{FIN, RST, SYN};
        let generation = self.policy.generation;
        let Some(id) = self.flows.find_hinted(&m.key, m.hash, m.hint) else {
            return Err(None);
        };
        let t = &self.policy.timeouts;
        let flow = self.flows.get_mut(id);
        let tcp = m.proto == proto::TCP;
        if flow.generation != generation
            || (tcp
                && (m.tcp_flags & (SYN | FIN | RST) != 0 || flow.state != FlowState::Established))
        {
            return Err(self.flows.unless_expired(id, now, t));
        }
        if now.saturating_sub(flow.last_seen) > t.of_fast(tcp) {
            self.flows.remove(id);
            return Err(None);
        }
        flow.last_seen = now;
        flow.packets += 1;
        flow.bytes += len;
        let by = flow.decided_by;
        self.count_rule(by, len);
        Ok((
            Decision {
                verdict: Verdict::Allow,
                reason: Reason::Established,
                rule: by.rule(),
                generation,
            },
            id,
        ))
    }

    /// A packet of live flow `id`; `fwd`: the packet's source is the key's `a` end.
    #[inline(always)]
    fn established(
        &mut self,
        pkt: H,
        ip: &IpPacket,
        id: FlowId,
        fwd: bool,
        len: u64,
        now: u64,
    ) -> (Disposition<H>, Decision, Option<FlowId>) {
        let generation = self.policy.generation;
        let redecided = self.flows.get(id).generation != generation;
        if redecided {
            if let Some(refused) = self.redecide_or_refuse(id, now) {
                return (Disposition::Drop(pkt), refused, None);
            }
        }
        let f = self.flows.get_mut(id);
        f.last_seen = now;
        f.packets += 1;
        f.bytes += len;
        if let L4::Tcp { flags, .. } = ip.l4 {
            let from_init = fwd == f.init_is_a;
            f.state = next_tcp_state(f.state, flags, from_init, &mut f.fins, fwd);
        }
        let by = f.decided_by;
        self.count_rule(by, len);
        let rule = by.rule();
        let decision = if redecided {
            // Decided again under the new policy: by a rule or the default, as a new flow.
            self.decision(Verdict::Allow, rule)
        } else {
            Decision {
                verdict: Verdict::Allow,
                reason: Reason::Established,
                rule,
                generation,
            }
        };
        (Disposition::Pass(pkt), decision, Some(id))
    }

    /// Reads the DNS messages of a packet that passes on DNS flow `id`: queries are remembered,
    /// answers screened, and those worth learning handed over (the packet held until every
    /// worker can see what they teach, when `hold_responses` is on).
    #[allow(clippy::too_many_arguments)]
    fn snoop(
        &mut self,
        pkt: H,
        side: Side,
        ip: &IpPacket,
        id: FlowId,
        decision: Decision,
        now: u64,
        fx: &mut Effects<H>,
    ) -> (Disposition<H>, Decision) {
        let frame = pkt.as_ref();
        let start = usize::from(ip.l4_offset);
        let end = usize::from(ip.ip_end).min(frame.len());
        // Towards the server: to port 53, or, between two ports 53 (a resolver sending its
        // queries from port 53), from the side that opened the flow.
        let to_server = |sport: u16, dport: u16| {
            if sport == DNS_PORT && dport == DNS_PORT {
                self.flows.get(id).initiator() == (ip.src_ip(), sport)
            } else {
                dport == DNS_PORT
            }
        };
        let (to_server, payload, seq) = match ip.l4 {
            L4::Udp { sport, dport } => (to_server(sport, dport), frame.get(start + 8..end), None),
            L4::Tcp {
                sport,
                dport,
                seq,
                flags,
                ..
            } => {
                let hl = frame.get(start + 12).map_or(0, |b| usize::from(b >> 4) * 4);
                // Data on a SYN (TCP Fast Open) starts after the SYN's own sequence number.
                let seq = seq.wrapping_add(u32::from(flags & tcp::flags::SYN != 0));
                (
                    to_server(sport, dport),
                    frame.get(start + hl..end),
                    Some(seq),
                )
            }
            _ => (false, None, None),
        };
        let Some(payload) = payload else {
            return (Disposition::Pass(pkt), decision);
        };
        let src = ip.src_ip();
        let (handed, no_query) = match seq {
            None => {
                let s = self.screen(id, to_server, src, payload, fx);
                (s == Screened::Learnable, s == Screened::NoQuery)
            }
            Some(seq) => {
                // DNS over TCP: the segment may complete any number of messages, each screened
                // where it lies in the stream's buffer.
                let (policy, stats, text) = (&self.policy, &self.stats, &mut self.dns_text);
                let (mut handed, mut no_query) = (false, false);
                let read =
                    self.flows.dns_tcp(
                        id,
                        to_server,
                        seq,
                        payload,
                        |queries, msg| match screen_one(
                            queries, policy, stats, msg, to_server, src, text, fx,
                        ) {
                            Screened::Learnable => handed = true,
                            Screened::NoQuery => no_query = true,
                            _ => {}
                        },
                    );
                if read.is_err() {
                    stats.dns_tcp_broken.inc();
                }
                stats.dns_tcp_buffered.set(self.flows.dns_buffered() as u64);
                (handed, no_query)
            }
        };
        // An answer that matches no query passes with its flow, never learned, and says so (a
        // segment that also taught something keeps its reason).
        let decision = if no_query && !handed {
            screened_reason(decision, Screened::NoQuery)
        } else {
            decision
        };
        self.hold_if(handed, pkt, side, decision, now, fx)
    }

    /// Screens one DNS message seen on flow `id` (over UDP): what it was (a learnable answer
    /// was handed to the learner).
    fn screen(
        &mut self,
        id: FlowId,
        to_server: bool,
        src: IpAddr,
        msg: &[u8],
        fx: &mut Effects<H>,
    ) -> Screened {
        let (policy, stats, text) = (&self.policy, &self.stats, &mut self.dns_text);
        let dns = self.flows.get_mut(id).dns.get_or_insert_with(Box::default);
        screen_one(dns.queries(), policy, stats, msg, to_server, src, text, fx)
    }

    /// Holds a packet that carried answers just handed over (when `hold_responses` is on),
    /// or lets it pass.
    fn hold_if(
        &mut self,
        handed: bool,
        pkt: H,
        side: Side,
        decision: Decision,
        now: u64,
        fx: &mut Effects<H>,
    ) -> (Disposition<H>, Decision) {
        if !handed || !self.policy.dns.hold {
            return (Disposition::Pass(pkt), decision);
        }
        if self.held_dns.len() >= MAX_HELD_DNS {
            self.stats.dns_hold_overflow.inc();
            return (Disposition::Pass(pkt), decision);
        }
        self.next_token += 1;
        let token = self.next_token;
        if let Some(h) = fx.dns.last_mut() {
            h.hold = Some(token);
        }
        self.held_dns.push_back(HeldDns {
            token,
            packet: pkt,
            side,
            decision,
            since: now,
            until: None,
        });
        self.stats.dns_held.set(self.held_dns.len() as u64);
        (Disposition::Held, decision)
    }

    /// Feeds a fragment of a DNS answer being reassembled; when it completes the datagram, the
    /// answer is screened. Returns what it was ([`Screened::Ignored`] while incomplete, or
    /// given up).
    fn reassemble(
        &mut self,
        key: &DatagramKey,
        frame: &[u8],
        ip: &IpPacket,
        fx: &mut Effects<H>,
    ) -> Screened {
        let (Some(f), Some(data)) = (
            ip.frag,
            frame.get(usize::from(ip.l4_offset)..usize::from(ip.ip_end)),
        ) else {
            return Screened::Ignored;
        };
        match self.reasm.add(key, usize::from(f.offset), f.more, data) {
            Ok(Some((flow, whole))) => {
                // Screened against its own flow's queries, if that flow still lives.
                let Some(id) = self.flows.resolve(flow) else {
                    self.stats.dns_reassembly_failed.inc();
                    return Screened::Ignored;
                };
                // The UDP header, then the DNS message up to the UDP length.
                let len = whole
                    .get(4..6)
                    .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])));
                let msg = whole.get(8..len.min(whole.len())).unwrap_or(&[]);
                self.screen(id, false, ip.src_ip(), msg, fx)
            }
            Ok(None) => Screened::Ignored,
            Err(_) => {
                self.stats.dns_reassembly_failed.inc();
                Screened::Ignored
            }
        }
    }

    /// Decides live flow `id` (decided under an older policy) again. Returns the drop (counted)
    /// if the policy in force refuses it: the flow is then removed, and its packet dropped,
    /// never answered.
    fn redecide_or_refuse(&mut self, id: FlowId, now: u64) -> Option<Decision> {
        let refused = self.redecide(id, now)?;
        self.stats.drops[drop_reason(refused).index()].inc();
        Some(Decision {
            verdict: Verdict::Drop,
            ..refused
        })
    }

    /// Decides live flow `id` again under the current policy. Returns the decision if the flow is
    /// no longer allowed (it is then removed).
    fn redecide(&mut self, id: FlowId, now: u64) -> Option<Decision> {
        // The flow gets the attribution decided now, or goes: its old one is only an input.
        let kept = self.flows.get_mut(id).fqdn.take();
        let f = self.flows.get(id);
        let ((src, sport), (dst, dport)) = (f.initiator(), f.responder());
        let icmp = matches!(f.key.proto(), proto::ICMP | proto::ICMPV6);
        let t = Tuple {
            side: f.init_side,
            proto: f.key.proto(),
            src,
            dst,
            sport: if icmp { 0 } else { sport },
            dport: if icmp { 0 } else { dport },
            icmp_type: f.icmp_type,
        };
        let (verdict, rule, attribution) = self.decide(&t, now, kept.as_ref());
        self.stats.flows_redecided.inc();
        if verdict == Verdict::Allow {
            let generation = self.policy.generation;
            let f = self.flows.get_mut(id);
            f.decided_by = decided_by(rule);
            f.generation = generation;
            f.fqdn = attribution;
            None
        } else {
            self.flows.remove(id);
            Some(self.decision(verdict, rule))
        }
    }

    fn icmp_error(
        &mut self,
        pkt: H,
        quoted: Option<IpPacket>,
        len: u64,
        now: u64,
    ) -> (Disposition<H>, Decision, Option<FlowId>) {
        let timeouts = self.policy.timeouts;
        let id = quoted.and_then(|q| {
            let (sport, dport) = match q.l4 {
                L4::Tcp { sport, dport, .. } | L4::Udp { sport, dport } => (sport, dport),
                L4::Icmp { ident, .. } => (ident, ident),
                _ => (0, 0),
            };
            let (key, _) = FlowKey::from_bits(q.src, q.dst, q.v6, sport, dport, q.proto);
            self.flows.lookup(&key, now, &timeouts)
        });
        let Some(id) = id else {
            let (d, dec) = self.drop(pkt, DropReason::IcmpErrorNoFlow);
            return (d, dec, None);
        };
        // A related error passes if the flow does (under the policy in force), without
        // refreshing the flow's idle timer.
        if self.flows.get(id).generation != self.policy.generation {
            if let Some(refused) = self.redecide_or_refuse(id, now) {
                return (Disposition::Drop(pkt), refused, None);
            }
        }
        let f = self.flows.get_mut(id);
        f.packets += 1;
        f.bytes += len;
        let by = f.decided_by;
        self.count_rule(by, len);
        let rule = by.rule();
        (
            Disposition::Pass(pkt),
            Decision {
                verdict: Verdict::Allow,
                reason: Reason::Related,
                rule,
                generation: self.policy.generation,
            },
            Some(id),
        )
    }
}

/// The decision of a packet that carried a DNS message screened as `s`: an answer that pairs
/// with no query passes with its flow, never learned, logged `no-query`.
fn screened_reason(d: Decision, s: Screened) -> Decision {
    if s == Screened::NoQuery && d.verdict == Verdict::Allow {
        Decision {
            reason: Reason::NoQuery,
            ..d
        }
    } else {
        d
    }
}

/// The key of the datagram a fragment belongs to. IPv6 names a datagram by its addresses and
/// identification only (RFC 8200): the protocol a fragment shows is the first fragment's
/// transport but a later one's next header after the Fragment header (which differs when
/// an AH or Destination Options header follows it).
fn datagram_key(ip: &IpPacket, ident: u32) -> DatagramKey {
    let proto = if ip.v6 { 0 } else { ip.proto };
    DatagramKey::new(ip.src, ip.dst, proto, ident)
}

/// The DNS port: flows to or from it are snooped.
const DNS_PORT: u16 = 53;

/// Screens one DNS message of a flow whose outstanding queries are `queries`, counting what
/// it is; an answer worth learning is copied into `fx.dns` for the learner. Returns what it
/// was.
#[allow(clippy::too_many_arguments)]
fn screen_one<H>(
    queries: &mut snoop::Queries,
    policy: &Policy,
    stats: &PipelineStats,
    msg: &[u8],
    to_server: bool,
    src: IpAddr,
    text: &mut Vec<u8>,
    fx: &mut Effects<H>,
) -> Screened {
    let s = snoop::screen(
        queries,
        &policy.dns,
        &policy.names,
        msg,
        to_server,
        src,
        text,
    );
    match s {
        Screened::Query => stats.dns_queries.inc(),
        Screened::Learnable => {
            stats.dns_handed.inc();
            fx.dns.push(DnsHandoff {
                message: msg.to_vec(),
                hold: None,
            });
        }
        Screened::NoQuery => stats.dns_answers[AnswerResult::NoQuery.index()].inc(),
        Screened::Untrusted => stats.dns_answers[AnswerResult::Untrusted.index()].inc(),
        Screened::Malformed => stats.dns_answers[AnswerResult::Malformed.index()].inc(),
        Screened::NoMatch => stats.dns_answers[AnswerResult::NoMatch.index()].inc(),
        Screened::Ignored => {}
    }
    s
}

/// Whether a packet is DNS over UDP or TCP.
fn is_dns(ip: &IpPacket) -> bool {
    matches!(ip.l4, L4::Udp { sport, dport } | L4::Tcp { sport, dport, .. } if sport == DNS_PORT || dport == DNS_PORT)
}

/// The drop counter a dropped decision belongs to.
fn drop_reason(d: Decision) -> DropReason {
    match d.reason {
        Reason::Dropped(r) => r,
        _ if d.rule.is_some() => DropReason::Rule,
        _ => DropReason::Default,
    }
}

/// The TCP state after a packet with `flags`; `from_init` says whether it comes from the
/// initiator, `from_a` whether from the key's `a` end (FIN bookkeeping).
fn next_tcp_state(
    state: FlowState,
    flags: u8,
    from_init: bool,
    fins: &mut u8,
    from_a: bool,
) -> FlowState {
    use tcp::flags::{ACK, FIN, RST, SYN};
    if flags & RST != 0 {
        return FlowState::Closed;
    }
    if flags & FIN != 0 {
        *fins |= if from_a { 1 } else { 2 };
    }
    match state {
        FlowState::SynSent if !from_init && flags & (SYN | ACK) == SYN | ACK => {
            FlowState::SynReceived
        }
        // The handshake's last ACK may carry a FIN (data and FIN together): closing at once.
        FlowState::SynReceived if from_init && flags & (SYN | ACK) == ACK => match *fins {
            0 => FlowState::Established,
            3 => FlowState::TimeWait,
            _ => FlowState::Closing,
        },
        FlowState::SynSent | FlowState::SynReceived => state,
        _ if *fins == 3 => FlowState::TimeWait,
        _ if *fins != 0 => FlowState::Closing,
        other => other,
    }
}
