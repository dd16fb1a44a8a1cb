//! The fuzz targets' seed corpus (`fuzz/corpus/`) and every input a fuzzer once crashed on
//! (`fuzz/regressions/`), run through the same target functions as `make fuzz`, on the stable
//! toolchain: none may panic.

#[path = "../../fuzz/targets.rs"]
mod targets;

use std::path::Path;

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

#[test]
fn seed_corpus_and_saved_crashes_run_without_a_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for (name, run) in targets::TARGETS {
        let seeds = files(&root.join("corpus").join(name));
        assert!(!seeds.is_empty(), "fuzz/corpus/{name} has no seed");
        let saved = files(&root.join("regressions").join(name));
        for f in seeds.iter().chain(&saved) {
            let data = std::fs::read(f).expect("read");
            run(&data);
            // Truncations of each input: the shapes a fuzzer starts from.
            for cut in [1, data.len() / 2, data.len().saturating_sub(1)] {
                run(&data[..cut.min(data.len())]);
            }
        }
    }
}
