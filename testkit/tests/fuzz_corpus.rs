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
