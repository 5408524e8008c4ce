//! `ferrowall flows|fqdn|stats|rules|reload`: asks a running instance over its admin socket and
//! prints the answer, as aligned text or (`--json`) as the JSON of CONTRACT.md.

use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow};
use serde::de::DeserializeOwned;

use super::proto::{FlowJson, ProgressLine, Reloaded, Request, RuleJson, StatsJson, Status};
use crate::cli::Failure;
use crate::fqdn::FqdnRow;

/// How long to wait for the next line of an answer (the server sends a progress line at least
/// every second while it works on one).
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends `req` to the instance at `socket` and prints its answer to stdout.
pub fn run(socket: &Path, req: &Request, json: bool) -> Result<(), Failure> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    ask(socket, req, json, READ_TIMEOUT, &mut out)
}

/// [`run`], printing to `out` and waiting at most `timeout` for each line.
fn ask<W: Write>(
    socket: &Path,
    req: &Request,
    json: bool,
    timeout: Duration,
    out: &mut W,
) -> Result<(), Failure> {
    let stream = UnixStream::connect(socket).with_context(|| {
        format!(
            "connecting to the admin socket {} (is ferrowall running? see [admin].socket; --socket PATH)",
            socket.display()
        )
    })?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut line = serde_json::to_vec(req).map_err(|e| anyhow!(e))?;
    line.push(b'\n');
    (&stream).write_all(&line)?;
    let mut lines = BufReader::new(&stream).lines();
    let status: Status = match lines.next() {
        Some(l) => serde_json::from_str(&l.map_err(|e| waited(e, timeout))?)
            .context("reading the answer")?,
        None => return Err(anyhow!("ferrowall closed the connection without answering").into()),
    };
    if !status.ok {
        let why = status.error.unwrap_or_else(|| "failed".into());
        return Err(anyhow!("{why}").into());
    }
    let mut rows = Rows {
        lines,
        ended: false,
        timeout,
    };
    let printed = print(req, json, &mut rows, out).and_then(|()| out.flush());
    match printed {
        // `ferrowall flows | head` stops reading: that is not a failure.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e.into()),
        Ok(()) => Ok(()),
    }
}

/// The lines of an answer's result, up to the status line that ends it: a failure there (or
/// no such line: the answer was cut short) is an error, never the end of a shorter result.
/// Progress lines are skipped.
struct Rows<'a> {
    lines: std::io::Lines<BufReader<&'a UnixStream>>,
    ended: bool,
    /// The read timeout, for the error when it runs out.
    timeout: Duration,
}

/// A read error, said in words when it is the read timeout running out.
fn waited(e: io::Error, timeout: Duration) -> io::Error {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "ferrowall sent nothing for {} s (not even progress): the answer was given up",
                timeout.as_secs_f64()
            ),
        ),
        _ => e,
    }
}

impl Iterator for Rows<'_> {
    type Item = io::Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        let line = match self.lines.find(|l| {
            l.as_ref()
                .map_or(true, |l| serde_json::from_str::<ProgressLine>(l).is_err())
        }) {
            Some(Ok(l)) => l,
            Some(Err(e)) => {
                self.ended = true;
                return Some(Err(waited(e, self.timeout)));
            }
            None => {
                self.ended = true;
                return Some(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the answer was cut short (ferrowall stopped or gave up on this client)",
                )));
            }
        };
        match serde_json::from_str::<Status>(&line) {
            Ok(status) => {
                self.ended = true;
                (!status.ok).then(|| {
                    Err(io::Error::other(
                        status.error.unwrap_or_else(|| "failed".into()),
                    ))
                })
            }
            Err(_) => Some(Ok(line)),
        }
    }
}

type Lines<'a> = Rows<'a>;

fn parse<T: DeserializeOwned>(line: &str) -> io::Result<T> {
    serde_json::from_str(line).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The rows of a listing, or its error if it failed before its first row: a listing that
/// fails at once (a worker not answering, say) prints nothing, not even its header or `[`.
fn rows_or_failure<'l, 'a>(
    lines: &'l mut Lines<'a>,
) -> io::Result<std::iter::Peekable<&'l mut Lines<'a>>> {
    let mut rows = lines.peekable();
    if matches!(rows.peek(), Some(Err(_))) {
        if let Some(Err(e)) = rows.next() {
            return Err(e);
        }
    }
    Ok(rows)
}

fn print<W: Write>(
    req: &Request,
    json: bool,
    lines: &mut Lines<'_>,
    out: &mut W,
) -> io::Result<()> {
    match req {
        Request::Flows { .. } | Request::Fqdn { .. } | Request::Rules {} if json => {
            let lines = rows_or_failure(lines)?;
            // Rows arrive one JSON object per line: print them as one array, streaming.
            out.write_all(b"[")?;
            let mut first = true;
            for l in lines {
                let l = l?;
                if !first {
                    out.write_all(b",")?;
                }
                first = false;
                out.write_all(l.as_bytes())?;
            }
            out.write_all(b"]\n")
        }
        Request::Stats {} | Request::Reload {} if json => {
            for l in lines {
                writeln!(out, "{}", l?)?;
            }
            Ok(())
        }
        Request::Flows { .. } => {
            let lines = rows_or_failure(lines)?;
            writeln!(
                out,
                "{:<3} {:<6} {:<41} {:<41} {:<11} {:<16} {:<24} {:>10} {:>12} {:>8}",
                "W", "PROTO", "SRC", "DST", "STATE", "RULE", "FQDN", "PACKETS", "BYTES", "AGE"
            )?;
            let mut n = 0u64;
            for l in lines {
                let f: FlowJson = parse(&l?)?;
                n += 1;
                writeln!(
                    out,
                    "{:<3} {:<6} {:<41} {:<41} {:<11} {:<16} {:<24} {:>10} {:>12} {:>7.1}s",
                    f.worker,
                    f.proto,
                    f.src,
                    f.dst,
                    f.state,
                    f.rule.as_deref().unwrap_or("(default)"),
                    f.fqdn.as_deref().unwrap_or("-"),
                    f.packets,
                    f.bytes,
                    f.age_s
                )?;
            }
            writeln!(out, "{n} flows")
        }
        Request::Fqdn { .. } => {
            let lines = rows_or_failure(lines)?;
            writeln!(
                out,
                "{:<39} {:>10} {:>6}  {:<40} RULES",
                "ADDRESS", "EXPIRES", "FLOWS", "NAMES"
            )?;
            let mut n = 0u64;
            for l in lines {
                let r: FqdnRow = parse(&l?)?;
                n += 1;
                writeln!(
                    out,
                    "{:<39} {:>9.1}s {:>6}  {:<40} {}",
                    r.ip,
                    r.expires_in_s,
                    r.flows,
                    r.names.join(","),
                    r.rules.join(",")
                )?;
            }
            writeln!(out, "{n} addresses")
        }
        Request::Rules {} => {
            writeln!(
                out,
                "{:>5}  {:<24} {:<7} {:>14} {:>16}",
                "#", "RULE", "ACTION", "PACKETS", "BYTES"
            )?;
            for l in lines {
                let r: RuleJson = parse(&l?)?;
                let index = r.index.map_or_else(|| "-".to_owned(), |i| i.to_string());
                let name = r.name.unwrap_or_else(|| "(default)".into());
                writeln!(
                    out,
                    "{index:>5}  {name:<24} {:<7} {:>14} {:>16}",
                    r.action, r.packets, r.bytes
                )?;
            }
            Ok(())
        }
        Request::Stats {} => {
            for l in lines {
                print_stats(&parse(&l?)?, out)?;
            }
            Ok(())
        }
        Request::Reload {} => {
            for l in lines {
                let r: Reloaded = parse(&l?)?;
                writeln!(out, "reloaded: generation {}", r.generation)?;
            }
            Ok(())
        }
    }
}

fn print_stats<W: Write>(s: &StatsJson, out: &mut W) -> io::Result<()> {
    let join = |m: &std::collections::BTreeMap<String, u64>| {
        if m.is_empty() {
            "none".to_owned()
        } else {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    writeln!(
        out,
        "ferrowall {}  policy generation {}  reloads: {}",
        s.version,
        s.generation,
        join(&s.reloads)
    )?;
    writeln!(out, "ports")?;
    for p in &s.ports {
        writeln!(
            out,
            "  {:<8} {:<20} rx {} ({} bytes)  tx {} ({} bytes)  missed {}  rx_nombuf {}  errors in {} out {}",
            p.port,
            p.device,
            p.rx_packets,
            p.rx_bytes,
            p.tx_packets,
            p.tx_bytes,
            p.imissed,
            p.rx_nombuf,
            p.ierrors,
            p.oerrors
        )?;
    }
    writeln!(out, "workers")?;
    for w in &s.workers {
        writeln!(
            out,
            "  {:<3} packets {}  tx {}  tx_refused {}  polls busy {} idle {}  cycles/packet {:.1}  flows {} (created {})  generation {}",
            w.worker,
            w.packets,
            w.tx_packets,
            w.tx_refused,
            w.busy_polls,
            w.idle_polls,
            w.cycles_per_packet,
            w.flows,
            w.flows_created,
            w.generation
        )?;
        writeln!(out, "      drops: {}", join(&w.drops))?;
    }
    writeln!(out, "drops: {}", join(&s.drops))?;
    let d = &s.dns;
    writeln!(
        out,
        "dns: queries {}  answers: {}",
        d.queries,
        join(&d.answers)
    )?;
    writeln!(
        out,
        "     held now {}  hold timeouts {}  handoff full {}  fqdn flows {}",
        d.held, d.hold_timeouts, d.handoff_full, d.fqdn_flows
    )?;
    writeln!(
        out,
        "fqdn: {} addresses, {} names  evictions: {}",
        d.fqdn_entries,
        d.fqdn_names,
        join(&d.evictions)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows_of(answer: &str) -> Vec<io::Result<String>> {
        let (mut server, client) = UnixStream::pair().unwrap();
        server.write_all(answer.as_bytes()).unwrap();
        drop(server);
        Rows {
            lines: BufReader::new(&client).lines(),
            ended: false,
            timeout: READ_TIMEOUT,
        }
        .collect()
    }

    /// `ask`s a server that writes `lines`, the first at once and the others `gap` apart, the
    /// client waiting at most `timeout` for each line: what it printed, and its error.
    fn ask_slow_server(
        req: &Request,
        json: bool,
        lines: &[&str],
        gap: Duration,
        timeout: Duration,
    ) -> (String, Result<(), String>) {
        let dir = std::env::temp_dir().join(format!("ferrowall-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{:?}.sock", std::thread::current().id()));
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let lines: Vec<String> = lines.iter().map(|l| format!("{l}\n")).collect();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = String::new();
            BufReader::new(&s).read_line(&mut req).unwrap();
            for (i, l) in lines.iter().enumerate() {
                if i > 0 {
                    std::thread::sleep(gap);
                }
                if s.write_all(l.as_bytes()).is_err() {
                    return;
                }
            }
        });
        let mut out = Vec::new();
        let r = ask(&path, req, json, timeout, &mut out);
        server.join().unwrap();
        let _ = std::fs::remove_file(&path);
        (
            String::from_utf8(out).unwrap(),
            r.map_err(|e| format!("{e:?}")),
        )
    }

    const ALL_FLOWS: Request = Request::Flows { fqdn: None };

    #[test]
    fn progress_lines_keep_a_slow_answer_alive_and_are_not_printed() {
        let progress = r#"{"progress":4096}"#;
        let mut lines = vec![r#"{"ok":true}"#];
        lines.extend([progress; 12]);
        let row = r#"{"worker":0,"proto":"tcp","src":"10.0.0.2:1000","dst":"192.0.2.1:443","side":"inside","state":"established","verdict":"allow","rule":"web","fqdn":null,"packets":3,"bytes":180,"age_s":1.0,"idle_s":0.5}"#;
        lines.extend([row, progress, r#"{"ok":true}"#]);
        // 15 lines 100 ms apart: 1.5 s in all, each line well inside the 1 s timeout.
        let (printed, r) = ask_slow_server(
            &ALL_FLOWS,
            true,
            &lines,
            Duration::from_millis(100),
            Duration::from_secs(1),
        );
        assert_eq!(r, Ok(()), "the answer completes");
        assert!(!printed.contains("progress"), "{printed}");
        let flows: Vec<serde_json::Value> = serde_json::from_str(&printed).unwrap();
        assert_eq!(flows.len(), 1);
        assert_eq!(flows[0]["dst"], "192.0.2.1:443");
    }

    #[test]
    fn an_answer_that_goes_silent_after_its_status_fails_with_the_wait() {
        // The status line at once, then silence past the timeout: the rows' read times out.
        let lines = [r#"{"ok":true}"#, r#"{"progress":1}"#, r#"{"ok":true}"#];
        let (_, r) = ask_slow_server(
            &ALL_FLOWS,
            true,
            &lines,
            Duration::from_millis(600),
            Duration::from_millis(150),
        );
        let e = r.expect_err("no line for 600 ms with a 150 ms timeout");
        assert!(e.contains("sent nothing for"), "{e}");
    }

    #[test]
    fn a_listing_that_fails_before_its_first_row_prints_nothing() {
        let lines = [
            r#"{"ok":true}"#,
            r#"{"ok":false,"error":"worker 0 did not answer"}"#,
        ];
        for (req, json) in [
            (ALL_FLOWS, true),
            (ALL_FLOWS, false),
            (Request::Fqdn { pattern: None }, true),
            (Request::Fqdn { pattern: None }, false),
        ] {
            let (printed, r) =
                ask_slow_server(&req, json, &lines, Duration::ZERO, Duration::from_secs(5));
            assert!(r.unwrap_err().contains("worker 0 did not answer"));
            assert_eq!(printed, "", "nothing printed");
        }
    }

    #[test]
    fn an_answer_ends_with_its_status_line_or_is_an_error() {
        let whole = rows_of("{\"a\":1}\n{\"a\":2}\n{\"ok\":true}\n");
        assert_eq!(whole.len(), 2);
        assert!(whole.iter().all(Result::is_ok));
        // Failed half-way: the rows so far, then the error.
        let failed = rows_of("{\"a\":1}\n{\"ok\":false,\"error\":\"worker 1 did not answer\"}\n");
        assert_eq!(failed.len(), 2);
        let e = failed[1].as_ref().unwrap_err();
        assert_eq!(e.to_string(), "worker 1 did not answer");
        // Cut short: no status line at the end.
        let cut = rows_of("{\"a\":1}\n");
        assert_eq!(
            cut[1].as_ref().unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }
}
