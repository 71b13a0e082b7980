package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-iot/gatehouse/broker"
	"github.com/gatehouse-iot/gatehouse/broker/auth"
	"github.com/gatehouse-iot/gatehouse/broker/brokertest"
)

// The conform tests run this test binary as the gatehouse program: with gatehouseMainEnv set it
// is main, before the testing package starts. Shards of a parallel run inherit the environment
// and so run as gatehouse too.
const gatehouseMainEnv = "GATEHOUSE_TEST_RUN_AS_MAIN"

func init() {
	if os.Getenv(gatehouseMainEnv) == "1" {
		os.Exit(run(os.Args[1:]))
	}
}

// gatehouse runs the program with args and returns its exit code and output.
func gatehouse(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), gatehouseMainEnv+"=1")
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, string(out)
}

func TestConformPassesAgainstTheReferenceBrokerAndWritesReports(t *testing.T) {
	t.Parallel()
	for _, parallel := range []string{"1", "3"} {
		t.Run("parallel "+parallel, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			code, out := gatehouse(t, "conform", "--target", "embedded", "--protocol", "3.1.1", "--parallel", parallel,
				"--label-filter", "MQTT-3.3.1-4 || MQTT-3.8.4-1 || MQTT-4.7.1-2 || MQTT-3.3.5-2 || MQTT-6.0.0-4", "--report-dir", dir, "--no-color")
			if code != 0 {
				t.Fatalf("exit %d, want 0:\n%s", code, out)
			}
			for _, f := range []string{"report.html", "junit.xml", "statements.json"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Errorf("%s not written: %v", f, err)
				}
			}
			b, err := os.ReadFile(filepath.Join(dir, "statements.json"))
			if err != nil {
				t.Fatal(err)
			}
			var sf struct {
				Statements []struct {
					ID, Verdict string
				}
			}
			if err := json.Unmarshal(b, &sf); err != nil {
				t.Fatal(err)
			}
			verdicts := map[string]string{}
			for _, s := range sf.Statements {
				verdicts[s.ID] = s.Verdict
			}
			// The authorization and WebSocket checks run too: the embedded target denies a
			// topic and listens on WebSocket, also for shards that only know its URL.
			for _, id := range []string{"MQTT-3.3.1-4", "MQTT-3.8.4-1", "MQTT-4.7.1-2", "MQTT-3.3.5-2", "MQTT-6.0.0-4"} {
				if verdicts[id] != "pass" {
					t.Errorf("%s: %s, want pass", id, verdicts[id])
				}
			}
			if verdicts["MQTT-3.1.2-24"] != "not-run" {
				t.Errorf("MQTT-3.1.2-24 was not filtered out: %s", verdicts["MQTT-3.1.2-24"])
			}
		})
	}
}

func TestConformFailsOnABrokenMust(t *testing.T) {
	t.Parallel()
	code, out := gatehouse(t, "conform", "--target", "embedded?fault=accept-wildcard-publish", "--protocol", "3.1.1",
		"--label-filter", "MQTT-3.3.2-2", "--no-color")
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	if !strings.Contains(out, "FAIL MQTT 3.1.1") || !strings.Contains(out, "MQTT-3.3.2-2") {
		t.Errorf("output does not name the failed check and statement:\n%s", out)
	}
}

func TestConformRefusesBadFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--target", "mosquito"}, `unknown target "mosquito"`},
		{[]string{"--protocol", "4.0"}, `--protocol "4.0"`},
		{[]string{"--label-filter", "MQTT-3.3.1-4 &&"}, "label filter"},
		{[]string{"--without", "teleport"}, `unknown feature "teleport"`},
		{[]string{"--parallel", "0"}, "--parallel 0"},
	} {
		code, out := gatehouse(t, append([]string{"conform"}, tc.args...)...)
		if code != 2 || !strings.Contains(out, tc.want) {
			t.Errorf("conform %v: exit %d, output %q; want exit 2 naming %q", tc.args, code, out, tc.want)
		}
	}
}

// TestConformOverTLSWithCredentials runs checks against a broker that takes only TLS and only
// one user: the CA file, the credentials and the parallel shards all have to work for it to pass.
func TestConformOverTLSWithCredentials(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	caFile, cert := writeTestCA(t, dir)
	b := brokertest.Start(t, brokertest.WithConfig(func(c *broker.Config) {
		c.Listeners = []broker.Listener{{Name: "tls", Kind: broker.TLS, Addr: "127.0.0.1:0",
			TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}}
		c.AllowAnonymous = false
		c.Authenticator = auth.AuthenticatorFunc(func(id auth.Identity) error {
			if id.Username == "gate" && string(id.Password) == "s3cret" {
				return nil
			}
			return auth.ErrBadCredentials
		})
	}))
	url := "mqtts://" + b.TLSAddr()
	args := []string{"conform", "--target", url, "--ca-file", caFile, "--protocol", "3.1.1", "--parallel", "2",
		"--label-filter", "MQTT-3.12.4-1 || MQTT-3.3.1-4 || MQTT-3.2.2-3", "--no-color"}
	if code, out := gatehouse(t, append(args, "--username", "gate", "--password", "s3cret")...); code != 0 {
		t.Fatalf("with the CA and the credentials: exit %d\n%s", code, out)
	}
	if code, out := gatehouse(t, append(args, "--username", "gate", "--password", "wrong")...); code != 1 || !strings.Contains(out, "0x05") {
		t.Fatalf("with a wrong password: exit %d, want 1 and the refusal 0x05 named\n%s", code, out)
	}
	if code, out := gatehouse(t, "conform", "--target", url, "--protocol", "3.1.1", "--label-filter", "MQTT-3.12.4-1",
		"--username", "gate", "--password", "s3cret", "--no-color"); code != 1 || !strings.Contains(out, "certificate") {
		t.Fatalf("without the CA: exit %d, want 1 and the certificate named\n%s", code, out)
	}
}

// writeTestCA writes a CA certificate to dir and returns its file and a server certificate for
// 127.0.0.1 that it signed.
func writeTestCA(t *testing.T, dir string) (string, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gatehouse test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return caFile, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
