"""Microsoft Graph's directory subset on the wire (what `az ad` relies on, and what it does not
show): paging, `$filter`, Graph's error codes, what a caller who is not an administrator sees,
properties Coffer does not keep, and that a Graph change is the directory's change."""
import json
import uuid

import pytest
import requests


@pytest.fixture(scope="module")
def graph(coffer):
    session = requests.Session()
    session.verify = coffer.creds["ca_file"]
    session.headers["Authorization"] = f"Bearer {coffer.token(resource=coffer.server)}"
    base = f"{coffer.server}/v1.0"

    def call(method, path, **kw):
        return session.request(method, base + path, timeout=30, **kw)

    return call


@pytest.mark.compat("Azure CLI", "directory")
def test_lists_page_and_filter_as_graph_does(coffer, graph):
    tag = uuid.uuid4().hex[:8]
    ids = set()
    for i in range(3):
        r = graph("POST", "/groups", json={"displayName": f"ward-{tag}-{i}", "mailNickname": f"w{tag}{i}",
                                           "securityEnabled": True, "mailEnabled": False})
        assert r.status_code == 201, r.text
        assert r.json()["@odata.type"] == "#microsoft.graph.group"
        ids.add(r.json()["id"])
    seen, url = [], f"/groups?$filter=startswith(displayName,'ward-{tag}')&$top=2"
    pages = 0
    while url:
        page = graph("GET", url).json()
        seen += [g["id"] for g in page["value"]]
        assert len(page["value"]) <= 2
        url = page.get("@odata.nextLink", "").split("/v1.0", 1)[-1] or None
        pages += 1
    assert set(seen) == ids and len(seen) == 3 and pages == 2
    one = graph("GET", f"/groups?$filter=displayName eq 'WARD-{tag}-1' and mailNickname eq 'w{tag}1'").json()["value"]
    assert [g["displayName"] for g in one] == [f"ward-{tag}-1"], "case-insensitive, as the directory"
    for bad in ["/groups?$orderby=displayName", "/groups?$filter=secret eq 'x'", "/groups?$filter=displayName gt 'a'"]:
        r = graph("GET", bad)
        assert r.status_code == 400 and r.json()["error"]["code"] == "Request_UnsupportedQuery", (bad, r.text)
    r = graph("GET", f"/groups/{uuid.uuid4()}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "Request_ResourceNotFound"
    # A user is not in the groups collection.
    me = coffer.cli_json("principal", "show", "--id", coffer.creds["client_id"])["object_id"]
    assert graph("GET", f"/groups/{me}").status_code == 404
    got = graph("POST", "/directoryObjects/getByIds", json={"ids": sorted(ids) + [me, str(uuid.uuid4())],
                                                            "types": ["group"]}).json()["value"]
    assert {g["id"] for g in got} == ids, "only the types asked for; unknown ids left out"


def test_what_coffer_does_not_keep_is_refused(coffer, graph):
    r = graph("POST", "/applications", json={"displayName": "x", "identifierUris": ["api://x"]})
    assert r.status_code == 400 and "identifierUris" in r.json()["error"]["message"]
    r = graph("POST", "/groups", json={"displayName": "m", "mailNickname": "m", "mailEnabled": True})
    assert r.status_code == 400 and "mailEnabled" in r.json()["error"]["message"]
    r = graph("POST", "/users", json={"displayName": "u", "userPrincipalName": f"u-{uuid.uuid4().hex[:6]}@x",
                                      "mailNickname": "u", "accountEnabled": True,
                                      "passwordProfile": {"password": "Long-enough-1", "forceChangePasswordNextSignIn": True}})
    assert r.status_code == 400 and "next sign-in" in r.json()["error"]["message"]
    # Nothing was made by the refused requests.
    assert graph("GET", "/applications?$filter=displayName eq 'x'").json()["value"] == []


def test_a_caller_who_is_not_an_administrator_reads_only_itself(coffer, graph):
    app = graph("POST", "/applications", json={"displayName": "reader-" + uuid.uuid4().hex[:8]}).json()
    secret = graph("POST", f"/applications/{app['id']}/addPassword", json={"passwordCredential": {}}).json()
    assert secret["secretText"] and secret["hint"] == secret["secretText"][:3]
    token = requests.post(f"{coffer.server}/{coffer.creds['tenant_id']}/oauth2/v2.0/token", timeout=30,
                          verify=coffer.creds["ca_file"],
                          data={"grant_type": "client_credentials", "client_id": app["appId"],
                                "client_secret": secret["secretText"], "scope": f"{coffer.server}/.default"}).json()
    h = {"Authorization": f"Bearer {token['access_token']}"}
    get = lambda p: requests.get(f"{coffer.server}/v1.0{p}", headers=h, verify=coffer.creds["ca_file"], timeout=30)
    sps = get("/servicePrincipals").json()["value"]
    assert [s["id"] for s in sps] == [app["id"]], "itself only"
    assert get(f"/servicePrincipals?$filter=servicePrincipalNames/any(c:c eq '{app['appId']}')").json()["value"][0]["id"] \
        == app["id"], "the lookup az makes of its own identity"
    admin = coffer.cli_json("principal", "show", "--id", coffer.creds["client_id"])["object_id"]
    assert get(f"/servicePrincipals/{admin}").status_code == 404, "another object cannot be probed"
    r = get("/me")
    assert r.status_code == 400 and "delegated" in r.json()["error"]["message"]
    r = requests.post(f"{coffer.server}/v1.0/groups", headers=h, verify=coffer.creds["ca_file"], timeout=30,
                      json={"displayName": "g", "mailNickname": "g"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "Authorization_RequestDenied"
    # The audit log names the directory operations, with the caller.
    r = coffer.cli("audit", "query", "--operation", "DirectoryChange", "--caller", app["id"], "--result", "denied")
    records = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert [r["operationName"] for r in records] == ["DirectoryChange"], "the refused change is audited"
