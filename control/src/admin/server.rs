//! The admin socket: a Unix socket (mode 0600) that `ferrowall flows|fqdn|stats|rules|reload`
//! talk to, served by its own thread beside the control thread.
//!
//! Each connection gets a thread (at most [`MAX_CLIENTS`] at once; beyond, an error), a read
//! timeout for its request and a write timeout for the answer, so a stuck or slow client only
//! holds its own thread. Flow listings ask each worker for one bounded chunk at a time through
//! its admin ring (workers answer between bursts); requests that need the learner or the
//! configuration go to the control thread.

use std::fs;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, TryLockError, mpsc};
use std::time::{Duration, Instant};

use dataplane::DropReason;
use dataplane::agent::{AdminLink, FlowRow};
use dataplane::fqdn::AnswerResult;
use serde::Serialize;
use tracing::{info, warn};

use super::proto::{
    DnsJson, FlowJson, MAX_REQUEST, PortJson, ProgressLine, Reloaded, Request, RuleJson, StatsJson,
    Status, WorkerJson, proto_name,
};
use crate::fqdn::{FlowCounts, count_row, rows};
use crate::shared::{Call, Shared};

/// Connections served at once.
pub const MAX_CLIENTS: usize = 8;
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one write to a client may block.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of an over-long request read and discarded before the error is sent.
const DRAIN_LIMIT: u64 = 1 << 20;
/// How long a worker or the control thread may take to answer before the request fails.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an answer being worked on (a listing of a large table, most of it filtered out, or
/// counted before anything is written) may leave the client without a line: past that, a
/// progress line goes out (the client gives up on an answer that sends nothing for 30 s).
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// What connection threads share.
struct Ctx {
    shared: Arc<Shared>,
    /// The workers' admin rings; one listing at a time.
    links: Mutex<Vec<AdminLink>>,
    calls: Mutex<mpsc::Sender<Call>>,
    next_id: AtomicU64,
    clients: AtomicUsize,
    /// [`PROGRESS_EVERY`] (shorter in tests).
    progress_every: Duration,
}

/// The admin socket, bound and listening.
#[derive(Debug)]
pub struct AdminServer {
    listener: UnixListener,
    path: PathBuf,
}

impl AdminServer {
    /// Binds the socket at `path` (creating its directory; replacing a stale socket, never
    /// another kind of file), mode 0600.
    pub fn bind(path: &Path) -> io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        match fs::symlink_metadata(path) {
            Ok(m) if std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()) => {
                if UnixStream::connect(path).is_ok() {
                    return Err(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!("{} is in use by another ferrowall", path.display()),
                    ));
                }
                fs::remove_file(path)?;
            }
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ));
            }
            Err(_) => {}
        }
        let listener = UnixListener::bind(path)?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        Ok(AdminServer {
            listener,
            path: path.to_owned(),
        })
    }

    /// Serves connections until `stop` is set, then removes the socket.
    pub fn serve(
        self,
        shared: Arc<Shared>,
        links: Vec<AdminLink>,
        calls: mpsc::Sender<Call>,
        stop: &AtomicBool,
    ) {
        let ctx = Arc::new(Ctx {
            shared,
            links: Mutex::new(links),
            calls: Mutex::new(calls),
            next_id: AtomicU64::new(1),
            clients: AtomicUsize::new(0),
            progress_every: PROGRESS_EVERY,
        });
        info!(socket = %self.path.display(), "admin socket listening");
        while !stop.load(Ordering::Relaxed) {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if ctx.clients.fetch_add(1, Ordering::AcqRel) >= MAX_CLIENTS {
                        ctx.clients.fetch_sub(1, Ordering::AcqRel);
                        let _ = refuse(stream, "too many admin clients; try again");
                        continue;
                    }
                    let client = Arc::clone(&ctx);
                    let spawned = std::thread::Builder::new()
                        .name("ferrowall-admin-client".into())
                        .spawn(move || {
                            if let Err(e) = handle(&client, stream) {
                                tracing::debug!("admin client: {e}");
                            }
                            client.clients.fetch_sub(1, Ordering::AcqRel);
                        });
                    if let Err(e) = spawned {
                        // The client (and its place) went with the closure.
                        warn!("admin socket: no thread for a client: {e}");
                        ctx.clients.fetch_sub(1, Ordering::AcqRel);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    warn!("admin socket: accept: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        let _ = fs::remove_file(&self.path);
    }
}

fn refuse(mut stream: UnixStream, why: &str) -> io::Result<()> {
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    write_line(
        &mut stream,
        &Status {
            ok: false,
            error: Some(why.into()),
        },
    )
}

fn write_line<W: Write, T: Serialize>(w: &mut W, value: &T) -> io::Result<()> {
    serde_json::to_writer(&mut *w, value)?;
    w.write_all(b"\n")
}

/// Reads from a stream until a deadline, however the bytes trickle in.
struct Deadline<'a> {
    stream: &'a UnixStream,
    until: Instant,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the request took too long",
            ));
        }
        self.stream.set_read_timeout(Some(left))?;
        // A read that runs out of time reports `WouldBlock` on Unix: the deadline passed.
        self.stream.read(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::WouldBlock {
                io::Error::new(io::ErrorKind::TimedOut, "the request took too long")
            } else {
                e
            }
        })
    }
}

/// Reads the request (within [`READ_TIMEOUT`] in all), answers it.
fn handle(ctx: &Ctx, stream: UnixStream) -> io::Result<()> {
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let mut line = Vec::new();
    let until = Instant::now() + READ_TIMEOUT;
    BufReader::new(
        Deadline {
            stream: &stream,
            until,
        }
        .take(MAX_REQUEST + 1),
    )
    .read_until(b'\n', &mut line)?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut out = BufWriter::new(&stream);
    let request = if line.len() as u64 > MAX_REQUEST {
        // Read what is left (bounded) so that closing does not reset the connection before
        // the client reads the error.
        let _ = io::copy(&mut (&stream).take(DRAIN_LIMIT), &mut io::sink());
        Err(format!("request longer than {MAX_REQUEST} bytes"))
    } else {
        serde_json::from_slice::<Request>(&line).map_err(|e| format!("bad request: {e}"))
    };
    let result = match request {
        Ok(r) => answer(ctx, &r, &mut out),
        Err(e) => Err(Answer::Refused(e)),
    };
    match result {
        // The end of a complete answer.
        Ok(()) => ok(&mut out)?,
        Err(Answer::Refused(e)) => write_line(
            &mut out,
            &Status {
                ok: false,
                error: Some(e),
            },
        )?,
        Err(Answer::Io(e)) => return Err(e),
    }
    out.flush()
}

/// How answering went wrong.
enum Answer {
    /// The request can not be served: the client gets this error.
    Refused(String),
    /// The client went away or stopped reading.
    Io(io::Error),
}

impl From<io::Error> for Answer {
    fn from(e: io::Error) -> Self {
        Answer::Io(e)
    }
}

fn ok<W: Write>(out: &mut W) -> io::Result<()> {
    write_line(
        out,
        &Status {
            ok: true,
            error: None,
        },
    )
}

fn pattern(p: Option<&str>) -> Result<Option<config::DomainPattern>, Answer> {
    p.map(|p| {
        p.parse::<config::DomainPattern>()
            .map_err(|e| Answer::Refused(format!("pattern {p:?}: {e}")))
    })
    .transpose()
}

fn answer<W: Write>(ctx: &Ctx, req: &Request, out: &mut W) -> Result<(), Answer> {
    match req {
        Request::Flows { fqdn } => {
            let pat = pattern(fqdn.as_deref())?;
            let now = ctx.shared.clock.now();
            ok(out)?;
            let mut progress = Progress::new(ctx.progress_every);
            list_flows(ctx, |event| {
                let Listed::Row(row) = event else {
                    return progress.tick(out);
                };
                progress.examined += 1;
                let keep = pat
                    .as_ref()
                    .is_none_or(|p| row.fqdn.as_deref().is_some_and(|n| p.matches(n)));
                if keep {
                    write_line(out, &flow_json(&row, now))?;
                    progress.wrote();
                }
                progress.tick(out)
            })?;
        }
        Request::Fqdn { pattern: p } => {
            let pat = pattern(p.as_deref())?;
            // The flows are counted before the first row can be written: the status line goes
            // first, then progress lines while they are counted.
            ok(out)?;
            let mut progress = Progress::new(ctx.progress_every);
            let mut counts = FlowCounts::new();
            list_flows(ctx, |event| {
                if let Listed::Row(row) = event {
                    count_row(&row, &mut counts);
                    progress.examined += 1;
                }
                progress.tick(out)
            })?;
            let snap = call(ctx, Call::Fqdn)?;
            let rows = rows(snap.bindings, &snap.policy, snap.now, &counts, pat.as_ref());
            for r in rows {
                write_line(out, &r)?;
            }
        }
        Request::Stats {} => {
            let s = stats(&ctx.shared);
            ok(out)?;
            write_line(out, &s)?;
        }
        Request::Rules {} => {
            let rows = rules(&ctx.shared);
            ok(out)?;
            for r in rows {
                write_line(out, &r)?;
            }
        }
        Request::Reload {} => match call(ctx, Call::Reload)? {
            Ok(generation) => {
                ok(out)?;
                write_line(out, &Reloaded { generation })?;
            }
            Err(e) => return Err(Answer::Refused(e)),
        },
    }
    Ok(())
}

/// Asks the control thread and waits for its answer.
fn call<T>(ctx: &Ctx, make: impl FnOnce(mpsc::Sender<T>) -> Call) -> Result<T, Answer> {
    let (tx, rx) = mpsc::channel();
    ctx.calls
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .send(make(tx))
        .map_err(|_| Answer::Refused("ferrowall is stopping".into()))?;
    rx.recv_timeout(ANSWER_TIMEOUT)
        .map_err(|_| Answer::Refused("the control thread did not answer".into()))
}

/// What [`list_flows`] hands its caller.
enum Listed {
    /// A flow.
    Row(FlowRow),
    /// Nothing yet: a worker's next chunk is awaited.
    Waiting,
}

/// Keeps a client that is sent little (a listing filtered down to few rows, or counted before
/// anything is written) hearing from the server: a progress line (`{"progress":N}`, the flows
/// examined so far) and a flush when nothing reached it for a while.
struct Progress {
    every: Duration,
    /// When the client was last sent something.
    sent: Instant,
    /// Lines written since, still buffered.
    pending: bool,
    /// Flows examined so far.
    examined: u64,
}

impl Progress {
    fn new(every: Duration) -> Self {
        Progress {
            every,
            sent: Instant::now(),
            pending: false,
            examined: 0,
        }
    }

    /// A line of the result was written.
    fn wrote(&mut self) {
        self.pending = true;
    }

    /// Sends what is buffered, or a progress line when there is nothing, if the client has
    /// heard nothing for [`Progress::every`].
    fn tick<W: Write>(&mut self, out: &mut W) -> io::Result<()> {
        if self.sent.elapsed() < self.every {
            return Ok(());
        }
        if !self.pending {
            write_line(
                out,
                &ProgressLine {
                    progress: self.examined,
                },
            )?;
        }
        out.flush()?;
        self.sent = Instant::now();
        self.pending = false;
        Ok(())
    }
}

/// Every worker's flows, a bounded chunk at a time; `each` also hears when a chunk is being
/// waited for ([`Listed::Waiting`], about every 20 us while it is). An error from `each`
/// abandons the listing and is returned.
fn list_flows(ctx: &Ctx, mut each: impl FnMut(Listed) -> io::Result<()>) -> Result<(), Answer> {
    // One listing at a time: a client waiting for another's listing hears progress too.
    let mut links = loop {
        match ctx.links.try_lock() {
            Ok(links) => break links,
            Err(TryLockError::Poisoned(p)) => break p.into_inner(),
            Err(TryLockError::WouldBlock) => {
                each(Listed::Waiting)?;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    };
    // The row callback and the wait callback both need it.
    let each = std::cell::RefCell::new(each);
    for (w, link) in links.iter_mut().enumerate() {
        let id = ctx.next_id.fetch_add(1, Ordering::Relaxed);
        let failed = std::cell::RefCell::new(None);
        // Each wait restarts when a chunk arrives: a listing of any length completes as long
        // as the worker keeps answering.
        let since = std::cell::Cell::new(Instant::now());
        // Time spent writing to the client (which may block on a slow one) is not the
        // worker's: it is left out of the wait.
        let call = |event| {
            let started = Instant::now();
            let mut f = failed.borrow_mut();
            if f.is_none() {
                *f = (each.borrow_mut())(event).err();
            }
            since.set(since.get() + started.elapsed());
        };
        let listing = link.list_flows(
            id,
            |row| {
                since.set(Instant::now());
                call(Listed::Row(row));
            },
            || {
                call(Listed::Waiting);
                if failed.borrow().is_some() || since.get().elapsed() > ANSWER_TIMEOUT {
                    return false;
                }
                std::thread::sleep(Duration::from_micros(20));
                true
            },
        );
        if let Some(e) = failed.into_inner() {
            return Err(Answer::Io(e));
        }
        if listing.is_err() {
            return Err(Answer::Refused(format!("worker {w} did not answer")));
        }
    }
    Ok(())
}

fn endpoint(ip: std::net::IpAddr, port: u16) -> String {
    std::net::SocketAddr::new(ip, port).to_string()
}

fn seconds(ns: u64) -> f64 {
    (ns as f64 / 1e8).round() / 10.0
}

fn flow_json(r: &FlowRow, now: u64) -> FlowJson {
    FlowJson {
        worker: r.worker,
        proto: proto_name(r.proto),
        src: endpoint(r.src.0, r.src.1),
        dst: endpoint(r.dst.0, r.dst.1),
        side: r.side.as_str().into(),
        state: r.state.as_str().into(),
        verdict: "allow".into(),
        rule: r.rule.as_deref().map(str::to_owned),
        fqdn: r.fqdn.clone(),
        packets: r.packets,
        bytes: r.bytes,
        age_s: seconds(now.saturating_sub(r.created)),
        idle_s: seconds(now.saturating_sub(r.last_seen)),
    }
}

/// The rules in force with their counters, then the default action.
pub fn rules(shared: &Shared) -> Vec<RuleJson> {
    let totals = shared.rules();
    let sums = totals.totals();
    let Some(policy) = totals.current() else {
        return Vec::new();
    };
    let mut out: Vec<RuleJson> = policy
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (packets, bytes) = sums.get(&Some(r.name.clone())).copied().unwrap_or_default();
            RuleJson {
                index: Some(i),
                name: Some(r.name.to_string()),
                action: r.action.as_str().into(),
                default: false,
                packets,
                bytes,
            }
        })
        .collect();
    let (packets, bytes) = sums.get(&None).copied().unwrap_or_default();
    out.push(RuleJson {
        index: None,
        name: None,
        action: policy.default.as_str().into(),
        default: true,
        packets,
        bytes,
    });
    out
}

/// Every counter of `stats`.
pub fn stats(sh: &Shared) -> StatsJson {
    let ports = sh
        .ports()
        .into_iter()
        .map(|p| PortJson {
            port: p.side.as_str().into(),
            device: p.device,
            rx_packets: p.stats.ipackets,
            tx_packets: p.stats.opackets,
            rx_bytes: p.stats.ibytes,
            tx_bytes: p.stats.obytes,
            imissed: p.stats.imissed,
            rx_nombuf: p.stats.rx_nombuf,
            ierrors: p.stats.ierrors,
            oerrors: p.stats.oerrors,
        })
        .collect();
    let mut all_drops = std::collections::BTreeMap::new();
    let workers = sh
        .workers
        .iter()
        .zip(&sh.pipelines)
        .zip(&sh.worker_generations)
        .enumerate()
        .map(|(id, ((w, p), g))| {
            let mut drops = std::collections::BTreeMap::new();
            for r in DropReason::ALL {
                let n = p.drops[r.index()].get();
                if n > 0 {
                    drops.insert(r.as_str().to_owned(), n);
                    *all_drops.entry(r.as_str().to_owned()).or_insert(0) += n;
                }
            }
            WorkerJson {
                worker: id,
                packets: w.packets(),
                tx_packets: w.tx[0].get() + w.tx[1].get(),
                tx_refused: w.tx_refused[0].get() + w.tx_refused[1].get(),
                busy_polls: w.busy_polls.get(),
                idle_polls: w.idle_polls.get(),
                cycles_per_packet: (w.cycles_per_packet() * 10.0).round() / 10.0,
                flows: p.flows.get(),
                flows_created: p.flows_created.get(),
                generation: g.get(),
                drops,
            }
        })
        .collect();
    let answers = AnswerResult::ALL
        .iter()
        .map(|r| (r.as_str().to_owned(), dns_answers(sh, *r)))
        .collect();
    let l = &sh.learner;
    StatsJson {
        version: sh.version.into(),
        generation: sh.generation.get(),
        reloads: [
            ("ok", sh.reloads.ok.get()),
            ("error", sh.reloads.error.get()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
        ports,
        workers,
        drops: all_drops,
        dns: DnsJson {
            queries: sh.pipelines.iter().map(|p| p.dns_queries.get()).sum(),
            answers,
            held: sh.pipelines.iter().map(|p| p.dns_held.get()).sum(),
            hold_timeouts: sh.pipelines.iter().map(|p| p.dns_hold_timeouts.get()).sum(),
            handoff_full: sh.pipelines.iter().map(|p| p.dns_handoff_full.get()).sum(),
            fqdn_entries: l.entries.get(),
            fqdn_names: l.names.get(),
            evictions: dataplane::fqdn::Eviction::ALL
                .iter()
                .map(|e| (e.as_str().to_owned(), l.evictions[*e as usize].get()))
                .collect(),
            fqdn_flows: sh.pipelines.iter().map(|p| p.fqdn_flows.get()).sum(),
        },
    }
}

/// DNS answers with result `r`: workers count those they screen out, the learner the rest.
pub fn dns_answers(sh: &Shared, r: AnswerResult) -> u64 {
    sh.pipelines
        .iter()
        .map(|p| p.dns_answers[r.index()].get())
        .sum::<u64>()
        + sh.learner.answers[r.index()].get()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::agent::{AdminReply, AdminRequest, link};

    /// A context for one worker whose admin ring is served by `worker` on a thread of its
    /// own, which gets the worker's end of the ring and runs until it returns.
    fn one_worker(
        progress_every: Duration,
        worker: impl FnOnce(dataplane::agent::WorkerLink) + Send + 'static,
    ) -> (Ctx, std::thread::JoinHandle<()>) {
        let text = "[ports.inside]\ndevice = \"a\"\n[ports.outside]\ndevice = \"b\"\n";
        let cfg = config::parse(text, "t.toml").unwrap();
        let policy = Arc::new(dataplane::Policy::compile(&cfg, 1, 1));
        let shared = Arc::new(Shared::new(
            policy,
            1,
            Arc::default(),
            dataplane::worker::Clock::new(1_000_000_000),
        ));
        let (wl, _control, admin) = link();
        let (calls, _) = mpsc::channel();
        let ctx = Ctx {
            shared,
            links: Mutex::new(vec![admin]),
            calls: Mutex::new(calls),
            next_id: AtomicU64::new(1),
            clients: AtomicUsize::new(0),
            progress_every,
        };
        (ctx, std::thread::spawn(move || worker(wl)))
    }

    /// A worker of `chunks` chunks of no rows, each answered `delay` after it is asked for.
    fn slow_empty_worker(
        chunks: usize,
        delay: Duration,
    ) -> impl FnOnce(dataplane::agent::WorkerLink) {
        move |mut wl| {
            let mut served = 0;
            while served < chunks {
                match wl.admin_in.pop() {
                    Ok(AdminRequest::Flows { id, from, .. }) => {
                        std::thread::sleep(delay);
                        served += 1;
                        let next = (served < chunks).then_some(from + 4096);
                        let reply = AdminReply::Flows {
                            id,
                            rows: Vec::new(),
                            next,
                        };
                        if wl.admin_out.push(reply).is_err() {
                            return;
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(1)),
                }
            }
        }
    }

    fn lines_of(out: &[u8]) -> Vec<String> {
        String::from_utf8_lossy(out)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_filtered_listing_that_finds_nothing_for_long_sends_progress() {
        // 12 chunks, 25 ms each: 300 ms of listing with nothing to send, progress every 50 ms.
        let (ctx, worker) = one_worker(
            Duration::from_millis(50),
            slow_empty_worker(12, Duration::from_millis(25)),
        );
        let mut out = Vec::new();
        let req = Request::Flows {
            fqdn: Some("*.example.com".into()),
        };
        assert!(answer(&ctx, &req, &mut out).is_ok());
        worker.join().unwrap();
        let lines = lines_of(&out);
        assert_eq!(lines[0], r#"{"ok":true}"#, "the status line goes first");
        let progress = lines[1..]
            .iter()
            .filter(|l| l.starts_with(r#"{"progress":"#));
        assert!(progress.count() >= 3, "progress while listing: {lines:?}");
        assert!(lines[1..].iter().all(|l| l.starts_with(r#"{"progress":"#)));
    }

    #[test]
    fn fqdn_sends_its_status_line_and_progress_while_it_counts_flows() {
        let (ctx, worker) = one_worker(
            Duration::from_millis(50),
            slow_empty_worker(12, Duration::from_millis(25)),
        );
        let mut out = Vec::new();
        // The control thread's end of the calls is gone here ("ferrowall is stopping"): the
        // answer fails after the listing, with the status line and the progress already sent.
        let r = answer(&ctx, &Request::Fqdn { pattern: None }, &mut out);
        assert!(matches!(r, Err(Answer::Refused(_))));
        worker.join().unwrap();
        let lines = lines_of(&out);
        assert_eq!(lines[0], r#"{"ok":true}"#);
        assert!(lines.len() >= 4, "progress while counting: {lines:?}");
    }

    #[test]
    fn a_quick_listing_sends_no_progress() {
        let (ctx, worker) = one_worker(
            Duration::from_secs(60),
            slow_empty_worker(3, Duration::ZERO),
        );
        let mut out = Vec::new();
        assert!(answer(&ctx, &Request::Flows { fqdn: None }, &mut out).is_ok());
        worker.join().unwrap();
        assert_eq!(lines_of(&out), vec![r#"{"ok":true}"#.to_owned()]);
    }

    #[test]
    fn a_request_trickling_in_is_cut_off_at_the_deadline() {
        let (client, server) = UnixStream::pair().unwrap();
        let writer = std::thread::spawn(move || {
            // A byte every 30 ms, never a newline: each read gets something in time.
            let mut client = client;
            for _ in 0..20 {
                if client.write_all(b"x").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(30));
            }
        });
        let started = Instant::now();
        let mut line = Vec::new();
        let r = BufReader::new(Deadline {
            stream: &server,
            until: started + Duration::from_millis(150),
        })
        .read_until(b'\n', &mut line);
        // Without the deadline the read would last until the writer gives up and end well.
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::TimedOut);
        drop(server);
        writer.join().unwrap();
    }

    #[test]
    fn a_request_that_stops_coming_times_out_too() {
        // One byte, then silence: the last read waits out the deadline itself.
        let (mut client, server) = UnixStream::pair().unwrap();
        client.write_all(b"{").unwrap();
        let mut line = Vec::new();
        let r = BufReader::new(Deadline {
            stream: &server,
            until: Instant::now() + Duration::from_millis(50),
        })
        .read_until(b'\n', &mut line);
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::TimedOut);
        assert_eq!(line, b"{");
    }
}
