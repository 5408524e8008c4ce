//! Writes fuzz seeds made from ../shared/captures into fuzz/corpus/<target>/generated-*.

fn main() -> std::io::Result<()> {
    let captures = testkit::shared_captures();
    let corpus = testkit::project_root().join("fuzz/corpus");
    for (target, seeds) in [
        ("parse", testkit::seeds::parse_seeds(&captures)),
        ("pipeline", testkit::seeds::pipeline_seeds(&captures)),
        ("dns", testkit::seeds::dns_seeds(&captures)),
        ("learner", testkit::seeds::learner_seeds(&captures)),
    ] {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir)?;
        for s in &seeds {
            std::fs::write(dir.join(testkit::seeds::seed_name(s)), s)?;
        }
        eprintln!("{target}: {} seeds in {}", seeds.len(), dir.display());
    }
    Ok(())
}
