//! The series built from the bucket list at each scrape: totals over all
//! buckets, and per-bucket series for the [`MAX_BUCKET_SERIES`] largest only,
//! so that many buckets cannot grow Prometheus' memory without bound. Built
//! afresh each time, so a deleted bucket's series vanish.

use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, IntGauge, Opts};

/// Per-bucket series are exported for this many buckets at most, the largest
/// by bytes, so that many small buckets cannot grow Prometheus' memory without
/// bound. `kura_buckets` tells when the list was cut.
pub const MAX_BUCKET_SERIES: usize = 100;

/// What `/metrics` shows of one bucket, read from the index at scrape time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketSeries {
    pub name: String,
    pub objects: u64,
    pub bytes: u64,
    pub shards: u32,
    pub resharding: bool,
}

pub(super) fn families(mut usage: Vec<BucketSeries>) -> Vec<MetricFamily> {
    let total = |name: &str, help: &str, value: usize| {
        let gauge = IntGauge::new(name, help).expect("valid metric");
        gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
        gauge.collect()
    };
    let buckets = total("kura_buckets", "Buckets that exist.", usage.len());
    let shards = total(
        "kura_index_shards",
        "Index shards of all buckets together.",
        usage.iter().map(|b| b.shards as usize).sum(),
    );
    // A reshard starts as soon as it is asked for or due, and every one under
    // way advances at each round of the worker: there is no queue to count.
    let resharding = total(
        "kura_reshards_running",
        "Buckets with an online reshard under way.",
        usage.iter().filter(|b| b.resharding).count(),
    );

    let per_bucket = |name: &str, what: &str| {
        GaugeVec::new(
            Opts::new(
                name,
                format!("{what} (the {MAX_BUCKET_SERIES} largest buckets by bytes only)."),
            ),
            &["bucket"],
        )
        .expect("valid metric")
    };
    let objects = per_bucket("kura_bucket_objects", "Objects in a bucket");
    let bytes = per_bucket("kura_bucket_bytes", "Bytes stored in a bucket");
    let bucket_shards = per_bucket("kura_bucket_shards", "Index shards of a bucket");
    // Largest first; ties by name so that the cut is the same at every scrape.
    usage.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.name.cmp(&b.name)));
    for bucket in usage.iter().take(MAX_BUCKET_SERIES) {
        let label = [bucket.name.as_str()];
        // Gauges are f64, exact up to 2^53: ample for counts and sizes.
        objects.with_label_values(&label).set(bucket.objects as f64);
        bytes.with_label_values(&label).set(bucket.bytes as f64);
        bucket_shards
            .with_label_values(&label)
            .set(f64::from(bucket.shards));
    }
    [
        buckets,
        shards,
        resharding,
        objects.collect(),
        bytes.collect(),
        bucket_shards.collect(),
    ]
    .concat()
    .into_iter()
    // The encoder refuses a family without samples (no buckets yet).
    .filter(|family| !family.get_metric().is_empty())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::super::render;
    use super::*;

    fn usage(n: u64) -> Vec<BucketSeries> {
        (0..n)
            .map(|i| BucketSeries {
                name: format!("b{i:03}"),
                objects: i,
                bytes: i * 10,
                shards: 1 + (i % 4) as u32,
                resharding: i % 50 == 0,
            })
            .collect()
    }

    fn lines<'a>(text: &'a str, metric: &str) -> Vec<&'a str> {
        text.lines()
            .filter(|l| l.starts_with(&format!("{metric}{{")))
            .collect()
    }

    #[test]
    fn per_bucket_series_are_the_largest_buckets_only() {
        let text = render(Some(usage(150))).unwrap();
        assert!(text.contains("\nkura_buckets 150\n"), "{text}");
        let bytes = lines(&text, "kura_bucket_bytes");
        assert_eq!(bytes.len(), MAX_BUCKET_SERIES);
        assert_eq!(lines(&text, "kura_bucket_objects").len(), MAX_BUCKET_SERIES);
        assert_eq!(lines(&text, "kura_bucket_shards").len(), MAX_BUCKET_SERIES);
        // b149 .. b050 are the largest; b049 and smaller are cut.
        assert!(bytes.contains(&"kura_bucket_bytes{bucket=\"b149\"} 1490"));
        assert!(bytes.contains(&"kura_bucket_bytes{bucket=\"b050\"} 500"));
        assert!(text.contains("kura_bucket_shards{bucket=\"b149\"} 2\n"));
        assert!(!text.contains("bucket=\"b049\""));
    }

    #[test]
    fn totals_cover_every_bucket() {
        let text = render(Some(usage(150))).unwrap();
        // Shards 1,2,3,4 repeating: 37 full cycles (370) and 1+2 for b148, b149.
        assert!(text.contains("\nkura_index_shards 373\n"), "{text}");
        // b000, b050 and b100 are resharding, b000 beyond the per-bucket cut.
        assert!(text.contains("\nkura_reshards_running 3\n"), "{text}");
    }

    #[test]
    fn ties_are_cut_by_name() {
        let same: Vec<_> = usage(120)
            .into_iter()
            .map(|b| BucketSeries { bytes: 7, ..b })
            .collect();
        let text = render(Some(same)).unwrap();
        assert!(text.contains("bucket=\"b099\""));
        assert!(!text.contains("bucket=\"b100\""));
    }

    #[test]
    fn renders_without_buckets_or_usage() {
        let empty = render(Some(Vec::new())).unwrap();
        assert!(empty.contains("\nkura_buckets 0\n"));
        assert!(empty.contains("\nkura_index_shards 0\n"));
        assert!(lines(&empty, "kura_bucket_bytes").is_empty());
        let unavailable = render(None).unwrap();
        assert!(!unavailable.contains("kura_buckets"));
        assert!(unavailable.contains(&format!(
            "kura_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )));
    }
}
