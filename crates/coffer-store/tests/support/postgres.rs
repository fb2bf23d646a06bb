//! A throwaway PostgreSQL cluster for tests (`../shared/reference/operations.md`): `initdb`
//! into a temporary directory — as the `postgres` user when the tests run as root, since
//! `initdb` refuses root — `pg_ctl` on a free loopback port with its socket in that directory,
//! one database, and on drop `pg_ctl stop` and the directory removed. No test depends on a
//! server that happens to be running (a package's default cluster on 5432 is never used).
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A cluster of its own, stopped and removed when dropped.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// Commands run as the `postgres` user (the tests run as root).
    as_postgres: bool,
}

/// The directory of the newest installed PostgreSQL's programs (Debian's layout), if any.
pub fn installed() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// Whether the tests must find PostgreSQL (`scripts/test.sh` says so); otherwise they are
/// skipped where it is not installed.
pub fn required() -> bool {
    std::env::var_os("COFFER_REQUIRE_POSTGRES").is_some_and(|v| v == "1")
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn checked(what: &str, out: std::io::Result<Output>) -> std::io::Result<Output> {
    let out = out?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(std::io::Error::other(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

impl Cluster {
    /// Starts a cluster with a database `coffer`.
    pub fn start() -> std::io::Result<Self> {
        let bin = installed().ok_or_else(|| std::io::Error::other("PostgreSQL is not installed"))?;
        let dir = tempfile::Builder::new().prefix("coffer-pg-").tempdir()?;
        let as_postgres = is_root();
        if as_postgres {
            checked("chown", Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).output())?;
        }
        let port = free_port()?;
        let cluster = Self { dir, bin, port, as_postgres };
        let data = cluster.data();
        cluster.run("initdb", &["-D", &data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])?;
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\nfsync = on\n",
            cluster.dir.path().display()
        );
        let mut settings = std::fs::read_to_string(Path::new(&data).join("postgresql.conf"))?;
        settings.push_str(&conf);
        std::fs::write(Path::new(&data).join("postgresql.conf"), settings)?;
        cluster.pg_ctl(&["start", "-w", "-t", "30"])?;
        cluster.run("createdb", &["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres", "coffer"])?;
        Ok(cluster)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, program: &str, args: &[&str]) -> std::io::Result<Output> {
        let path = self.bin.join(program);
        let out = if self.as_postgres {
            Command::new("runuser").args(["-u", "postgres", "--"]).arg(&path).args(args).current_dir("/").output()
        } else {
            Command::new(&path).args(args).output()
        };
        checked(program, out)
    }

    fn pg_ctl(&self, args: &[&str]) -> std::io::Result<Output> {
        let (data, log) = (self.data(), self.dir.path().join("server.log").display().to_string());
        let mut all = vec!["-D", data.as_str(), "-l", log.as_str()];
        all.extend_from_slice(args);
        self.run("pg_ctl", &all)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The postmaster's process id (it changes on a restart).
    pub fn pid(&self) -> std::io::Result<u32> {
        let text = std::fs::read_to_string(Path::new(&self.data()).join("postmaster.pid"))?;
        text.lines().next().and_then(|l| l.trim().parse().ok()).ok_or_else(|| std::io::Error::other("no pid"))
    }

    /// One SQL statement through `psql`: its output, unaligned, without headers.
    pub fn psql(&self, sql: &str) -> std::io::Result<String> {
        let port = self.port.to_string();
        let out = self.run("psql", &["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-d", "coffer", "-tAc", sql])?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// A database restart, the simplest fault: connections drop, the data stays.
    pub fn restart(&self) -> std::io::Result<()> {
        self.pg_ctl(&["restart", "-m", "fast", "-w", "-t", "30"]).map(|_| ())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // The directory goes with `dir`; the server must be gone first.
        let _ = self.pg_ctl(&["stop", "-m", "immediate", "-w", "-t", "30"]);
    }
}
