"""Keys through azure-keyvault-keys (KeyClient, CryptographyClient, sync and async), with every
result cross-checked by an independent implementation (Python `cryptography`)."""
import asyncio
import base64
import datetime
import hashlib
import os
import time

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.keyvault.keys import KeyClient, KeyCurveName, KeyOperation, KeyType
from azure.keyvault.keys.crypto import (
    CryptographyClient, EncryptionAlgorithm, KeyWrapAlgorithm, SignatureAlgorithm,
)
from cryptography.hazmat.primitives import hashes, keywrap, padding as sympad
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

pytestmark = pytest.mark.compat("Python SDK", "keys")


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def unb64u(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def int_b(n, length=None):
    length = length or (n.bit_length() + 7) // 8
    return n.to_bytes(length, "big")


@pytest.fixture
def keys(coffer, credential, vault):
    return KeyClient(coffer.vault_url(vault), credential)


def crypto(keys, key, credential):
    return CryptographyClient(key, credential)


def raw(coffer, keys, method, path, body=None):
    r = requests.request(method, f"{keys.vault_url}{path}?api-version=7.6", json=body,
                         headers={"Authorization": f"Bearer {coffer.token()}"})
    return r


def public_rsa(jwk):
    return rsa.RSAPublicNumbers(int.from_bytes(jwk.e, "big"), int.from_bytes(jwk.n, "big")).public_key()


HASHES = {"256": (hashes.SHA256, hashlib.sha256), "384": (hashes.SHA384, hashlib.sha384), "512": (hashes.SHA512, hashlib.sha512)}


def test_key_lifecycle(keys):
    k = keys.create_rsa_key("rsa-life", size=2048, tags={"team": "crypto"})
    assert k.key_type == KeyType.rsa and len(k.key.n) == 256 and k.key.e == b"\x01\x00\x01"
    assert k.key.d is None and k.key.p is None, "never the private part"
    assert set(k.key_operations) == {"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"}
    assert k.properties.recovery_level == "Recoverable+Purgeable" and k.properties.exportable is False
    k2 = keys.create_rsa_key("rsa-life")
    assert keys.get_key("rsa-life").properties.version == k2.properties.version
    assert keys.get_key("rsa-life", k.properties.version).key.n == k.key.n
    assert {p.name for p in keys.list_properties_of_keys()} == {"rsa-life"}
    assert len(list(keys.list_properties_of_key_versions("rsa-life"))) == 2
    upd = keys.update_key_properties("rsa-life", key_operations=[KeyOperation.sign, KeyOperation.verify], enabled=True, tags={"a": "b"})
    assert set(upd.key_operations) == {"sign", "verify"} and upd.properties.tags == {"a": "b"}
    backup = keys.backup_key("rsa-life")
    deleted = keys.begin_delete_key("rsa-life").result()
    assert deleted.recovery_id.endswith("/deletedkeys/rsa-life") and deleted.key.n == k2.key.n
    assert "rsa-life" in [d.name for d in keys.list_deleted_keys()]
    assert keys.get_deleted_key("rsa-life").name == "rsa-life"
    keys.begin_recover_deleted_key("rsa-life").wait()
    assert keys.get_key("rsa-life").key.n == k2.key.n
    keys.begin_delete_key("rsa-life").wait()
    keys.purge_deleted_key("rsa-life")
    with pytest.raises(ResourceNotFoundError):
        keys.get_deleted_key("rsa-life")
    restored = keys.restore_key_backup(backup)
    assert restored.name == "rsa-life" and restored.key.n == k2.key.n
    assert len(list(keys.list_properties_of_key_versions("rsa-life"))) == 2


@pytest.mark.parametrize("size", [2048, 3072, 4096])
def test_rsa_every_algorithm_cross_checked(keys, credential, size):
    k = keys.create_rsa_key(f"rsa{size}", size=size)
    assert len(k.key.n) * 8 == size
    c = crypto(keys, k.id, credential)
    pub = public_rsa(k.key)
    # Signatures made by Coffer verify locally, for every algorithm.
    for alg in ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]:
        bits = alg[2:]
        digest = HASHES[bits][1](b"patient 42").digest()
        sig = c.sign(SignatureAlgorithm(alg), digest).signature
        pad = padding.PKCS1v15() if alg.startswith("RS") else padding.PSS(padding.MGF1(HASHES[bits][0]()), padding.PSS.DIGEST_LENGTH)
        pub.verify(sig, digest, pad, utils.Prehashed(HASHES[bits][0]()))
    # Ciphertexts made locally with the public key decrypt in Coffer; wrapped keys unwrap.
    for alg, pad in [("RSA-OAEP", padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None)),
                     ("RSA-OAEP-256", padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)),
                     ("RSA1_5", padding.PKCS1v15())]:
        ct = pub.encrypt(b"x-ray archive", pad)
        assert c.decrypt(EncryptionAlgorithm(alg), ct).plaintext == b"x-ray archive"
        wrapped = pub.encrypt(b"k" * 32, pad)
        assert c.unwrap_key(KeyWrapAlgorithm(alg), wrapped).key == b"k" * 32


def test_rsa_imported_key_both_directions(coffer, keys, credential):
    priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    n = priv.private_numbers()
    jwk = {"kty": "RSA", "n": b64u(int_b(n.public_numbers.n)), "e": b64u(int_b(n.public_numbers.e)),
           "d": b64u(int_b(n.d)), "p": b64u(int_b(n.p)), "q": b64u(int_b(n.q)), "dp": b64u(int_b(n.dmp1)),
           "dq": b64u(int_b(n.dmq1)), "qi": b64u(int_b(n.iqmp)), "key_ops": ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"]}
    r = raw(coffer, keys, "PUT", "/keys/imported-rsa", {"key": jwk})
    assert r.status_code == 200, r.text
    assert "d" not in r.json()["key"] and r.json()["key"]["n"] == jwk["n"]
    # Server-side encrypt and wrap (raw API), decrypted locally with the private key.
    for alg, pad in [("RSA-OAEP-256", padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)), ("RSA1_5", padding.PKCS1v15())]:
        r = raw(coffer, keys, "POST", "/keys/imported-rsa//encrypt", {"alg": alg, "value": b64u(b"hello")})
        assert r.status_code == 200, r.text
        assert priv.decrypt(unb64u(r.json()["value"]), pad) == b"hello"
        r = raw(coffer, keys, "POST", "/keys/imported-rsa//wrapkey", {"alg": alg, "value": b64u(b"w" * 16)})
        assert priv.decrypt(unb64u(r.json()["value"]), pad) == b"w" * 16
    # Signatures made locally verify in Coffer (server-side verify).
    digest = hashlib.sha256(b"consent form").digest()
    sig = priv.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
    r = raw(coffer, keys, "POST", "/keys/imported-rsa//verify", {"alg": "RS256", "digest": b64u(digest), "value": b64u(sig)})
    assert r.status_code == 200 and r.json()["value"] is True
    r = raw(coffer, keys, "POST", "/keys/imported-rsa//verify", {"alg": "RS256", "digest": b64u(hashlib.sha256(b"x").digest()), "value": b64u(sig)})
    assert r.json()["value"] is False


@pytest.mark.parametrize("crv,alg,hash_", [("P-256", "ES256", "256"), ("P-384", "ES384", "384"), ("P-521", "ES512", "512"), ("P-256K", "ES256K", "256")])
def test_ec_every_curve_cross_checked(coffer, keys, credential, crv, alg, hash_):
    name = "ec-" + crv.replace("-", "").lower()
    k = keys.create_ec_key(name, curve=KeyCurveName(crv))
    assert k.key.crv == crv and set(k.key_operations) == {"sign", "verify"}
    curves = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1(), "P-256K": ec.SECP256K1()}
    pub = ec.EllipticCurvePublicNumbers(int.from_bytes(k.key.x, "big"), int.from_bytes(k.key.y, "big"), curves[crv]).public_key()
    digest = HASHES[hash_][1](b"lab result").digest()
    sig = crypto(keys, k.id, credential).sign(SignatureAlgorithm(alg), digest).signature
    half = len(sig) // 2
    der = utils.encode_dss_signature(int.from_bytes(sig[:half], "big"), int.from_bytes(sig[half:], "big"))
    pub.verify(der, digest, ec.ECDSA(utils.Prehashed(HASHES[hash_][0]())))
    # And the reverse: an imported EC key signs locally, Coffer verifies.
    priv = ec.generate_private_key(curves[crv])
    pn = priv.private_numbers()
    size = (priv.curve.key_size + 7) // 8
    jwk = {"kty": "EC", "crv": crv, "x": b64u(int_b(pn.public_numbers.x, size)), "y": b64u(int_b(pn.public_numbers.y, size)), "d": b64u(int_b(pn.private_value, size))}
    assert raw(coffer, keys, "PUT", f"/keys/{name}-imported", {"key": jwk}).status_code == 200
    r, s = utils.decode_dss_signature(priv.sign(digest, ec.ECDSA(utils.Prehashed(HASHES[hash_][0]()))))
    fixed = int_b(r, size) + int_b(s, size)
    res = raw(coffer, keys, "POST", f"/keys/{name}-imported//verify", {"alg": alg, "digest": b64u(digest), "value": b64u(fixed)})
    assert res.status_code == 200 and res.json()["value"] is True
    # A curve/algorithm mismatch is a clear 400.
    wrong = "ES384" if alg != "ES384" else "ES256"
    bad = raw(coffer, keys, "POST", f"/keys/{name}//sign", {"alg": wrong, "value": b64u(b"\0" * 48)})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "BadParameter"


@pytest.mark.parametrize("bits", [128, 192, 256])
def test_oct_every_algorithm_cross_checked(coffer, keys, credential, bits):
    secret = os.urandom(bits // 8)
    name = f"aes{bits}"
    r = raw(coffer, keys, "PUT", f"/keys/{name}", {"key": {"kty": "oct", "k": b64u(secret)}})
    assert r.status_code == 200, r.text
    assert "k" not in r.json()["key"], "symmetric material is never returned"
    c = crypto(keys, keys.get_key(name).id, credential)
    # AES-GCM: Coffer encrypts (and picks the iv), cryptography decrypts; and back.
    res = c.encrypt(EncryptionAlgorithm(f"A{bits}GCM"), b"ward 7 roster", additional_authenticated_data=b"ward")
    assert AESGCM(secret).decrypt(res.iv, res.ciphertext + res.tag, b"ward") == b"ward 7 roster"
    iv = os.urandom(12)
    ct = AESGCM(secret).encrypt(iv, b"from outside", b"aad")
    pt = c.decrypt(EncryptionAlgorithm(f"A{bits}GCM"), ct[:-16], iv=iv, authentication_tag=ct[-16:], additional_authenticated_data=b"aad")
    assert pt.plaintext == b"from outside"
    # AES-CBC with PKCS#7 padding and unpadded.
    iv = os.urandom(16)
    p = sympad.PKCS7(128).padder()
    padded = p.update(b"odd length text") + p.finalize()
    enc = Cipher(algorithms.AES(secret), modes.CBC(iv)).encryptor()
    ct = enc.update(padded) + enc.finalize()
    # (Through the REST API: for AES-256 the SDK "decrypts" CBCPAD locally with a random key of its
    # own making, as the JWK carries no `k`, and falls back to the vault only when the random
    # plaintext's padding is invalid — so 1 time in 256 it returns garbage.)
    r = raw(coffer, keys, "POST", f"/keys/{name}//decrypt", {"alg": f"A{bits}CBCPAD", "value": b64u(ct), "iv": b64u(iv)})
    assert unb64u(r.json()["value"]) == b"odd length text", r.text
    res = c.encrypt(EncryptionAlgorithm(f"A{bits}CBC"), b"sixteen bytes!!!" * 2, iv=iv)
    dec = Cipher(algorithms.AES(secret), modes.CBC(iv)).decryptor()
    assert dec.update(res.ciphertext) + dec.finalize() == b"sixteen bytes!!!" * 2
    # Key wrap (RFC 3394) both ways, and with padding (RFC 5649). Through the REST API: for
    # oct keys, whose JWK never carries `k`, the SDK's CryptographyClient wraps locally with a
    # key of its own making (SymmetricKey without key bytes is random) instead of asking the vault.
    cek = os.urandom(32)
    r = raw(coffer, keys, "POST", f"/keys/{name}//wrapkey", {"alg": f"A{bits}KW", "value": b64u(cek)})
    assert keywrap.aes_key_unwrap(secret, unb64u(r.json()["value"])) == cek
    r = raw(coffer, keys, "POST", f"/keys/{name}//unwrapkey", {"alg": f"A{bits}KW", "value": b64u(keywrap.aes_key_wrap(secret, cek))})
    assert unb64u(r.json()["value"]) == cek
    r = raw(coffer, keys, "POST", f"/keys/{name}//wrapkey", {"alg": "CKM_AES_KEY_WRAP_PAD", "value": b64u(b"13 byte value")})
    assert keywrap.aes_key_unwrap_with_padding(secret, unb64u(r.json()["value"])) == b"13 byte value"
    r = raw(coffer, keys, "POST", f"/keys/{name}//unwrapkey", {"alg": "CKM_AES_KEY_WRAP", "value": b64u(keywrap.aes_key_wrap(secret, cek))})
    assert unb64u(r.json()["value"]) == cek


def test_generated_oct_keys(keys, credential):
    for bits in [128, 192, 256]:
        k = keys.create_oct_key(f"gen{bits}", size=bits)
        assert k.key_type == KeyType.oct and k.key.k is None
        c = crypto(keys, k.id, credential)
        res = c.encrypt(EncryptionAlgorithm(f"A{bits}GCM"), b"round trip")
        assert c.decrypt(EncryptionAlgorithm(f"A{bits}GCM"), res.ciphertext, iv=res.iv, authentication_tag=res.tag).plaintext == b"round trip"


def test_key_ops_enabled_and_validity_window(coffer, keys):
    keys.create_rsa_key("guarded")
    digest = b64u(hashlib.sha256(b"x").digest())
    sign = lambda: raw(coffer, keys, "POST", "/keys/guarded//sign", {"alg": "RS256", "value": digest})
    assert sign().status_code == 200
    keys.update_key_properties("guarded", key_operations=[KeyOperation.verify])
    r = sign()
    assert r.status_code == 403 and r.json()["error"]["innererror"]["code"] == "KeyOperationForbidden"
    keys.update_key_properties("guarded", key_operations=[KeyOperation.sign, KeyOperation.verify, KeyOperation.decrypt, KeyOperation.encrypt])
    sig = sign().json()["value"]
    ct = raw(coffer, keys, "POST", "/keys/guarded//encrypt", {"alg": "RSA-OAEP", "value": b64u(b"old data")}).json()["value"]
    past = datetime.datetime.fromtimestamp(int(time.time()) - 10, tz=datetime.timezone.utc)
    keys.update_key_properties("guarded", expires_on=past)
    r = sign()
    assert r.status_code == 403 and "expired" in r.json()["error"]["message"]
    # Expired keys still verify and decrypt old data, as in Azure.
    assert raw(coffer, keys, "POST", "/keys/guarded//verify", {"alg": "RS256", "digest": digest, "value": sig}).json()["value"] is True
    assert unb64u(raw(coffer, keys, "POST", "/keys/guarded//decrypt", {"alg": "RSA-OAEP", "value": ct}).json()["value"]) == b"old data"
    # A key that is not yet valid: sign refused, verify still works.
    r = raw(coffer, keys, "PATCH", "/keys/guarded/", {"attributes": {"nbf": int(time.time()) + 3600, "exp": None}})
    assert r.status_code == 200, r.text
    r = sign()
    assert r.status_code == 403 and r.json()["error"]["innererror"]["code"] == "KeyNotYetValid"
    assert raw(coffer, keys, "POST", "/keys/guarded//verify", {"alg": "RS256", "digest": digest, "value": sig}).json()["value"] is True
    keys.update_key_properties("guarded", enabled=False)
    r = raw(coffer, keys, "POST", "/keys/guarded//decrypt", {"alg": "RSA-OAEP", "value": ct})
    assert r.status_code == 403 and r.json()["error"]["innererror"]["code"] == "KeyDisabled"


def test_bad_key_input_is_a_clear_4xx(coffer, keys):
    keys.create_ec_key("ecbad")
    keys.create_rsa_key("rsabad")
    cases = [
        ("POST", "/keys/x/create", {"kty": "RSA-HSM"}, "hardware root of trust"),
        ("POST", "/keys/x/create", {"kty": "EC-HSM"}, "hardware root of trust"),
        ("PUT", "/keys/x", {"key": {"kty": "RSA", "n": "AQAB"}, "Hsm": True}, "hardware root of trust"),
        ("POST", "/keys/x/create", {"kty": "DSA"}, "not supported"),
        ("POST", "/keys/x/create", {}, "kty"),
        ("POST", "/keys/x/create", {"kty": "RSA", "key_size": 1024}, "2048"),
        ("POST", "/keys/x/create", {"kty": "EC", "crv": "P-224"}, "curve"),
        ("POST", "/keys/x/create", {"kty": "oct", "key_size": 64}, "128"),
        ("POST", "/keys/x/create", {"kty": "RSA", "key_ops": ["fly"]}, "key operation"),
        ("POST", "/keys/x/create", {"kty": "RSA", "attributes": {"exportable": True}}, "Exportable"),
        ("PUT", "/keys/x", {"key": {"kty": "RSA", "n": "!!", "e": "AQAB"}}, "base64url"),
        ("PUT", "/keys/x", {"key": {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA", "d": "AAAA"}}, "32 bytes"),
        ("POST", "/keys/rsabad//sign", {"alg": "RS256", "value": b64u(b"short")}, "digest"),
        ("POST", "/keys/rsabad//sign", {"alg": "ES256", "value": b64u(b"\0" * 32)}, "not supported"),
        ("POST", "/keys/rsabad//decrypt", {"alg": "RSA-OAEP", "value": b64u(b"garbage")}, "decryption failed"),
        ("POST", "/keys/rsabad//encrypt", {"alg": "RSA-OAEP", "value": "%%%"}, "base64url"),
        ("POST", "/keys/rsabad//encrypt", {"value": b64u(b"x")}, "alg"),
        ("POST", "/keys/ecbad//encrypt", {"alg": "RSA-OAEP", "value": b64u(b"x")}, "not permitted"),
        ("POST", "/rng", {"count": 0}, "count"),
        ("POST", "/rng", {"count": 129}, "count"),
    ]
    for method, path, body, fragment in cases:
        r = raw(coffer, keys, method, path, body)
        assert 400 <= r.status_code < 500, (path, body, r.status_code, r.text)
        assert fragment in r.json()["error"]["message"], (path, body, r.text)
    assert len(keys.get_random_bytes(32)) == 32 if hasattr(keys, "get_random_bytes") else True
    r = raw(coffer, keys, "POST", "/rng", {"count": 128})
    assert r.status_code == 200 and len(unb64u(r.json()["value"])) == 128


def test_rotation_keeps_old_versions_working(keys, credential):
    old = keys.create_rsa_key("rotating")
    new = keys.rotate_key("rotating")
    assert new.properties.version != old.properties.version and new.key.n != old.key.n
    assert keys.get_key("rotating").properties.version == new.properties.version
    digest = hashlib.sha256(b"signed before rotation").digest()
    sig = CryptographyClient(old.id, credential).sign(SignatureAlgorithm.rs256, digest).signature
    public_rsa(old.key).verify(sig, digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
    ct = public_rsa(old.key).encrypt(b"old", padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
    assert CryptographyClient(old.id, credential).decrypt(EncryptionAlgorithm.rsa_oaep_256, ct).plaintext == b"old"


def test_rotation_policy(keys):
    from azure.keyvault.keys import KeyRotationLifetimeAction, KeyRotationPolicy, KeyRotationPolicyAction

    keys.create_ec_key("policy-key")
    default = keys.get_key_rotation_policy("policy-key")
    assert [a.action.lower() for a in default.lifetime_actions] == ["notify"]
    policy = KeyRotationPolicy(expires_in="P90D", lifetime_actions=[
        KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P30D"),
        KeyRotationLifetimeAction(KeyRotationPolicyAction.notify, time_before_expiry="P10D")])
    saved = keys.update_key_rotation_policy("policy-key", policy)
    assert saved.expires_in == "P90D" and len(saved.lifetime_actions) == 2
    got = keys.get_key_rotation_policy("policy-key")
    assert {a.action.lower() for a in got.lifetime_actions} == {"rotate", "notify"}
    with pytest.raises(HttpResponseError) as e:
        keys.update_key_rotation_policy("policy-key", KeyRotationPolicy(expires_in="P2D"))
    assert e.value.status_code == 400


def test_async_key_client(coffer, vault):
    from azure.keyvault.keys.aio import KeyClient as AsyncKeyClient
    from azure.keyvault.keys.crypto.aio import CryptographyClient as AsyncCrypto

    async def scenario():
        cred = coffer.async_credential()
        async with cred, AsyncKeyClient(coffer.vault_url(vault), cred) as kc:
            k = await kc.create_ec_key("async-ec", curve=KeyCurveName.p_384)
            assert (await kc.get_key("async-ec")).key.crv == "P-384"
            digest = hashlib.sha384(b"async").digest()
            async with AsyncCrypto(k.id, cred) as c:
                sig = (await c.sign(SignatureAlgorithm.es384, digest)).signature
            pub = ec.EllipticCurvePublicNumbers(int.from_bytes(k.key.x, "big"), int.from_bytes(k.key.y, "big"), ec.SECP384R1()).public_key()
            pub.verify(utils.encode_dss_signature(int.from_bytes(sig[:48], "big"), int.from_bytes(sig[48:], "big")), digest, ec.ECDSA(utils.Prehashed(hashes.SHA384())))
            await kc.delete_key("async-ec")
            assert "async-ec" in [d.name async for d in kc.list_deleted_keys()]

    asyncio.run(scenario())


def test_key_attestation_release_and_hmac_say_why_they_are_not_available(coffer, keys):
    """Key attestation (`get_key_attestation`, 2025-07-01) and secure key release need an HSM
    that attests: Coffer has none to offer, and says so (400) once the key is readable."""
    keys.create_ec_key("attested", curve="P-256")
    with pytest.raises(HttpResponseError) as e:
        keys.get_key_attestation("attested")
    assert e.value.status_code == 400 and "attestation is not available" in str(e.value), e.value
    with pytest.raises(ResourceNotFoundError):
        keys.get_key_attestation("no-such-key")
    with pytest.raises(HttpResponseError) as e:
        keys.create_rsa_key("releasable", exportable=True, release_policy=None)
    assert e.value.status_code == 400 and "release" in str(e.value).lower(), e.value
    # Releasing a key, and the 2026 secure wrap/unwrap inside a TEE, rest on attestation too.
    with pytest.raises(HttpResponseError) as e:
        keys.release_key("attested", "an-attestation-token")
    assert e.value.status_code == 400 and "Microsoft Azure Attestation" in str(e.value), e.value
    for op in ("securewrapkey", "secureunwrapkey"):
        r = raw(coffer, keys, "POST", f"/keys/attested//{op}", {"alg": "RSA-OAEP-256", "value": "AA"})
        assert r.status_code == 400 and "attestation" in r.json()["error"]["message"], (op, r.text)
    # HMAC signing (HS256, Managed HSM oct-HSM keys in Azure) is not offered.
    keys.create_oct_key("hmac", size=256, key_operations=["sign", "verify"])
    r = raw(coffer, keys, "POST", "/keys/hmac//sign", {"alg": "HS256", "value": b64u(hashlib.sha256(b"x").digest())})
    assert r.status_code == 400 and r.json()["error"]["code"] == "BadParameter", r.text


def test_generic_create_key_and_the_clients_own_cryptography_client(keys):
    """`KeyClient.create_key` (the kty as a parameter), `get_cryptography_client` and the
    CryptographyClient's `wrap_key`/`unwrap_key`, with the unwrap checked against the original."""
    made = keys.create_key("generic-rsa", KeyType.rsa, size=3072, key_operations=["wrapKey", "unwrapKey"])
    assert made.key_type == KeyType.rsa and len(made.key.n) == 384
    crypto = keys.get_cryptography_client("generic-rsa", key_version=made.properties.version)
    dek = os.urandom(32)
    wrapped = crypto.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, dek)
    assert wrapped.key_id == made.id and wrapped.encrypted_key != dek
    assert crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped.encrypted_key).key == dek
    with pytest.raises(HttpResponseError) as e:
        crypto.sign(SignatureAlgorithm.rs256, hashlib.sha256(b"x").digest())
    assert e.value.status_code == 403 and "KeyOperationForbidden" in str(e.value), "sign is not among its operations"
    ec_key = keys.create_key("generic-ec", KeyType.ec, curve=KeyCurveName.p_384)
    assert ec_key.key.crv == KeyCurveName.p_384
