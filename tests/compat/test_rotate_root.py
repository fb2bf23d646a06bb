"""`coffer operator rotate-root`: a new root key while the server serves. With Shamir the new
shares are handed out first and the rotation runs once they are shown; with PKCS#11 a new key
is made in the token and the old one destroyed. Reads go on during the rotation, everything
still opens afterwards, the audit chain verifies, and a crash at each step is finished or
rolled back at the next start (`COFFER_TEST_CRASH_AT` stops a debug build there at once, as a
`kill -9` would)."""
import os
import tempfile
import threading
import time

import pytest
import requests

from test_production import ProductionServer, admin_env, unseal


def prepare(s):
    """An initialised, unsealed server with a vault, a secret and a key."""
    init = s.cli_json("operator", "init", "--key-shares", "3", "--key-threshold", "2")
    shares = init.get("shares") or init["recovery_shares"]
    if init.get("shares"):
        unseal(s, shares[:2])
    env = admin_env(init)
    s.cli_json("vault", "create", "--name", "ward", **env)
    s.cli_json("secret", "set", "--vault-name", "ward", "--name", "patient-db", "--value", "s3cr3t", **env)
    s.cli_json("key", "create", "--vault-name", "ward", "--name", "signer", "--kty", "EC", "--curve", "P-256", **env)
    return init, shares, env


def everything_opens(s, env):
    assert s.cli_json("secret", "show", "--vault-name", "ward", "--name", "patient-db", **env)["value"] == "s3cr3t"
    digest = os.path.join(s.root, "digest.bin")
    with open(digest, "wb") as f:
        f.write(b"\x01" * 32)
    signed = s.cli_json("key", "sign", "--vault-name", "ward", "--name", "signer", "--algorithm", "ES256",
                        "--file", digest, **env)
    assert signed.get("value") or signed.get("signature"), signed
    # A vault made after the rotation works too (its key sealed under the new root).
    r = s.cli("audit", "verify", **env)
    assert r.returncode == 0, r.stderr


def key_files(s):
    keys = os.path.join(s.data_dir, "keys")
    return {f: open(os.path.join(keys, f), "rb").read() for f in os.listdir(keys)}


@pytest.fixture
def prod():
    s = ProductionServer(tempfile.mkdtemp(prefix="coffer-rotate-"))
    yield s
    s.stop()


def test_shamir_rotation_hands_out_new_shares_then_rewraps_while_serving(prod):
    s = prod.start()
    init, shares, env = prepare(s)
    before = key_files(s)

    # Readers keep reading through the whole rotation.
    token = requests.post(f"{s.server}/{init['tenant_id']}/oauth2/v2.0/token", verify=s.tls["ca.pem"], data={
        "grant_type": "client_credentials", "client_id": init["client_id"], "client_secret": init["client_secret"],
        "scope": f"https://vault.localhost:{s.port}/.default"}, timeout=30).json()["access_token"]
    stop, failures, reads = threading.Event(), [], [0]

    def reader():
        while not stop.is_set():
            r = requests.get(f"https://ward.vault.localhost:{s.port}/secrets/patient-db?api-version=7.6",
                             headers={"Authorization": f"Bearer {token}"}, verify=s.tls["ca.pem"], timeout=30)
            reads[0] += 1
            if r.status_code != 200 or r.json()["value"] != "s3cr3t":
                failures.append((r.status_code, r.text))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        # One share is not a quorum.
        r = s.cli("operator", "rotate-root", input=shares[0] + "\n")
        assert r.returncode == 2 and "2 key shares are needed" in r.stderr, r.stderr
        started = s.cli_json("operator", "rotate-root", "--key-shares", "2", "--key-threshold", "2",
                             input="\n".join(shares[1:]) + "\n")
        assert started["rotated"] is False and len(started["shares"]) == 2 and started["threshold"] == 2
        # Until verified nothing changed: the old shares are still the ones that unseal.
        assert key_files(s) == before
        r = s.cli("operator", "rotate-root", "--verify", input="\n".join(shares[:2]) + "\n")
        assert r.returncode == 2 and "another initialisation" in r.stderr, r.stderr
        done = s.cli_json("operator", "rotate-root", "--verify", input="\n".join(started["shares"]) + "\n")
        assert done["rotated"] is True and done["vaults"] == 1 and done["provider"] == "shamir"
    finally:
        stop.set()
        thread.join()
    assert reads[0] > 0 and not failures, failures[:3]
    after = key_files(s)
    assert after.keys() == before.keys() and all(after[k] != before[k] for k in after)
    everything_opens(s, env)
    s.cli_json("vault", "create", "--name", "after", **env)
    s.cli_json("secret", "set", "--vault-name", "after", "--name", "n", "--value", "v", **env)
    rotations = s.cli("audit", "query", "--operation", "OperatorRotateRoot", **env).stdout
    assert "root key rotated (shamir): 1 vault keys rewrapped" in rotations, rotations

    # After a restart the old shares open nothing; the new ones everything.
    s.stop()
    s.start()
    r = s.cli("operator", "unseal", input=shares[0] + "\n")
    assert r.returncode == 2 and "another initialisation" in r.stderr
    unseal(s, started["shares"])
    everything_opens(s, env)
    assert s.cli_json("secret", "show", "--vault-name", "after", "--name", "n", **env)["value"] == "v"


@pytest.mark.parametrize("point,new_shares_open", [("rotation-staged", False), ("rotation-committed", True)])
def test_a_crash_during_a_shamir_rotation_is_rolled_back_or_finished(prod, point, new_shares_open):
    s = prod.start(extra_env={"COFFER_TEST_CRASH_AT": point})
    init, shares, env = prepare(s)
    started = s.cli_json("operator", "rotate-root", input="\n".join(shares[:2]) + "\n")
    r = s.cli("operator", "rotate-root", "--verify", input="\n".join(started["shares"][:2]) + "\n")
    assert r.returncode != 0
    s.proc.wait(timeout=30)
    assert s.proc.returncode != 0, "the server stopped at the fault point"
    s.start()
    good, stale = (started["shares"], shares) if new_shares_open else (shares, started["shares"])
    r = s.cli("operator", "unseal", input=stale[0] + "\n")
    assert r.returncode == 2 and "another initialisation" in r.stderr, r.stderr
    unseal(s, good[:2])
    assert s.cli_json("operator", "status")["sealed"] is False
    everything_opens(s, env)
    for leftover in ("keys.migrating", "seal.migrating.json"):
        assert not os.path.exists(os.path.join(s.data_dir, leftover)), leftover


@pytest.fixture
def hsm():
    from test_pkcs11 import pkcs11_server

    s = pkcs11_server("coffer-rotate-hsm-")
    yield s
    s.stop()


def root_labels(token):
    from test_pkcs11 import token_objects

    labels = []
    for o in token_objects(token.objects()):
        if o.startswith("Secret Key Object"):
            for line in o.splitlines():
                if line.strip().startswith("label:") and "coffer-root" in line:
                    labels.append(line.split(":", 1)[1].strip())
    return labels


def test_pkcs11_rotation_makes_a_new_key_in_the_token_and_destroys_the_old(hsm):
    s = hsm.start(extra_env=hsm.extra_env)
    init, recovery, env = prepare(s)
    s.cli_json("key", "create", "--vault-name", "ward", "--name", "in-hsm", "--kty", "EC-HSM", "--curve", "P-256",
               **env)
    assert root_labels(s.token) == ["coffer-root"]
    r = s.cli("operator", "rotate-root", input=recovery[0] + "\n")
    assert r.returncode == 2 and "2 key shares are needed" in r.stderr, r.stderr
    done = s.cli_json("operator", "rotate-root", input="\n".join(recovery[:2]) + "\n")
    assert done["rotated"] is True and done["provider"] == "pkcs11" and done["vaults"] == 1
    # The old key still opens for a two-second grace (a request that read a value just before
    # the commit), then it is destroyed.
    deadline = time.time() + 15
    while len(labels := root_labels(s.token)) > 1 and time.time() < deadline:
        time.sleep(0.5)
    assert len(labels) == 1 and labels[0].startswith("coffer-root-"), labels
    everything_opens(s, env)
    # The server unseals itself after a restart with the new key; HSM keys are untouched.
    s.stop()
    s.start(extra_env=s.extra_env)
    assert s.cli_json("operator", "status")["sealed"] is False
    everything_opens(s, env)
    digest = os.path.join(s.root, "digest.bin")
    assert s.cli_json("key", "sign", "--vault-name", "ward", "--name", "in-hsm", "--algorithm", "ES256",
                      "--file", digest, **env)
    # A crash just after the commit: the next start finishes it and destroys the old key.
    s.stop()
    s.start(extra_env={**s.extra_env, "COFFER_TEST_CRASH_AT": "rotation-committed"})
    r = s.cli("operator", "rotate-root", input="\n".join(recovery[:2]) + "\n")
    assert r.returncode != 0
    s.proc.wait(timeout=30)
    assert len(root_labels(s.token)) == 2
    s.start(extra_env=s.extra_env)
    assert s.cli_json("operator", "status")["sealed"] is False
    everything_opens(s, env)
    after = root_labels(s.token)
    assert len(after) == 1 and after != labels, after


def test_two_shamir_rotations_back_to_back_within_the_grace_period(prod):
    """The second rotation starts while the first one's old key may still open values; after
    both, only the second's shares unseal and everything opens."""
    s = prod.start()
    init, shares, env = prepare(s)
    first = s.cli_json("operator", "rotate-root", input="\n".join(shares[:2]) + "\n")
    s.cli_json("operator", "rotate-root", "--verify", input="\n".join(first["shares"][:2]) + "\n")
    second = s.cli_json("operator", "rotate-root", input="\n".join(first["shares"][1:3]) + "\n")
    done = s.cli_json("operator", "rotate-root", "--verify", input="\n".join(second["shares"][:2]) + "\n")
    assert done["rotated"] is True
    everything_opens(s, env)
    time.sleep(3)  # past both grace periods
    everything_opens(s, env)
    s.stop()
    s.start()
    for stale in (shares[0], first["shares"][0]):
        r = s.cli("operator", "unseal", input=stale + "\n")
        assert r.returncode == 2 and "another initialisation" in r.stderr, r.stderr
    unseal(s, second["shares"][1:])
    everything_opens(s, env)
