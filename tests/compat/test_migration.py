"""Moving a data directory to another seal with `coffer operator migrate-seal`, the server
stopped: from dev mode to Shamir, from Shamir to a new Shamir root key, from dev mode to a
PKCS#11 token and from the token back to Shamir. Every secret and key still opens, the audit chain still
verifies, and the old root is gone."""
import hashlib
import json
import os
import subprocess
import tempfile

import pytest

from conftest import BIN, CofferServer
from test_production import ProductionServer, admin_env, unseal


def dev_data():
    """A dev server's data directory with a vault, a secret and a key; it is stopped."""
    root = tempfile.mkdtemp(prefix="coffer-migrate-")
    os.makedirs(os.path.join(root, "data"))
    dev = CofferServer(os.path.join(root, "data")).start()
    dev.cli_json("vault", "create", "--name", "ward")
    dev.cli_json("secret", "set", "--vault-name", "ward", "--name", "patient-db", "--value", "s3cr3t")
    dev.cli_json("key", "create", "--vault-name", "ward", "--name", "signer", "--kty", "EC", "--curve", "P-256")
    creds = dict(dev.creds)
    dev.stop()
    s = ProductionServer(root)
    s.data_dir = dev.data_dir
    with open(s.config) as f:
        text = f.read()
    with open(s.config, "w") as f:
        f.write(text.replace(f'data_dir = "{os.path.join(root, "data")}"', f'data_dir = "{dev.data_dir}"'))
    env = {"COFFER_TENANT_ID": creds["tenant_id"], "COFFER_CLIENT_ID": creds["client_id"],
           "COFFER_CLIENT_SECRET": creds["client_secret"]}
    return s, env


def migrate(s, to, *extra, input=None, env=None):
    r = subprocess.run([BIN, "operator", "migrate-seal", "--config", s.config, "--to", to, *extra],
                       capture_output=True, text=True, input=input, timeout=120, env=env or s.env())
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def everything_opens(s, env):
    assert s.cli_json("secret", "show", "--vault-name", "ward", "--name", "patient-db", **env)["value"] == "s3cr3t"
    digest = hashlib.sha256(b"lab").digest()
    with open(os.path.join(s.root, "digest.bin"), "wb") as f:
        f.write(digest)
    signed = s.cli_json("key", "sign", "--vault-name", "ward", "--name", "signer", "--algorithm", "ES256",
                        "--file", os.path.join(s.root, "digest.bin"), **env)
    assert signed.get("value") or signed.get("signature"), signed
    r = s.cli("audit", "verify", **env)
    assert r.returncode == 0, r.stderr


def test_from_dev_to_shamir_then_a_new_shamir_root_key():
    s, env = dev_data()
    try:
        keys_before = {f: open(os.path.join(s.data_dir, "keys", f), "rb").read()
                       for f in os.listdir(os.path.join(s.data_dir, "keys"))}
        root_key = open(os.path.join(s.data_dir, "root.key"), "rb").read()
        r = subprocess.run([BIN, "operator", "migrate-seal", "--config", s.config, "--to", "pkcs11"],
                           capture_output=True, text=True, timeout=60, env=s.env())
        assert r.returncode == 1 and "change [seal] first" in r.stderr
        done = migrate(s, "shamir", "--key-shares", "3", "--key-threshold", "2")
        assert done["provider"] == "shamir" and len(done["shares"]) == 3 and done["vaults"] == 1
        # The dev root key and the clear vault keys are gone; the new key files are sealed.
        assert not os.path.exists(os.path.join(s.data_dir, "root.key"))
        for name, old in keys_before.items():
            now = open(os.path.join(s.data_dir, "keys", name), "rb").read()
            assert now != old and old not in now
        for d, _, fs in os.walk(s.data_dir):
            for f in fs:
                assert root_key not in open(os.path.join(d, f), "rb").read(), f
        s.start()
        assert s.cli_json("operator", "status")["sealed"] is True
        unseal(s, done["shares"][1:])
        everything_opens(s, env)
        r = s.cli("audit", "query", "--operation", "OperatorMigrateSeal", **env)
        assert "from dev to shamir" in r.stdout, r.stdout
        s.stop()

        # A new Shamir root key (root rotation): the old shares open nothing afterwards.
        rotated = migrate(s, "shamir", "--key-shares", "2", "--key-threshold", "2",
                          input="\n".join(done["shares"][:2]) + "\n")
        s.start()
        r = s.cli("operator", "unseal", input=done["shares"][0] + "\n")
        assert r.returncode == 2 and "another initialisation" in r.stderr
        unseal(s, rotated["shares"])
        everything_opens(s, env)
    finally:
        s.stop()


def test_an_interrupted_migration_is_rolled_back_and_can_run_again():
    s, env = dev_data()
    try:
        # As if a migration had staged its files and died before its commit.
        os.makedirs(os.path.join(s.data_dir, "keys.migrating"))
        with open(os.path.join(s.data_dir, "keys.migrating", "junk.kek"), "wb") as f:
            f.write(b"x" * 64)
        with open(os.path.join(s.data_dir, "seal.migrating.json"), "w") as f:
            json.dump({"provider": "shamir", "threshold": 1, "shares": 1, "init_id": "00" * 8, "check": ""}, f)
        done = migrate(s, "shamir", "--key-shares", "1", "--key-threshold", "1")
        assert not os.path.exists(os.path.join(s.data_dir, "keys.migrating"))
        assert not os.path.exists(os.path.join(s.data_dir, "seal.migrating.json"))
        s.start()
        unseal(s, done["shares"])
        everything_opens(s, env)
    finally:
        s.stop()


def test_from_dev_to_a_pkcs11_token():
    from test_pkcs11 import MODULE, PIN, Token

    if not os.path.exists(MODULE) and not os.environ.get("COFFER_REQUIRE_SOFTHSM"):
        pytest.skip("softhsm2 is not installed")
    s, env = dev_data()
    try:
        token = Token(s.root)
        pin_file = os.path.join(s.root, "hsm.pin")
        with open(pin_file, "w") as f:
            f.write(PIN)
        with open(s.config) as f:
            text = f.read().replace('[seal]\ntype = "shamir"\n', "")
        with open(s.config, "w") as f:
            f.write(text + f'[seal]\ntype = "pkcs11"\nmodule = "{MODULE}"\npin_file = "{pin_file}"\n')
        done = migrate(s, "pkcs11", "--key-shares", "1", "--key-threshold", "1",
                       env={**s.env(), "SOFTHSM2_CONF": token.conf})
        assert done["provider"] == "pkcs11" and len(done["recovery_shares"]) == 1
        assert not os.path.exists(os.path.join(s.data_dir, "root.key"))
        keys = os.path.join(s.data_dir, "keys")
        assert not os.path.exists(keys) or not os.listdir(keys), "the clear dev vault keys are gone"
        assert token.objects().count("coffer-kek-") == 1
        s.start(extra_env={"SOFTHSM2_CONF": token.conf})
        assert s.cli_json("operator", "status")["sealed"] is False
        everything_opens(s, env)
        s.cli_json("key", "create", "--vault-name", "ward", "--name", "in-hsm", "--kty", "EC-HSM", **env)
        s.stop()

        # And back to Shamir: the recovery shares authorize it, the token's objects go.
        hsm_config = s.config + ".pkcs11"
        os.rename(s.config, hsm_config)
        with open(s.config, "w") as f:
            f.write(open(hsm_config).read().split("[seal]")[0] + '[seal]\ntype = "shamir"\n')
        hsm_env = {**s.env(), "SOFTHSM2_CONF": token.conf}
        base = [BIN, "operator", "migrate-seal", "--config", s.config, "--to", "shamir"]
        r = subprocess.run(base, capture_output=True, text=True, timeout=60, env=hsm_env,
                           input=done["recovery_shares"][0] + "\n")
        assert r.returncode != 0 and "--from-config" in r.stderr, r.stderr
        # A key inside the HSM cannot leave it: the migration says so and changes nothing.
        r = subprocess.run(base + ["--from-config", hsm_config], capture_output=True, text=True, timeout=60,
                           env=hsm_env, input=done["recovery_shares"][0] + "\n")
        assert r.returncode != 0 and "live inside the HSM" in r.stderr, r.stderr
        s.config, shamir_config = hsm_config, s.config
        s.start(extra_env={"SOFTHSM2_CONF": token.conf})
        s.cli_json("key", "delete", "--vault-name", "ward", "--name", "in-hsm", **env)
        assert s.cli("key", "purge", "--vault-name", "ward", "--name", "in-hsm", **env).returncode == 0
        s.stop()
        s.config = shamir_config
        back = migrate(s, "shamir", "--from-config", hsm_config, "--key-shares", "1", "--key-threshold", "1",
                       input=done["recovery_shares"][0] + "\n", env=hsm_env)
        assert back["provider"] == "shamir" and back["vaults"] == 1
        listing = token.objects()
        assert "coffer-kek-" not in listing and "coffer-root" not in listing, listing
        s.start()
        unseal(s, back["shares"])
        everything_opens(s, env)
    finally:
        s.stop()
