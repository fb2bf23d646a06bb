// The official Azure SDK for Go (azsecrets, azkeys, azcertificates, azidentity) against Coffer,
// unchanged: a custom authority (cloud.Configuration), the CA trusted through SSL_CERT_FILE, and
// `*.localhost` dialled on loopback. Run by tests/compat/test_go_sdk.py with the area as the
// argument; each area prints "ok AREA", a failure exits 1 with the reason.
package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

func env(name string) string {
	v := os.Getenv(name)
	if v == "" {
		fail("%s is not set", name)
	}
	return v
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "FAILED: "+format+"\n", args...)
	os.Exit(1)
}

func check(err error, what string) {
	if err != nil {
		fail("%s: %v", what, err)
	}
}

func expect(ok bool, format string, args ...any) {
	if !ok {
		fail(format, args...)
	}
}

// An HTTP client that dials `*.localhost` on 127.0.0.1 (glibc does not resolve them).
func transport() *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err == nil && (host == "localhost" || strings.HasSuffix(host, ".localhost")) {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return dialer.DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: t, Timeout: 60 * time.Second}
}

func main() {
	ctx := context.Background()
	options := azcore.ClientOptions{Transport: transport(), Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: env("AUTHORITY")}}
	cred, err := azidentity.NewClientSecretCredential(env("TENANT_ID"), env("CLIENT_ID"), env("CLIENT_SECRET"),
		&azidentity.ClientSecretCredentialOptions{ClientOptions: options, DisableInstanceDiscovery: true})
	check(err, "credential")
	url := env("VAULT_URL")
	areas := map[string]func(){
		"secrets": func() { secrets(ctx, url, cred, options) },
		"keys": func() { keys(ctx, url, cred, options) },
		"certificates": func() { certificates(ctx, url, cred, options) },
	}
	for _, area := range strings.Split(os.Args[1], ",") {
		areas[area]()
		fmt.Printf("ok %s\n", area)
	}
}

func secrets(ctx context.Context, url string, cred azcore.TokenCredential, options azcore.ClientOptions) {
	client, err := azsecrets.NewClient(url, cred, &azsecrets.ClientOptions{ClientOptions: options})
	check(err, "secret client")
	set, err := client.SetSecret(ctx, "patient-db", azsecrets.SetSecretParameters{Value: to.Ptr("Server=db;Password=s3cr3t"), Tags: map[string]*string{"ward": to.Ptr("7")}}, nil)
	check(err, "set")
	got, err := client.GetSecret(ctx, "patient-db", "", nil)
	check(err, "get")
	expect(*got.Value == "Server=db;Password=s3cr3t" && *got.Tags["ward"] == "7", "get: %v", *got.Value)
	_, err = client.SetSecret(ctx, "patient-db", azsecrets.SetSecretParameters{Value: to.Ptr("rotated")}, nil)
	check(err, "set again")
	versions := 0
	for pager := client.NewListSecretPropertiesVersionsPager("patient-db", nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		check(err, "versions")
		versions += len(page.Value)
	}
	expect(versions == 2, "versions: %d", versions)
	old, err := client.GetSecret(ctx, "patient-db", set.ID.Version(), nil)
	check(err, "get version")
	expect(*old.Value == "Server=db;Password=s3cr3t", "old version: %s", *old.Value)
	upd, err := client.UpdateSecretProperties(ctx, "patient-db", set.ID.Version(), azsecrets.UpdateSecretPropertiesParameters{SecretAttributes: &azsecrets.SecretAttributes{Enabled: to.Ptr(false)}}, nil)
	check(err, "update")
	expect(!*upd.Attributes.Enabled, "still enabled")
	names := []string{}
	for pager := client.NewListSecretPropertiesPager(nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		check(err, "list")
		for _, s := range page.Value {
			names = append(names, s.ID.Name())
		}
	}
	expect(strings.Contains(strings.Join(names, ","), "patient-db"), "list: %v", names)
	backup, err := client.BackupSecret(ctx, "patient-db", nil)
	check(err, "backup")
	_, err = client.DeleteSecret(ctx, "patient-db", nil)
	check(err, "delete")
	_, err = client.GetDeletedSecret(ctx, "patient-db", nil)
	check(err, "get deleted")
	_, err = client.RecoverDeletedSecret(ctx, "patient-db", nil)
	check(err, "recover")
	got, err = client.GetSecret(ctx, "patient-db", "", nil)
	check(err, "get recovered")
	expect(*got.Value == "rotated", "recovered: %s", *got.Value)
	_, err = client.DeleteSecret(ctx, "patient-db", nil)
	check(err, "delete again")
	_, err = client.PurgeDeletedSecret(ctx, "patient-db", nil)
	check(err, "purge")
	_, err = client.GetSecret(ctx, "patient-db", "", nil)
	expect(err != nil && strings.Contains(err.Error(), "404"), "purged secret still there: %v", err)
	_, err = client.RestoreSecret(ctx, azsecrets.RestoreSecretParameters{SecretBackup: backup.Value}, nil)
	check(err, "restore")
	got, err = client.GetSecret(ctx, "patient-db", "", nil)
	check(err, "get restored")
	expect(*got.Value == "rotated", "restored: %s", *got.Value)
}

func keys(ctx context.Context, url string, cred azcore.TokenCredential, options azcore.ClientOptions) {
	client, err := azkeys.NewClient(url, cred, &azkeys.ClientOptions{ClientOptions: options})
	check(err, "key client")
	sum := sha256.Sum256([]byte("lab result 42"))
	digest := sum[:]

	ec, err := client.CreateKey(ctx, "signer", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC), Curve: to.Ptr(azkeys.CurveNameP256)}, nil)
	check(err, "create EC")
	signed, err := client.Sign(ctx, "signer", ec.Key.KID.Version(), azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: digest}, nil)
	check(err, "sign")
	pub := ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(ec.Key.X), Y: new(big.Int).SetBytes(ec.Key.Y)}
	r, s := new(big.Int).SetBytes(signed.Result[:32]), new(big.Int).SetBytes(signed.Result[32:])
	expect(ecdsa.Verify(&pub, digest, r, s), "ES256 does not verify in crypto/ecdsa")
	verified, err := client.Verify(ctx, "signer", "", azkeys.VerifyParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Digest: digest, Signature: signed.Result}, nil)
	check(err, "verify")
	expect(*verified.Value, "the vault does not verify its own signature")

	rk, err := client.CreateKey(ctx, "wrapper", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA), KeySize: to.Ptr(int32(2048))}, nil)
	check(err, "create RSA")
	rsaPub := &rsa.PublicKey{N: new(big.Int).SetBytes(rk.Key.N), E: int(new(big.Int).SetBytes(rk.Key.E).Int64())}
	sealed, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, rsaPub, []byte("x-ray"), nil)
	check(err, "encrypt locally")
	opened, err := client.Decrypt(ctx, "wrapper", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: sealed}, nil)
	check(err, "decrypt")
	expect(string(opened.Result) == "x-ray", "decrypt: %q", opened.Result)
	wrapped, err := client.WrapKey(ctx, "wrapper", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP), Value: make([]byte, 32)}, nil)
	check(err, "wrap")
	unwrapped, err := client.UnwrapKey(ctx, "wrapper", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP), Value: wrapped.Result}, nil)
	check(err, "unwrap")
	expect(len(unwrapped.Result) == 32, "unwrap: %d bytes", len(unwrapped.Result))
	rs, err := client.Sign(ctx, "wrapper", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmRS256), Value: digest}, nil)
	check(err, "RS256")
	check(rsa.VerifyPKCS1v15(rsaPub, crypto.SHA256, digest, rs.Result), "RS256 in crypto/rsa")

	rotated, err := client.RotateKey(ctx, "signer", nil)
	check(err, "rotate")
	expect(rotated.Key.KID.Version() != ec.Key.KID.Version(), "rotation made no new version")
	policy, err := client.UpdateKeyRotationPolicy(ctx, "signer", azkeys.KeyRotationPolicy{
		Attributes:      &azkeys.KeyRotationPolicyAttributes{ExpiryTime: to.Ptr("P90D")},
		LifetimeActions: []*azkeys.LifetimeAction{{Action: &azkeys.LifetimeActionType{Type: to.Ptr(azkeys.KeyRotationPolicyActionRotate)}, Trigger: &azkeys.LifetimeActionTrigger{TimeBeforeExpiry: to.Ptr("P30D")}}},
	}, nil)
	check(err, "rotation policy")
	expect(*policy.Attributes.ExpiryTime == "P90D", "policy: %v", *policy.Attributes.ExpiryTime)
	random, err := client.GetRandomBytes(ctx, azkeys.GetRandomBytesParameters{Count: to.Ptr(int32(16))}, nil)
	check(err, "random")
	expect(len(random.Value) == 16, "random: %d", len(random.Value))
	backup, err := client.BackupKey(ctx, "wrapper", nil)
	check(err, "backup")
	_, err = client.DeleteKey(ctx, "wrapper", nil)
	check(err, "delete")
	_, err = client.PurgeDeletedKey(ctx, "wrapper", nil)
	check(err, "purge")
	restored, err := client.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: backup.Value}, nil)
	check(err, "restore")
	expect(restored.Key.KID.Name() == "wrapper", "restored: %v", restored.Key.KID)
}

func certificates(ctx context.Context, url string, cred azcore.TokenCredential, options azcore.ClientOptions) {
	client, err := azcertificates.NewClient(url, cred, &azcertificates.ClientOptions{ClientOptions: options})
	check(err, "certificate client")
	policy := &azcertificates.CertificatePolicy{
		IssuerParameters:          &azcertificates.IssuerParameters{Name: to.Ptr("Self")},
		X509CertificateProperties: &azcertificates.X509CertificateProperties{Subject: to.Ptr("CN=portal.hospital.example"), ValidityInMonths: to.Ptr(int32(12))},
	}
	_, err = client.CreateCertificate(ctx, "portal", azcertificates.CreateCertificateParameters{CertificatePolicy: policy}, nil)
	check(err, "create")
	var cer []byte
	for i := 0; i < 50 && cer == nil; i++ {
		op, err := client.GetCertificateOperation(ctx, "portal", nil)
		check(err, "operation")
		if strings.EqualFold(*op.Status, "completed") {
			got, err := client.GetCertificate(ctx, "portal", "", nil)
			check(err, "get")
			cer = got.CER
		}
		time.Sleep(100 * time.Millisecond)
	}
	parsed, err := x509.ParseCertificate(cer)
	check(err, "parse the certificate")
	expect(parsed.Subject.CommonName == "portal.hospital.example", "subject: %v", parsed.Subject)
	got, err := client.GetCertificatePolicy(ctx, "portal", nil)
	check(err, "policy")
	expect(*got.X509CertificateProperties.Subject == "CN=portal.hospital.example", "policy subject")

	imported, err := client.ImportCertificate(ctx, "imported", azcertificates.ImportCertificateParameters{
		Base64EncodedCertificate: to.Ptr(env("PEM_BUNDLE")),
		CertificatePolicy:        &azcertificates.CertificatePolicy{SecretProperties: &azcertificates.SecretProperties{ContentType: to.Ptr("application/x-pem-file")}},
	}, nil)
	check(err, "import PEM")
	expect(len(imported.CER) > 100, "imported: no cer")

	_, err = client.CreateCertificate(ctx, "partner", azcertificates.CreateCertificateParameters{CertificatePolicy: &azcertificates.CertificatePolicy{
		IssuerParameters:          &azcertificates.IssuerParameters{Name: to.Ptr("Unknown")},
		X509CertificateProperties: &azcertificates.X509CertificateProperties{Subject: to.Ptr("CN=partner.example")},
	}}, nil)
	check(err, "create pending")
	op, err := client.GetCertificateOperation(ctx, "partner", nil)
	check(err, "pending operation")
	_, err = x509.ParseCertificateRequest(op.CSR)
	check(err, "parse the CSR")
	cancelled, err := client.UpdateCertificateOperation(ctx, "partner", azcertificates.UpdateCertificateOperationParameter{CancellationRequested: to.Ptr(true)}, nil)
	check(err, "cancel")
	expect(*cancelled.CancellationRequested, "not cancelled")
	_, err = client.DeleteCertificateOperation(ctx, "partner", nil)
	check(err, "delete operation")
	_, err = client.SetContacts(ctx, azcertificates.Contacts{ContactList: []*azcertificates.Contact{{Email: to.Ptr("pki@hospital.example")}}}, nil)
	check(err, "contacts")
}
