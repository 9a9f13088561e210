//! Times each token operation natively: `token_cpu FIXTURE.json [OP]` prints one JSON object of
//! nanoseconds per operation (the median and the fastest of several timed batches, after a
//! warm-up), for every operation or only OP (handy under `perf record`).

use std::time::Instant;
use token_cpu::{Fixture, Op};

const BATCHES: usize = 7;
const BATCH_TARGET_NANOS: f64 = 60_000_000.0;

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: token_cpu FIXTURE.json");
    let text = std::fs::read_to_string(&path).expect("the fixture file is readable");
    let fixture = Fixture::from_json(&text).unwrap_or_else(|e| panic!("{e}"));
    let only = std::env::args().nth(2);

    let mut results = serde_json::Map::new();
    for op in Op::ALL {
        if only.as_deref().is_some_and(|name| name != op.name()) {
            continue;
        }
        let (median, fastest) = time(&fixture, op);
        results.insert(
            op.name().into(),
            serde_json::json!({ "median_ns": median, "min_ns": fastest }),
        );
    }
    println!("{}", serde_json::Value::Object(results));
}

/// Nanoseconds per call of `op`, batches sized to last about 60 ms: (median, fastest batch).
fn time(fixture: &Fixture, op: Op) -> (f64, f64) {
    let started = Instant::now();
    let mut calibration = 0u32;
    while started.elapsed().as_millis() < 20 {
        assert_eq!(fixture.run(op, 1), 1, "{} failed", op.name());
        calibration += 1;
    }
    let per_call = started.elapsed().as_nanos() as f64 / f64::from(calibration);
    let n = ((BATCH_TARGET_NANOS / per_call) as u32).max(1);

    let mut samples: Vec<f64> = (0..BATCHES)
        .map(|_| {
            let t = Instant::now();
            assert_eq!(fixture.run(op, n), n, "{} failed", op.name());
            t.elapsed().as_nanos() as f64 / f64::from(n)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    (samples[BATCHES / 2], samples[0])
}
