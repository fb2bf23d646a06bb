"""Production mode with a PKCS#11 root of trust: a throwaway SoftHSM2 token made by the test,
the root key generated in it as a non-extractable AES key, the server unsealing itself at
start, each vault's key-encryption key a token object destroyed on purge, and the official SDK
against it. Debian's softhsm2 and opensc (pkcs11-tool) are installed by
scripts/setup-test-env.sh."""
import json
import os
import subprocess
import tempfile

import pytest
from azure.keyvault.secrets import SecretClient

from conftest import BIN
from test_production import ProductionServer, admin_credential, admin_env

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "4711-" + os.urandom(4).hex()


class Token:
    """A SoftHSM2 token in its own directory, with its own configuration file."""

    def __init__(self, root, label="coffer"):
        self.dir = os.path.join(root, "tokens")
        os.makedirs(self.dir)
        self.conf = os.path.join(root, "softhsm2.conf")
        with open(self.conf, "w") as f:
            f.write(f"directories.tokendir = {self.dir}\nobjectstore.backend = file\nlog.level = ERROR\n")
        self.label = label
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", PIN,
                        "--so-pin", "so-" + PIN], env=self.env(), check=True, capture_output=True)

    def env(self):
        return {**os.environ, "SOFTHSM2_CONF": self.conf}

    def objects(self):
        r = subprocess.run(["pkcs11-tool", "--module", MODULE, "--token-label", self.label, "-O", "-l",
                            "--pin", PIN], env=self.env(), capture_output=True, text=True, check=True)
        return r.stdout


def pkcs11_server(prefix):
    """A production server configured for a fresh SoftHSM2 token (not started): `s.token`,
    `s.pin_file`, and `s.extra_env` to start it with."""
    if not os.path.exists(MODULE) and not os.environ.get("COFFER_REQUIRE_SOFTHSM"):
        pytest.skip("softhsm2 is not installed (scripts/setup-test-env.sh installs it)")
    root = tempfile.mkdtemp(prefix=prefix)
    token = Token(root)
    s = ProductionServer(root)
    pin_file = os.path.join(root, "hsm.pin")
    with open(pin_file, "w") as f:
        f.write(PIN + "\n")
    os.chmod(pin_file, 0o600)
    with open(s.config, "r") as f:
        text = f.read().replace('[seal]\ntype = "shamir"\n', "")
    with open(s.config, "w") as f:
        f.write(text + f'[seal]\ntype = "pkcs11"\nmodule = "{MODULE}"\ntoken_label = "coffer"\n'
                       f'key_label = "coffer-root"\npin_file = "{pin_file}"\n')
    s.token, s.pin_file = token, pin_file
    s.extra_env = {"SOFTHSM2_CONF": token.conf}
    return s


@pytest.fixture
def hsm_server():
    s = pkcs11_server("coffer-hsm-")
    yield s
    s.stop()


def token_objects(listing):
    """pkcs11-tool's object listing, one text per object (its header line and indented lines)."""
    objects = []
    for line in listing.splitlines():
        if line and not line[0].isspace():
            objects.append(line)
        elif objects:
            objects[-1] += "\n" + line
    return objects


def start(s):
    return s.start(extra_env=s.extra_env)


def test_the_token_holds_the_root_and_the_server_unseals_itself(hsm_server):
    s = start(hsm_server)
    status = s.cli_json("operator", "status")
    assert (status["initialized"], status["provider"]) == (False, "pkcs11")
    init = s.cli_json("operator", "init", "--key-shares", "3", "--key-threshold", "2")
    assert len(init["recovery_shares"]) == 3 and "shares" not in init
    status = s.cli_json("operator", "status")
    assert (status["sealed"], status["provider"], status["threshold"]) == (False, "pkcs11", 2)

    # The root key is in the token: sensitive and never extractable.
    listing = s.token.objects()
    root_entry = [o for o in token_objects(listing) if o.startswith("Secret Key Object") and "label:      coffer-root" in o]
    assert len(root_entry) == 1, listing
    assert "never extractable" in root_entry[0] and "sensitive" in root_entry[0], listing

    env = admin_env(init)
    s.cli_json("vault", "create", "--name", "ward", **env)
    assert listing.count("coffer-kek-") == 0
    keks = s.token.objects().count("coffer-kek-")
    assert keks == 1, "the vault's key-encryption key is a token object"
    credential = admin_credential(s, init)
    client = SecretClient(f"https://ward.vault.localhost:{s.port}", credential, connection_verify=s.tls["ca.pem"])
    marker = "hsm-marker-" + os.urandom(6).hex()
    client.set_secret("pacs", marker)

    # A restart unseals by itself; seal and unseal need no shares.
    s.stop()
    start(s)
    assert s.cli_json("operator", "status")["sealed"] is False
    assert client.get_secret("pacs").value == marker
    assert s.cli_json("operator", "seal", **env)["sealed"] is True
    assert s.get("/secrets/pacs?api-version=7.6", host="ward.vault.localhost").status_code == 503
    assert s.cli_json("operator", "unseal")["sealed"] is False
    assert client.get_secret("pacs").value == marker

    # Purge destroys the vault's key in the token (crypto-shredding).
    assert s.cli("vault", "delete", "--name", "ward", **env).returncode == 0
    assert s.cli("vault", "purge", "--name", "ward", **env).returncode == 0
    assert s.token.objects().count("coffer-kek-") == 0

    # Nothing secret in clear: the value, the PIN, the recovery shares.
    s.stop()
    wanted = [marker.encode(), PIN.encode()] + [x.encode() for x in init["recovery_shares"]]
    for d, _, fs in os.walk(s.data_dir):
        for f in fs:
            with open(os.path.join(d, f), "rb") as fh:
                data = fh.read()
            assert not any(w in data for w in wanted), f
    with open(s.config, "rb") as f:
        assert PIN.encode() not in f.read()
    with open(s.log_path, "rb") as f:
        assert not any(w in f.read() for w in wanted)


def test_a_wrong_pin_stops_the_start_with_a_clear_message(hsm_server):
    s = start(hsm_server)
    s.cli_json("operator", "init", "--key-shares", "1", "--key-threshold", "1")
    s.stop()
    with open(s.pin_file, "w") as f:
        f.write("0000\n")
    r = subprocess.run([BIN, "serve", "--config", s.config], capture_output=True, text=True, timeout=60,
                       env=s.env(**s.extra_env))
    assert r.returncode != 0 and "PIN" in r.stderr and "wrong" in r.stderr, r.stderr
    # A configuration that names the wrong seal for the data directory is refused too.
    with open(s.config) as f:
        text = f.read()
    with open(s.config, "w") as f:
        f.write(text.split("[seal]")[0] + '[seal]\ntype = "shamir"\n')
    r = subprocess.run([BIN, "serve", "--config", s.config], capture_output=True, text=True, timeout=60,
                       env=s.env(**s.extra_env))
    assert r.returncode != 0 and "pkcs11 seal" in r.stderr, r.stderr


def test_a_token_that_goes_away_gives_503_changes_nothing_and_the_server_recovers(hsm_server):
    s = start(hsm_server)
    init = s.cli_json("operator", "init", "--key-shares", "1", "--key-threshold", "1")
    env = admin_env(init)
    s.cli_json("vault", "create", "--name", "ward", **env)
    s.stop()
    start(s)  # the vault's data key is not cached yet: the next write needs the token
    os.rename(s.token.dir, s.token.dir + ".gone")
    try:
        r = s.cli("secret", "set", "--vault-name", "ward", "--name", "x", "--value", "written", **env)
        assert r.returncode == 2 and "HsmUnavailable" in r.stderr, r.stderr
        r = s.cli("vault", "create", "--name", "ward2", **env)
        assert r.returncode == 2 and "HsmUnavailable" in r.stderr, r.stderr
    finally:
        os.rename(s.token.dir + ".gone", s.token.dir)
    # Back: nothing was half-written, and the server serves again without a restart.
    r = s.cli("secret", "show", "--vault-name", "ward", "--name", "x", **env)
    assert r.returncode == 2 and "SecretNotFound" in r.stderr, r.stderr
    s.cli_json("secret", "set", "--vault-name", "ward", "--name", "x", "--value", "written", **env)
    assert s.cli_json("secret", "show", "--vault-name", "ward", "--name", "x", **env)["value"] == "written"
    names = [v["name"] for v in s.cli_json("vault", "list", **env)]
    assert "ward2" not in names
    s.cli_json("vault", "create", "--name", "ward2", **env)


def test_the_key_and_secret_sdks_work_unchanged_over_a_pkcs11_root(hsm_server):
    """The vault's keys are sealed under keys the token holds; the SDKs cannot tell."""
    import hashlib
    from azure.core.exceptions import HttpResponseError
    from azure.keyvault.keys import KeyClient
    from azure.keyvault.keys.crypto import CryptographyClient, EncryptionAlgorithm, SignatureAlgorithm
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

    s = start(hsm_server)
    init = s.cli_json("operator", "init", "--key-shares", "1", "--key-threshold", "1")
    s.cli_json("vault", "create", "--name", "lab", **admin_env(init))
    credential = admin_credential(s, init)
    url = f"https://lab.vault.localhost:{s.port}"
    keys = KeyClient(url, credential, connection_verify=s.tls["ca.pem"])
    digest = hashlib.sha256(b"lab result 42").digest()

    rsa_key = keys.create_rsa_key("rsa", size=2048)
    c = CryptographyClient(rsa_key.id, credential, connection_verify=s.tls["ca.pem"])
    pub = rsa.RSAPublicNumbers(int.from_bytes(rsa_key.key.e, "big"), int.from_bytes(rsa_key.key.n, "big")).public_key()
    pub.verify(c.sign(SignatureAlgorithm.rs256, digest).signature, digest, padding.PKCS1v15(),
               utils.Prehashed(hashes.SHA256()))
    oaep = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    assert c.decrypt(EncryptionAlgorithm.rsa_oaep_256, pub.encrypt(b"x-ray", oaep)).plaintext == b"x-ray"

    ec_key = keys.create_ec_key("ec", curve="P-256")
    c = CryptographyClient(ec_key.id, credential, connection_verify=s.tls["ca.pem"])
    sig = c.sign(SignatureAlgorithm.es256, digest).signature
    point = ec.EllipticCurvePublicNumbers(int.from_bytes(ec_key.key.x, "big"), int.from_bytes(ec_key.key.y, "big"),
                                          ec.SECP256R1()).public_key()
    r, t = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    point.verify(utils.encode_dss_signature(r, t), digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))

    secrets = SecretClient(url, credential, connection_verify=s.tls["ca.pem"])
    secrets.set_secret("dicom-store", "conn-string")
    # After a restart (the server unseals itself) everything still opens.
    s.stop()
    start(s)
    assert secrets.get_secret("dicom-store").value == "conn-string"
    assert c.verify(SignatureAlgorithm.es256, digest, sig).is_valid


def test_recovery_shares_rekey_and_the_token_keeps_unsealing(hsm_server):
    s = start(hsm_server)
    init = s.cli_json("operator", "init", "--key-shares", "2", "--key-threshold", "2")
    recovery = init["recovery_shares"]
    made = s.cli_json("operator", "rekey", "--key-shares", "3", "--key-threshold", "2",
                      input="\n".join(recovery) + "\n")
    done = s.cli_json("operator", "rekey", "--verify", input="\n".join(made["shares"][1:]) + "\n")
    assert done["verified"] is True
    s.stop()
    start(s)
    status = s.cli_json("operator", "status")
    assert (status["sealed"], status["provider"], status["threshold"], status["shares"]) == (False, "pkcs11", 2, 3)
    r = s.cli("operator", "rekey", input="\n".join(recovery) + "\n")
    assert r.returncode == 2 and "another initialisation" in r.stderr


def test_hsm_keys_live_and_work_inside_the_token(hsm_server):
    """RSA-HSM and EC-HSM keys: generated in the token as non-extractable objects, every
    operation run there, cross-checked with `cryptography`; rotation makes a new token key;
    purge destroys them."""
    import hashlib
    from azure.core.exceptions import HttpResponseError
    from azure.keyvault.keys import KeyClient
    from azure.keyvault.keys.crypto import CryptographyClient, EncryptionAlgorithm, KeyWrapAlgorithm, SignatureAlgorithm
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

    s = start(hsm_server)
    init = s.cli_json("operator", "init", "--key-shares", "1", "--key-threshold", "1")
    env = admin_env(init)
    s.cli_json("vault", "create", "--name", "lab", **env)
    credential = admin_credential(s, init)
    keys = KeyClient(f"https://lab.vault.localhost:{s.port}", credential, connection_verify=s.tls["ca.pem"])
    digest = hashlib.sha256(b"radiology report").digest()

    rsa_key = keys.create_rsa_key("rsa-hsm", size=2048, hardware_protected=True)
    assert rsa_key.key_type == "RSA-HSM" and len(rsa_key.key.n) == 256 and rsa_key.key.d is None
    c = CryptographyClient(rsa_key.id, credential, connection_verify=s.tls["ca.pem"])
    pub = rsa.RSAPublicNumbers(int.from_bytes(rsa_key.key.e, "big"), int.from_bytes(rsa_key.key.n, "big")).public_key()
    for alg, pad in [("RS256", padding.PKCS1v15()),
                     ("PS256", padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH))]:
        sig = c.sign(SignatureAlgorithm(alg), digest).signature
        pub.verify(sig, digest, pad, utils.Prehashed(hashes.SHA256()))
        assert c.verify(SignatureAlgorithm(alg), digest, sig).is_valid
        assert not c.verify(SignatureAlgorithm(alg), hashlib.sha256(b"other").digest(), sig).is_valid
    for alg, pad in [("RSA-OAEP", padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None)),
                     ("RSA1_5", padding.PKCS1v15())]:
        assert c.decrypt(EncryptionAlgorithm(alg), pub.encrypt(b"x-ray", pad)).plaintext == b"x-ray"
        assert c.unwrap_key(KeyWrapAlgorithm(alg), pub.encrypt(b"k" * 32, pad)).key == b"k" * 32
    # Encrypted in the token with the public key, decrypted in it with the private one.
    ct = c.encrypt(EncryptionAlgorithm.rsa_oaep, b"lab").ciphertext
    assert c.decrypt(EncryptionAlgorithm.rsa_oaep, ct).plaintext == b"lab"
    # SoftHSM 2.6 offers OAEP with SHA-1 only: OAEP-256 is a clear 400 naming it, not a fault.
    oaep256 = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    with pytest.raises(HttpResponseError) as refused:
        c.decrypt(EncryptionAlgorithm.rsa_oaep_256, pub.encrypt(b"x-ray", oaep256))
    assert refused.value.status_code == 400 and "does not offer RSA-OAEP-256" in str(refused.value)

    ec_key = keys.create_ec_key("ec-hsm", curve="P-256", hardware_protected=True)
    assert ec_key.key_type == "EC-HSM"
    c = CryptographyClient(ec_key.id, credential, connection_verify=s.tls["ca.pem"])
    sig = c.sign(SignatureAlgorithm.es256, digest).signature
    point = ec.EllipticCurvePublicNumbers(int.from_bytes(ec_key.key.x, "big"), int.from_bytes(ec_key.key.y, "big"),
                                          ec.SECP256R1()).public_key()
    point.verify(utils.encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")),
                 digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))

    # In the token: private keys sensitive and never extractable.
    listing = s.token.objects()
    private = [o for o in token_objects(listing) if o.startswith("Private Key Object") and "coffer-key-" in o]
    assert len(private) == 2 and all("never extractable" in o and "sensitive" in o for o in private), listing

    # Rotation makes a new key in the token; the old version still verifies.
    rotated = keys.rotate_key("ec-hsm")
    assert rotated.key_type == "EC-HSM" and rotated.key.x != ec_key.key.x
    assert CryptographyClient(ec_key.id, credential, connection_verify=s.tls["ca.pem"]).verify(
        SignatureAlgorithm.es256, digest, sig).is_valid
    assert s.token.objects().count("Private Key Object") == 3

    # A backup holds only a reference: it restores into the vault it came from while the token
    # holds the key, and nowhere else.
    backup = keys.backup_key("ec-hsm")
    s.cli_json("vault", "create", "--name", "lab2", **env)
    other = KeyClient(f"https://lab2.vault.localhost:{s.port}", credential, connection_verify=s.tls["ca.pem"])
    with pytest.raises(HttpResponseError) as refused:
        other.restore_key_backup(backup)
    assert refused.value.status_code == 400 and "only into the vault it came from" in str(refused.value)

    # Purge destroys the key's objects in the token; its backup then restores nothing.
    keys.begin_delete_key("ec-hsm").wait()
    keys.purge_deleted_key("ec-hsm")
    assert s.token.objects().count("Private Key Object") == 1
    with pytest.raises(HttpResponseError) as refused:
        keys.restore_key_backup(backup)
    assert refused.value.status_code == 400 and "does not hold it" in str(refused.value)
    # And a purged vault leaves nothing of its keys in the token.
    for vault in ("lab", "lab2"):
        assert s.cli("vault", "delete", "--name", vault, **env).returncode == 0
        assert s.cli("vault", "purge", "--name", vault, **env).returncode == 0
    assert "coffer-key-" not in s.token.objects() and "coffer-kek-" not in s.token.objects()


def test_oct_hsm_keys_and_keys_imported_into_the_token(hsm_server):
    """AES keys generated in the token (oct-HSM: GCM, CBC, key wrap with and without padding,
    all in the token), and RSA, EC and AES material imported with `hsm: true` into it as
    sensitive, non-extractable objects — each cross-checked with `cryptography`."""
    import base64
    import hashlib
    import requests
    from azure.core.exceptions import HttpResponseError
    from azure.keyvault.keys import JsonWebKey, KeyClient
    from azure.keyvault.keys.crypto import CryptographyClient, EncryptionAlgorithm, SignatureAlgorithm
    from cryptography.hazmat.primitives import hashes, keywrap
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    def b64u(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

    def unb64u(t):
        return base64.urlsafe_b64decode(t + "=" * (-len(t) % 4))

    s = start(hsm_server)
    init = s.cli_json("operator", "init", "--key-shares", "1", "--key-threshold", "1")
    s.cli_json("vault", "create", "--name", "lab", **admin_env(init))
    credential = admin_credential(s, init)
    url = f"https://lab.vault.localhost:{s.port}"
    keys = KeyClient(url, credential, connection_verify=s.tls["ca.pem"])
    token = credential.get_token(f"https://vault.localhost:{s.port}/.default").token

    def post(path, body):
        r = requests.post(f"{url}{path}?api-version=7.6", json=body, headers={"Authorization": f"Bearer {token}"},
                          verify=s.tls["ca.pem"], timeout=30)
        return r

    # Generated in the token: the SDK round trips through it.
    for bits in (128, 256):
        k = keys.create_oct_key(f"aes{bits}", size=bits, hardware_protected=True)
        assert k.key_type == "oct-HSM" and k.key.k is None
        c = CryptographyClient(k.id, credential, connection_verify=s.tls["ca.pem"])
        res = c.encrypt(EncryptionAlgorithm(f"A{bits}GCM"), b"ward 7", additional_authenticated_data=b"w")
        assert c.decrypt(EncryptionAlgorithm(f"A{bits}GCM"), res.ciphertext, iv=res.iv,
                         authentication_tag=res.tag, additional_authenticated_data=b"w").plaintext == b"ward 7"
        r = post(f"/keys/aes{bits}//wrapkey", {"alg": f"A{bits}KW", "value": b64u(b"c" * 32)})
        assert r.status_code == 200, r.text
        back = post(f"/keys/aes{bits}//unwrapkey", {"alg": f"A{bits}KW", "value": r.json()["value"]})
        assert unb64u(back.json()["value"]) == b"c" * 32, back.text
        # A tampered tag is refused as a bad value, not a fault.
        bad = post(f"/keys/aes{bits}//decrypt", {"alg": f"A{bits}GCM", "value": b64u(res.ciphertext),
                                                 "iv": b64u(res.iv), "tag": b64u(bytes(16))})
        assert bad.status_code == 400, bad.text
    # The algorithm's size must fit the key.
    r = post("/keys/aes128//encrypt", {"alg": "A256GCM", "value": b64u(b"x")})
    assert r.status_code == 400 and "256-bit key" in r.json()["error"]["message"], r.text

    # Imported into the token: an AES key, checked against `cryptography` with the same bytes.
    secret = os.urandom(32)
    k = keys.import_key("imported-aes", JsonWebKey(kty="oct", k=secret), hardware_protected=True)
    assert k.key_type == "oct-HSM" and k.key.k is None
    c = CryptographyClient(k.id, credential, connection_verify=s.tls["ca.pem"])
    res = c.encrypt(EncryptionAlgorithm.a256_gcm, b"lab result", additional_authenticated_data=b"lab")
    assert AESGCM(secret).decrypt(res.iv, res.ciphertext + res.tag, b"lab") == b"lab result"
    iv = os.urandom(12)
    ct = AESGCM(secret).encrypt(iv, b"from outside", None)
    assert c.decrypt(EncryptionAlgorithm.a256_gcm, ct[:-16], iv=iv, authentication_tag=ct[-16:]).plaintext \
        == b"from outside"
    r = post("/keys/imported-aes//wrapkey", {"alg": "CKM_AES_KEY_WRAP_PAD", "value": b64u(b"13 byte value")})
    assert r.status_code == 200, r.text
    assert keywrap.aes_key_unwrap_with_padding(secret, unb64u(r.json()["value"])) == b"13 byte value"
    r = post("/keys/imported-aes//unwrapkey", {"alg": "A256KW", "value": b64u(keywrap.aes_key_wrap(secret, b"k" * 24))})
    assert unb64u(r.json()["value"]) == b"k" * 24, r.text

    # An RSA key and an EC key imported: the token signs, `cryptography` verifies.
    digest = hashlib.sha256(b"radiology").digest()
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    n = private.private_numbers()
    width = lambda i: i.to_bytes((i.bit_length() + 7) // 8, "big")
    jwk = JsonWebKey(kty="RSA", n=width(n.public_numbers.n), e=width(n.public_numbers.e), d=width(n.d),
                     p=width(n.p), q=width(n.q), dp=width(n.dmp1), dq=width(n.dmq1), qi=width(n.iqmp))
    k = keys.import_key("imported-rsa", jwk, hardware_protected=True)
    assert k.key_type == "RSA-HSM" and k.key.n == width(n.public_numbers.n)
    c = CryptographyClient(k.id, credential, connection_verify=s.tls["ca.pem"])
    private.public_key().verify(c.sign(SignatureAlgorithm.rs256, digest).signature, digest, padding.PKCS1v15(),
                                utils.Prehashed(hashes.SHA256()))
    pad = padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None)
    assert c.decrypt(EncryptionAlgorithm.rsa_oaep, private.public_key().encrypt(b"x-ray", pad)).plaintext == b"x-ray"

    ec_private = ec.generate_private_key(ec.SECP256R1())
    e = ec_private.private_numbers()
    jwk = JsonWebKey(kty="EC", crv="P-256", x=e.public_numbers.x.to_bytes(32, "big"),
                     y=e.public_numbers.y.to_bytes(32, "big"), d=e.private_value.to_bytes(32, "big"))
    k = keys.import_key("imported-ec", jwk, hardware_protected=True)
    assert k.key_type == "EC-HSM"
    sig = CryptographyClient(k.id, credential, connection_verify=s.tls["ca.pem"]).sign(SignatureAlgorithm.es256,
                                                                                        digest).signature
    ec_private.public_key().verify(
        utils.encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")),
        digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))

    # Material that does not fit is refused before anything reaches the token.
    with pytest.raises(HttpResponseError) as refused:
        keys.import_key("bad-ec", JsonWebKey(kty="EC", crv="P-256", x=b"1" * 32, y=b"2" * 32, d=b"3" * 32),
                        hardware_protected=True)
    assert refused.value.status_code == 400

    # In the token every one of them is sensitive and never leaves it.
    objects = [o for o in token_objects(s.token.objects()) if "coffer-key-" in o]
    secret_keys = [o for o in objects if o.startswith("Secret Key Object")]
    private_keys = [o for o in objects if o.startswith("Private Key Object")]
    assert len(secret_keys) == 3 and len(private_keys) == 2, objects
    assert all("sensitive" in o and "extractable" not in o.replace("never extractable", "") for o in
               secret_keys + private_keys), objects
    # The generated ones were never extractable at all.
    assert sum("never extractable" in o for o in secret_keys) >= 2, secret_keys
