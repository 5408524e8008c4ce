//! The network-namespace lab of `scripts/lab`: a client and a server namespace, and between them
//! the namespace where ferrowall's two `net_af_packet` ports live. Torn down on drop.

use std::process::{Command, Output};

use crate::project_root;

/// Addresses `scripts/lab` assigns.
pub mod addr {
    /// The inside client.
    pub const CLIENT: &str = "10.0.0.2";
    /// The inside client, IPv6.
    pub const CLIENT6: &str = "fd00::2";
    /// The outside server.
    pub const SERVER: &str = "192.0.2.10";
    /// The outside server, IPv6.
    pub const SERVER6: &str = "2001:db8::10";
    /// The outside DNS server's address (on the server namespace).
    pub const DNS: &str = "192.0.2.53";
}

/// One of the lab's namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ns {
    /// The inside client.
    Client,
    /// The outside server.
    Server,
    /// ferrowall's.
    Fw,
}

impl Ns {
    fn as_str(self) -> &'static str {
        match self {
            Ns::Client => "client",
            Ns::Server => "server",
            Ns::Fw => "fw",
        }
    }
}

/// A lab, built on creation and removed on drop.
#[derive(Debug)]
pub struct Lab {
    name: String,
}

fn script() -> std::path::PathBuf {
    project_root().join("scripts/lab")
}

impl Lab {
    /// Builds the lab `name` (at most 8 characters; unique per concurrently running test).
    pub fn up(name: &str) -> Lab {
        let st = Command::new(script())
            .args(["up", name])
            .status()
            .expect("running scripts/lab");
        assert!(st.success(), "scripts/lab up {name} failed");
        Lab {
            name: name.to_owned(),
        }
    }

    /// The namespace's full name.
    pub fn netns(&self, ns: Ns) -> String {
        format!("{}-{}", self.name, ns.as_str())
    }

    /// A command that runs `program` inside `ns`.
    pub fn command(&self, ns: Ns, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.netns(ns), program]);
        c
    }

    /// Runs `args` inside `ns` and returns its output.
    pub fn run(&self, ns: Ns, args: &[&str]) -> Output {
        let (prog, rest) = args.split_first().expect("a command");
        self.command(ns, prog)
            .args(rest)
            .output()
            .unwrap_or_else(|e| panic!("running {args:?} in {ns:?}: {e}"))
    }

    /// Starts the lab's DNS server (dnsmasq on 192.0.2.53, see `scripts/lab`).
    pub fn start_dns(&self) -> crate::process::Running {
        let mut c = Command::new(script());
        c.args(["dns", &self.name]);
        crate::process::Running::start(c)
    }

    /// Starts a web server on port 80 of every server address, serving `dir`.
    pub fn start_web(&self, dir: &std::path::Path) -> crate::process::Running {
        let mut c = self.command(Ns::Server, "/usr/bin/python3");
        c.args(["-m", "http.server", "80", "--bind", "::", "--directory"])
            .arg(dir);
        crate::process::Running::start(c)
    }

    /// Fetches `url` from the client with curl (`seconds` at most); returns the body, or `None`
    /// if the fetch failed.
    pub fn fetch(&self, url: &str, seconds: u32) -> Option<String> {
        let out = self.run(
            Ns::Client,
            &["curl", "-sf", "--max-time", &seconds.to_string(), url],
        );
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Whether `ping` from the client reaches `dst` (`count` echoes, 1 s deadline each).
    pub fn ping(&self, dst: &str, count: u32) -> bool {
        self.run(
            Ns::Client,
            &[
                "ping",
                "-c",
                &count.to_string(),
                "-i",
                "0.2",
                "-W",
                "1",
                "-q",
                dst,
            ],
        )
        .status
        .success()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new(script()).args(["down", &self.name]).status();
    }
}
