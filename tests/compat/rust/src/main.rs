//! The official Azure SDK for Rust (`azure_security_keyvault_secrets`, `_keys` and
//! `_certificates` 1.1 betas with `azure_identity` 1.1 beta, which send
//! `api-version=2026-03-01-preview`) against Coffer, unchanged: a custom cloud
//! (`CustomConfiguration::authority_host`), and its own reqwest client as the transport, trusting
//! the CA and resolving the vault's host to the server (`common`). Run by
//! tests/compat/test_rust_sdk.py with the areas to run (`secrets`, `keys`, `certificates`);
//! prints "ok {area}" for each, or the failure and exits 1.
mod common;

use azure_security_keyvault_certificates::ResourceExt as _;
use azure_security_keyvault_certificates::models::{
    CertificateClientGetCertificateOptions, CertificatePolicy, Contact, Contacts, CreateCertificateParameters,
    ImportCertificateParameters, IssuerParameters, SecretProperties, X509CertificateProperties,
};
use azure_security_keyvault_certificates::{CertificateClient, CertificateClientOptions};
use azure_security_keyvault_keys::ResourceExt as _;
use azure_security_keyvault_keys::models::{
    CreateKeyParameters, CurveName, EncryptionAlgorithm, KeyClientEncryptOptions, KeyClientGetKeyOptions,
    KeyClientSignOptions, KeyOperationParameters, KeyType, RestoreKeyParameters, SignParameters, SignatureAlgorithm,
    UpdateKeyPropertiesParameters, VerifyParameters,
};
use azure_security_keyvault_keys::{KeyClient, KeyClientOptions};
use common::{Failure, Setup, env, expect, secrets, setup};
use futures::TryStreamExt;

#[tokio::main]
async fn main() {
    let areas = std::env::args().nth(1).unwrap_or_else(|| "secrets".into());
    let setup = match setup() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("FAILED: setup: {e}");
            std::process::exit(1);
        }
    };
    for area in areas.split(',') {
        let done = match area {
            "secrets" => secrets(&setup).await,
            "keys" => keys(&setup).await,
            "certificates" => certificates(&setup).await,
            other => Err(format!("no area {other}").into()),
        };
        if let Err(e) = done {
            eprintln!("FAILED: {area}: {e}");
            std::process::exit(1);
        }
        println!("ok {area}");
    }
}

async fn keys(s: &Setup) -> Result<(), Failure> {
    let client = KeyClient::new(
        &s.vault_url,
        s.credential.clone(),
        Some(KeyClientOptions { client_options: s.client_options.clone(), ..Default::default() }),
    )?;
    let rsa = CreateKeyParameters { kty: Some(KeyType::Rsa), key_size: Some(2048), ..Default::default() };
    let made = client.create_key("rust-rsa", rsa.try_into()?, None).await?.into_model()?;
    let version = made.resource_id()?.version.ok_or("no version")?;
    expect(made.key.as_ref().and_then(|k| k.n.as_ref()).is_some_and(|n| n.len() == 256), "RSA-2048 modulus")?;
    // Encrypt with the version the key has now; decrypt with it.
    let plain = b"patient 0042: allergic to penicillin".to_vec();
    let params = KeyOperationParameters {
        algorithm: Some(EncryptionAlgorithm::RsaOaep256),
        value: Some(plain.clone()),
        ..Default::default()
    };
    let options = KeyClientEncryptOptions { key_version: Some(version.clone()), ..Default::default() };
    let sealed = client.encrypt("rust-rsa", params.try_into()?, Some(options)).await?.into_model()?;
    let back = KeyOperationParameters {
        algorithm: Some(EncryptionAlgorithm::RsaOaep256),
        value: sealed.result.clone(),
        ..Default::default()
    };
    let opened = client.decrypt("rust-rsa", &version, back.try_into()?, None).await?.into_model()?;
    expect(opened.result.as_deref() == Some(&plain[..]), "decrypt")?;
    // Wrap with the latest version (no version given), unwrap with the version it answered.
    let dek = vec![7u8; 32];
    let wrap = KeyOperationParameters {
        algorithm: Some(EncryptionAlgorithm::RsaOaep256),
        value: Some(dek.clone()),
        ..Default::default()
    };
    let wrapped = client.wrap_key("rust-rsa", wrap.try_into()?, None).await?.into_model()?;
    let wrapped_with = wrapped.resource_id()?.version.ok_or("wrap: no version")?;
    let unwrap = KeyOperationParameters {
        algorithm: Some(EncryptionAlgorithm::RsaOaep256),
        value: wrapped.result,
        ..Default::default()
    };
    let dek_back = client.unwrap_key("rust-rsa", &wrapped_with, unwrap.try_into()?, None).await?.into_model()?;
    expect(dek_back.result.as_deref() == Some(&dek[..]), "unwrap")?;
    // EC P-256: sign a digest and verify it (and not an altered one).
    let ec = CreateKeyParameters { kty: Some(KeyType::Ec), curve: Some(CurveName::P256), ..Default::default() };
    let ec_key = client.create_key("rust-ec", ec.try_into()?, None).await?.into_model()?;
    let ec_version = ec_key.resource_id()?.version.ok_or("no EC version")?;
    let digest = (0u8..32).collect::<Vec<u8>>();
    let sign = SignParameters { algorithm: Some(SignatureAlgorithm::Es256), value: Some(digest.clone()) };
    let options = KeyClientSignOptions { key_version: Some(ec_version.clone()), ..Default::default() };
    let signed = client.sign("rust-ec", sign.try_into()?, Some(options)).await?.into_model()?;
    expect(signed.result.as_ref().is_some_and(|s| s.len() == 64), "ES256 signature is r||s")?;
    for (d, want) in [(digest.clone(), true), (vec![0u8; 32], false)] {
        let verify = VerifyParameters {
            algorithm: Some(SignatureAlgorithm::Es256),
            digest: Some(d),
            signature: signed.result.clone(),
        };
        let v = client.verify("rust-ec", &ec_version, verify.try_into()?, None).await?.into_model()?;
        expect(v.value == Some(want), &format!("verify: want {want}"))?;
    }
    // Properties, rotation, versions, listing.
    let tags = UpdateKeyPropertiesParameters {
        tags: Some([("ward".to_string(), "7".to_string())].into()),
        ..Default::default()
    };
    let updated = client.update_key_properties("rust-rsa", tags.try_into()?, None).await?.into_model()?;
    expect(updated.tags.as_ref().and_then(|t| t.get("ward")).map(String::as_str) == Some("7"), "tags")?;
    let rotated = client.rotate_key("rust-rsa", None).await?.into_model()?;
    expect(rotated.resource_id()?.version.as_deref() != Some(version.as_str()), "rotate: a new version")?;
    let mut versions = 0;
    let mut pager = client.list_key_properties_versions("rust-rsa", None)?;
    while pager.try_next().await?.is_some() {
        versions += 1;
    }
    expect(versions == 2, &format!("versions: {versions}"))?;
    let old = KeyClientGetKeyOptions { key_version: Some(version.clone()), ..Default::default() };
    let first = client.get_key("rust-rsa", Some(old)).await?.into_model()?;
    expect(first.resource_id()?.version.as_deref() == Some(version.as_str()), "get an older version")?;
    let mut names = Vec::new();
    let mut pager = client.list_key_properties(None)?;
    while let Some(p) = pager.try_next().await? {
        names.push(p.resource_id()?.name);
    }
    expect(names.contains(&"rust-rsa".to_string()) && names.contains(&"rust-ec".to_string()), "list")?;
    // Backup, delete, purge, restore: the same key, still decrypting what it sealed.
    let backup = client.backup_key("rust-rsa", None).await?.into_model()?;
    client.delete_key("rust-rsa", None).await?;
    client.get_deleted_key("rust-rsa", None).await?;
    client.purge_deleted_key("rust-rsa", None).await?;
    let restore = RestoreKeyParameters { key_backup: backup.value };
    client.restore_key(restore.try_into()?, None).await?;
    let again = KeyOperationParameters {
        algorithm: Some(EncryptionAlgorithm::RsaOaep256),
        value: sealed.result,
        ..Default::default()
    };
    let reopened = client.decrypt("rust-rsa", &version, again.try_into()?, None).await?.into_model()?;
    expect(reopened.result.as_deref() == Some(&plain[..]), "decrypt after restore")?;
    Ok(())
}

async fn certificates(s: &Setup) -> Result<(), Failure> {
    let client = CertificateClient::new(
        &s.vault_url,
        s.credential.clone(),
        Some(CertificateClientOptions { client_options: s.client_options.clone(), ..Default::default() }),
    )?;
    let policy = |issuer: &str| CertificatePolicy {
        x509_certificate_properties: Some(X509CertificateProperties {
            subject: Some("CN=rust.coffer.test".into()),
            ..Default::default()
        }),
        issuer_parameters: Some(IssuerParameters { name: Some(issuer.into()), ..Default::default() }),
        ..Default::default()
    };
    let body = CreateCertificateParameters { certificate_policy: Some(policy("Self")), ..Default::default() };
    let made = client.begin_create_certificate("rust-web", body.try_into()?, None)?.await?.into_model()?;
    expect(made.cer.as_ref().is_some_and(|c| c.len() > 300), "a DER certificate")?;
    expect(made.kid.is_some() && made.sid.is_some(), "the key and secret ids")?;
    let version = made.resource_id()?.version.ok_or("no version")?;
    let options = CertificateClientGetCertificateOptions { certificate_version: Some(version), ..Default::default() };
    let got = client.get_certificate("rust-web", Some(options)).await?.into_model()?;
    expect(got.x509_thumbprint == made.x509_thumbprint, "get by version")?;
    let pol = client.get_certificate_policy("rust-web", None).await?.into_model()?;
    expect(
        pol.x509_certificate_properties.and_then(|x| x.subject).as_deref() == Some("CN=rust.coffer.test"),
        "policy",
    )?;
    // A certificate signed elsewhere: the pending operation carries the CSR.
    let body = CreateCertificateParameters { certificate_policy: Some(policy("Unknown")), ..Default::default() };
    let mut poller = client.begin_create_certificate("rust-csr", body.try_into()?, None)?;
    let first = poller.try_next().await?.ok_or("no status")?.into_model()?;
    expect(first.csr.as_ref().is_some_and(|c| c.len() > 100), "a CSR")?;
    expect(first.status.as_deref() == Some("inProgress"), "pending")?;
    client.delete_certificate_operation("rust-csr", None).await?;
    // Import a PEM bundle (key and certificate).
    let import = ImportCertificateParameters {
        base64_encoded_certificate: Some(env("PEM_BUNDLE")?),
        certificate_policy: Some(CertificatePolicy {
            secret_properties: Some(SecretProperties { content_type: Some("application/x-pem-file".into()) }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let imported = client.import_certificate("rust-imported", import.try_into()?, None).await?.into_model()?;
    expect(imported.cer.is_some(), "import")?;
    let mut names = Vec::new();
    let mut pager = client.list_certificate_properties(None)?;
    while let Some(p) = pager.try_next().await? {
        names.push(p.resource_id()?.name);
    }
    expect(names.contains(&"rust-web".to_string()) && names.contains(&"rust-imported".to_string()), "list")?;
    // Contacts.
    let contacts = Contacts {
        contact_list: Some(vec![Contact {
            email: Some("pki@hospital.example".into()),
            name: Some("PKI".into()),
            ..Default::default()
        }]),
        ..Default::default()
    };
    client.set_contacts(contacts.try_into()?, None).await?;
    let back = client.get_contacts(None).await?.into_model()?;
    expect(back.contact_list.is_some_and(|l| l.len() == 1), "contacts")?;
    client.delete_contacts(None).await?;
    // Delete and recover.
    client.delete_certificate("rust-web", None).await?;
    client.get_deleted_certificate("rust-web", None).await?;
    client.recover_deleted_certificate("rust-web", None).await?;
    let recovered = client.get_certificate("rust-web", None).await?.into_model()?;
    expect(recovered.x509_thumbprint == made.x509_thumbprint, "recovered")?;
    Ok(())
}
