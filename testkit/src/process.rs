//! The `ferrowall` process under test: started, watched through its output, stopped by signal.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Path of the `ferrowall` binary of the same build as the running test: cargo puts test
/// binaries in `target/<profile>/deps/` and the binary in `target/<profile>/`, and builds it
/// before running the `control` crate's integration tests.
pub fn ferrowall_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("test binaries live in target/<profile>/deps");
    let bin = profile_dir.join("ferrowall");
    assert!(
        bin.exists(),
        "{} is missing: run the tests of the control crate (cargo test -p control)",
        bin.display()
    );
    bin
}

/// A running process whose stdout and stderr are collected as they come.
#[derive(Debug)]
pub struct Running {
    child: Option<Child>,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

/// What a stopped process left.
#[derive(Debug)]
pub struct Finished {
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

fn collect<R: Read + Send + 'static>(r: R, into: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            let mut s = into.lock().unwrap_or_else(PoisonError::into_inner);
            s.push_str(&line);
            s.push('\n');
        }
    })
}

impl Running {
    /// Starts `cmd` with piped output.
    pub fn start(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
        let stderr = Arc::new(Mutex::new(String::new()));
        let stdout = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            collect(child.stderr.take().expect("piped"), Arc::clone(&stderr)),
            collect(child.stdout.take().expect("piped"), Arc::clone(&stdout)),
        ];
        Running {
            child: Some(child),
            stderr,
            stdout,
            readers,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until stderr contains `needle`; panics with the output after `timeout`, or if the
    /// process exits first.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) {
        let start = Instant::now();
        loop {
            if self.stderr().contains(needle) {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    std::thread::sleep(Duration::from_millis(100));
                    panic!(
                        "process exited ({status}) before writing {needle:?}:\n{}",
                        self.stderr()
                    );
                }
            }
            if start.elapsed() > timeout {
                panic!(
                    "no {needle:?} after {timeout:?}; stderr so far:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` (a name such as "INT" or "HUP").
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{signal} {} failed", self.pid());
    }

    /// Sends SIGINT and waits for the process to exit (killing it after `timeout`).
    pub fn stop(self, timeout: Duration) -> Finished {
        self.signal("INT");
        self.wait(timeout)
    }

    /// Waits for the process to exit by itself (killing it after `timeout`).
    pub fn wait(mut self, timeout: Duration) -> Finished {
        let mut child = self.child.take().expect("running");
        let start = Instant::now();
        let status = loop {
            if let Ok(Some(s)) = child.try_wait() {
                break s;
            }
            if start.elapsed() > timeout {
                let _ = child.kill();
                let s = child.wait().expect("wait");
                panic!(
                    "process did not exit within {timeout:?} (killed: {s}); stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        Finished {
            status,
            stdout: self
                .stdout
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            stderr: self.stderr(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
