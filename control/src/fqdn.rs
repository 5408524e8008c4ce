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
use dataplane::fqdn::{BindingView, IpKey, Learner};
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

/// Counts one listed flow if an FQDN rule allowed it.
pub fn count_row(row: &dataplane::agent::FlowRow, into: &mut FlowCounts) {
    if let Some(name) = &row.fqdn {
        let e = into.entry(IpKey::new(row.dst.0)).or_default();
        e.0 += 1;
        if !e.1.iter().any(|n| n == name) {
            e.1.push(name.clone());
        }
    }
}

/// The table's rows at data-path time `now`, sorted by address, from the learner's
/// `bindings`; `pattern` (a domain pattern) keeps only addresses with a matching name.
pub fn rows(
    bindings: impl IntoIterator<Item = (IpKey, Vec<BindingView>)>,
    policy: &Policy,
    now: u64,
    flows: &FlowCounts,
    pattern: Option<&config::DomainPattern>,
) -> Vec<FqdnRow> {
    let mut seen: HashMap<IpKey, ()> = HashMap::new();
    let mut out: Vec<(IpKey, FqdnRow)> = Vec::new();
    for (ip, bindings) in bindings {
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
    write_cache(path, snapshot(learner, now))
}

/// The learned bindings as the cache file holds them, taken at `now` (data-path clock): what
/// [`write_cache`] writes, on another thread if need be.
#[derive(Debug)]
pub struct CacheSnapshot(Vec<CachedBinding>);

/// Takes the bindings to save (the part of a save that reads the learner).
pub fn snapshot(learner: &Learner, now: u64) -> CacheSnapshot {
    let unix = unix_now();
    CacheSnapshot(
        learner
            .bindings()
            .flat_map(|(ip, bs)| {
                bs.into_iter().map(move |b| CachedBinding {
                    ip: ip.ip(),
                    name: b.name.to_string(),
                    expires_unix: unix + b.expires.saturating_sub(now) as f64 / 1e9,
                })
            })
            .collect(),
    )
}

/// Writes a snapshot to `path` (see [`save_cache`]); returns how many bindings it held.
pub fn write_cache(path: &Path, snapshot: CacheSnapshot) -> std::io::Result<usize> {
    let bindings = snapshot.0;
    let n = bindings.len();
    let text = serde_json::to_string(&CacheFile {
        version: 1,
        bindings,
    })
    .map_err(std::io::Error::other)?;
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    // Beside the file, its whole name and `.tmp` (never the file itself, whatever its name).
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let written = fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use dataplane::dns::message::build::{RecordSpec, response};
    use dataplane::dns::message::rtype;
    use dataplane::fqdn::{LearnerStats, Limits};

    use super::*;

    fn learner() -> Learner {
        let text = "[ports.inside]\ndevice = \"a\"\n[ports.outside]\ndevice = \"b\"\n[dns]\nmin_ttl = \"1s\"\n[[rule]]\nname = \"gh\"\naction = \"allow\"\ndst_fqdn = [\"**.github.com\", \"github.com\"]\n";
        let cfg = config::parse(text, "t.toml").unwrap();
        let policy = Arc::new(Policy::compile(&cfg, 1, 1));
        Learner::new(
            Limits::from_config(&cfg.dns),
            policy,
            1,
            Arc::new(LearnerStats::default()),
        )
        .0
    }

    fn learn(l: &mut Learner, name: &str, ip: &str, ttl: u32, now: u64) {
        let msg = response(
            1,
            name,
            rtype::A,
            &[(name, ttl, RecordSpec::A(ip.parse().unwrap()))],
        );
        l.learn(&msg, now);
    }

    #[test]
    fn the_cache_round_trips_with_remaining_ttls() {
        let dir = std::env::temp_dir().join(format!("ferrowall-cache-test-{}", std::process::id()));
        let path = dir.join("sub/fqdn-cache.json");
        let mut a = learner();
        learn(&mut a, "github.com", "140.82.112.3", 300, 0);
        learn(&mut a, "api.github.com", "140.82.112.4", 2, 0);
        // Saved at data-path time 1 s: 299 s and 1 s left.
        assert_eq!(save_cache(&path, &a, 1_000_000_000).unwrap(), 2);
        // Restored in a process whose data-path clock reads 5 s.
        let mut b = learner();
        assert_eq!(load_cache(&path, &mut b, 5_000_000_000), Ok(2));
        let rows = rows(
            b.bindings(),
            b.policy(),
            5_000_000_000,
            &FlowCounts::new(),
            None,
        );
        assert_eq!(rows.len(), 2);
        let gh = rows.iter().find(|r| r.names == ["github.com"]).unwrap();
        assert!(
            (298.0..=299.5).contains(&gh.expires_in_s),
            "{}",
            gh.expires_in_s
        );
        assert_eq!(gh.rules, ["gh"]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn restored_bindings_live_no_longer_than_max_ttl_and_a_tmp_name_is_safe() {
        let dir = std::env::temp_dir().join(format!("ferrowall-cache-ttl-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        // Written by a build with a longer max_ttl (or a clock that has since gone back): a
        // binding a year away. The file's own name ends in `.tmp`.
        let path = dir.join("cache.tmp");
        let year = unix_now() + 365.0 * 86400.0;
        fs::write(
            &path,
            format!(
                "{{\"version\": 1, \"bindings\": [{{\"ip\": \"140.82.112.3\", \"name\": \"github.com\", \"expires_unix\": {year}}}]}}"
            ),
        )
        .unwrap();
        let mut l = learner();
        assert_eq!(load_cache(&path, &mut l, 0), Ok(1));
        let expires: Vec<u64> = l
            .bindings()
            .flat_map(|(_, bs)| bs.into_iter().map(|b| b.expires))
            .collect();
        assert_eq!(
            expires,
            [86_400 * 1_000_000_000],
            "the default max_ttl, 1 day"
        );
        assert_eq!(save_cache(&path, &l, 0).unwrap(), 1);
        assert_eq!(load_cache(&path, &mut learner(), 0), Ok(1));
        assert!(!dir.join("cache.tmp.tmp").exists());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_or_corrupt_cache_is_an_error_not_a_crash() {
        let dir = std::env::temp_dir().join(format!("ferrowall-cache-bad-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let mut l = learner();
        let missing = load_cache(&dir.join("none.json"), &mut l, 0).unwrap_err();
        assert!(missing.contains("none.json"), "{missing}");
        let bad = dir.join("bad.json");
        fs::write(&bad, "{\"version\": 1, \"bindings\": [{\"ip\": 7").unwrap();
        let corrupt = load_cache(&bad, &mut l, 0).unwrap_err();
        assert!(corrupt.contains("corrupt"), "{corrupt}");
        fs::write(&bad, "{\"version\": 9, \"bindings\": []}").unwrap();
        assert!(
            load_cache(&bad, &mut l, 0)
                .unwrap_err()
                .contains("version 9")
        );
        // Bindings that expired or that no rule names any more are skipped.
        fs::write(
            &bad,
            "{\"version\":1,\"bindings\":[{\"ip\":\"192.0.2.1\",\"name\":\"github.com\",\"expires_unix\":1.0},{\"ip\":\"192.0.2.2\",\"name\":\"example.org\",\"expires_unix\":4e9}]}",
        )
        .unwrap();
        assert_eq!(load_cache(&bad, &mut l, 0), Ok(0));
        assert!(l.is_empty());
        let _ = fs::remove_dir_all(&dir);
    }
}
