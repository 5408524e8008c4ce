//! The control thread's work while the appliance runs: messages from workers (DNS answers to
//! learn from, tables and policies handed back), learning and expiry, publishing FQDN tables,
//! releasing held answers, reloading, saving the FQDN cache.

use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use dataplane::agent::{ControlLink, FromWorker, ToWorker};
use dataplane::fqdn::{AnswerResult, Learner, LearnerStats, Limits};
use dataplane::worker::Clock;
use dataplane::{FqdnMap, Policy};
use tracing::{error, info, warn};

use crate::fqdn;
use crate::shared::{Call, FqdnSnapshot, Shared};

/// The control thread's state.
#[derive(Debug)]
pub struct Control {
    /// The configuration file.
    pub path: PathBuf,
    /// The configuration in force.
    pub cfg: config::Config,
    /// The policy in force.
    pub policy: Arc<Policy>,
    /// One link per worker.
    pub links: Vec<ControlLink>,
    /// The DNS learner and the workers' tables.
    pub learner: Learner,
    /// The data path's clock.
    pub clock: Clock,
    /// Held DNS answers waiting to be told when to go: (worker, token, learned).
    pending_holds: Vec<(usize, u64, bool)>,
    /// Per worker: an answer it handed over without a hold was learned since its last held
    /// one. A packet's several answers (DNS over TCP) carry its hold on the last one only, so
    /// the hold must wait for what the earlier ones taught.
    learned_unheld: Vec<bool>,
    last_save: Instant,
    /// The periodic save being written, off the control thread.
    saving: Option<std::thread::JoinHandle<()>>,
    /// What the admin and metrics threads read, when they run.
    pub shared: Option<Arc<Shared>>,
    /// Requests of the admin thread.
    pub calls: Option<mpsc::Receiver<Call>>,
}

impl Control {
    /// The controller of `workers` workers; returns it with each worker's first FQDN table.
    pub fn new(
        path: PathBuf,
        cfg: config::Config,
        policy: Arc<Policy>,
        workers: usize,
        clock: Clock,
    ) -> (Control, std::vec::IntoIter<Box<FqdnMap>>) {
        let (learner, maps) = Learner::new(
            Limits::from_config(&cfg.dns),
            Arc::clone(&policy),
            workers,
            Arc::new(LearnerStats::default()),
        );
        (
            Control {
                path,
                cfg,
                policy,
                links: Vec::with_capacity(workers),
                learner,
                clock,
                pending_holds: Vec::new(),
                learned_unheld: vec![false; workers],
                last_save: Instant::now(),
                saving: None,
                shared: None,
                calls: None,
            },
            maps.into_iter(),
        )
    }

    /// Restores the FQDN cache file, if configured. A missing or corrupt file is reported,
    /// never fatal.
    pub fn load_cache(&mut self) {
        let Some(path) = self.cfg.dns.cache_file.clone() else {
            return;
        };
        let now = self.clock.now();
        match fqdn::load_cache(&path, &mut self.learner, now) {
            Ok(n) => info!(file = %path.display(), bindings = n, "FQDN cache restored"),
            Err(e) if !path.exists() => info!("no FQDN cache yet ({e})"),
            Err(e) => warn!("FQDN cache not restored: {e}"),
        }
    }

    /// Saves the FQDN cache file now, if configured (at stop: after a periodic save still being
    /// written); failures are logged.
    pub fn save_cache(&mut self) {
        self.last_save = Instant::now();
        if let Some(h) = self.saving.take() {
            let _ = h.join();
        }
        let Some(path) = self.cfg.dns.cache_file.clone() else {
            return;
        };
        log_save(
            &path,
            fqdn::save_cache(&path, &self.learner, self.clock.now()),
        );
    }

    /// The periodic save: the bindings are taken here, and serialised and written (with an
    /// fsync) on a thread of its own, so that learning, publication and held answers do not
    /// wait for the disk. Skipped while the previous one is still being written.
    fn save_cache_in_background(&mut self) {
        if self.saving.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        self.last_save = Instant::now();
        if let Some(h) = self.saving.take() {
            let _ = h.join();
        }
        let Some(path) = self.cfg.dns.cache_file.clone() else {
            return;
        };
        let snap = fqdn::snapshot(&self.learner, self.clock.now());
        let spawned = std::thread::Builder::new()
            .name("ferrowall-cache".into())
            .spawn(move || log_save(&path, fqdn::write_cache(&path, snap)));
        match spawned {
            Ok(h) => self.saving = Some(h),
            Err(e) => warn!("FQDN cache not saved: no thread to write it: {e}"),
        }
    }

    /// Does what is waiting; returns whether there was anything.
    pub fn poll(&mut self) -> bool {
        let now = self.clock.now();
        let mut busy = false;
        for w in 0..self.links.len() {
            while let Ok(msg) = self.links[w].from_worker.pop() {
                busy = true;
                match msg {
                    FromWorker::Retired(p) => {
                        if let Some(sh) = &self.shared {
                            sh.rules().retired(p.generation);
                        }
                    }
                    FromWorker::FqdnReturned(map) => self.learner.returned(w, map),
                    FromWorker::RetiredRules(rules) => drop(rules),
                    FromWorker::Dns(h) => {
                        // What this answer or an earlier unheld one of the worker taught.
                        let r = self.learner.learn(&h.message, now);
                        let earlier = self.learned_unheld.get_mut(w).is_some_and(std::mem::take);
                        let learned = r == AnswerResult::Learned || earlier;
                        match h.hold {
                            Some(token) => self.pending_holds.push((w, token, learned)),
                            None => {
                                if let Some(l) = self.learned_unheld.get_mut(w) {
                                    *l = learned;
                                }
                            }
                        }
                    }
                }
            }
        }
        self.learner.expire(now);
        let version = self.learner.commit();
        for w in 0..self.links.len() {
            if self.links[w].to_worker.slots() == 0 {
                continue;
            }
            if let Some(table) = self.learner.publish(w) {
                busy = true;
                // A free slot was checked just above and only this thread pushes.
                let _ = self.links[w].to_worker.push(ToWorker::Fqdn(table));
            }
        }
        let links = &mut self.links;
        self.pending_holds.retain(|&(w, token, learned)| {
            let version = if learned { version } else { 0 };
            links[w]
                .to_worker
                .push(ToWorker::Hold { token, version })
                .is_err()
        });
        if self.last_save.elapsed() >= self.cfg.dns.cache_interval {
            self.save_cache_in_background();
        }
        busy | self.serve_calls()
    }

    /// Answers the admin thread's requests; returns whether there were any.
    fn serve_calls(&mut self) -> bool {
        let mut calls = Vec::new();
        if let Some(rx) = &self.calls {
            while let Ok(c) = rx.try_recv() {
                calls.push(c);
            }
        }
        let busy = !calls.is_empty();
        for call in calls {
            // A caller that gave up has dropped its receiver: nothing to do about it.
            match call {
                Call::Reload(reply) => {
                    let _ = reply.send(self.reload());
                }
                Call::Fqdn(reply) => {
                    let _ = reply.send(FqdnSnapshot {
                        bindings: self.learner.bindings().collect(),
                        policy: Arc::clone(&self.policy),
                        now: self.clock.now(),
                    });
                }
            }
        }
        busy
    }

    /// Re-reads the configuration and, if it is valid, publishes the new policy to every
    /// worker and re-matches the learned names. On error the running policy stays and the error
    /// (`FILE:LINE:COL: message`) is returned.
    pub fn reload(&mut self) -> Result<u64, String> {
        let cfg = match config::load(&self.path) {
            Ok(c) => c,
            Err(e) => {
                error!("reload refused, the running policy stays: {e}");
                if let Some(sh) = &self.shared {
                    sh.reloads.error.inc();
                }
                return Err(e.to_string());
            }
        };
        if cfg.dpdk != self.cfg.dpdk
            || cfg.ports != self.cfg.ports
            || cfg.flows.capacity != self.cfg.flows.capacity
            || cfg.flows.fragment_capacity != self.cfg.flows.fragment_capacity
            || cfg.admin != self.cfg.admin
            || cfg.metrics != self.cfg.metrics
        {
            warn!(
                "reload: [dpdk], [ports], [flows].capacity, [flows].fragment_capacity, [admin] and [metrics] take effect at the next start only"
            );
        }
        let generation = self.policy.generation + 1;
        let policy = Arc::new(Policy::compile(&cfg, generation, self.links.len()));
        for l in &mut self.links {
            // A full inbox means a stuck worker; it would get the next reload instead.
            if l.to_worker
                .push(ToWorker::Policy(Arc::clone(&policy)))
                .is_err()
            {
                warn!(
                    "a worker's inbox is full; it keeps generation {}",
                    self.policy.generation
                );
            }
        }
        self.learner.set_limits(Limits::from_config(&cfg.dns));
        self.learner.set_policy(Arc::clone(&policy));
        if let Some(sh) = &self.shared {
            sh.rules().publish(Arc::clone(&policy));
            sh.generation.set(generation);
            sh.reloads.ok.inc();
        }
        info!(
            generation,
            rules = policy.rules.len(),
            "configuration reloaded"
        );
        self.policy = policy;
        self.cfg = cfg;
        Ok(generation)
    }
}

/// How long the control loop keeps spinning after its last piece of work before it sleeps:
/// held DNS answers need it to react within microseconds while answers come in.
pub const SPIN_AFTER_WORK: Duration = Duration::from_millis(20);
/// How long it sleeps when idle.
pub const IDLE_SLEEP: Duration = Duration::from_millis(1);

/// Logs how saving the cache file went.
fn log_save(path: &std::path::Path, result: std::io::Result<usize>) {
    match result {
        Ok(n) => tracing::debug!(file = %path.display(), bindings = n, "FQDN cache saved"),
        Err(e) => warn!(file = %path.display(), "FQDN cache not saved: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::agent;
    use dataplane::dns::message::build::{RecordSpec, response};
    use dataplane::dns::message::rtype;
    use dataplane::pipeline::DnsHandoff;

    /// A controller of one worker under `extra_dns` and a rule for github.com, with the
    /// worker's end of their link.
    fn control(extra_dns: &str) -> (Control, agent::WorkerLink) {
        let text = format!(
            "[ports.inside]\ndevice = \"a\"\n[ports.outside]\ndevice = \"b\"\n[dns]\n{extra_dns}\n[[rule]]\nname = \"gh\"\naction = \"allow\"\ndst_fqdn = [\"github.com\"]\n"
        );
        let cfg = config::parse(&text, "t.toml").expect("valid");
        let policy = Arc::new(Policy::compile(&cfg, 1, 1));
        let (mut control, _tables) =
            Control::new("t.toml".into(), cfg, policy, 1, Clock::new(1_000_000_000));
        let (worker, link, _admin) = agent::link();
        control.links.push(link);
        (control, worker)
    }

    /// A DNS answer teaching github.com's address.
    fn github_answer(id: u16) -> Vec<u8> {
        response(
            id,
            "github.com",
            rtype::A,
            &[(
                "github.com",
                60,
                RecordSpec::A("140.82.112.3".parse().unwrap()),
            )],
        )
    }

    #[test]
    fn a_hold_waits_for_what_earlier_answers_of_its_packet_taught() {
        let (mut control, mut worker) = control("");
        // One TCP segment completed two answers: an A answer that teaches an address, then
        // an empty AAAA answer (nothing to learn); the segment's hold rides on the last.
        let a = github_answer(1);
        let empty = response(2, "github.com", rtype::AAAA, &[]);
        for (message, hold) in [(a, None), (empty, Some(9))] {
            let h = DnsHandoff { message, hold };
            assert!(worker.outbox.push(FromWorker::Dns(h)).is_ok());
        }
        control.poll();
        let mut table = None;
        let mut hold = None;
        while let Ok(m) = worker.inbox.pop() {
            match m {
                ToWorker::Fqdn(t) => table = Some(t.version()),
                ToWorker::Hold { token, version } => hold = Some((token, version)),
                _ => {}
            }
        }
        let table = table.expect("a table was published");
        assert!(table > 0);
        assert_eq!(
            hold,
            Some((9, table)),
            "released once the address is everywhere"
        );
    }

    #[test]
    fn the_periodic_save_is_written_off_the_control_thread() {
        let dir = std::env::temp_dir().join(format!("ferrowall-bgsave-{}", std::process::id()));
        let path = dir.join("cache.json");
        let (mut control, mut worker) = control(&format!(
            "cache_file = {:?}\ncache_interval = \"1ms\"",
            path.display().to_string()
        ));
        let h = DnsHandoff {
            message: github_answer(1),
            hold: None,
        };
        assert!(worker.outbox.push(FromWorker::Dns(h)).is_ok());
        std::thread::sleep(Duration::from_millis(5));
        control.poll();
        // The save runs on its own thread; wait for it, then read what it wrote.
        control
            .saving
            .take()
            .expect("a save was started")
            .join()
            .unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(written.contains("github.com") && written.contains("140.82.112.3"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
