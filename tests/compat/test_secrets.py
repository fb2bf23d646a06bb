"""Every secrets operation through the official Python SDK (sync), against the real server."""
import datetime
import time

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.secrets import SecretClient

pytestmark = pytest.mark.compat("Python SDK", "secrets")


def utc(ts):
    return datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc)


def test_set_and_get_latest_and_by_version(client):
    first = client.set_secret("db-password", "s3cr3t-1", content_type="text/plain", tags={"env": "prod"})
    assert first.value == "s3cr3t-1"
    assert first.properties.content_type == "text/plain"
    assert first.properties.tags == {"env": "prod"}
    assert first.properties.enabled is True
    assert len(first.properties.version) == 32
    second = client.set_secret("db-password", "s3cr3t-2")
    assert second.properties.version != first.properties.version
    # SDK `get_secret(name)` asks for `/secrets/{name}/` (empty version): the latest.
    assert client.get_secret("db-password").value == "s3cr3t-2"
    assert client.get_secret("db-password", first.properties.version).value == "s3cr3t-1"
    assert client.get_secret("db-password", second.properties.version).value == "s3cr3t-2"
    # Names are case-insensitive, as in Azure.
    assert client.get_secret("DB-PASSWORD").value == "s3cr3t-2"
    assert first.id.startswith(client.vault_url + "/secrets/db-password/")


def test_latest_without_trailing_slash(coffer, client):
    client.set_secret("plain", "v")
    url = f"{client.vault_url}/secrets/plain?api-version=2026-04-01"
    r = requests.get(url, headers={"Authorization": f"Bearer {coffer.token()}"})
    assert r.status_code == 200, r.text
    assert r.json()["value"] == "v"


def test_empty_value_is_allowed(client):
    assert client.set_secret("empty", "").value == ""
    assert client.get_secret("empty").value == ""


def test_missing_secret_and_version(client):
    with pytest.raises(ResourceNotFoundError) as e:
        client.get_secret("nope")
    assert e.value.error.code == "SecretNotFound"
    client.set_secret("one", "x")
    with pytest.raises(ResourceNotFoundError):
        client.get_secret("one", "0" * 32)


def test_update_properties_and_their_effects(client):
    s = client.set_secret("rotating", "v1")
    nbf = utc(int(time.time()) - 60)
    exp = utc(int(time.time()) + 86400)
    p = client.update_secret_properties(
        "rotating", s.properties.version, content_type="application/json", tags={"a": "1"},
        not_before=nbf, expires_on=exp,
    )
    assert p.content_type == "application/json"
    assert p.tags == {"a": "1"}
    assert p.not_before == nbf and p.expires_on == exp
    got = client.get_secret("rotating")
    assert got.properties.expires_on == exp and got.properties.tags == {"a": "1"}
    # Disabling blocks reads of the value with 403 SecretDisabled; metadata stays listable.
    client.update_secret_properties("rotating", enabled=False)
    with pytest.raises(HttpResponseError) as e:
        client.get_secret("rotating")
    assert e.value.status_code == 403
    assert e.value.error.code == "Forbidden"
    assert e.value.error.innererror["code"] == "SecretDisabled"
    assert "disabled" in e.value.message
    listed = [x for x in client.list_properties_of_secrets() if x.name == "rotating"]
    assert listed and listed[0].enabled is False
    client.update_secret_properties("rotating", enabled=True)
    assert client.get_secret("rotating").value == "v1"


def test_expired_secret_is_still_readable(client):
    # Secret nbf/exp are informational in Key Vault.
    past = utc(int(time.time()) - 3600)
    client.set_secret("old", "still-here", expires_on=past)
    assert client.get_secret("old").value == "still-here"


def test_nbf_after_exp_is_rejected(client):
    now = int(time.time())
    with pytest.raises(HttpResponseError) as e:
        client.set_secret("bad-dates", "x", not_before=utc(now + 100), expires_on=utc(now))
    assert e.value.status_code == 400


def test_recovery_level_and_days(coffer, credential):
    default = SecretClient(coffer.vault_url(coffer.new_vault()), credential)
    p = default.set_secret("s", "v").properties
    assert p.recovery_level == "Recoverable+Purgeable"
    assert p.recoverable_days == 90
    short = SecretClient(coffer.vault_url(coffer.new_vault("--retention-days", "7")), credential)
    p = short.set_secret("s", "v").properties
    assert p.recovery_level == "CustomizedRecoverable+Purgeable"
    assert p.recoverable_days == 7
    protected = SecretClient(
        coffer.vault_url(coffer.new_vault("--retention-days", "30", "--enable-purge-protection", "true")), credential
    )
    p = protected.set_secret("s", "v").properties
    assert p.recovery_level == "CustomizedRecoverable"
    protected.begin_delete_secret("s").wait()
    with pytest.raises(HttpResponseError) as e:
        protected.purge_deleted_secret("s")
    assert e.value.status_code == 403 and "purge protection" in e.value.message
    # Recover still works under purge protection.
    protected.begin_recover_deleted_secret("s").wait()
    assert protected.get_secret("s").value == "v"


def test_list_paginates_over_more_than_25(client):
    names = {f"item-{i:02d}" for i in range(31)}
    for n in names:
        client.set_secret(n, n)
    pages = list(client.list_properties_of_secrets().by_page())
    assert [len(list(p)) for p in pages] == [25, 6]
    listed = {p.name for p in client.list_properties_of_secrets()}
    assert listed == names
    # Smaller pages with maxresults (max_page_size).
    sizes = [len(list(p)) for p in client.list_properties_of_secrets(max_page_size=10).by_page()]
    assert sizes == [10, 10, 10, 1]
    # Items carry no value and an id without version.
    item = next(iter(client.list_properties_of_secrets()))
    assert item.version is None


def test_list_versions(client):
    versions = {client.set_secret("multi", f"v{i}").properties.version for i in range(28)}
    listed = list(client.list_properties_of_secret_versions("multi"))
    assert {p.version for p in listed} == versions
    assert all(p.name == "multi" for p in listed)
    with pytest.raises(ResourceNotFoundError):
        list(client.list_properties_of_secret_versions("no-such"))


def test_delete_recover_purge_cycle(client):
    client.set_secret("cycle", "v1")
    client.set_secret("cycle", "v2")
    deleted = client.begin_delete_secret("cycle").result()
    assert deleted.name == "cycle"
    assert deleted.recovery_id == f"{client.vault_url}/deletedsecrets/cycle"
    assert deleted.deleted_date is not None
    assert (deleted.scheduled_purge_date - deleted.deleted_date).days == 90
    with pytest.raises(ResourceNotFoundError):
        client.get_secret("cycle")
    # The name is reserved while deleted.
    with pytest.raises(ResourceExistsError) as e:
        client.set_secret("cycle", "v3")
    assert e.value.status_code == 409
    assert e.value.error.code == "Conflict"
    assert e.value.error.innererror["code"] == "ObjectIsDeletedButRecoverable"
    assert client.get_deleted_secret("cycle").name == "cycle"
    assert "cycle" in {d.name for d in client.list_deleted_secrets()}
    recovered = client.begin_recover_deleted_secret("cycle").result()
    assert recovered.name == "cycle"
    assert client.get_secret("cycle").value == "v2"
    assert len(list(client.list_properties_of_secret_versions("cycle"))) == 2
    client.begin_delete_secret("cycle").wait()
    client.purge_deleted_secret("cycle")
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_secret("cycle")
    # After purge the name is free again, with no history.
    client.set_secret("cycle", "fresh")
    assert len(list(client.list_properties_of_secret_versions("cycle"))) == 1


def test_deleted_errors(client):
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_secret("never")
    with pytest.raises(ResourceNotFoundError):
        client.purge_deleted_secret("never")
    with pytest.raises(ResourceNotFoundError):
        client.begin_delete_secret("never")


def test_backup_and_restore_into_another_vault(coffer, credential, client):
    client.set_secret("portable", "v1", tags={"k": "v"})
    last = client.set_secret("portable", "v2", content_type="text/plain")
    blob = client.backup_secret("portable")
    assert isinstance(blob, bytes) and b"v2" not in blob
    # Restoring over a live secret conflicts.
    with pytest.raises(ResourceExistsError):
        client.restore_secret_backup(blob)
    other = SecretClient(coffer.vault_url(coffer.new_vault()), credential)
    restored = other.restore_secret_backup(blob)
    assert restored.name == "portable" and restored.version == last.properties.version
    assert other.get_secret("portable").value == "v2"
    assert len(list(other.list_properties_of_secret_versions("portable"))) == 2
    # Restore into the same vault after delete + purge.
    client.begin_delete_secret("portable").wait()
    client.purge_deleted_secret("portable")
    client.restore_secret_backup(blob)
    assert client.get_secret("portable").properties.content_type == "text/plain"


def test_tampered_backup_is_rejected(client):
    client.set_secret("guarded", "v")
    blob = bytearray(client.backup_secret("guarded"))
    blob[len(blob) // 2] ^= 0x01
    with pytest.raises(HttpResponseError) as e:
        client.restore_secret_backup(bytes(blob))
    assert e.value.status_code == 400
    assert e.value.error.code == "BadParameter"
    with pytest.raises(HttpResponseError) as e:
        client.restore_secret_backup(b"not a backup at all")
    assert e.value.status_code == 400
