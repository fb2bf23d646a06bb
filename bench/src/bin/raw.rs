//! The raw limit of each benchmarked operation: the same cryptography Coffer does for a request,
//! done in-process by aws-lc-rs with the key already parsed, on `THREADS` threads (the cores the
//! server has) for `SECONDS`. Prints one JSON object of operations per second, for
//! `bench/suite.py`; no HTTP, no storage, no audit.
//!
//! Run: `cargo run --release -p coffer-bench --bin raw-limits [-- SECONDS THREADS]`
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::digest::{Digest, SHA256};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::{KeySize, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, PrivateDecryptingKey};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::json;

/// Runs `op` on `threads` threads for `seconds` and returns operations per second.
fn rate<F>(threads: usize, seconds: f64, op: F) -> f64
where
    F: Fn() + Send + Sync + 'static,
{
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (op, stop, done) = (op.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    op();
                    n += 1;
                }
                done.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn main() -> anyhow::Result<()> {
    let args: Vec<f64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let seconds = args.first().copied().unwrap_or(3.0);
    let threads = args
        .get(1)
        .map(|t| *t as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let rng = SystemRandom::new();
    let fail = |what: &str| anyhow::anyhow!("{what} failed");

    let mut digest = [0u8; 32];
    rng.fill(&mut digest).map_err(|_| fail("rng"))?;
    let digest = Digest::import_less_safe(&digest, &SHA256).map_err(|_| fail("digest"))?;

    // RSA-2048 sign (RS256 on a client digest, as /keys/{name}/sign).
    let rsa = Arc::new(RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| fail("RSA keygen"))?);
    let (key, d) = (rsa.clone(), digest);
    let rsa_sign = rate(threads, seconds, move || {
        let mut sig = vec![0u8; key.public_modulus_len()];
        let _ = key.sign_digest(&RSA_PKCS1_SHA256, &d, &mut sig);
    });

    // RSA-2048 decrypt with OAEP-256 (as /keys/{name}/decrypt, alg RSA-OAEP-256).
    let pkcs8 = rsa.as_der().map_err(|_| fail("RSA export"))?;
    let private = PrivateDecryptingKey::from_pkcs8(pkcs8.as_ref()).map_err(|_| fail("RSA import"))?;
    let public = private.public_key();
    let encrypting = aws_lc_rs::rsa::OaepPublicEncryptingKey::new(public).map_err(|_| fail("OAEP key"))?;
    let mut ciphertext = vec![0u8; encrypting.ciphertext_size()];
    let n = encrypting
        .encrypt(&OAEP_SHA256_MGF1SHA256, &[7u8; 32], &mut ciphertext, None)
        .map_err(|_| fail("OAEP encrypt"))?
        .len();
    ciphertext.truncate(n);
    let oaep = Arc::new(OaepPrivateDecryptingKey::new(private).map_err(|_| fail("OAEP key"))?);
    let rsa_decrypt = rate(threads, seconds, move || {
        let mut out = vec![0u8; oaep.min_output_size()];
        let _ = oaep.decrypt(&OAEP_SHA256_MGF1SHA256, &ciphertext, &mut out, None);
    });

    // P-256 sign (ES256 on a client digest).
    let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|_| fail("P-256 keygen"))?;
    let _ = ec.public_key();
    let ec = Arc::new(ec);
    let p256_sign = rate(threads, seconds, move || {
        let _ = ec.sign_digest(&digest);
    });

    // AES-256-GCM encrypt of 128 bytes (as /keys/{name}/encrypt, alg A256GCM, on an oct key).
    let mut k = [0u8; 32];
    rng.fill(&mut k).map_err(|_| fail("rng"))?;
    let gcm = Arc::new(LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &k).map_err(|_| fail("AES key"))?));
    let aes_encrypt = rate(threads, seconds, move || {
        let mut buf = vec![7u8; 128];
        let mut iv = [0u8; 12];
        let _ = SystemRandom::new().fill(&mut iv);
        let _ = gcm.seal_in_place_append_tag(Nonce::assume_unique_for_key(iv), Aad::empty(), &mut buf);
    });

    let out = json!({
        "threads": threads,
        "seconds": seconds,
        "rsa2048_sign": rsa_sign,
        "rsa2048_decrypt_oaep256": rsa_decrypt,
        "p256_sign": p256_sign,
        "aes256gcm_encrypt": aes_encrypt,
    });
    println!("{out}");
    Ok(())
}
