//! Parse + normalize + threading-key extraction over the mixed real-world corpus.
//! Run: `cargo bench -p caseflow-ingest` (results: docs/performance.md).

use caseflow_ingest::{parse, thread_keys, ParseConfig};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::path::{Path, PathBuf};

fn corpus() -> Vec<Vec<u8>> {
    let dir = std::env::var_os("CASEFLOW_EMAIL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/email"));
    let mut out = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.extension().is_some_and(|e| e == "eml" || e == "txt") {
                continue;
            } else if let Ok(raw) = std::fs::read(&p) {
                out.push(raw);
            }
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let mails = corpus();
    let cfg = ParseConfig::default();
    let bytes: usize = mails.iter().map(Vec::len).sum();
    let mut g = c.benchmark_group("email");
    g.throughput(Throughput::Elements(mails.len() as u64));
    g.bench_function(format!("parse_classify_thread_{}_messages_{}_KiB", mails.len(), bytes / 1024), |b| {
        b.iter(|| {
            let mut n = 0usize;
            for raw in &mails {
                if let Ok(e) = parse(raw, &cfg) {
                    n += thread_keys(&e, &cfg).our_message_ids.len() + e.new_text.len();
                }
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
