"""`coffer key …`: every verb, base64 and file input/output, exit codes."""
import base64
import hashlib
import json

from cryptography.hazmat.primitives import hashes, keywrap
from cryptography.hazmat.primitives.asymmetric import ec, utils


def b64(b):
    return base64.b64encode(b).decode()


def test_key_cli(coffer, tmp_path):
    v = coffer.new_vault()
    k = ["--vault-name", v, "--name"]
    rsa = coffer.cli_json("key", "create", *k, "signer", "--kty", "RSA", "--size", "3072", "--tags", "use=signing")
    assert rsa["key"]["kty"] == "RSA" and "d" not in rsa["key"] and rsa["tags"] == {"use": "signing"}
    assert coffer.cli_json("key", "show", *k, "signer")["key"]["kid"] == rsa["key"]["kid"]
    assert [x["kid"].rsplit("/", 1)[1] for x in coffer.cli_json("key", "list", "--vault-name", v)] == ["signer"]

    enc = coffer.cli_json("key", "encrypt", *k, "signer", "--algorithm", "RSA-OAEP-256", "--value", "hello", "--data-type", "plaintext")
    out = tmp_path / "plain.bin"
    coffer.cli_json("key", "decrypt", *k, "signer", "--algorithm", "RSA-OAEP-256", "--value", enc["value"], "--out-file", str(out))
    assert out.read_bytes() == b"hello"

    digest = tmp_path / "digest.bin"
    digest.write_bytes(hashlib.sha256(b"discharge letter").digest())
    sig = coffer.cli_json("key", "sign", *k, "signer", "--algorithm", "PS256", "--file", str(digest))["value"]
    ok = coffer.cli_json("key", "verify", *k, "signer", "--algorithm", "PS256", "--file", str(digest), "--signature", sig)
    assert ok["value"] is True
    bad = coffer.cli_json("key", "verify", *k, "signer", "--algorithm", "PS256", "--value", b64(b"\0" * 32), "--signature", sig)
    assert bad["value"] is False

    aes = coffer.cli_json("key", "create", *k, "kek", "--kty", "oct", "--size", "256")
    assert aes["key"]["kty"] == "oct" and "k" not in aes["key"]
    cek = tmp_path / "cek.bin"
    cek.write_bytes(bytes(range(32)))
    wrapped = coffer.cli_json("key", "wrap", *k, "kek", "--algorithm", "A256KW", "--file", str(cek))["value"]
    out = tmp_path / "unwrapped.bin"
    coffer.cli_json("key", "unwrap", *k, "kek", "--algorithm", "A256KW", "--value", wrapped, "--out-file", str(out))
    assert out.read_bytes() == bytes(range(32))

    updated = coffer.cli_json("key", "set-attributes", *k, "signer", "--ops", "verify")
    assert updated["key"]["key_ops"] == ["verify"]
    r = coffer.cli("key", "sign", *k, "signer", "--algorithm", "PS256", "--file", str(digest))
    assert r.returncode == 2 and "KeyOperationForbidden" in r.stderr

    rotated = coffer.cli_json("key", "rotate", *k, "signer")
    assert rotated["key"]["kid"] != rsa["key"]["kid"] and rotated["key"]["key_ops"] == ["verify"]
    assert len(coffer.cli_json("key", "list-versions", *k, "signer")) == 2
    policy = coffer.cli_json("key", "rotation-policy", "update", *k, "signer", "--value",
                             json.dumps({"lifetimeActions": [{"trigger": {"timeAfterCreate": "P30D"}, "action": {"type": "Rotate"}}], "attributes": {"expiryTime": "P60D"}}))
    assert policy["attributes"]["expiryTime"] == "P60D"
    assert coffer.cli_json("key", "rotation-policy", "show", *k, "signer")["lifetimeActions"][0]["action"]["type"] == "Rotate"

    backup = tmp_path / "signer.backup"
    assert coffer.cli("key", "backup", *k, "signer", "--file", str(backup)).returncode == 0
    assert coffer.cli_json("key", "delete", *k, "signer")["recoveryId"].endswith("/deletedkeys/signer")
    assert [x["kid"].rsplit("/", 1)[1] for x in coffer.cli_json("key", "list-deleted", "--vault-name", v)] == ["signer"]
    assert coffer.cli_json("key", "show-deleted", *k, "signer")["key"]["kty"] == "RSA"
    coffer.cli_json("key", "recover", *k, "signer")
    coffer.cli_json("key", "delete", *k, "signer")
    assert coffer.cli("key", "purge", *k, "signer").returncode == 0
    assert coffer.cli_json("key", "restore", "--vault-name", v, "--file", str(backup))["key"]["kid"].split("/keys/")[1].startswith("signer/")

    rnd = coffer.cli_json("key", "random", "--vault-name", v, "--count", "16")
    assert len(base64.urlsafe_b64decode(rnd["value"] + "==")) == 16

    # Import a JWK; a signature made with it outside verifies in Coffer.
    priv = ec.generate_private_key(ec.SECP256R1())
    n = priv.private_numbers()
    enc = lambda i: base64.urlsafe_b64encode(i.to_bytes(32, "big")).rstrip(b"=").decode()
    jwk = tmp_path / "key.json"
    jwk.write_text(json.dumps({"kty": "EC", "crv": "P-256", "x": enc(n.public_numbers.x), "y": enc(n.public_numbers.y), "d": enc(n.private_value)}))
    assert coffer.cli_json("key", "import", *k, "imported", "--jwk-file", str(jwk))["key"]["crv"] == "P-256"
    d = hashlib.sha256(b"from outside").digest()
    r_, s_ = utils.decode_dss_signature(priv.sign(d, ec.ECDSA(utils.Prehashed(hashes.SHA256()))))
    sig = b64(r_.to_bytes(32, "big") + s_.to_bytes(32, "big"))
    assert coffer.cli_json("key", "verify", *k, "imported", "--algorithm", "ES256", "--value", b64(d), "--signature", sig)["value"] is True

    r = coffer.cli("key", "create", *k, "hsm", "--kty", "RSA-HSM")
    assert r.returncode == 2 and "hardware root of trust" in r.stderr
    assert coffer.cli("key", "sign", *k, "imported", "--value", b64(d)).returncode == 1, "--algorithm is required"
