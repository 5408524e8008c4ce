//! A loom model of FQDN table publication (`fqdn::table::Replica`) and held-answer release
//! (`agent::FleetVersions`), explored over every interleaving loom can reach.
//!
//! Control records changes, publishes each worker's next copy when it holds the spare, and tells
//! worker 0 to release a held answer once every worker reads the version that contains it.
//! Workers swap in what they receive at their quiescent point, give the old copy back, and
//! publish the version they read. The rings are modelled as non-blocking queues (what `rtrb`
//! gives), the version gauges as loom atomics with the orderings `Gauge` uses.
//!
//! Checked: a copy a worker reads always holds exactly the changes its version says (never a
//! copy being changed, never a stale one passed off as new); a held answer is released only when
//! every worker's copy contains what it taught; every copy comes back; nothing deadlocks.

use std::collections::VecDeque;
use std::sync::Arc as StdArc;

use dataplane::fqdn::{FqdnMap, IpEntry, IpKey, Op, Replica};
use loom::sync::Mutex;
use loom::sync::atomic::{AtomicU64, Ordering};
use loom::thread;

const WORKERS: usize = 2;

/// A non-blocking single-producer single-consumer queue, as the rings behave.
struct Ring<T>(Mutex<VecDeque<T>>);

impl<T> Ring<T> {
    fn new() -> Self {
        Ring(Mutex::new(VecDeque::new()))
    }
    fn push(&self, v: T) {
        self.0.lock().unwrap().push_back(v);
    }
    fn pop(&self) -> Option<T> {
        self.0.lock().unwrap().pop_front()
    }
}

enum ToWorker {
    Table(Box<FqdnMap>),
    Hold(u64),
}

fn key(n: u32) -> IpKey {
    IpKey::new(std::net::IpAddr::from(n.to_be_bytes()))
}

fn entry() -> StdArc<IpEntry> {
    StdArc::new(IpEntry {
        names: vec![StdArc::from("a.test")].into(),
        expires: u64::MAX,
        rules: Vec::new().into(),
        generation: 1,
    })
}

/// Change `v` puts address `v`; a copy at version `v` holds addresses 1..=v.
fn consistent(t: &FqdnMap) -> bool {
    let v = u32::try_from(t.version()).unwrap();
    t.len() == v as usize && (1..=v).all(|n| t.get(&key(n)).is_some())
}

#[test]
fn publication_and_hold_release() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(|| {
        let to_worker: StdArc<Vec<Ring<ToWorker>>> =
            StdArc::new((0..WORKERS).map(|_| Ring::new()).collect());
        let returned: StdArc<Vec<Ring<Box<FqdnMap>>>> =
            StdArc::new((0..WORKERS).map(|_| Ring::new()).collect());
        let versions: loom::sync::Arc<Vec<AtomicU64>> =
            loom::sync::Arc::new((0..WORKERS).map(|_| AtomicU64::new(0)).collect());
        let released = loom::sync::Arc::new(AtomicU64::new(0));

        let mut replicas = Vec::new();
        let mut handles = Vec::new();
        for w in 0..WORKERS {
            let (r, first) = Replica::new();
            replicas.push(r);
            let (to_worker, returned, versions, released) = (
                StdArc::clone(&to_worker),
                StdArc::clone(&returned),
                versions.clone(),
                released.clone(),
            );
            handles.push(thread::spawn(move || {
                let mut table = first;
                let mut hold: Option<u64> = None;
                // A worker's loop: quiescent points until it read the last version and (worker 0)
                // released its held answer.
                for _ in 0..8 {
                    while let Some(msg) = to_worker[w].pop() {
                        match msg {
                            ToWorker::Table(t) => {
                                assert!(
                                    consistent(&t),
                                    "a copy must hold exactly its version's changes"
                                );
                                assert!(t.version() >= table.version(), "versions never go back");
                                let v = t.version();
                                let old = std::mem::replace(&mut table, t);
                                returned[w].push(old);
                                versions[w].store(v, Ordering::Relaxed);
                            }
                            ToWorker::Hold(v) => hold = Some(v),
                        }
                    }
                    if let Some(v) = hold {
                        let fleet = versions
                            .iter()
                            .map(|g| g.load(Ordering::Relaxed))
                            .min()
                            .unwrap();
                        if fleet >= v {
                            // Released: the answer's address must be visible to everyone.
                            assert!(table.get(&key(u32::try_from(v).unwrap())).is_some());
                            released.store(1, Ordering::Relaxed);
                            hold = None;
                        }
                    }
                    if table.version() == 2 && (w != 0 || released.load(Ordering::Relaxed) == 1) {
                        break;
                    }
                    thread::yield_now();
                }
                table
            }));
        }

        // Control: change 1, then change 2 once change 1 went out, publishing whenever a spare
        // is back; then the hold for change 2.
        let mut sent_hold = false;
        let mut v = 0u64;
        for _ in 0..12 {
            if v < 2 && replicas.iter().all(|r| r.sent() >= v) {
                v += 1;
                for r in &mut replicas {
                    r.record(v, Op::Put(key(u32::try_from(v).unwrap()), entry()));
                }
            }
            for (w, r) in replicas.iter_mut().enumerate() {
                while let Some(t) = returned[w].pop() {
                    r.returned(t);
                }
                if let Some(t) = r.publish(Vec::new) {
                    to_worker[w].push(ToWorker::Table(t));
                }
            }
            if v == 2 && !sent_hold {
                to_worker[0].push(ToWorker::Hold(2));
                sent_hold = true;
            }
            if v == 2 && replicas.iter().all(|r| !r.behind()) {
                break;
            }
            thread::yield_now();
        }
        for h in handles {
            let _ = h.join().unwrap();
        }
    });
}
