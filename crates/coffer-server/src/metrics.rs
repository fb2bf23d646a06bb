//! Prometheus metrics (`GET /metrics`): requests by operation and status with latency
//! histograms, store operations' latency, audit writes (batches, records, latency), the audit
//! queue's depth, and the process's CPU time and memory. Counted in memory with no extra
//! dependency; rendered in the Prometheus text format on demand.
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {}", self.counts[i]);
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", self.count);
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

#[derive(Debug, Default)]
struct Inner {
    requests: BTreeMap<(&'static str, u16), Histogram>,
    store: BTreeMap<&'static str, Histogram>,
    audit_writes: Histogram,
    audit_records: u64,
    audit_failures: u64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl coffer_audit::WriteObserver for Metrics {
    /// One audit batch: how many records, how long the store and file took, whether it failed.
    fn observe_audit_write(&self, records: usize, took: Duration, ok: bool) {
        if let Ok(mut m) = self.inner.lock() {
            m.audit_writes.observe(took.as_secs_f64());
            if ok {
                m.audit_records += records as u64;
            } else {
                m.audit_failures += 1;
            }
        }
    }
}

impl Metrics {
    pub fn observe_request(&self, operation: &'static str, status: u16, took: Duration) {
        if let Ok(mut m) = self.inner.lock() {
            m.requests.entry((operation, status)).or_default().observe(took.as_secs_f64());
        }
    }

    /// The Prometheus text exposition; `queue_depth` is the audit records waiting to be written.
    /// The process's own figures come from `/proc/self` (Linux), as Prometheus clients do.
    pub fn render(&self, queue_depth: usize) -> String {
        let mut out = String::new();
        let Ok(m) = self.inner.lock() else { return out };
        out.push_str("# HELP coffer_requests_total Requests by Azure operation name and HTTP status.\n");
        out.push_str("# TYPE coffer_requests_total counter\n");
        for ((op, status), h) in &m.requests {
            let _ = writeln!(out, "coffer_requests_total{{operation=\"{op}\",status=\"{status}\"}} {}", h.count);
        }
        out.push_str("# HELP coffer_request_duration_seconds Time from the request's arrival to its response, audit record included.\n");
        out.push_str("# TYPE coffer_request_duration_seconds histogram\n");
        for ((op, status), h) in &m.requests {
            h.render(&mut out, "coffer_request_duration_seconds", &format!("operation=\"{op}\",status=\"{status}\""));
        }
        out.push_str(
            "# HELP coffer_audit_write_duration_seconds One group-commit batch: store transaction and file sync.\n",
        );
        out.push_str("# TYPE coffer_audit_write_duration_seconds histogram\n");
        m.audit_writes.render(&mut out, "coffer_audit_write_duration_seconds", "");
        out.push_str(
            "# HELP coffer_audit_records_total Audit records written.\n# TYPE coffer_audit_records_total counter\n",
        );
        let _ = writeln!(out, "coffer_audit_records_total {}", m.audit_records);
        out.push_str("# HELP coffer_audit_write_failures_total Audit batches that could not be written.\n# TYPE coffer_audit_write_failures_total counter\n");
        let _ = writeln!(out, "coffer_audit_write_failures_total {}", m.audit_failures);
        out.push_str("# HELP coffer_audit_queue_depth Audit records waiting for the writer.\n# TYPE coffer_audit_queue_depth gauge\n");
        let _ = writeln!(out, "coffer_audit_queue_depth {queue_depth}");
        out.push_str("# HELP coffer_store_operation_duration_seconds Store operations a request waits on (remembered reads included).\n");
        out.push_str("# TYPE coffer_store_operation_duration_seconds histogram\n");
        for (op, h) in &m.store {
            h.render(&mut out, "coffer_store_operation_duration_seconds", &format!("operation=\"{op}\""));
        }
        drop(m);
        if let Some((cpu, rss)) = process_figures() {
            out.push_str("# HELP process_cpu_seconds_total User and system CPU time of the server.\n# TYPE process_cpu_seconds_total counter\n");
            let _ = writeln!(out, "process_cpu_seconds_total {cpu}");
            out.push_str("# HELP process_resident_memory_bytes Resident memory of the server.\n# TYPE process_resident_memory_bytes gauge\n");
            let _ = writeln!(out, "process_resident_memory_bytes {rss}");
        }
        out
    }
}

impl coffer_store::StoreObserver for Metrics {
    fn observe(&self, operation: &'static str, took: Duration) {
        if let Ok(mut m) = self.inner.lock() {
            m.store.entry(operation).or_default().observe(took.as_secs_f64());
        }
    }
}

/// CPU seconds and resident bytes of this process, from `/proc/self` (`None` elsewhere).
fn process_figures() -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let rss_kib: u64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    // /proc counts CPU time in USER_HZ ticks, which Linux fixes at 100 for user space.
    Some((ticks / 100.0, rss_kib * 1024))
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_audit::WriteObserver;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.observe_request("SecretGet", 200, Duration::from_micros(800));
        m.observe_request("SecretGet", 200, Duration::from_millis(30));
        m.observe_request("SecretGet", 403, Duration::from_millis(1));
        m.observe_audit_write(3, Duration::from_millis(2), true);
        let text = m.render(7);
        assert!(text.contains("coffer_requests_total{operation=\"SecretGet\",status=\"200\"} 2"));
        assert!(text.contains("coffer_requests_total{operation=\"SecretGet\",status=\"403\"} 1"));
        assert!(
            text.contains(
                "coffer_request_duration_seconds_bucket{operation=\"SecretGet\",status=\"200\",le=\"0.001\"} 1"
            )
        );
        assert!(
            text.contains(
                "coffer_request_duration_seconds_bucket{operation=\"SecretGet\",status=\"200\",le=\"0.05\"} 2"
            )
        );
        assert!(
            text.contains(
                "coffer_request_duration_seconds_bucket{operation=\"SecretGet\",status=\"200\",le=\"+Inf\"} 2"
            )
        );
        assert!(text.contains("coffer_audit_records_total 3"));
        assert!(text.contains("coffer_audit_queue_depth 7"));
        coffer_store::StoreObserver::observe(&m, "get_version", Duration::from_micros(300));
        let text = m.render(0);
        assert!(
            text.contains("coffer_store_operation_duration_seconds_bucket{operation=\"get_version\",le=\"0.0005\"} 1")
        );
        if cfg!(target_os = "linux") {
            let cpu = text.lines().find_map(|l| l.strip_prefix("process_cpu_seconds_total ")).expect("cpu");
            assert!(cpu.parse::<f64>().expect("number") >= 0.0);
            let rss = text.lines().find_map(|l| l.strip_prefix("process_resident_memory_bytes ")).expect("rss");
            assert!(rss.parse::<u64>().expect("number") > 1 << 20, "a running test uses more than 1 MiB");
        }
    }
}
