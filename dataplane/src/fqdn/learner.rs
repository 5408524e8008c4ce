//! The DNS learner: turns validated DNS answers into name -> address bindings, expires them,
//! bounds them, and publishes the resulting per-worker tables (see [`super::table`]).
//!
//! It runs on the control thread (or inline in `replay`). Workers have already checked that an
//! answer matches a query they saw on its flow and comes from a trusted server; the learner
//! reads the whole answer:
//!
//! - the CNAME chain is followed from the question name (at most `max_cname_chain` links, no
//!   name twice); an address (A, AAAA, or an HTTPS/SVCB `ipv4hint`/`ipv6hint`) owned by a chain
//!   name is bound to that name and to every name before it in the chain;
//! - only names that match some rule's `dst_fqdn` pattern are bound, which bounds memory under
//!   floods of unique names;
//! - a binding lives for the smallest TTL along its chain, clamped to `[min_ttl, max_ttl]`;
//! - at most `max_ips_per_name` addresses per name (the oldest binding goes), `max_names` names
//!   and `max_ips` addresses in all (beyond, new ones are refused); each eviction or refusal is
//!   counted by reason.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::ops::Range;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::counter::{Counter, Gauge};
use crate::dns::message::{DataText, DnsError, Message};
use crate::dns::name::{text_bytes, text_str};
use crate::fqdn::table::{EntryRules, FqdnMap, IpEntry, IpKey, Op, Replica};
use crate::fqdn::wheel::Wheel;
use crate::policy::Policy;

const NANOS: u64 = 1_000_000_000;

/// The bounds of `[dns]`, in the learner's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Shortest binding lifetime (ns).
    pub min_ttl: u64,
    /// Longest binding lifetime (ns).
    pub max_ttl: u64,
    /// Addresses per name.
    pub max_ips_per_name: usize,
    /// Names in all.
    pub max_names: usize,
    /// Addresses in all.
    pub max_ips: usize,
    /// CNAME links followed.
    pub max_cname_chain: usize,
}

impl Limits {
    /// From the `[dns]` section.
    pub fn from_config(d: &config::Dns) -> Self {
        let ns = |x: std::time::Duration| u64::try_from(x.as_nanos()).unwrap_or(u64::MAX);
        Limits {
            min_ttl: ns(d.min_ttl),
            max_ttl: ns(d.max_ttl),
            max_ips_per_name: d.max_ips_per_name as usize,
            max_names: d.max_names as usize,
            max_ips: d.max_ips as usize,
            max_cname_chain: d.max_cname_chain as usize,
        }
    }

    /// The longest a binding may live (ns): `max_ttl`, or `min_ttl` if that is longer.
    pub fn max_life(&self) -> u64 {
        self.max_ttl.max(self.min_ttl)
    }
}

/// What became of a DNS answer, as `ferrowall_dns_answers_total{result}` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnswerResult {
    /// At least one binding was made or refreshed.
    Learned,
    /// No query on the flow matched it (counted by workers).
    NoQuery,
    /// It came from a server not in `trusted_servers` (counted by workers).
    Untrusted,
    /// It could not be read.
    Malformed,
    /// It named nothing that a rule's patterns match (or carried no address).
    NoMatch,
}

impl AnswerResult {
    /// Every result, in counter order.
    pub const ALL: [AnswerResult; 5] = [
        AnswerResult::Learned,
        AnswerResult::NoQuery,
        AnswerResult::Untrusted,
        AnswerResult::Malformed,
        AnswerResult::NoMatch,
    ];

    /// The `result` label.
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerResult::Learned => "learned",
            AnswerResult::NoQuery => "no_query",
            AnswerResult::Untrusted => "untrusted",
            AnswerResult::Malformed => "malformed",
            AnswerResult::NoMatch => "no_match",
        }
    }

    /// Position in per-result counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Why a binding went away (or was never made).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    /// Its TTL ran out.
    Ttl,
    /// Its name had `max_ips_per_name` newer addresses.
    PerNameCap,
    /// `max_names` or `max_ips` was reached.
    TableCap,
}

impl Eviction {
    /// Every reason, in counter order.
    pub const ALL: [Eviction; 3] = [Eviction::Ttl, Eviction::PerNameCap, Eviction::TableCap];

    /// The `reason` label of `ferrowall_fqdn_evictions_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Eviction::Ttl => "ttl",
            Eviction::PerNameCap => "per_name_cap",
            Eviction::TableCap => "table_cap",
        }
    }
}

/// The learner's counters (written by the control thread only).
#[derive(Debug, Default)]
pub struct LearnerStats {
    /// Answers by result (`AnswerResult::index`); workers count `no_query` and `untrusted`.
    pub answers: [Counter; 5],
    /// Bindings evicted or refused, by reason.
    pub evictions: [Counter; 3],
    /// Addresses in the table.
    pub entries: Gauge,
    /// Names in the table.
    pub names: Gauge,
}

/// An address's bindings.
type Bindings = SmallVec<[Binding; 1]>;

/// A name bound to an address until `expires`; `timer` is its timer in [`Learner::expiries`].
#[derive(Debug, Clone)]
struct Binding {
    name: NameId,
    timer: u32,
    expires: u64,
}

/// A learned name's place in [`Learner::names`].
type NameId = u32;

/// One binding in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingView {
    /// The name.
    pub name: Arc<str>,
    /// When it expires (data path clock, ns).
    pub expires: u64,
}

/// The learner and the per-worker tables it publishes.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Debug)]
pub struct Learner {
    limits: Limits,
    policy: Arc<Policy>,
    /// Each address's bindings, most recently learned first (most addresses have one, held
    /// in the map's own slot: no second cache miss to read it).
    by_ip: Map<IpKey, Bindings>,
    /// Every learned name's id. Bindings name their names by id: a learned name's text is
    /// hashed once per answer (to find its id), not at every step.
    by_name: Map<Arc<str>, NameId>,
    /// Learned names by id (`None`: a free id, in `free_names`).
    names: Vec<Option<NameState>>,
    free_names: Vec<NameId>,
    /// A timer per binding, carrying its address and name: exactly one per live binding
    /// (moved when it is refreshed, removed with it), so their number is bounded by theirs.
    /// Setting, moving and removing one is O(1).
    expiries: Wheel<(IpKey, NameId)>,
    /// Bindings found expired, being removed.
    expired: Vec<(IpKey, NameId)>,
    /// Addresses changed since the last commit, each once (in the order first changed).
    dirty: Vec<IpKey>,
    /// The addresses in `dirty` (marked ones), for a repeat to be skipped at once: an entry
    /// costs one name per binding to build, and an address many names share may be changed
    /// many times between commits. Sorting `dirty` at commit cost more.
    marked: HashSet<IpKey, foldhash::fast::RandomState>,
    /// What learning an answer works with, kept so that learning allocates nothing per
    /// answer at steady state.
    scratch: Scratch,
    replicas: Vec<Replica>,
    version: u64,
    stats: Arc<LearnerStats>,
}

/// A learned name: its text, its addresses, oldest first, and the rules its patterns match.
#[derive(Debug)]
struct NameState {
    name: Arc<str>,
    ips: VecDeque<IpKey>,
    rules: Box<[u32]>,
}

/// One name of a CNAME chain.
#[derive(Debug)]
struct Link {
    /// Its text in [`Scratch::text`].
    text: Range<usize>,
    /// The smallest TTL from the question up to it.
    ttl: u32,
    /// The name if some pattern matches it (only those are bound).
    name: Option<LinkName>,
}

/// A chain name to bind.
#[derive(Debug)]
enum LinkName {
    /// Learned already.
    Known(NameId),
    /// Not learned when the answer was read (an earlier binding of the same answer may have
    /// learned it since).
    New(Arc<str>),
}

/// A CNAME chain, from the question on.
type Chain = Vec<Link>;

/// An answer record as the learner uses it: its owner (text in [`Scratch::text`]), TTL, and
/// what it says.
#[derive(Debug)]
struct Rec {
    owner: Option<Range<usize>>,
    ttl: u32,
    data: RecData,
}

#[derive(Debug)]
enum RecData {
    /// An address: A, AAAA, or one `ipv4hint`/`ipv6hint` of an SVCB/HTTPS record (one
    /// record each).
    Addr(IpAddr),
    /// The canonical name's text.
    Cname(Option<Range<usize>>),
    /// Nothing the learner uses.
    Other,
}

/// What learning one answer works with.
#[derive(Debug, Default)]
struct Scratch {
    /// The text of the answer's names (decompressed once each, nothing else copied).
    text: Vec<u8>,
    /// The question name's text.
    question: Option<Range<usize>>,
    /// The answer records, in order.
    records: Vec<Rec>,
    chain: Chain,
    /// (chain position of the owner, address, TTL).
    addrs: Vec<(usize, IpAddr, u32)>,
}

impl Scratch {
    /// Reads the question and the answer section of `m` (an error: the answer is malformed,
    /// as is an answer without a question). Returns `false`, without reading the answers, if
    /// the question name has no text form (no pattern can match it: a label holds a `.`, or
    /// it is not UTF-8).
    fn read(&mut self, m: &Message<'_>) -> Result<bool, DnsError> {
        let question = m
            .questions()
            .next_text(&mut self.text)
            .unwrap_or(Err(DnsError::CountMismatch))?;
        self.question.clone_from(&question.text);
        if text_str(&self.text, &self.question).is_none() {
            return Ok(false); // no text form (not UTF-8, or a label holds a '.')
        }
        let mut answers = m.answers();
        while let Some(r) = answers.next_text(&mut self.text, Some(&question)) {
            let r = r?;
            // A TTL with its top bit set means 0 (RFC 2181, section 8).
            let ttl = if r.ttl > i32::MAX.unsigned_abs() {
                0
            } else {
                r.ttl
            };
            let owner = r.owner;
            let mut push = |data| {
                self.records.push(Rec {
                    owner: owner.clone(),
                    ttl,
                    data,
                });
            };
            match r.data {
                DataText::A(a) => push(RecData::Addr(IpAddr::V4(a))),
                DataText::Aaaa(a) => push(RecData::Addr(IpAddr::V6(a))),
                DataText::Cname(t) => push(RecData::Cname(t)),
                DataText::Svcb(s) => {
                    for a in &s.ipv4hint {
                        push(RecData::Addr(IpAddr::V4(*a)));
                    }
                    for a in &s.ipv6hint {
                        push(RecData::Addr(IpAddr::V6(*a)));
                    }
                }
                DataText::Other { .. } => push(RecData::Other),
            }
        }
        Ok(true)
    }

    /// Empties every list (keeping their room).
    fn clear(&mut self) {
        self.text.clear();
        self.question = None;
        self.records.clear();
        self.chain.clear();
        self.addrs.clear();
    }
}

impl Learner {
    /// A learner for `workers` workers under `policy`; returns it with each worker's first
    /// (empty) table.
    pub fn new(
        limits: Limits,
        policy: Arc<Policy>,
        workers: usize,
        stats: Arc<LearnerStats>,
    ) -> (Learner, Vec<Box<FqdnMap>>) {
        // Every table is sized for the configured bounds up front: growing a large map on the
        // control thread stalls it (and every held answer) for tens of milliseconds. The
        // memory is reserved now and touched as entries arrive. (The expiry timers, one per
        // binding, grow in chunks that are never copied.)
        let (replicas, maps): (Vec<Replica>, Vec<Box<FqdnMap>>) = (0..workers.max(1))
            .map(|_| Replica::with_capacity(limits.max_ips))
            .unzip();
        (
            Learner {
                by_ip: Map::with_capacity_and_hasher(limits.max_ips, Default::default()),
                by_name: Map::with_capacity_and_hasher(limits.max_names, Default::default()),
                names: Vec::with_capacity(limits.max_names),
                free_names: Vec::with_capacity(limits.max_names),
                expiries: Wheel::default(),
                expired: Vec::new(),
                dirty: Vec::new(),
                marked: HashSet::default(),
                scratch: Scratch::default(),
                limits,
                policy,
                replicas,
                version: 0,
                stats,
            },
            maps,
        )
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<LearnerStats> {
        &self.stats
    }

    /// The policy whose patterns decide what is learned.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// The number of the last committed change.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Changes the bounds (reload). Existing bindings stay until they expire or are evicted.
    /// Larger bounds reserve their room now (the workers' copies grow as they are republished).
    pub fn set_limits(&mut self, limits: Limits) {
        self.by_ip
            .reserve(limits.max_ips.saturating_sub(self.by_ip.len()));
        self.by_name
            .reserve(limits.max_names.saturating_sub(self.by_name.len()));
        self.names
            .reserve(limits.max_names.saturating_sub(self.names.len()));
        self.free_names
            .reserve(limits.max_names.saturating_sub(self.free_names.len()));
        self.limits = limits;
    }

    /// Puts a new policy in force: every entry's rules are matched again (learned bindings
    /// survive; the next [`Learner::commit`] republishes every address).
    pub fn set_policy(&mut self, policy: Arc<Policy>) {
        self.policy = policy;
        for state in self.names.iter_mut().flatten() {
            state.rules = self.policy.names.matches(&state.name).into_boxed_slice();
        }
        // Every address, without marking each (a set the size of the table would stay
        // allocated): an address that learning changes again before the commit is then
        // published twice (one repeat at most).
        self.dirty.extend(self.by_ip.keys().copied());
    }

    /// Learns from one DNS response message (already matched to a query and trusted) at `now`.
    pub fn learn(&mut self, message: &[u8], now: u64) -> AnswerResult {
        let r = self.learn_inner(message, now);
        self.stats.answers[r.index()].inc();
        r
    }

    fn learn_inner(&mut self, message: &[u8], now: u64) -> AnswerResult {
        let Ok(m) = Message::parse(message) else {
            return AnswerResult::Malformed;
        };
        if !m.is_response() {
            return AnswerResult::Malformed;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let result = match scratch.read(&m) {
            Ok(true) => self.learn_records(&mut scratch, now),
            Ok(false) => AnswerResult::NoMatch,
            Err(_) => AnswerResult::Malformed,
        };
        scratch.clear();
        self.scratch = scratch;
        result
    }

    /// Learns what the answer read into `scratch` teaches.
    fn learn_records(&mut self, scratch: &mut Scratch, now: u64) -> AnswerResult {
        let Scratch {
            text,
            question,
            records,
            chain,
            addrs,
        } = scratch;
        let Some(first) = question.clone().and_then(|q| self.link(text, q, u32::MAX)) else {
            return AnswerResult::NoMatch;
        };
        chain.push(first);
        self.chain(text, records, chain);
        // Addresses by the chain position of their owner.
        for r in records.iter() {
            let RecData::Addr(ip) = r.data else { continue };
            let pos = text_bytes(text, &r.owner).and_then(|o| {
                chain
                    .iter()
                    .position(|l| text.get(l.text.clone()) == Some(o))
            });
            if let Some(pos) = pos {
                addrs.push((pos, ip, r.ttl));
            }
        }
        let mut bound = false;
        for &(pos, ip, ttl) in addrs.iter() {
            // The binding lives as long as every link from the question to the address (the
            // chain holds the smallest TTL up to each name).
            let ttl = chain[pos].ttl.min(ttl);
            let life = (u64::from(ttl) * NANOS).clamp(self.limits.min_ttl, self.limits.max_life());
            let key = IpKey::new(ip);
            // Bound from the address's owner back to the question, so that the question name
            // is the most recent (listed first, and the one attributed to flows).
            for link in chain[..=pos].iter().rev() {
                if let Some(name) = &link.name {
                    bound |= self.bind(name, key, now.saturating_add(life));
                }
            }
        }
        if bound {
            AnswerResult::Learned
        } else {
            AnswerResult::NoMatch
        }
    }

    /// Follows the CNAME chain from its first link (the question) through the answer
    /// `records` (names in `text`).
    fn chain(&self, text: &[u8], records: &[Rec], chain: &mut Chain) {
        for _ in 0..self.limits.max_cname_chain {
            let Some(last) = chain.last().and_then(|l| text.get(l.text.clone())) else {
                break;
            };
            let ttl = chain.last().map_or(u32::MAX, |l| l.ttl);
            // The first CNAME of the last name whose target has a text form.
            let next = records.iter().find_map(|r| match &r.data {
                RecData::Cname(Some(target)) if text_bytes(text, &r.owner) == Some(last) => {
                    self.link(text, target.clone(), ttl.min(r.ttl))
                }
                _ => None,
            });
            let Some(link) = next else { break };
            let name = text.get(link.text.clone());
            if chain.iter().any(|l| text.get(l.text.clone()) == name) {
                break; // a CNAME loop: stop where it closes
            }
            chain.push(link);
        }
    }

    /// The chain link for the name at `at` in `text`, if it is UTF-8: with the name to bind
    /// if some pattern matches it (a learned name's rules say so without matching it again).
    fn link(&self, text: &[u8], at: Range<usize>, ttl: u32) -> Option<Link> {
        let name = std::str::from_utf8(text.get(at.clone())?).ok()?;
        let name = match self.by_name.get(name) {
            Some(&id) => self
                .name(id)
                .is_some_and(|n| !n.rules.is_empty())
                .then_some(LinkName::Known(id)),
            None => self
                .policy
                .names
                .matches_any(name)
                .then(|| LinkName::New(Arc::from(name))),
        };
        Some(Link {
            text: at,
            ttl,
            name,
        })
    }

    /// A learned name.
    fn name(&self, id: NameId) -> Option<&NameState> {
        self.names.get(id as usize).and_then(Option::as_ref)
    }

    /// Learns `name` (not learned yet: the caller looked), with its rules; returns its id.
    fn add_name(&mut self, name: &Arc<str>) -> NameId {
        let state = NameState {
            name: Arc::clone(name),
            ips: VecDeque::new(),
            rules: self.policy.names.matches(name).into_boxed_slice(),
        };
        let id = match self.free_names.pop() {
            Some(id) => {
                if let Some(slot) = self.names.get_mut(id as usize) {
                    *slot = Some(state);
                }
                id
            }
            None => {
                self.names.push(Some(state));
                NameId::try_from(self.names.len() - 1).unwrap_or(NameId::MAX)
            }
        };
        self.by_name.insert(Arc::clone(name), id);
        id
    }

    /// Forgets a name that has no address left.
    fn forget_name(&mut self, id: NameId) {
        if let Some(state) = self.names.get_mut(id as usize).and_then(Option::take) {
            self.by_name.remove(&state.name);
            self.free_names.push(id);
        }
    }

    /// Binds `name` to `ip` until `expires`. Returns whether a binding was made or refreshed.
    fn bind(&mut self, name: &LinkName, ip: IpKey, expires: u64) -> bool {
        let known = match name {
            LinkName::Known(id) => Some(*id),
            LinkName::New(n) => self.by_name.get(&**n).copied(),
        };
        let new_ip = !self.by_ip.contains_key(&ip);
        if (known.is_none() && self.by_name.len() >= self.limits.max_names)
            || (new_ip && self.by_ip.len() >= self.limits.max_ips)
        {
            self.stats.evictions[Eviction::TableCap as usize].inc();
            return false;
        }
        let id = match (known, name) {
            (Some(id), _) => id,
            (None, LinkName::New(n)) => self.add_name(n),
            (None, LinkName::Known(id)) => *id,
        };
        let bindings = self.by_ip.entry(ip).or_default();
        if let Some(i) = bindings.iter().position(|b| b.name == id) {
            // Refreshed: now the most recent binding of the address, and the name's most
            // recent address (the last its per-name cap evicts).
            let mut b = bindings.remove(i);
            if expires > b.expires {
                self.expiries.set(b.timer, expires);
                b.expires = expires;
            }
            bindings.insert(0, b);
            if let Some(ips) = self
                .names
                .get_mut(id as usize)
                .and_then(Option::as_mut)
                .map(|state| &mut state.ips)
            {
                if let Some(at) = ips.iter().rposition(|k| *k == ip) {
                    if at + 1 != ips.len() {
                        ips.remove(at);
                        ips.push_back(ip);
                    }
                }
            }
        } else {
            let timer = self.expiries.insert(expires, (ip, id));
            bindings.insert(
                0,
                Binding {
                    name: id,
                    timer,
                    expires,
                },
            );
            let per_name = self.limits.max_ips_per_name;
            let oldest = self
                .names
                .get_mut(id as usize)
                .and_then(Option::as_mut)
                .and_then(|state| {
                    state.ips.push_back(ip);
                    (state.ips.len() > per_name)
                        .then(|| state.ips.pop_front())
                        .flatten()
                });
            if let Some(oldest) = oldest {
                self.stats.evictions[Eviction::PerNameCap as usize].inc();
                self.unbind(id, oldest);
            }
        }
        self.mark(ip);
        true
    }

    /// Notes that `ip`'s entry changed, for the next commit (once however often it changes
    /// before then).
    #[inline]
    fn mark(&mut self, ip: IpKey) {
        if self.marked.insert(ip) {
            self.dirty.push(ip);
        }
    }

    /// Removes the binding of name `id` to `ip` (its name's address list is the caller's), and
    /// its timer if `drop_timer` (otherwise the timer went off).
    fn unbind_inner(&mut self, id: NameId, ip: IpKey, drop_timer: bool) {
        let Some(bs) = self.by_ip.get_mut(&ip) else {
            return;
        };
        if let Some(i) = bs.iter().position(|b| b.name == id) {
            let b = bs.remove(i);
            if bs.is_empty() {
                self.by_ip.remove(&ip);
            }
            if drop_timer {
                self.expiries.remove(b.timer);
            }
        }
        self.mark(ip);
    }

    /// Removes the binding of name `id` to `ip` (its name's address list is the caller's).
    fn unbind(&mut self, id: NameId, ip: IpKey) {
        self.unbind_inner(id, ip, true);
    }

    fn update_gauges(&self) {
        self.stats.entries.set(self.by_ip.len() as u64);
        self.stats.names.set(self.by_name.len() as u64);
    }

    /// Removes the bindings whose TTL ran out by `now`.
    pub fn expire(&mut self, now: u64) {
        let mut expired = std::mem::take(&mut self.expired);
        self.expiries.due(now, &mut expired);
        for &(ip, id) in &expired {
            self.stats.evictions[Eviction::Ttl as usize].inc();
            self.unbind_inner(id, ip, false);
            let unused = self
                .names
                .get_mut(id as usize)
                .and_then(Option::as_mut)
                .is_some_and(|state| {
                    state.ips.retain(|k| *k != ip);
                    state.ips.is_empty()
                });
            if unused {
                self.forget_name(id);
            }
        }
        expired.clear();
        self.expired = expired;
        self.update_gauges();
    }

    /// The entry worker tables get for `ip`, or `None` if it has no binding left.
    fn entry(&self, ip: &IpKey) -> Option<IpEntry> {
        let bs = self.by_ip.get(ip)?;
        let rules_of = |b: &Binding| self.name(b.name).map(|s| &s.rules);
        let rules: EntryRules = match bs.as_slice() {
            [b] => rules_of(b)
                .map(|r| EntryRules::from_slice(r))
                .unwrap_or_default(),
            _ => {
                let mut rules = Vec::new();
                for r in bs.iter().filter_map(rules_of) {
                    rules.extend_from_slice(r);
                }
                rules.sort_unstable();
                rules.dedup();
                EntryRules::from_slice(&rules)
            }
        };
        Some(IpEntry {
            names: bs
                .iter()
                .filter_map(|b| self.name(b.name).map(|s| Arc::clone(&s.name)))
                .collect(),
            expires: bs.iter().map(|b| b.expires).max().unwrap_or(0),
            rules,
            generation: self.policy.generation,
        })
    }

    /// Turns the changes since the last commit into numbered table changes for every worker.
    /// Returns the number of the last change (what a worker's table version must reach for it
    /// to see everything learned so far).
    pub fn commit(&mut self) -> u64 {
        if self.dirty.is_empty() {
            return self.version;
        }
        self.update_gauges();
        self.marked.clear();
        let mut dirty = std::mem::take(&mut self.dirty);
        for &ip in &dirty {
            self.version += 1;
            let v = self.version;
            match self.entry(&ip) {
                Some(e) => {
                    // Each worker gets its own allocation: the reference counts flows take
                    // stay on that worker's cache lines.
                    if let Some((last, others)) = self.replicas.split_last_mut() {
                        for r in others {
                            r.record(v, Op::Put(ip, Arc::new(e.clone())));
                        }
                        last.record(v, Op::Put(ip, Arc::new(e)));
                    }
                }
                None => {
                    for r in &mut self.replicas {
                        r.record(v, Op::Remove(ip));
                    }
                }
            }
        }
        dirty.clear();
        self.dirty = dirty;
        self.version
    }

    /// The next table for worker `w`, if it lacks changes and has given its previous one back.
    pub fn publish(&mut self, w: usize) -> Option<Box<FqdnMap>> {
        let replica = self.replicas.get(w)?;
        if !replica.behind() || !replica.has_spare() {
            return None;
        }
        if replica.needs_full() {
            // Rare: the worker stalled long enough for its change log to overflow.
            let entries: Vec<(IpKey, Arc<IpEntry>)> = self
                .by_ip
                .keys()
                .filter_map(|ip| self.entry(ip).map(|e| (*ip, Arc::new(e))))
                .collect();
            return self.replicas[w].publish(move || entries);
        }
        self.replicas[w].publish(Vec::new)
    }

    /// Worker `w` gave back the table it no longer reads.
    pub fn returned(&mut self, w: usize, map: Box<FqdnMap>) {
        if let Some(r) = self.replicas.get_mut(w) {
            r.returned(map);
        }
    }

    /// Every address with its bindings (for listings and the cache file), unordered.
    pub fn bindings(&self) -> impl Iterator<Item = (IpKey, Vec<BindingView>)> + '_ {
        self.by_ip.iter().map(|(ip, bs)| {
            (
                *ip,
                bs.iter()
                    .filter_map(|b| {
                        Some(BindingView {
                            name: Arc::clone(&self.name(b.name)?.name),
                            expires: b.expires,
                        })
                    })
                    .collect(),
            )
        })
    }

    /// Restores a binding read from the cache file (same bounds as learning; only names that
    /// match some pattern). Returns whether it was kept.
    pub fn restore(&mut self, name: &str, ip: IpAddr, expires: u64, now: u64) -> bool {
        if expires <= now || !self.policy.names.matches_any(name) {
            return false;
        }
        // No longer than an answer could bind it now (`max_ttl` may have shrunk, the wall clock
        // may have gone back since the file was written).
        let expires = expires.min(now.saturating_add(self.limits.max_life()));
        let name = match self.by_name.get(name) {
            Some(&id) => LinkName::Known(id),
            None => LinkName::New(Arc::from(name)),
        };
        self.bind(&name, IpKey::new(ip), expires)
    }

    /// Addresses in the table.
    pub fn len(&self) -> usize {
        self.by_ip.len()
    }

    /// Whether nothing is learned.
    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::dns::message::build::{RecordSpec, response};
    use crate::dns::message::rtype;

    const S: u64 = NANOS;

    fn policy(extra_dns: &str) -> (Arc<Policy>, Limits) {
        // Small tables (the learner reserves its bounds up front; Miri runs these tests).
        let mut extra_dns = extra_dns.to_owned();
        for (key, value) in [("max_ips", 4096), ("max_names", 1024)] {
            if !extra_dns.contains(&format!("{key} =")) {
                extra_dns.push_str(&format!("\n{key} = {value}"));
            }
        }
        let text = format!(
            "[ports.inside]\ndevice = \"a\"\n[ports.outside]\ndevice = \"b\"\n[dns]\nmin_ttl = \"10s\"\nmax_ttl = \"1h\"\n{extra_dns}\n[[rule]]\nname = \"gh\"\naction = \"allow\"\ndst_fqdn = [\"github.com\", \"*.github.com\"]\n[[rule]]\nname = \"cdn\"\naction = \"allow\"\ndst_fqdn = [\"**.fastly.net\"]\n"
        );
        let cfg = config::parse(&text, "t.toml").unwrap();
        (
            Arc::new(Policy::compile(&cfg, 1, 1)),
            Limits::from_config(&cfg.dns),
        )
    }

    fn learner(extra: &str) -> Learner {
        let (p, l) = policy(extra);
        Learner::new(l, p, 2, Arc::default()).0
    }

    fn a(s: &str) -> RecordSpec {
        RecordSpec::A(s.parse().unwrap())
    }

    fn names_of(l: &Learner, ip: &str) -> Vec<String> {
        l.bindings()
            .find(|(k, _)| k.ip() == ip.parse::<IpAddr>().unwrap())
            .map(|(_, bs)| bs.iter().map(|b| b.name.to_string()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn an_address_changed_many_times_between_commits_is_published_once() {
        let mut l = learner("");
        // Three names, each answered with the same two addresses: A, B, A, B, A, B.
        for (i, name) in ["a.github.com", "b.github.com", "c.github.com"]
            .iter()
            .enumerate()
        {
            let msg = response(
                u16::try_from(i).unwrap(),
                name,
                rtype::A,
                &[(name, 60, a("192.0.2.1")), (name, 60, a("192.0.2.2"))],
            );
            assert_eq!(l.learn(&msg, 0), AnswerResult::Learned);
        }
        assert_eq!(l.commit(), 2, "one change per address");
        assert_eq!(l.commit(), 2, "nothing new");
        assert_eq!(names_of(&l, "192.0.2.1").len(), 3);
    }

    #[test]
    fn learns_a_matching_name_and_publishes_it_to_every_worker() {
        let (p, limits) = policy("");
        let (mut l, mut maps) = Learner::new(limits, p, 2, Arc::default());
        let msg = response(
            1,
            "GitHub.com",
            rtype::A,
            &[("github.com", 60, a("140.82.112.3"))],
        );
        assert_eq!(l.learn(&msg, 0), AnswerResult::Learned);
        assert_eq!(names_of(&l, "140.82.112.3"), ["github.com"]);
        let v = l.commit();
        assert_eq!(v, 1);
        for (w, map) in maps.iter_mut().enumerate() {
            let new = l.publish(w).expect("behind");
            let old = std::mem::replace(map, new);
            l.returned(w, old);
            let e = map
                .get(&IpKey::new("140.82.112.3".parse().unwrap()))
                .unwrap();
            assert_eq!(
                (&*e.names[0], &*e.rules, e.expires),
                ("github.com", &[0u32][..], 60 * S)
            );
        }
        assert_eq!(l.stats().answers[AnswerResult::Learned.index()].get(), 1);
    }

    #[test]
    fn names_no_rule_matches_are_not_learned() {
        let mut l = learner("");
        let msg = response(
            1,
            "example.org",
            rtype::A,
            &[("example.org", 60, a("192.0.2.1"))],
        );
        assert_eq!(l.learn(&msg, 0), AnswerResult::NoMatch);
        assert!(l.is_empty());
        assert_eq!(l.learn(b"\x00\x01", 0), AnswerResult::Malformed);
    }

    #[test]
    fn a_question_without_text_is_no_match_whatever_its_answers() {
        let mut l = learner("");
        // Question `a\xffb` (not UTF-8); its one answer is an A record of 5 bytes.
        let msg = [
            0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, // header
            3, b'a', 0xff, b'b', 0, 0, 1, 0, 1, // question
            0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 5, 1, 2, 3, 4, 5, // answer
        ];
        assert_eq!(l.learn(&msg, 0), AnswerResult::NoMatch);
        let mut fixed = msg;
        fixed[14] = b'x';
        assert_eq!(l.learn(&fixed, 0), AnswerResult::Malformed);
    }

    #[test]
    fn a_cname_chain_binds_every_matching_name_and_the_shortest_ttl() {
        let mut l = learner("");
        let msg = response(
            7,
            "www.github.com",
            rtype::A,
            &[
                (
                    "www.github.com",
                    300,
                    RecordSpec::Cname("github.map.fastly.net".into()),
                ),
                ("github.map.fastly.net", 20, a("185.199.108.133")),
            ],
        );
        assert_eq!(l.learn(&msg, 0), AnswerResult::Learned);
        let bs: Vec<(String, u64)> = l
            .bindings()
            .flat_map(|(_, b)| b.into_iter().map(|b| (b.name.to_string(), b.expires)))
            .collect();
        assert!(bs.contains(&("www.github.com".into(), 20 * S)));
        assert!(bs.contains(&("github.map.fastly.net".into(), 20 * S)));
        // An address owned by a name outside the chain is not bound.
        let stray = response(
            8,
            "api.github.com",
            rtype::A,
            &[("evil.github.com", 60, a("203.0.113.9"))],
        );
        assert_eq!(l.learn(&stray, 0), AnswerResult::NoMatch);
    }

    #[test]
    fn aaaa_and_https_hints_are_learned() {
        let mut l = learner("");
        let msg = response(
            2,
            "github.com",
            rtype::HTTPS,
            &[(
                "github.com",
                60,
                RecordSpec::Https {
                    target: ".".into(),
                    ipv4hint: vec![Ipv4Addr::new(140, 82, 112, 4)],
                    ipv6hint: vec!["2001:db8::4".parse::<Ipv6Addr>().unwrap()],
                },
            )],
        );
        assert_eq!(l.learn(&msg, 0), AnswerResult::Learned);
        assert_eq!(names_of(&l, "140.82.112.4"), ["github.com"]);
        assert_eq!(names_of(&l, "2001:db8::4"), ["github.com"]);
        let six = response(
            3,
            "api.github.com",
            rtype::AAAA,
            &[(
                "api.github.com",
                60,
                RecordSpec::Aaaa("2001:db8::5".parse().unwrap()),
            )],
        );
        assert_eq!(l.learn(&six, 0), AnswerResult::Learned);
        assert_eq!(names_of(&l, "2001:db8::5"), ["api.github.com"]);
    }

    #[test]
    fn ttls_are_clamped_and_expire() {
        let mut l = learner("");
        l.learn(
            &response(
                1,
                "github.com",
                rtype::A,
                &[("github.com", 1, a("192.0.2.1"))],
            ),
            0,
        );
        l.learn(
            &response(
                2,
                "api.github.com",
                rtype::A,
                &[("api.github.com", 99_999, a("192.0.2.2"))],
            ),
            0,
        );
        let exp: HashMap<String, u64> = l
            .bindings()
            .flat_map(|(_, b)| b.into_iter().map(|b| (b.name.to_string(), b.expires)))
            .collect();
        assert_eq!(exp["github.com"], 10 * S, "raised to min_ttl");
        assert_eq!(exp["api.github.com"], 3600 * S, "cut to max_ttl");
        l.expire(10 * S - 1);
        assert_eq!(l.len(), 2);
        l.expire(10 * S);
        assert_eq!(l.len(), 1);
        assert_eq!(l.stats().evictions[Eviction::Ttl as usize].get(), 1);
        l.commit();
        let (_, maps) = (0, l.publish(0).unwrap());
        assert!(
            maps.get(&IpKey::new("192.0.2.1".parse().unwrap()))
                .is_none()
        );
    }

    #[test]
    fn a_ttl_with_its_top_bit_set_is_zero() {
        let mut l = learner("");
        let msg = response(
            1,
            "github.com",
            rtype::A,
            &[("github.com", 0x8000_0000, a("192.0.2.1"))],
        );
        assert_eq!(l.learn(&msg, 0), AnswerResult::Learned);
        let expires: Vec<u64> = l
            .bindings()
            .flat_map(|(_, b)| b.into_iter().map(|b| b.expires))
            .collect();
        assert_eq!(expires, [10 * S], "0, raised to min_ttl");
    }

    #[test]
    fn the_per_name_cap_evicts_the_address_answered_least_recently() {
        let mut l = learner("max_ips_per_name = 2");
        // 1 and 2 learned, 1 answered again, then 3: 2 goes, not the refreshed 1.
        for (t, ip) in ["192.0.2.1", "192.0.2.2", "192.0.2.1", "192.0.2.3"]
            .iter()
            .enumerate()
        {
            l.learn(
                &response(1, "github.com", rtype::A, &[("github.com", 60, a(ip))]),
                t as u64 * S,
            );
        }
        assert!(names_of(&l, "192.0.2.2").is_empty());
        assert_eq!(names_of(&l, "192.0.2.1"), ["github.com"]);
        assert_eq!(names_of(&l, "192.0.2.3"), ["github.com"]);
    }

    #[test]
    fn per_name_and_table_caps() {
        let mut l = learner("max_ips_per_name = 2\nmax_names = 2\nmax_ips = 3");
        for (i, ip) in ["192.0.2.1", "192.0.2.2", "192.0.2.3"].iter().enumerate() {
            l.learn(
                &response(1, "github.com", rtype::A, &[("github.com", 60, a(ip))]),
                i as u64,
            );
        }
        assert!(
            names_of(&l, "192.0.2.1").is_empty(),
            "the oldest address of the name went"
        );
        assert_eq!(names_of(&l, "192.0.2.3"), ["github.com"]);
        assert_eq!(l.stats().evictions[Eviction::PerNameCap as usize].get(), 1);
        l.learn(
            &response(
                1,
                "api.github.com",
                rtype::A,
                &[("api.github.com", 60, a("192.0.2.4"))],
            ),
            5,
        );
        // A third name is refused (max_names = 2), counted.
        assert_eq!(
            l.learn(
                &response(
                    1,
                    "x.github.com",
                    rtype::A,
                    &[("x.github.com", 60, a("192.0.2.5"))]
                ),
                6
            ),
            AnswerResult::NoMatch
        );
        assert_eq!(l.stats().evictions[Eviction::TableCap as usize].get(), 1);
        assert_eq!(l.len(), 3);
    }

    #[test]
    fn expiry_items_stay_one_per_binding_under_refreshes_and_evictions() {
        let mut l = learner("max_ips_per_name = 4");
        // Per-name evictions start after 40 answers; Miri runs the short version.
        let answers = if cfg!(miri) { 120 } else { 2_000u32 };
        for i in 0..answers {
            // Ten names, each answered again and again with a rotating address: refreshes,
            // new bindings and per-name evictions.
            let name = format!("n{}.github.com", i % 10);
            let ip = format!("192.0.2.{}", i % 50);
            l.learn(
                &response(1, &name, rtype::A, &[(name.as_str(), 60, a(&ip))]),
                u64::from(i) * S,
            );
            let bindings: usize = l.by_ip.values().map(SmallVec::len).sum();
            assert_eq!(l.expiries.len(), bindings, "after answer {i}");
            let names = l.names.iter().flatten().count();
            assert_eq!((l.by_name.len(), names), (names, 10.min(i as usize + 1)));
        }
        assert!(l.stats().evictions[Eviction::PerNameCap as usize].get() > 0);
        l.expire(u64::MAX);
        assert!(l.is_empty() && l.expiries.is_empty() && l.by_name.is_empty());
        assert!(l.names.iter().all(Option::is_none));
        assert_eq!(l.free_names.len(), 10);
    }

    #[test]
    fn a_new_policy_matches_the_names_again() {
        let mut l = learner("");
        l.learn(
            &response(
                1,
                "github.com",
                rtype::A,
                &[("github.com", 60, a("192.0.2.1"))],
            ),
            0,
        );
        l.commit();
        let text = "[ports.inside]\ndevice = \"a\"\n[ports.outside]\ndevice = \"b\"\n[[rule]]\nname = \"other\"\naction = \"drop\"\ndst_fqdn = [\"example.com\"]\n[[rule]]\nname = \"gh2\"\naction = \"allow\"\ndst_fqdn = [\"**.com\"]\n";
        let cfg = config::parse(text, "t.toml").unwrap();
        l.set_policy(Arc::new(Policy::compile(&cfg, 2, 1)));
        let v = l.commit();
        assert_eq!(v, 2, "every address republished");
        let m = l.publish(0).unwrap();
        let e = m.get(&IpKey::new("192.0.2.1".parse().unwrap())).unwrap();
        assert_eq!((&*e.rules, e.generation), (&[1u32][..], 2));
    }
}
