"""Durability and restarts: acknowledged writes survive `kill -9`; a second start reuses the
same CA, credentials and data (DESIGN.md §9)."""
import json
import os
import sqlite3
import tempfile

from azure.keyvault.secrets import SecretClient

from conftest import CofferServer


def test_acknowledged_writes_survive_kill_9_and_restart_reuses_everything():
    tmp = tempfile.mkdtemp(prefix="coffer-durability-")
    server = CofferServer(tmp).start()
    try:
        ca_before = open(server.creds["ca_file"]).read()
        creds_before = dict(server.creds)
        assert oct(os.stat(os.path.join(tmp, "dev-credentials.json")).st_mode & 0o777) == "0o600"
        vault = server.new_vault()
        client = SecretClient(server.vault_url(vault), server.credential(), connection_verify=server.creds["ca_file"])
        acknowledged = {}
        for i in range(40):
            s = client.set_secret(f"s{i}", f"value-{i}")
            acknowledged[s.name] = s.value
        server.stop(kill=True)

        again = CofferServer(tmp).start()
        try:
            assert open(again.creds["ca_file"]).read() == ca_before
            for k in ("tenant_id", "client_id", "client_secret", "ca_file"):
                assert again.creds[k] == creds_before[k]
            c2 = SecretClient(again.vault_url(vault), again.credential(), connection_verify=again.creds["ca_file"])
            for name, value in acknowledged.items():
                assert c2.get_secret(name).value == value
        finally:
            again.stop()
    finally:
        server.stop()


def test_no_plaintext_in_the_database(coffer, client):
    marker = "PLAINTEXT-MARKER-7f3a9c"
    client.set_secret("needle", marker)
    client.set_secret("needle", marker + "-v2")
    blob = client.backup_secret("needle")
    assert marker.encode() not in blob
    for f in os.listdir(coffer.data_dir):
        if f.startswith("coffer.db"):
            data = open(os.path.join(coffer.data_dir, f), "rb").read()
            assert marker.encode() not in data, f
    # The rows are there, sealed.
    db = sqlite3.connect(f"file:{os.path.join(coffer.data_dir, 'coffer.db')}?mode=ro", uri=True)
    rows = db.execute("SELECT payload FROM object_versions WHERE name_key = 'needle'").fetchall()
    db.close()
    assert len(rows) == 2 and all(marker.encode() not in r[0] for r in rows)
