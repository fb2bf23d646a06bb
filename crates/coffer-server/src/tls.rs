//! Dev-mode TLS: a local CA (`tls/ca.pem`) and a server certificate it signs for `localhost`,
//! `vault.localhost`, `*.vault.localhost` and loopback addresses.
use std::path::Path;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

pub struct TlsFiles {
    pub ca_pem: std::path::PathBuf,
    pub cert_pem: std::path::PathBuf,
    pub key_pem: std::path::PathBuf,
}

fn ca_params() -> anyhow::Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Coffer Dev CA");
    dn.push(DnType::OrganizationName, "Coffer");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    p.not_before = rcgen::date_time_ymd(2025, 1, 1);
    p.not_after = rcgen::date_time_ymd(2045, 1, 1);
    Ok(p)
}

/// Creates the CA on first start and (re)issues the server certificate when it is missing or
/// its names changed. Private keys are written with mode 0600.
pub fn ensure_dev_tls(dir: &Path, dns_suffix: &str) -> anyhow::Result<TlsFiles> {
    coffer_store::private_files::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    let files =
        TlsFiles { ca_pem: dir.join("ca.pem"), cert_pem: dir.join("server.pem"), key_pem: dir.join("server-key.pem") };
    let ca_key_path = dir.join("ca-key.pem");
    let names_path = dir.join("server.names");

    let ca_key = if ca_key_path.exists() && files.ca_pem.exists() {
        KeyPair::from_pem(&std::fs::read_to_string(&ca_key_path)?).context("reading the dev CA key")?
    } else {
        let key = KeyPair::generate()?;
        let cert = ca_params()?.self_signed(&key)?;
        write_private(&ca_key_path, key.serialize_pem().as_bytes())?;
        std::fs::write(&files.ca_pem, cert.pem())?;
        let _ = std::fs::remove_file(&files.cert_pem);
        key
    };

    let sans = vec![
        "localhost".to_string(),
        dns_suffix.to_string(),
        format!("*.{dns_suffix}"),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let wanted = sans.join(",");
    let current = std::fs::read_to_string(&names_path).unwrap_or_default();
    if !files.cert_pem.exists() || !files.key_pem.exists() || current != wanted {
        let issuer = Issuer::new(ca_params()?, &ca_key);
        let mut p = CertificateParams::new(sans)?;
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, "localhost");
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.not_before = rcgen::date_time_ymd(2025, 1, 1);
        p.not_after = rcgen::date_time_ymd(2044, 12, 31);
        let key = KeyPair::generate()?;
        let cert = p.signed_by(&key, &issuer)?;
        write_private(&files.key_pem, key.serialize_pem().as_bytes())?;
        std::fs::write(&files.cert_pem, cert.pem())?;
        std::fs::write(&names_path, wanted)?;
    }
    Ok(files)
}

/// Writes a file only its owner can read.
pub fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
