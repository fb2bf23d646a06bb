//! Files of the data directory are the server's alone: directories 0700, files 0600 (the
//! database and its `-wal`/`-shm`, keys, TLS keys, audit files), whatever the umask.
use std::io;
use std::path::Path;

/// Creates `dir` (and missing parents) with mode 0700.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Creates the SQLite database file empty with mode 0600 if it does not exist yet: SQLite then
/// gives its `-wal` and `-shm` files the database's mode.
pub fn create_database_file(path: &Path) -> io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path).map(drop)
}

/// Narrows what an older version left wider: the data directory's own subdirectories to 0700
/// and its database files to 0600 (only those that exist; nothing outside `data_dir`).
pub fn restrict_data_dir(data_dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let set = |path: &Path, mode: u32| -> io::Result<()> {
            match std::fs::symlink_metadata(path) {
                Ok(m) if !m.file_type().is_symlink() && m.permissions().mode() & 0o777 != mode => {
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                }
                Ok(_) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            }
        };
        set(data_dir, 0o700)?;
        for dir in ["audit", "keys", "tls"] {
            set(&data_dir.join(dir), 0o700)?;
        }
        for file in ["coffer.db", "coffer.db-wal", "coffer.db-shm", "dev-credentials.json", "root.key"] {
            set(&data_dir.join(file), 0o600)?;
        }
    }
    Ok(())
}
