"""The key SDK once more, against a PKCS#11-rooted server with `-HSM` key types: KeyClient and
CryptographyClient, sync and async, every size, curve and algorithm the token offers, each
result cross-checked with Python `cryptography`; what SoftHSM lacks is a clear 400 naming it."""
import asyncio
import hashlib
import os

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.keyvault.keys import KeyClient, KeyRotationLifetimeAction, KeyRotationPolicy, KeyRotationPolicyAction
from azure.keyvault.keys.crypto import CryptographyClient, EncryptionAlgorithm, KeyWrapAlgorithm, SignatureAlgorithm
from cryptography.hazmat.primitives import hashes, keywrap, padding as sympad
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from test_production import admin_credential, admin_env

pytestmark = pytest.mark.compat("Python SDK", "keys")

HASHES = {"256": (hashes.SHA256, hashlib.sha256), "384": (hashes.SHA384, hashlib.sha384),
          "512": (hashes.SHA512, hashlib.sha512)}


class HsmVault:
    def __init__(self, server, init):
        self.server, self.init = server, init
        self.ca = server.tls["ca.pem"]
        self.url = f"https://lab.vault.localhost:{server.port}"
        self.credential = admin_credential(server, init)
        self.keys = KeyClient(self.url, self.credential, connection_verify=self.ca)

    def crypto(self, key_id):
        return CryptographyClient(key_id, self.credential, connection_verify=self.ca)


@pytest.fixture(scope="module")
def hsm():
    from test_pkcs11 import pkcs11_server

    s = pkcs11_server("coffer-keys-hsm-")
    s.start(extra_env=s.extra_env)
    init = s.cli_json("operator", "init", "--key-shares", "1", "--key-threshold", "1")
    s.cli_json("vault", "create", "--name", "lab", **admin_env(init))
    yield HsmVault(s, init)
    s.stop()


def public_rsa(jwk):
    return rsa.RSAPublicNumbers(int.from_bytes(jwk.e, "big"), int.from_bytes(jwk.n, "big")).public_key()


@pytest.mark.parametrize("size", [2048, 3072, 4096])
def test_rsa_hsm_every_algorithm_cross_checked(hsm, size):
    k = hsm.keys.create_rsa_key(f"rsa{size}", size=size, hardware_protected=True)
    assert k.key_type == "RSA-HSM" and len(k.key.n) == size // 8 and k.key.d is None
    c, pub = hsm.crypto(k.id), public_rsa(k.key)
    for bits, (h, hl) in HASHES.items():
        digest = hl(b"discharge letter").digest()
        for alg, pad in [(f"RS{bits}", padding.PKCS1v15()),
                         (f"PS{bits}", padding.PSS(padding.MGF1(h()), padding.PSS.DIGEST_LENGTH))]:
            sig = c.sign(SignatureAlgorithm(alg), digest).signature
            pub.verify(sig, digest, pad, utils.Prehashed(h()))
            assert c.verify(SignatureAlgorithm(alg), digest, sig).is_valid
    for alg, pad in [("RSA1_5", padding.PKCS1v15()),
                     ("RSA-OAEP", padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None))]:
        assert c.decrypt(EncryptionAlgorithm(alg), pub.encrypt(b"x-ray", pad)).plaintext == b"x-ray"
        assert c.unwrap_key(KeyWrapAlgorithm(alg), pub.encrypt(b"k" * 32, pad)).key == b"k" * 32
    # SoftHSM 2.6 offers OAEP with SHA-1 only.
    oaep256 = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    with pytest.raises(HttpResponseError) as refused:
        c.decrypt(EncryptionAlgorithm.rsa_oaep_256, pub.encrypt(b"x", oaep256))
    assert refused.value.status_code == 400 and "RSA-OAEP-256" in str(refused.value)


@pytest.mark.parametrize("crv,alg,hash_,curve", [("P-256", "ES256", "256", ec.SECP256R1()),
                                                  ("P-384", "ES384", "384", ec.SECP384R1()),
                                                  ("P-521", "ES512", "512", ec.SECP521R1()),
                                                  ("P-256K", "ES256K", "256", ec.SECP256K1())])
def test_ec_hsm_every_curve_cross_checked(hsm, crv, alg, hash_, curve):
    try:
        k = hsm.keys.create_ec_key(f"ec-{crv}", curve=crv, hardware_protected=True)
    except HttpResponseError as e:
        # P-256K only where the token has it, else a clear 400.
        assert crv == "P-256K" and e.status_code == 400 and "P-256K" in str(e)
        return
    assert k.key_type == "EC-HSM" and k.key.crv == crv
    h, hl = HASHES[hash_]
    digest = hl(b"ward round").digest()
    c = hsm.crypto(k.id)
    sig = c.sign(SignatureAlgorithm(alg), digest).signature
    n = len(sig) // 2
    pub = ec.EllipticCurvePublicNumbers(int.from_bytes(k.key.x, "big"), int.from_bytes(k.key.y, "big"),
                                        curve).public_key()
    pub.verify(utils.encode_dss_signature(int.from_bytes(sig[:n], "big"), int.from_bytes(sig[n:], "big")),
               digest, ec.ECDSA(utils.Prehashed(h())))
    assert c.verify(SignatureAlgorithm(alg), digest, sig).is_valid
    # The token's verify is not a rubber stamp: another key's signature does not verify.
    other = ec.generate_private_key(curve)
    r, t = utils.decode_dss_signature(other.sign(digest, ec.ECDSA(utils.Prehashed(h()))))
    foreign = r.to_bytes(n, "big") + t.to_bytes(n, "big")
    assert not c.verify(SignatureAlgorithm(alg), digest, foreign).is_valid
    # Another curve's algorithm is refused, as for a software key.
    wrong = "ES384" if alg != "ES384" else "ES256"
    with pytest.raises(HttpResponseError) as refused:
        c.sign(SignatureAlgorithm(wrong), HASHES[wrong[2:5]][1](b"x").digest())
    assert refused.value.status_code == 400, refused.value


@pytest.mark.parametrize("bits", [128, 192, 256])
def test_oct_hsm_imported_every_algorithm_cross_checked(hsm, bits):
    from azure.keyvault.keys import JsonWebKey

    secret = os.urandom(bits // 8)
    k = hsm.keys.import_key(f"aes{bits}", JsonWebKey(kty="oct", k=secret), hardware_protected=True)
    assert k.key_type == "oct-HSM" and k.key.k is None
    c = hsm.crypto(k.id)
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    res = c.encrypt(EncryptionAlgorithm(f"A{bits}GCM"), b"ward 7 roster", additional_authenticated_data=b"ward")
    assert AESGCM(secret).decrypt(res.iv, res.ciphertext + res.tag, b"ward") == b"ward 7 roster"
    iv = os.urandom(16)
    res = c.encrypt(EncryptionAlgorithm(f"A{bits}CBC"), b"sixteen bytes!!!" * 2, iv=iv)
    dec = Cipher(algorithms.AES(secret), modes.CBC(iv)).decryptor()
    assert dec.update(res.ciphertext) + dec.finalize() == b"sixteen bytes!!!" * 2
    p = sympad.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(secret), modes.CBC(iv)).encryptor()
    ct = enc.update(p.update(b"odd length text") + p.finalize()) + enc.finalize()
    # (Through the REST API: the SDK would "decrypt" CBCPAD locally with a key of its own.)
    import requests

    token = hsm.credential.get_token(f"https://vault.localhost:{hsm.server.port}/.default").token
    post = lambda path, body: requests.post(f"{hsm.url}{path}?api-version=7.6", json=body, verify=hsm.ca,
                                            headers={"Authorization": f"Bearer {token}"}, timeout=30)
    import base64

    b64u = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    unb64u = lambda t: base64.urlsafe_b64decode(t + "=" * (-len(t) % 4))
    r = post(f"/keys/aes{bits}//decrypt", {"alg": f"A{bits}CBCPAD", "value": b64u(ct), "iv": b64u(iv)})
    assert unb64u(r.json()["value"]) == b"odd length text", r.text
    cek = os.urandom(32)
    r = post(f"/keys/aes{bits}//wrapkey", {"alg": f"A{bits}KW", "value": b64u(cek)})
    assert keywrap.aes_key_unwrap(secret, unb64u(r.json()["value"])) == cek
    r = post(f"/keys/aes{bits}//unwrapkey", {"alg": f"A{bits}KW", "value": b64u(keywrap.aes_key_wrap(secret, cek))})
    assert unb64u(r.json()["value"]) == cek
    r = post(f"/keys/aes{bits}//wrapkey", {"alg": "CKM_AES_KEY_WRAP_PAD", "value": b64u(b"13 byte value")})
    assert keywrap.aes_key_unwrap_with_padding(secret, unb64u(r.json()["value"])) == b"13 byte value"
    r = post(f"/keys/aes{bits}//unwrapkey", {"alg": "CKM_AES_KEY_WRAP_PAD",
                                             "value": b64u(keywrap.aes_key_wrap_with_padding(secret, b"seven!!"))})
    assert unb64u(r.json()["value"]) == b"seven!!", r.text
    r = post(f"/keys/aes{bits}//unwrapkey", {"alg": f"A{bits}KW", "value": b64u(os.urandom(40))})
    assert r.status_code == 400, r.text


def test_hsm_key_lifecycle_and_rotation_policy(hsm):
    keys = hsm.keys
    k = keys.create_ec_key("life", curve="P-256", hardware_protected=True, tags={"team": "crypto"})
    assert keys.get_key("life").properties.tags == {"team": "crypto"}
    updated = keys.update_key_properties("life", enabled=False)
    assert updated.properties.enabled is False
    with pytest.raises(HttpResponseError) as e:
        hsm.crypto(k.id).sign(SignatureAlgorithm.es256, hashlib.sha256(b"x").digest())
    assert e.value.status_code == 403
    keys.update_key_properties("life", enabled=True)
    policy = KeyRotationPolicy(expires_in="P90D", lifetime_actions=[
        KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_before_expiry="P30D")])
    assert keys.update_key_rotation_policy("life", policy).expires_in == "P90D"
    rotated = keys.rotate_key("life")
    assert rotated.key_type == "EC-HSM" and rotated.key.x != k.key.x
    assert len(list(keys.list_properties_of_key_versions("life"))) == 2
    assert "life" in [p.name for p in keys.list_properties_of_keys()]
    keys.begin_delete_key("life").wait()
    with pytest.raises(ResourceNotFoundError):
        keys.get_key("life")
    keys.begin_recover_deleted_key("life").wait()
    assert keys.get_key("life").key_type == "EC-HSM"
    keys.begin_delete_key("life").wait()
    keys.purge_deleted_key("life")


def test_async_key_and_cryptography_clients_with_hsm_keys(hsm):
    from azure.identity.aio import ClientSecretCredential as AsyncCredential
    from azure.keyvault.keys.aio import KeyClient as AsyncKeyClient
    from azure.keyvault.keys.crypto.aio import CryptographyClient as AsyncCrypto

    async def scenario():
        init = hsm.init
        cred = AsyncCredential(init["tenant_id"], init["client_id"], init["client_secret"],
                               authority=hsm.server.server, disable_instance_discovery=True,
                               connection_verify=hsm.ca)
        async with cred, AsyncKeyClient(hsm.url, cred, connection_verify=hsm.ca) as kc:
            k = await kc.create_rsa_key("async-rsa", size=2048, hardware_protected=True)
            assert (await kc.get_key("async-rsa")).key_type == "RSA-HSM"
            digest = hashlib.sha384(b"async").digest()
            async with AsyncCrypto(k.id, cred, connection_verify=hsm.ca) as c:
                sig = (await c.sign(SignatureAlgorithm.ps384, digest)).signature
                ct = (await c.encrypt(EncryptionAlgorithm.rsa_oaep, b"async lab")).ciphertext
                assert (await c.decrypt(EncryptionAlgorithm.rsa_oaep, ct)).plaintext == b"async lab"
            public_rsa(k.key).verify(sig, digest, padding.PSS(padding.MGF1(hashes.SHA384()), padding.PSS.DIGEST_LENGTH),
                                     utils.Prehashed(hashes.SHA384()))
            o = await kc.create_oct_key("async-aes", size=256, hardware_protected=True)
            async with AsyncCrypto(o.id, cred, connection_verify=hsm.ca) as c:
                res = await c.encrypt(EncryptionAlgorithm.a256_gcm, b"async aes")
                back = await c.decrypt(EncryptionAlgorithm.a256_gcm, res.ciphertext, iv=res.iv,
                                       authentication_tag=res.tag)
                assert back.plaintext == b"async aes"
            await kc.delete_key("async-rsa")
            assert "async-rsa" in [d.name async for d in kc.list_deleted_keys()]

    asyncio.run(scenario())


def test_a_certificate_with_a_key_in_the_hsm_is_a_clear_400(hsm):
    """A certificate's key is signed with and exported by the server, so it cannot be an `-HSM`
    key yet; the refusal says so (and not that there is no HSM)."""
    from azure.keyvault.certificates import CertificateClient, CertificatePolicy

    certs = CertificateClient(hsm.url, hsm.credential, connection_verify=hsm.ca)
    policy = CertificatePolicy(issuer_name="Self", subject="CN=lab", key_type="RSA-HSM", exportable=False)
    with pytest.raises(HttpResponseError) as refused:
        certs.begin_create_certificate("lab-cert", policy).wait()
    assert refused.value.status_code == 400 and "not supported" in str(refused.value), refused.value
    assert "lab-cert" not in [p.name for p in hsm.keys.list_properties_of_keys()]
