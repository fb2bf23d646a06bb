"""`coffer certificate …`: create with the default and custom policies, download PEM/DER,
CSR merge, import, backup/restore, soft delete, contacts and issuers, exit codes."""
import base64
import datetime
import json

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from test_certificates import make_pfx


def test_certificate_cli(coffer, tmp_path):
    v = coffer.new_vault()
    n = ["--vault-name", v, "--name"]
    default = coffer.cli_json("certificate", "get-default-policy")
    assert default["issuer"]["name"] == "Self" and default["x509_props"]["validity_months"] == 12
    made = coffer.cli_json("certificate", "create", *n, "web", "--tags", "ward=7")
    assert made["id"].endswith("/certificates/web/" + made["id"].rsplit("/", 1)[1]) and made["tags"] == {"ward": "7"}
    shown = coffer.cli_json("certificate", "show", *n, "web")
    assert shown["x5t"] == made["x5t"] and shown["policy"]["lifetime_actions"][0]["action"]["action_type"] == "AutoRenew"

    coffer.cli_json("certificate", "download", *n, "web", "--file", str(tmp_path / "web.pem"))
    coffer.cli_json("certificate", "download", *n, "web", "--file", str(tmp_path / "web.der"), "--encoding", "DER")
    pem = x509.load_pem_x509_certificate((tmp_path / "web.pem").read_bytes())
    der = x509.load_der_x509_certificate((tmp_path / "web.der").read_bytes())
    assert pem == der and der.subject.rfc4514_string() == "CN=CLIGetDefaultPolicy"
    assert base64.urlsafe_b64encode(der.fingerprint(hashes.SHA1())).decode().rstrip("=") == made["x5t"]

    # A custom EC policy from a file, a second version, attributes.
    policy = tmp_path / "ec.json"
    policy.write_text(json.dumps({"issuer": {"name": "Self"}, "key_props": {"kty": "EC", "crv": "P-384", "exportable": True},
                                  "x509_props": {"subject": "CN=lab.example", "validity_months": 3}}))
    coffer.cli_json("certificate", "create", *n, "web", "--policy", f"@{policy}")
    versions = coffer.cli_json("certificate", "list-versions", *n, "web")
    assert len(versions) == 2
    latest = coffer.cli_json("certificate", "show", *n, "web")
    assert latest["policy"]["key_props"]["crv"] == "P-384"
    first = made["id"].rsplit("/", 1)[1]
    upd = coffer.cli_json("certificate", "set-attributes", *n, "web", "--version", first, "--enabled", "false")
    assert upd["attributes"]["enabled"] is False
    assert [c["id"].rsplit("/", 1)[1] for c in coffer.cli_json("certificate", "list", "--vault-name", v)] == ["web"]

    # Issuance by an outside CA: the CSR is signed elsewhere and merged.
    unknown = json.dumps({"issuer": {"name": "Unknown"}, "key_props": {"kty": "EC", "crv": "P-256"},
                          "x509_props": {"subject": "CN=partner.example", "validity_months": 6}})
    op = coffer.cli_json("certificate", "create", *n, "partner", "--policy", unknown)
    assert op["status"] == "inProgress" and op["csr"]
    assert coffer.cli_json("certificate", "pending", "show", *n, "partner")["csr"] == op["csr"]
    names = lambda *extra: [c["id"].rsplit("/", 1)[1] for c in coffer.cli_json("certificate", "list", "--vault-name", v, *extra)]
    assert names() == ["web"] and names("--include-pending") == ["web", "partner"]
    csr = x509.load_der_x509_csr(base64.b64decode(op["csr"]))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Partner CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    leaf = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca_name).public_key(csr.public_key())
            .serial_number(2).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=180)).sign(ca_key, hashes.SHA256()))
    (tmp_path / "chain.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    merged = coffer.cli_json("certificate", "pending", "merge", *n, "partner", "--file", str(tmp_path / "chain.pem"))
    assert base64.b64decode(merged["cer"]) == leaf.public_bytes(serialization.Encoding.DER)
    coffer.cli_json("certificate", "create", *n, "dropped", "--policy", unknown)
    coffer.cli_json("certificate", "pending", "delete", *n, "dropped")
    assert coffer.cli("certificate", "pending", "show", *n, "dropped").returncode == 2

    # Import a PFX with its password.
    pfx, _, cert = make_pfx("pw")
    (tmp_path / "in.pfx").write_bytes(pfx)
    imported = coffer.cli_json("certificate", "import", *n, "imported", "--file", str(tmp_path / "in.pfx"), "--password", "pw")
    assert base64.b64decode(imported["cer"]) == cert.public_bytes(serialization.Encoding.DER)
    wrong = coffer.cli("certificate", "import", *n, "imported2", "--file", str(tmp_path / "in.pfx"), "--password", "nope")
    assert wrong.returncode == 2 and "BadParameter" in wrong.stderr, wrong.stderr

    # Backup into a file, restore into another vault.
    coffer.cli_json("certificate", "backup", *n, "web", "--file", str(tmp_path / "web.bak"))
    other = coffer.new_vault()
    restored = coffer.cli_json("certificate", "restore", "--vault-name", other, "--file", str(tmp_path / "web.bak"))
    assert restored["x5t"] == latest["x5t"]
    assert len(coffer.cli_json("certificate", "list-versions", "--vault-name", other, "--name", "web")) == 2

    # Soft delete, recover, purge.
    deleted = coffer.cli_json("certificate", "delete", *n, "web")
    assert deleted["recoveryId"].endswith("/deletedcertificates/web")
    assert "web" in [d["id"].rsplit("/", 1)[1] for d in coffer.cli_json("certificate", "list-deleted", "--vault-name", v)]
    assert coffer.cli_json("certificate", "show-deleted", *n, "web")["x5t"] == latest["x5t"]
    coffer.cli_json("certificate", "recover", *n, "web")
    assert coffer.cli_json("certificate", "show", *n, "web")["x5t"] == latest["x5t"]
    coffer.cli_json("certificate", "delete", *n, "web")
    coffer.cli_json("certificate", "purge", *n, "web")
    assert coffer.cli("certificate", "show-deleted", *n, "web").returncode == 2

    # Bad input: a usage error (1) before anything is sent, a server error (2) with Azure's code.
    bad = coffer.cli("certificate", "create", *n, "x", "--policy", "{not json")
    assert bad.returncode == 1 and "--policy is not JSON" in bad.stderr
    missing = coffer.cli("certificate", "show", *n, "nothing-here")
    assert missing.returncode == 2 and "CertificateNotFound" in missing.stderr


def test_certificate_contacts_and_issuers_cli(coffer):
    v = coffer.new_vault()
    vn = ["--vault-name", v]
    coffer.cli_json("certificate", "contact", "add", *vn, "--email", "pki@hospital.example", "--name", "PKI team")
    listed = coffer.cli_json("certificate", "contact", "add", *vn, "--email", "oncall@hospital.example", "--phone", "555-0100")
    assert [c["email"] for c in listed["contacts"]] == ["pki@hospital.example", "oncall@hospital.example"]
    coffer.cli_json("certificate", "contact", "delete", *vn, "--email", "pki@hospital.example")
    assert [c["email"] for c in coffer.cli_json("certificate", "contact", "list", *vn)["contacts"]] == ["oncall@hospital.example"]
    assert coffer.cli("certificate", "contact", "delete", *vn, "--email", "nobody@x.example").returncode == 1
    coffer.cli_json("certificate", "contact", "delete", *vn, "--email", "oncall@hospital.example")
    assert coffer.cli("certificate", "contact", "list", *vn).returncode == 2, "no contacts left"

    i = ["--vault-name", v, "--issuer-name", "digicert"]
    made = coffer.cli_json("certificate", "issuer", "create", *i, "--provider-name", "DigiCert", "--account-id", "acct-1",
                           "--password", "s3cret", "--organization-id", "org-9")
    assert made["provider"] == "DigiCert" and made["credentials"]["account_id"] == "acct-1"
    assert "pwd" not in made["credentials"], "the issuer password is never returned"
    assert coffer.cli_json("certificate", "issuer", "show", *i)["org_details"]["id"] == "org-9"
    upd = coffer.cli_json("certificate", "issuer", "update", *i, "--disabled", "true")
    assert upd["attributes"]["enabled"] is False and upd["provider"] == "DigiCert"
    assert [x["id"].rsplit("/", 1)[1] for x in coffer.cli_json("certificate", "issuer", "list", "--vault-name", v)] == ["digicert"]
    coffer.cli_json("certificate", "issuer", "delete", *i)
    assert coffer.cli("certificate", "issuer", "show", *i).returncode == 2
