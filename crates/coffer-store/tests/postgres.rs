//! PostgreSQL: the throwaway cluster the backend's tests run against (issue 20 brings the
//! backend and runs the conformance suite here, as `sqlite.rs` does).
mod support;

use support::postgres::{self, Cluster};

/// Runs `test` against a cluster of its own, or skips it where PostgreSQL is not installed and
/// not required.
fn with_cluster(test: impl FnOnce(&Cluster)) {
    if postgres::installed().is_none() && !postgres::required() {
        eprintln!("skipped: PostgreSQL is not installed (scripts/setup-test-env.sh installs it)");
        return;
    }
    let cluster = Cluster::start().expect("a throwaway PostgreSQL cluster");
    test(&cluster);
}

#[test]
fn a_throwaway_cluster_answers_on_loopback_survives_a_restart_and_leaves_nothing() {
    let mut left = None;
    with_cluster(|c| {
        assert_eq!(c.psql("SELECT 1").expect("a query"), "1");
        assert_eq!(c.psql("SHOW listen_addresses").expect("setting"), "127.0.0.1", "loopback only");
        c.psql("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('acknowledged')").expect("a write");
        let before = c.pid().expect("pid");
        c.restart().expect("restart");
        assert_ne!(c.pid().expect("pid"), before, "a new postmaster");
        assert_eq!(c.psql("SELECT v FROM kept").expect("read"), "acknowledged", "the data outlives the restart");
        left = Some((c.dir().to_path_buf(), c.port()));
    });
    if let Some((dir, port)) = left {
        assert!(!dir.exists(), "the cluster's directory is removed");
        let refused = std::net::TcpStream::connect(("127.0.0.1", port));
        assert!(refused.is_err(), "the server is stopped");
    }
}
