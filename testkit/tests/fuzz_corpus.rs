//! Replays the fuzz corpora (committed inputs under fuzz/corpus/<target>/ and seeds made from
//! ../shared/captures) through the fuzz targets' entry points, on the stable toolchain.

use std::path::Path;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = testkit::project_root().join("fuzz/corpus").join(target);
    let mut inputs = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            if e.path().is_file() {
                inputs.push(std::fs::read(e.path()).expect("corpus file"));
            }
        }
    }
    inputs
}

fn captures() -> std::path::PathBuf {
    let c = testkit::shared_captures();
    assert!(Path::new(&c).is_dir(), "../shared/captures is missing");
    c
}

#[test]
fn parse_corpus_and_capture_seeds() {
    let mut inputs = corpus("parse");
    inputs.extend(testkit::seeds::parse_seeds(&captures()));
    assert!(inputs.len() > 1000, "{} inputs", inputs.len());
    for i in &inputs {
        dataplane::fuzzing::parse(i);
        // Every prefix too: truncation is the commonest malformation.
        for cut in [1, 14, 20, 34, 40, 54] {
            dataplane::fuzzing::parse(&i[..i.len().min(cut)]);
        }
    }
}

#[test]
fn pipeline_corpus_and_capture_seeds() {
    let mut inputs = corpus("pipeline");
    inputs.extend(testkit::seeds::pipeline_seeds(&captures()));
    assert!(inputs.len() >= 90, "{} inputs", inputs.len());
    for i in &inputs {
        dataplane::fuzzing::pipeline(i);
    }
}

#[test]
fn dns_corpus_and_capture_seeds() {
    let mut inputs = corpus("dns");
    inputs.extend(testkit::seeds::dns_seeds(&captures()));
    assert!(inputs.len() >= 100, "{} inputs", inputs.len());
    for i in &inputs {
        dataplane::fuzzing::dns(i);
        for cut in [2, 12, 20, 40] {
            dataplane::fuzzing::dns(&i[..i.len().min(cut)]);
        }
    }
}

#[test]
fn learner_corpus_and_capture_seeds() {
    let mut inputs = corpus("learner");
    let seeds = testkit::seeds::learner_seeds(&captures());
    assert!(seeds.len() >= 50, "{} seeds", seeds.len());
    // All the captures' answers in one run too: the table fills, bounds and expiry apply.
    inputs.push(seeds.concat());
    inputs.extend(seeds);
    for i in &inputs {
        dataplane::fuzzing::learner(i);
    }
}
