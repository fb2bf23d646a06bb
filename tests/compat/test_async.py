"""The async SecretClient over aiohttp, against the real server."""
import asyncio

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.keyvault.secrets.aio import SecretClient

pytestmark = pytest.mark.compat("Python SDK", "secrets")


def run(coro):
    return asyncio.run(coro)


def test_async_secret_lifecycle(coffer, vault):
    async def scenario():
        cred = coffer.async_credential()
        async with cred, SecretClient(coffer.vault_url(vault), cred) as c:
            s = await c.set_secret("async-one", "a1", tags={"t": "1"})
            assert s.value == "a1"
            await c.set_secret("async-one", "a2")
            assert (await c.get_secret("async-one")).value == "a2"
            assert (await c.get_secret("async-one", s.properties.version)).value == "a1"
            p = await c.update_secret_properties("async-one", content_type="text/plain")
            assert p.content_type == "text/plain"
            for i in range(27):
                await c.set_secret(f"async-{i:02d}", "x")
            names = [p.name async for p in c.list_properties_of_secrets()]
            assert len(names) == 28
            versions = [p async for p in c.list_properties_of_secret_versions("async-one")]
            assert len(versions) == 2
            deleted = await c.delete_secret("async-one")
            assert deleted.recovery_id.endswith("/deletedsecrets/async-one")
            with pytest.raises(ResourceExistsError):
                await c.set_secret("async-one", "again")
            assert "async-one" in [d.name async for d in c.list_deleted_secrets()]
            assert (await c.get_deleted_secret("async-one")).name == "async-one"
            await c.recover_deleted_secret("async-one")
            assert (await c.get_secret("async-one")).value == "a2"
            blob = await c.backup_secret("async-one")
            await c.delete_secret("async-one")
            await c.purge_deleted_secret("async-one")
            with pytest.raises(ResourceNotFoundError):
                await c.get_deleted_secret("async-one")
            restored = await c.restore_secret_backup(blob)
            assert restored.name == "async-one"
            assert (await c.get_secret("async-one")).value == "a2"

    run(scenario())
