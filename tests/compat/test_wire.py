"""Wire details the SDKs depend on: the challenge, api-versions, headers, errors and limits."""
import base64
import json

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.keyvault.secrets import SecretClient


def url(coffer, vault, path, api_version="2026-04-01"):
    sep = "&" if "?" in path else "?"
    return f"{coffer.vault_url(vault)}{path}{sep}api-version={api_version}" if api_version else f"{coffer.vault_url(vault)}{path}"


@pytest.fixture
def auth(coffer):
    return {"Authorization": f"Bearer {coffer.token()}"}


def assert_azure_error(r, status, code=None):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    return body["error"]


def test_challenge_comes_before_anything_else(coffer, vault):
    expected = (
        f'Bearer authorization="https://localhost:{coffer.port}/{coffer.creds["tenant_id"]}", '
        f'resource="https://vault.localhost:{coffer.port}"'
    )
    # No token: 401 with the challenge, for any method and path, even with no body,
    # a bad api-version, or an unknown route.
    for method, path in [
        ("PUT", "/secrets/x"), ("GET", "/secrets"), ("POST", "/secrets/restore"),
        ("DELETE", "/deletedsecrets/x"), ("GET", "/no/such/route"), ("PATCH", "/secrets/x/"),
    ]:
        r = requests.request(method, url(coffer, vault, path, api_version="bogus"))
        err = assert_azure_error(r, 401, "Unauthorized")
        assert r.headers["WWW-Authenticate"] == expected, r.headers
        assert "Bearer" in err["message"]


def test_invalid_tokens_get_the_challenge(coffer, vault, auth):
    good = auth["Authorization"].split(" ", 1)[1]
    h, c, s = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(c + "=" * (-len(c) % 4)))
    claims["oid"] = "00000000-0000-0000-0000-000000000000"
    forged_c = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    none_h = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    management = coffer.token(resource=coffer.server)
    for token in [f"{h}.{forged_c}.{s}", f"{none_h}.{c}.", f"{none_h}.{c}.{s}", "garbage", management]:
        r = requests.get(url(coffer, vault, "/secrets"), headers={"Authorization": f"Bearer {token}"})
        assert_azure_error(r, 401, "Unauthorized")
        assert "WWW-Authenticate" in r.headers


def test_api_versions(coffer, vault, auth):
    # Known versions; a newer date; and dates between known ones, as SDK betas send them (the
    # Rust SDK 1.1 betas: 2026-03-01-preview), served as the known version before them.
    for v in ["7.0", "7.4", "7.5", "7.6", "2025-07-01", "2026-04-01", "2027-06-01", "2026-03-01-preview",
              "2025-12-01"]:
        r = requests.get(url(coffer, vault, "/secrets", api_version=v), headers=auth)
        assert r.status_code == 200, (v, r.text)
    for v in ["1.0", "7.9", "2015-01-01", "latest", "2026-03-01-beta"]:
        r = requests.get(url(coffer, vault, "/secrets", api_version=v), headers=auth)
        err = assert_azure_error(r, 400, "BadParameter")
        assert "not recognized" in err["message"]
    r = requests.get(url(coffer, vault, "/secrets", api_version=None), headers=auth)
    assert_azure_error(r, 400, "BadParameter")


def test_sdk_works_at_older_api_version(coffer, credential, vault):
    c = SecretClient(coffer.vault_url(vault), credential, api_version="7.4")
    c.set_secret("old-api", "v")
    assert c.get_secret("old-api").value == "v"


def test_request_id_headers(coffer, vault, auth):
    r = requests.get(url(coffer, vault, "/secrets"), headers={**auth, "x-ms-client-request-id": "abc-123"})
    assert r.status_code == 200
    assert r.headers["x-ms-client-request-id"] == "abc-123"
    assert len(r.headers["x-ms-request-id"]) == 36
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"


def test_bad_input_is_a_clear_4xx(coffer, vault, auth):
    big = "x" * (25 * 1024 + 1)
    cases = [
        ("PUT", "/secrets/under_score", {"value": "v"}, 400),
        ("PUT", "/secrets/" + "a" * 128, {"value": "v"}, 400),
        ("PUT", "/secrets/ok", {"value": big}, 400),
        ("PUT", "/secrets/ok", {"value": "v", "tags": {f"k{i}": "v" for i in range(16)}}, 400),
        ("PUT", "/secrets/ok", {"value": "v", "tags": {"k": "v" * 257}}, 400),
        ("PUT", "/secrets/ok", {"value": "v", "contentType": "c" * 256}, 400),
        ("PUT", "/secrets/ok", {"value": 12}, 400),
        ("PUT", "/secrets/ok", {"value": "v", "attributes": {"enabled": "yes"}}, 400),
        ("PUT", "/secrets/ok", {"value": "v", "attributes": {"exp": "tomorrow"}}, 400),
        ("PUT", "/secrets/ok", {"value": "v", "tags": ["a"]}, 400),
        ("PUT", "/secrets/ok", {"contentType": "x"}, 400),
        ("PUT", "/secrets/ok", [1, 2], 400),
        ("GET", "/secrets?maxresults=0", None, 400),
        ("GET", "/secrets?maxresults=26", None, 400),
        ("GET", "/secrets?maxresults=ten", None, 400),
        ("GET", "/secrets?$skiptoken=%%%", None, 400),
        ("GET", "/no/such/route", None, 404),
        ("DELETE", "/secrets", None, 405),
        ("PUT", "/deletedsecrets/x", {"value": "v"}, 405),
    ]
    for method, path, body, status in cases:
        r = requests.request(method, url(coffer, vault, path), headers=auth, json=body)
        assert_azure_error(r, status)
    # Malformed and empty JSON bodies.
    for raw in [b"{not json", b"", b'{"value": "v"', b"\xff\xfe"]:
        r = requests.put(url(coffer, vault, "/secrets/ok"), headers={**auth, "Content-Type": "application/json"}, data=raw)
        assert_azure_error(r, 400, "BadParameter")
    # An oversized body is refused without being read whole.
    r = requests.put(url(coffer, vault, "/secrets/ok"), headers={**auth, "Content-Type": "application/json"},
                     data=b'{"value":"' + b"a" * (5 * 1024 * 1024) + b'"}')
    assert_azure_error(r, 413)
    # And the server keeps serving.
    r = requests.put(url(coffer, vault, "/secrets/ok"), headers=auth, json={"value": "fine"})
    assert r.status_code == 200 and r.json()["value"] == "fine"


def test_value_at_the_limit_is_accepted(coffer, vault, auth):
    v = "x" * (25 * 1024)
    r = requests.put(url(coffer, vault, "/secrets/max"), headers=auth, json={"value": v})
    assert r.status_code == 200
    assert len(r.json()["value"]) == 25 * 1024


def test_unknown_vault(coffer, auth):
    r = requests.get(url(coffer, "nosuchvault", "/secrets"), headers=auth)
    assert_azure_error(r, 404)


def test_principal_without_access_policy_gets_403(coffer, credential):
    name = coffer.new_vault()
    c = SecretClient(coffer.vault_url(name), credential)
    c.set_secret("locked", "v")
    oid = coffer.cli_json("vault", "show", "--name", name)["properties"]["accessPolicies"][0]["objectId"]
    coffer.cli_json("vault", "delete-policy", "--name", name, "--object-id", oid)
    with pytest.raises(HttpResponseError) as e:
        c.get_secret("locked")
    assert e.value.status_code == 403
    assert e.value.error.code == "Forbidden"
    assert e.value.error.innererror["code"] == "AccessDenied"
    assert "secrets get permission" in e.value.message
    # Management still works (it is not data), and a narrow grant allows exactly that.
    coffer.cli_json("vault", "set-policy", "--name", name, "--object-id", oid, "--secret-permissions", "list")
    assert [p.name for p in c.list_properties_of_secrets()] == ["locked"]
    with pytest.raises(HttpResponseError) as e:
        c.get_secret("locked")
    assert e.value.status_code == 403
