//! The FQDN table as operators see it (`fqdn --json`, `replay --fqdn-out`) and as the cache
//! file keeps it across restarts.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use dataplane::Policy;
use dataplane::flow::FlowTable;
use dataplane::fqdn::{IpKey, Learner};
use serde::{Deserialize, Serialize};

/// One address of the table, in the format of CONTRACT.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FqdnRow {
    /// The address.
    pub ip: String,
    /// The names it was learned for, most recent first.
    pub names: Vec<String>,
    /// The rules whose patterns match those names.
    pub rules: Vec<String>,
    /// Seconds until the last binding expires (0 for an expired address kept by live flows).
    pub expires_in_s: f64,
    /// Live flows an FQDN rule allowed to this address.
    pub flows: u64,
}

/// Live FQDN-attributed flows per destination address, with their names.
pub type FlowCounts = HashMap<IpKey, (u64, Vec<String>)>;

/// Counts the flows of `table` that an FQDN rule allowed, by destination address.
pub fn count_flows(table: &FlowTable, into: &mut FlowCounts) {
    let mut from = Some(0);
    while let Some(f) = from {
        let (chunk, next) = table.chunk(f, 4096);
        for (_, flow) in chunk {
            if let Some(a) = &flow.fqdn {
                let (ip, _) = flow.responder();
                let e = into.entry(IpKey::new(ip)).or_default();
                e.0 += 1;
                if !e.1.iter().any(|n| n == a.name()) {
                    e.1.push(a.name().to_owned());
                }
            }
        }
        from = next;
    }
}

/// The table's rows at data-path time `now`, sorted by address; `pattern` (a domain pattern)
/// keeps only addresses with a matching name.
pub fn rows(
    learner: &Learner,
    policy: &Policy,
    now: u64,
    flows: &FlowCounts,
    pattern: Option<&config::DomainPattern>,
) -> Vec<FqdnRow> {
    let mut seen: HashMap<IpKey, ()> = HashMap::new();
    let mut out: Vec<(IpKey, FqdnRow)> = Vec::new();
    for (ip, bindings) in learner.bindings() {
        seen.insert(ip, ());
        let names: Vec<String> = bindings.iter().map(|b| b.name.to_string()).collect();
        let expires = bindings.iter().map(|b| b.expires).max().unwrap_or(0);
        out.push((
            ip,
            row(ip, names, expires.saturating_sub(now), policy, flows),
        ));
    }
    // Addresses whose bindings expired but that live flows still use.
    for (ip, (_, names)) in flows {
        if !seen.contains_key(ip) {
            out.push((*ip, row(*ip, names.clone(), 0, policy, flows)));
        }
    }
    out.retain(|(_, r)| pattern.is_none_or(|p| r.names.iter().any(|n| p.matches(n))));
    out.sort_by_key(|(ip, _)| *ip);
    out.into_iter().map(|(_, r)| r).collect()
}

fn row(
    ip: IpKey,
    names: Vec<String>,
    left_ns: u64,
    policy: &Policy,
    flows: &FlowCounts,
) -> FqdnRow {
    let mut rules = Vec::new();
    for n in &names {
        policy.names.matches_into(n, &mut rules);
    }
    rules.sort_unstable();
    rules.dedup();
    FqdnRow {
        ip: ip.ip().to_string(),
        rules: rules
            .iter()
            .filter_map(|&r| policy.rules.get(r as usize).map(|r| r.name.to_string()))
            .collect(),
        names,
        expires_in_s: (left_ns as f64 / 1e9 * 10.0).round() / 10.0,
        flows: flows.get(&ip).map_or(0, |(n, _)| *n),
    }
}

/// One binding in the cache file.
#[derive(Debug, Serialize, Deserialize)]
struct CachedBinding {
    ip: IpAddr,
    name: String,
    /// Expiry as Unix time (seconds).
    expires_unix: f64,
}

/// The cache file: bindings with absolute expiry times.
#[derive(Debug, Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    bindings: Vec<CachedBinding>,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Writes the learned bindings to `path` (a temporary file then a rename, so a crash never
/// leaves half a file). `now` is the data-path clock.
pub fn save_cache(path: &Path, learner: &Learner, now: u64) -> std::io::Result<usize> {
    let unix = unix_now();
    let bindings: Vec<CachedBinding> = learner
        .bindings()
        .flat_map(|(ip, bs)| {
            bs.into_iter().map(move |b| CachedBinding {
                ip: ip.ip(),
                name: b.name.to_string(),
                expires_unix: unix + b.expires.saturating_sub(now) as f64 / 1e9,
            })
        })
        .collect();
    let n = bindings.len();
    let text = serde_json::to_string(&CacheFile {
        version: 1,
        bindings,
    })
    .map_err(std::io::Error::other)?;
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    Ok(n)
}

/// Restores bindings from `path` with their remaining TTLs. Returns how many were kept (expired
/// ones and names no rule matches any more are skipped), or why the file could not be read.
pub fn load_cache(path: &Path, learner: &mut Learner, now: u64) -> Result<usize, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file: CacheFile =
        serde_json::from_str(&text).map_err(|e| format!("{}: corrupt: {e}", path.display()))?;
    if file.version != 1 {
        return Err(format!(
            "{}: unknown version {}",
            path.display(),
            file.version
        ));
    }
    let unix = unix_now();
    let mut kept = 0;
    for b in file.bindings {
        let Ok(left) = std::time::Duration::try_from_secs_f64(b.expires_unix - unix) else {
            continue; // expired (negative) or not a number
        };
        let expires = now.saturating_add(u64::try_from(left.as_nanos()).unwrap_or(u64::MAX));
        if learner.restore(&b.name, b.ip, expires, now) {
            kept += 1;
        }
    }
    learner.commit();
    Ok(kept)
}
