//! Property tests of the JWK codec: base64url round trips, JWK import never panics on arbitrary
//! input, and EC keys survive export → import with their identity intact.
use coffer_crypto::b64;
use coffer_crypto::keys::{JwkIn, KeyMaterial};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn base64url_round_trips(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let e = b64::url_encode(&data);
        prop_assert!(!e.contains('=') && !e.contains('+') && !e.contains('/'));
        prop_assert_eq!(b64::url_decode(&e).unwrap(), data);
    }

    #[test]
    fn arbitrary_jwks_are_rejected_cleanly(
        kty in prop_oneof![Just("RSA"), Just("EC"), Just("oct"), Just("RSA-HSM"), Just("nope")],
        crv in prop_oneof![Just(None), Just(Some("P-256")), Just(Some("P-521")), Just(Some("bad"))],
        fields in proptest::collection::vec(proptest::option::of("[A-Za-z0-9_-]{0,80}"), 9),
    ) {
        let mut j = JwkIn::default();
        j.kty = kty.to_string();
        j.crv = crv.map(str::to_string);
        j.n = fields[0].clone();
        j.e = fields[1].clone();
        j.d = fields[2].clone();
        j.p = fields[3].clone();
        j.q = fields[4].clone();
        j.x = fields[5].clone();
        j.y = fields[6].clone();
        j.k = fields[7].clone();
        j.dp = fields[8].clone();
        // Random fields are (almost) never a valid key; whatever the outcome, no panic, and an
        // accepted oct key has a legal size.
        if let Ok(m) = KeyMaterial::from_jwk(&j) {
            prop_assert!(m.kty == "oct" && matches!(m.size_bits(), Some(128 | 192 | 256)));
        }
    }

    #[test]
    fn parsing_arbitrary_json_never_panics(s in "\\PC{0,200}") {
        if let Ok(j) = serde_json::from_str::<JwkIn>(&s) {
            let _ = KeyMaterial::from_jwk(&j);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Export the public part, import with d: the same key (a signature by one verifies with the other).
    #[test]
    fn ec_export_import_round_trip(curve in prop_oneof![Just("P-256"), Just("P-384"), Just("P-521"), Just("P-256K")], seed in any::<u8>()) {
        let original = KeyMaterial::generate("EC", None, Some(curve), None).unwrap();
        let public = original.public_jwk().unwrap();
        let d = original.private_scalar_for_tests().unwrap();
        let mut j = JwkIn::default();
        j.kty = "EC".into();
        j.crv = Some(curve.into());
        j.x = public["x"].as_str().map(str::to_string);
        j.y = public["y"].as_str().map(str::to_string);
        j.d = Some(b64::url_encode(&d));
        let imported = KeyMaterial::from_jwk(&j).unwrap();
        prop_assert_eq!(imported.public_jwk().unwrap(), public);
        let (alg, len) = match curve { "P-384" => ("ES384", 48), "P-521" => ("ES512", 64), "P-256K" => ("ES256K", 32), _ => ("ES256", 32) };
        let digest = vec![seed; len];
        let sig = imported.sign(alg, &digest).unwrap();
        prop_assert!(original.verify(alg, &digest, &sig).unwrap());
    }
}
