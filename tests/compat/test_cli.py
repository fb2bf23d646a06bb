"""The `coffer` CLI in the style of `az keyvault`: every secret verb, formats and exit codes."""
import base64
import json
import os

import pytest


def test_vault_create_list_show(coffer):
    name = coffer.new_vault("--retention-days", "14", "--tags", "team=hr")
    shown = coffer.cli_json("vault", "show", "--name", name)
    assert shown["name"] == name
    assert shown["properties"]["vaultUri"] == f"https://{name}.vault.localhost:{coffer.port}/"
    assert shown["properties"]["softDeleteRetentionInDays"] == 14
    assert shown["tags"] == {"team": "hr"}
    # The creator holds an access policy with every permission.
    (policy,) = shown["properties"]["accessPolicies"]
    assert policy["permissions"]["secrets"] == ["all"]
    assert name in [v["name"] for v in coffer.cli_json("vault", "list")]
    # Creating it again fails with the server's word and exit code 2.
    r = coffer.cli("vault", "create", "--name", name)
    assert r.returncode == 2 and "already exists" in r.stderr
    r = coffer.cli("vault", "create", "--name", "x")
    assert r.returncode == 2 and "3-24" in r.stderr


def test_every_secret_verb(coffer, tmp_path):
    v = coffer.new_vault()
    s = coffer.cli_json("secret", "set", "--vault-name", v, "--name", "db", "--value", "one",
                        "--tags", "env=prod", "owner=hr", "--content-type", "text/plain",
                        "--expires", "2099-01-01T00:00:00Z", "--not-before", "2020-01-01")
    assert s["value"] == "one" and s["tags"] == {"env": "prod", "owner": "hr"}
    assert s["attributes"]["exp"] == 4070908800 and s["attributes"]["nbf"] == 1577836800
    first_version = s["id"].rsplit("/", 1)[1]
    f = tmp_path / "value.txt"
    f.write_text("two\nlines")
    s2 = coffer.cli_json("secret", "set", "--vault-name", v, "--name", "db", "--file", str(f))
    assert s2["value"] == "two\nlines"
    assert coffer.cli_json("secret", "show", "--vault-name", v, "--name", "db")["value"] == "two\nlines"
    assert coffer.cli_json("secret", "show", "--vault-name", v, "--name", "db", "--version", first_version)["value"] == "one"
    # A value may begin with '-' (a PEM block, a generated password): it is the value, not a flag.
    dashed = coffer.cli_json("secret", "set", "--vault-name", coffer.new_vault(), "--name", "pem", "--value",
                             "-----BEGIN X-----")
    assert dashed["value"] == "-----BEGIN X-----"
    assert [x["id"].rsplit("/", 1)[1] for x in coffer.cli_json("secret", "list", "--vault-name", v)] == ["db"]
    assert len(coffer.cli_json("secret", "list-versions", "--vault-name", v, "--name", "db")) == 2
    upd = coffer.cli_json("secret", "set-attributes", "--vault-name", v, "--name", "db", "--enabled", "false",
                          "--tags", "env=test")
    assert upd["attributes"]["enabled"] is False and upd["tags"] == {"env": "test"} and "value" not in upd
    r = coffer.cli("secret", "show", "--vault-name", v, "--name", "db")
    assert r.returncode == 2 and "disabled" in r.stderr
    coffer.cli_json("secret", "set-attributes", "--vault-name", v, "--name", "db", "--enabled", "true")
    dis = coffer.cli_json("secret", "set", "--vault-name", v, "--name", "off", "--value", "x", "--disabled")
    assert dis["attributes"]["enabled"] is False

    backup = tmp_path / "db.backup"
    assert coffer.cli("secret", "backup", "--vault-name", v, "--name", "db", "--file", str(backup)).returncode == 0
    # Sealed: neither the value nor its base64 (as the backup document holds it) shows, in the
    # blob or its decoding. (Looking for "two" in the base64 text matched by chance 1 run in 300.)
    blob = backup.read_bytes().strip()
    raw = base64.urlsafe_b64decode(blob + b"=" * (-len(blob) % 4))
    encoded = base64.urlsafe_b64encode(b"two\nlines").rstrip(b"=")
    assert raw.startswith(b"CFB1") and b"two\nlines" not in raw and encoded not in raw and encoded not in blob

    d = coffer.cli_json("secret", "delete", "--vault-name", v, "--name", "db")
    assert d["recoveryId"].endswith("/deletedsecrets/db")
    assert [x["recoveryId"].rsplit("/", 1)[1] for x in coffer.cli_json("secret", "list-deleted", "--vault-name", v)] == ["db"]
    assert coffer.cli_json("secret", "show-deleted", "--vault-name", v, "--name", "db")["scheduledPurgeDate"] > 0
    assert coffer.cli_json("secret", "recover", "--vault-name", v, "--name", "db")["id"].count("/secrets/db/") == 1
    assert coffer.cli_json("secret", "show", "--vault-name", v, "--name", "db")["value"] == "two\nlines"
    coffer.cli_json("secret", "delete", "--vault-name", v, "--name", "db")
    r = coffer.cli("secret", "purge", "--vault-name", v, "--name", "db")
    assert r.returncode == 0 and r.stdout == ""
    r = coffer.cli("secret", "show-deleted", "--vault-name", v, "--name", "db")
    assert r.returncode == 2 and "SecretNotFound" in r.stderr
    restored = coffer.cli_json("secret", "restore", "--vault-name", v, "--file", str(backup))
    assert restored["id"].split("/secrets/")[1].startswith("db/")
    assert coffer.cli_json("secret", "show", "--vault-name", v, "--name", "db")["value"] == "two\nlines"


def test_output_formats(coffer):
    v = coffer.new_vault()
    coffer.cli_json("secret", "set", "--vault-name", v, "--name", "alpha", "--value", "a")
    coffer.cli_json("secret", "set", "--vault-name", v, "--name", "beta", "--value", "b")
    table = coffer.cli("secret", "list", "--vault-name", v, "-o", "table")
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split()[0] == "id" and "attributes.created" in lines[0].split()
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert len(lines) == 4 and "/secrets/alpha" in table.stdout and "/secrets/beta" in table.stdout
    tsv = coffer.cli("secret", "show", "--vault-name", v, "--name", "alpha", "-o", "tsv")
    assert tsv.returncode == 0
    fields = tsv.stdout.rstrip("\n").split("\t")
    assert fields[0].endswith("/secrets/alpha/" + fields[0].rsplit("/", 1)[1]) and fields[-1] == "a"


def test_exit_codes(coffer):
    # 1: usage errors (missing arguments, unknown flags, bad dates, missing credentials).
    assert coffer.cli("secret", "set", "--vault-name", "x", "--name", "y").returncode == 1
    assert coffer.cli("secret", "show", "--bogus").returncode == 1
    assert coffer.cli("secret", "set", "--vault-name", "x", "--name", "y", "--value", "v", "--expires", "soon").returncode == 1
    env = {k: v for k, v in coffer.env().items() if not k.startswith("COFFER_")}
    import subprocess
    from conftest import BIN
    r = subprocess.run([BIN, "vault", "list"], env=env, capture_output=True, text=True)
    assert r.returncode == 1 and "COFFER_SERVER" in r.stderr
    # 2: the server said no, and its message is shown.
    v = coffer.new_vault()
    r = coffer.cli("secret", "show", "--vault-name", v, "--name", "missing")
    assert r.returncode == 2 and "(SecretNotFound)" in r.stderr
    r = coffer.cli("secret", "set", "--vault-name", v, "--name", "bad_name", "--value", "v")
    assert r.returncode == 2 and "(BadParameter)" in r.stderr
    # --help is not an error.
    assert coffer.cli("secret", "--help").returncode == 0
