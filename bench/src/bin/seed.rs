//! Fills a vault with many secrets for the scale benchmark, quickly: straight into the data
//! directory's store in transactions of a thousand (`Store::put_versions`), sealed with the
//! vault's data key under the same AAD as `Objects` uses, so each one reads back through the API
//! like any other secret. Going through HTTPS would make seeding a million secrets take longer
//! than the benchmark itself.
//!
//! Run: `seed-secrets DATA_DIR VAULT COUNT [PREFIX [FIRST]]` (dev data directory, vault already
//! created). Secrets are named `{PREFIX}{i}` for i in FIRST..FIRST+COUNT (default `f`, 0), each
//! with a 100-byte value.
use std::sync::Arc;
use std::time::Instant;

use coffer_core::clock::{Clock, SystemClock};
use coffer_core::names::name_key;
use coffer_core::object::{Attributes, ObjectKind, Tags};
use coffer_crypto::root::{DevKeyFile, RootOfTrust};
use coffer_crypto::seal::object_aad;
use coffer_server::keyring::Keyring;
use coffer_store::{NewVersion, ObjectRef, ObjectStore, PutOutcome, SqliteStore, VaultStore};

/// Secrets written per store transaction.
const BATCH: u64 = 1000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, vault, count, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: seed-secrets DATA_DIR VAULT COUNT [PREFIX [FIRST]]");
    };
    let dir = std::path::Path::new(dir);
    let count: u64 = count.parse()?;
    let prefix = rest.first().map(String::as_str).unwrap_or("f");
    let first: u64 = rest.get(1).map(|f| f.parse()).transpose()?.unwrap_or(0);

    let root: Arc<dyn RootOfTrust> = Arc::new(DevKeyFile::open_or_create(&dir.join("root.key"))?);
    let store = SqliteStore::open(&dir.join("coffer.db")).await?;
    let keyring = Keyring::new(root);
    let record = store.get_vault_by_name(vault).await?.ok_or_else(|| anyhow::anyhow!("no vault named {vault}"))?;
    let key = keyring.vault_key(&record)?;
    let vault_id = record.vault.id.clone();

    let now = SystemClock.now();
    let attributes = Attributes::new(now);
    let tags = Tags::default();
    let value = [b'v'; 100];
    let started = Instant::now();
    let mut next = first;
    while next < first + count {
        let end = (next + BATCH).min(first + count);
        // Names, keys, versions and sealed values of one batch, borrowed by its `NewVersion`s.
        let names: Vec<String> = (next..end).map(|i| format!("{prefix}{i}")).collect();
        let keys: Vec<String> = names.iter().map(|n| name_key(n)).collect();
        let versions: Vec<String> = names.iter().map(|_| coffer_crypto::random::version_id()).collect();
        let sealed = keys
            .iter()
            .zip(&versions)
            .map(|(k, v)| key.seal(&object_aad(&vault_id, ObjectKind::Secret.as_str(), k, v), &value))
            .collect::<Result<Vec<_>, _>>()?;
        let batch: Vec<NewVersion<'_>> = (0..names.len())
            .map(|i| NewVersion {
                at: ObjectRef { vault_id: &vault_id, kind: ObjectKind::Secret, name_key: &keys[i] },
                name: &names[i],
                version: &versions[i],
                attributes: &attributes,
                tags: &tags,
                content_type: None,
                managed: false,
                payload: &sealed[i],
                meta: None,
            })
            .collect();
        let outcomes = store.put_versions(&batch).await?;
        if let Some(i) = outcomes.iter().position(|o| *o != PutOutcome::Written) {
            anyhow::bail!("{}: {:?}", names[i], outcomes[i]);
        }
        next = end;
        if (next - first).is_multiple_of(100_000) {
            eprintln!("seeded {} secrets in {:.0} s", next - first, started.elapsed().as_secs_f64());
        }
    }
    println!("{{\"seeded\":{count},\"seconds\":{:.3}}}", started.elapsed().as_secs_f64());
    Ok(())
}
