"""Certificates through azure-keyvault-certificates (sync and async): issue (Self), CSR and
merge (Unknown), import PFX/PEM, linked key and secret, lifecycle, contacts and issuers. Issued
certificates are checked by independent parsers (cryptography, and openssl x509 -text)."""
import asyncio
import base64
import datetime
import ipaddress
import shutil
import subprocess
import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.certificates import (
    CertificateClient, CertificateContact, CertificateContentType, CertificatePolicy, KeyType, KeyUsageType,
    WellKnownIssuerNames,
)
from azure.keyvault.keys import KeyClient
from azure.keyvault.secrets import SecretClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

pytestmark = pytest.mark.compat("Python SDK", "certificates")


@pytest.fixture
def clients(coffer, credential, vault):
    url = coffer.vault_url(vault)
    return CertificateClient(url, credential), SecretClient(url, credential), KeyClient(url, credential)


def policy_rsa():
    return CertificatePolicy(
        issuer_name=WellKnownIssuerNames.self,
        subject="CN=portal.hospital.example, O=Hospital",
        san_dns_names=["portal.hospital.example", "www.hospital.example"],
        san_emails=["it@hospital.example"],
        san_user_principal_names=["svc@hospital.example"],
        san_ip_addresses=["10.1.2.3"],
        san_uris=["https://hospital.example/"],
        key_type=KeyType.rsa, key_size=2048, exportable=True, reuse_key=False,
        key_usage=[KeyUsageType.digital_signature, KeyUsageType.key_encipherment],
        enhanced_key_usage=["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"],
        validity_in_months=24, content_type=CertificateContentType.pkcs12,
    )


def test_self_signed_certificate_checked_independently(clients, tmp_path):
    certs, secrets, keys = clients
    cert = certs.begin_create_certificate("portal", policy_rsa()).result()
    assert cert.name == "portal" and cert.properties.x509_thumbprint
    c = x509.load_der_x509_certificate(bytes(cert.cer))
    assert c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "portal.hospital.example"
    assert c.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Hospital"
    assert c.issuer == c.subject
    san = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"portal.hospital.example", "www.hospital.example"}
    assert san.get_values_for_type(x509.RFC822Name) == ["it@hospital.example"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.1.2.3")]
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["https://hospital.example/"]
    ku = c.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.key_encipherment and not ku.key_cert_sign
    eku = c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    days = (c.not_valid_after_utc - c.not_valid_before_utc).days
    assert 728 <= days <= 733, days
    c.public_key().verify(c.signature, c.tbs_certificate_bytes, padding.PKCS1v15(), c.signature_hash_algorithm)
    assert cert.properties.expires_on == c.not_valid_after_utc
    if shutil.which("openssl"):
        (tmp_path / "c.der").write_bytes(bytes(cert.cer))
        text = subprocess.run(["openssl", "x509", "-inform", "DER", "-in", str(tmp_path / "c.der"), "-noout", "-text"], capture_output=True, text=True).stdout
        assert "DNS:www.hospital.example" in text and "TLS Web Server Authentication" in text
    # The linked secret holds the PFX with the private key; the linked key is the certificate's key.
    s = secrets.get_secret("portal")
    assert s.properties.managed and s.properties.content_type == "application/x-pkcs12"
    assert s.properties.key_id.endswith(f"/keys/portal/{cert.properties.version}")
    key, leaf, _ = pkcs12.load_key_and_certificates(base64.b64decode(s.value), None)
    assert leaf.public_bytes(serialization.Encoding.DER) == bytes(cert.cer)
    assert key.public_key().public_numbers() == c.public_key().public_numbers()
    k = keys.get_key("portal")
    assert k.properties.managed and int.from_bytes(k.key.n, "big") == c.public_key().public_numbers().n
    assert k.properties.version == cert.properties.version
    # They change only through the certificate.
    for attempt in [lambda: secrets.set_secret("portal", "x"), lambda: keys.update_key_properties("portal", enabled=False),
                    lambda: secrets.begin_delete_secret("portal")]:
        with pytest.raises(HttpResponseError) as e:
            attempt()
        assert e.value.status_code == 403 and e.value.error.innererror["code"] == "ManagedObject"


def test_ec_certificate_as_pem(clients):
    certs, secrets, _ = clients
    policy = CertificatePolicy(issuer_name="Self", subject="CN=lab-device", key_type=KeyType.ec, key_curve_name="P-384",
                               content_type=CertificateContentType.pem, validity_in_months=1)
    cert = certs.begin_create_certificate("lab-device", policy).result()
    c = x509.load_der_x509_certificate(bytes(cert.cer))
    assert isinstance(c.public_key(), ec.EllipticCurvePublicKey) and c.public_key().curve.name == "secp384r1"
    pem = secrets.get_secret("lab-device").value
    key = serialization.load_pem_private_key(pem.encode(), None)
    assert key.public_key().public_numbers() == c.public_key().public_numbers()
    assert x509.load_pem_x509_certificate(pem.encode()).fingerprint(hashes.SHA256()) == c.fingerprint(hashes.SHA256())


def test_csr_merge_cancel_and_conflicts(clients):
    certs, _, _ = clients
    policy = CertificatePolicy(issuer_name=WellKnownIssuerNames.unknown, subject="CN=partner.example", validity_in_months=6)
    op = certs.begin_create_certificate("partner", policy).result()
    assert op.status.lower() == "inprogress" and op.csr
    csr = x509.load_der_x509_csr(bytes(certs.get_certificate_operation("partner").csr))
    assert csr.is_signature_valid and csr.subject.rfc4514_string() == "CN=partner.example"
    # A certificate with only a pending operation is listed only when asked for.
    assert "partner" not in [c.name for c in certs.list_properties_of_certificates()]
    pending = {c.name: c for c in certs.list_properties_of_certificates(include_pending=True)}
    assert "partner" in pending and pending["partner"].enabled is False and pending["partner"].x509_thumbprint is None
    # Getting it answers, as Azure does, the disabled pending certificate with its policy (no
    # `cer`): the JavaScript SDK's getCertificateOperation reads it first.
    shown = certs.get_certificate("partner")
    assert shown.properties.enabled is False and shown.cer is None and shown.policy.subject == "CN=partner.example"
    assert certs.get_certificate_version("partner", shown.properties.version).properties.enabled is False
    with pytest.raises(ResourceNotFoundError):
        certs.get_certificate_version("partner", "0" * 32)
    with pytest.raises(HttpResponseError) as e:
        certs.begin_create_certificate("partner", policy).result()
    assert e.value.status_code == 409
    # A CA elsewhere signs the CSR; the chain is merged.
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Partner CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=365))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca_name).public_key(csr.public_key())
            .serial_number(2).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=180)).sign(ca_key, hashes.SHA256()))
    der = lambda c: c.public_bytes(serialization.Encoding.DER)
    # A certificate for another key is refused.
    other = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca_name).public_key(ca_key.public_key())
             .serial_number(3).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1)).sign(ca_key, hashes.SHA256()))
    with pytest.raises(HttpResponseError) as e:
        certs.merge_certificate("partner", [der(other)])
    assert e.value.status_code == 400
    merged = certs.merge_certificate("partner", [der(leaf), der(ca)])
    assert bytes(merged.cer) == der(leaf)
    assert certs.get_certificate_operation("partner").status.lower() == "completed"
    listed = [c.name for c in certs.list_properties_of_certificates(include_pending=True)]
    assert listed.count("partner") == 1, "once merged it is listed once, as a certificate"
    # Cancel and delete a pending operation.
    certs.begin_create_certificate("abandoned", policy).result()
    assert certs.cancel_certificate_operation("abandoned").status.lower() == "cancelled"
    certs.delete_certificate_operation("abandoned")
    with pytest.raises(ResourceNotFoundError):
        certs.get_certificate_operation("abandoned")


def make_pfx(password, legacy=False, tmp_path=None):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imported.example")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(7)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=90)).sign(key, hashes.SHA256()))
    if legacy:
        (tmp_path / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        subprocess.run(["openssl", "pkcs12", "-export", "-legacy", "-inkey", str(tmp_path / "k.pem"), "-in", str(tmp_path / "c.pem"),
                        "-out", str(tmp_path / "l.pfx"), "-passout", f"pass:{password}"], check=True, capture_output=True)
        return (tmp_path / "l.pfx").read_bytes(), key, cert
    enc = serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    return pkcs12.serialize_key_and_certificates(b"imported", key, cert, None, enc), key, cert


def test_import_pfx_and_pem(coffer, clients, tmp_path):
    certs, secrets, _ = clients
    pfx, key, cert = make_pfx("pw")
    imported = certs.import_certificate("modern", pfx, password="pw")
    assert bytes(imported.cer) == cert.public_bytes(serialization.Encoding.DER)
    k, _, _ = pkcs12.load_key_and_certificates(base64.b64decode(secrets.get_secret("modern").value), None)
    assert k.private_numbers() == key.private_numbers()
    if shutil.which("openssl"):
        legacy, _, lcert = make_pfx("old", legacy=True, tmp_path=tmp_path)
        assert bytes(certs.import_certificate("legacy", legacy, password="old").cer) == lcert.public_bytes(serialization.Encoding.DER)
    with pytest.raises(HttpResponseError) as e:
        certs.import_certificate("wrong-pw", pfx, password="nope")
    assert e.value.status_code == 400
    with pytest.raises(HttpResponseError) as e:
        certs.import_certificate("corrupt", b"\x30\x82garbage", password="x")
    assert e.value.status_code == 400
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM)
    pem_policy = CertificatePolicy(content_type=CertificateContentType.pem, issuer_name="Unknown", subject="CN=imported.example")
    assert bytes(certs.import_certificate("as-pem", pem, policy=pem_policy).cer) == cert.public_bytes(serialization.Encoding.DER)
    assert "PRIVATE KEY" in secrets.get_secret("as-pem").value
    # The PEM text itself in `value` (not its base64), as the JavaScript SDK sends it for
    # `application/x-pem-file` and Azure accepts it.
    import requests

    r = requests.post(f"{certs.vault_url}/certificates/raw-pem/import?api-version=7.6",
                      headers={"Authorization": f"Bearer {coffer.token()}"},
                      json={"value": pem.decode(), "policy": {"secret_props": {"contentType": "application/x-pem-file"}}})
    assert r.status_code == 200, r.text
    assert base64.b64decode(r.json()["cer"]) == cert.public_bytes(serialization.Encoding.DER)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    mismatched = other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM)
    with pytest.raises(HttpResponseError) as e:
        certs.import_certificate("mismatch", mismatched, policy=pem_policy)
    assert e.value.status_code == 400 and "does not match" in e.value.message


def test_certificate_lifecycle_and_policy(clients):
    certs, secrets, keys = clients
    first = certs.begin_create_certificate("ward", policy_rsa()).result()
    second = certs.begin_create_certificate("ward", policy_rsa()).result()
    assert first.properties.version != second.properties.version
    assert len(list(certs.list_properties_of_certificate_versions("ward"))) == 2
    assert "ward" in [c.name for c in certs.list_properties_of_certificates()]
    upd = certs.update_certificate_properties("ward", tags={"ward": "7"})
    assert upd.properties.tags == {"ward": "7"}
    pol = certs.get_certificate_policy("ward")
    assert pol.subject == "CN=portal.hospital.example, O=Hospital" and pol.validity_in_months == 24
    newpol = certs.update_certificate_policy("ward", CertificatePolicy(issuer_name="Self", subject="CN=ward7.example", validity_in_months=3))
    assert newpol.subject == "CN=ward7.example"
    third = certs.begin_create_certificate("ward", certs.get_certificate_policy("ward")).result()
    assert x509.load_der_x509_certificate(bytes(third.cer)).subject.rfc4514_string() == "CN=ward7.example"
    deleted = certs.begin_delete_certificate("ward").result()
    assert deleted.recovery_id.endswith("/deletedcertificates/ward")
    with pytest.raises(ResourceNotFoundError):
        keys.get_key("ward")
    with pytest.raises(ResourceExistsError) as e:
        certs.begin_create_certificate("ward", policy_rsa()).result()
    assert e.value.error.code == "Conflict" and e.value.error.innererror["code"] == "ObjectIsDeletedButRecoverable"
    assert "ward" in [d.name for d in certs.list_deleted_certificates()]
    certs.begin_recover_deleted_certificate("ward").wait()
    assert keys.get_key("ward").properties.version == third.properties.version
    assert secrets.get_secret("ward").properties.managed
    certs.begin_delete_certificate("ward").wait()
    certs.purge_deleted_certificate("ward")
    with pytest.raises(ResourceNotFoundError):
        certs.get_deleted_certificate("ward")
    assert certs.begin_create_certificate("ward", policy_rsa()).result().name == "ward", "names are free after purge"
    # A name used by a plain secret cannot become a certificate.
    secrets.set_secret("taken", "v")
    with pytest.raises(HttpResponseError) as e:
        certs.begin_create_certificate("taken", policy_rsa()).result()
    assert e.value.status_code == 409


def test_backup_and_restore(coffer, credential, clients):
    certs, secrets, keys = clients
    made = certs.begin_create_certificate("archive", policy_rsa()).result()
    certs.begin_create_certificate("archive", policy_rsa()).result()
    blob = certs.backup_certificate("archive")
    assert b"portal.hospital.example" not in blob, "a backup is sealed"
    with pytest.raises(ResourceExistsError):
        certs.restore_certificate_backup(blob)
    # Restore into another vault: every version, the key, the secret and the policy come along.
    other = coffer.new_vault()
    url = coffer.vault_url(other)
    ocerts, osecrets, okeys = CertificateClient(url, credential), SecretClient(url, credential), KeyClient(url, credential)
    restored = ocerts.restore_certificate_backup(blob)
    assert restored.name == "archive" and restored.id.startswith(url)
    assert len(list(ocerts.list_properties_of_certificate_versions("archive"))) == 2
    old = ocerts.get_certificate_version("archive", made.properties.version)
    assert bytes(old.cer) == bytes(made.cer)
    assert ocerts.get_certificate_policy("archive").subject == "CN=portal.hospital.example, O=Hospital"
    assert okeys.get_key("archive").key.n == keys.get_key("archive").key.n
    assert osecrets.get_secret("archive").value == secrets.get_secret("archive").value
    # Tampered or foreign blobs are refused with a 400, not a 500.
    bad = bytearray(blob)
    bad[len(bad) // 2] ^= 1
    with pytest.raises(HttpResponseError) as e:
        ocerts.restore_certificate_backup(bytes(bad))
    assert e.value.status_code == 400
    # A certificate's key is backed up only with its certificate (as Azure: 403).
    with pytest.raises(HttpResponseError) as e:
        KeyClient(url, credential).backup_key("archive")
    assert e.value.status_code == 403 and "associated with a certificate" in e.value.message
    keys = KeyClient(url, credential)
    keys.create_ec_key("plain-key")
    with pytest.raises(HttpResponseError) as e:
        ocerts.restore_certificate_backup(keys.backup_key("plain-key"))
    assert e.value.status_code == 400


def test_private_key_needs_exportable_and_secret_permission(coffer, vault, clients):
    from azure.identity import ClientSecretCredential

    certs, secrets, _ = clients
    sealed = CertificatePolicy(issuer_name="Self", subject="CN=badge.example", validity_in_months=12, exportable=False,
                               key_type=KeyType.rsa, key_size=2048, content_type=CertificateContentType.pem)
    certs.begin_create_certificate("badge", sealed).result()
    pem = secrets.get_secret("badge").value
    assert "BEGIN CERTIFICATE" in pem and "PRIVATE KEY" not in pem, "a non-exportable key stays in the vault"
    certs.begin_create_certificate("door", policy_rsa()).result()
    assert pkcs12.load_key_and_certificates(base64.b64decode(secrets.get_secret("door").value), None)[0] is not None
    # An application with certificate permissions only sees the certificate, not the secret with its key.
    app = coffer.cli_json("principal", "create", "--type", "app", "--name", "cert-reader-" + uuid.uuid4().hex[:6])
    client_secret = coffer.cli_json("principal", "credential", "add", "--id", app["object_id"])["client_secret"]
    coffer.cli_json("vault", "set-policy", "--name", vault, "--object-id", app["object_id"], "--certificate-permissions", "get", "list")
    cred = ClientSecretCredential(coffer.creds["tenant_id"], app["client_id"], client_secret,
                                  authority=coffer.server, disable_instance_discovery=True)
    url = coffer.vault_url(vault)
    assert CertificateClient(url, cred).get_certificate("door").cer
    with pytest.raises(HttpResponseError) as e:
        SecretClient(url, cred).get_secret("door")
    assert e.value.status_code == 403


def test_contacts_and_issuers(clients):
    certs, _, _ = clients
    with pytest.raises(ResourceNotFoundError):
        certs.get_contacts()
    contacts = [CertificateContact(email="pki@hospital.example", name="PKI team", phone="123")]
    assert [c.email for c in certs.set_contacts(contacts)] == ["pki@hospital.example"]
    assert [c.name for c in certs.get_contacts()] == ["PKI team"]
    assert [c.email for c in certs.delete_contacts()] == ["pki@hospital.example"]
    with pytest.raises(ResourceNotFoundError):
        certs.get_contacts()
    issuer = certs.create_issuer("digicert", "DigiCert", account_id="acct-1", password="s3cr3t")
    assert issuer.provider == "DigiCert" and issuer.account_id == "acct-1" and issuer.password is None
    assert certs.get_issuer("digicert").provider == "DigiCert"
    assert certs.update_issuer("digicert", enabled=False).enabled is False
    assert [i.name for i in certs.list_properties_of_issuers()] == ["digicert"]
    certs.delete_issuer("digicert")
    with pytest.raises(ResourceNotFoundError):
        certs.get_issuer("digicert")


def test_async_certificate_client(coffer, vault):
    from azure.keyvault.certificates.aio import CertificateClient as AsyncCertificateClient

    async def scenario():
        cred = coffer.async_credential()
        async with cred, AsyncCertificateClient(coffer.vault_url(vault), cred) as c:
            cert = await c.create_certificate("async-cert", CertificatePolicy(issuer_name="Self", subject="CN=async.example"))
            assert (await c.get_certificate("async-cert")).properties.version == cert.properties.version
            assert "async-cert" in [p.name async for p in c.list_properties_of_certificates()]

    asyncio.run(scenario())


def test_a_certificates_secret_in_the_other_content_type(clients):
    """`get_secret(out_content_type=…)` (api-version 2025-07-01): a PFX certificate's secret as
    PEM and a PEM one as PFX, key included, the same certificate and key either way."""
    from azure.keyvault.secrets import ContentType

    certs, secrets, _ = clients
    pfx_cert = certs.begin_create_certificate("as-pfx", policy_rsa()).result()
    pem = secrets.get_secret("as-pfx", out_content_type=ContentType.PEM)
    assert pem.properties.content_type == "application/x-pem-file"
    key = serialization.load_pem_private_key(pem.value.encode(), None)
    leaf = x509.load_pem_x509_certificate(pem.value.encode())
    assert leaf.public_bytes(serialization.Encoding.DER) == bytes(pfx_cert.cer)
    assert key.public_key().public_numbers() == leaf.public_key().public_numbers()

    pem_policy = CertificatePolicy(issuer_name="Self", subject="CN=lab-pem", content_type=CertificateContentType.pem)
    pem_cert = certs.begin_create_certificate("as-pem-src", pem_policy).result()
    pfx = secrets.get_secret("as-pem-src", out_content_type=ContentType.PFX)
    assert pfx.properties.content_type == "application/x-pkcs12"
    k, c, _ = pkcs12.load_key_and_certificates(base64.b64decode(pfx.value), None)
    assert c.public_bytes(serialization.Encoding.DER) == bytes(pem_cert.cer)
    assert k.public_key().public_numbers() == c.public_key().public_numbers()
    # The same type is the value as it is; a plain secret or another type is a clear 400.
    assert secrets.get_secret("as-pfx", out_content_type=ContentType.PFX).value == secrets.get_secret("as-pfx").value
    secrets.set_secret("plain", "v")
    for name, ct in [("plain", ContentType.PEM), ("as-pfx", "text/plain")]:
        with pytest.raises(HttpResponseError) as e:
            secrets.get_secret(name, out_content_type=ct)
        assert e.value.status_code == 400, e.value


def test_a_renewed_certificates_secret_names_its_previous_version(clients):
    """`previousVersion` (2025-07-01) on a certificate's secret: the version before it."""
    certs, secrets, _ = clients
    first = certs.begin_create_certificate("renewed", policy_rsa()).result()
    second = certs.begin_create_certificate("renewed", policy_rsa()).result()
    assert secrets.get_secret("renewed").properties.previous_version == first.properties.version
    assert secrets.get_secret("renewed", first.properties.version).properties.previous_version is None
    assert second.properties.version != first.properties.version
    secrets.set_secret("plain-secret", "a")
    secrets.set_secret("plain-secret", "b")
    assert secrets.get_secret("plain-secret").properties.previous_version is None, "only a certificate's secret"
