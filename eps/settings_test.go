package eps_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"epsproxy/eps"
	"epsproxy/internal/config"
	"epsproxy/internal/testnet"
)

// The service keys: service.endpoint alone loads as before (and its environment override still
// wins), service.endpoints adds to it, and a bad or repeated URL is refused naming its key and
// the file that set it.
func TestServiceEndpointSettings(t *testing.T) {
	p := testnet.NewPKI(t, alpha)
	dir := t.TempDir()
	tls := p.TLS(alpha)
	base := fmt.Sprintf(`name: %s
tls: {ca_file: %s, cert_file: %s, key_file: %s}
peer: {bind: "127.0.0.1:0"}
local: {bind: "127.0.0.1:0"}
directory: {paths: [%s]}
`, alpha, tls.CAFile, tls.CertFile, tls.KeyFile, dir)
	load := func(service string) (eps.Settings, error) {
		t.Helper()
		writeFile(t, dir, "001.yml", base+service)
		var s eps.Settings
		err := config.LoadPaths([]string{filepath.Join(dir, "001.yml")}, "EPS_", &s)
		return s, err
	}

	s, err := load("service: {endpoint: \"https://service.example/jsonrpc\"}\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.ServiceEndpoints(); !slices.Equal(got, []string{"https://service.example/jsonrpc"}) {
		t.Errorf("one endpoint: %v", got)
	}
	if d := s.WithDefaults().Service.HealthEvery.D(); d != eps.DefaultHealthEvery {
		t.Errorf("default health_every %v, want %v", d, eps.DefaultHealthEvery)
	}

	s, err = load(`service:
  endpoint: "https://a.example/jsonrpc"
  endpoints: ["https://b.example:8443/jsonrpc", "https://a.example:8443/jsonrpc"]
  health_every: 500ms
`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"https://a.example/jsonrpc", "https://b.example:8443/jsonrpc", "https://a.example:8443/jsonrpc"}
	if got := s.ServiceEndpoints(); !slices.Equal(got, want) {
		t.Errorf("both keys: %v, want %v", got, want)
	}
	if s.Service.HealthEvery.D() != 500*time.Millisecond {
		t.Errorf("health_every %v", s.Service.HealthEvery)
	}

	t.Run("env", func(t *testing.T) {
		t.Setenv("EPS_SERVICE_ENDPOINT", "https://c.example/jsonrpc")
		s, err := load(`service: {endpoint: "https://a.example/jsonrpc", endpoints: ["https://b.example/jsonrpc"]}` + "\n")
		if err != nil {
			t.Fatal(err)
		}
		if got := s.ServiceEndpoints(); !slices.Equal(got, []string{"https://c.example/jsonrpc", "https://b.example/jsonrpc"}) {
			t.Errorf("EPS_SERVICE_ENDPOINT over the file: %v", got)
		}
	})

	many := make([]string, eps.MaxServiceEndpoints)
	for i := range many {
		many[i] = fmt.Sprintf("%q", fmt.Sprintf("https://s%d.example/jsonrpc", i))
	}
	for _, c := range []struct{ service, key, says string }{
		{`{endpoints: ["https://a.example/x", "https://b.example/x", "https://A.example:443/x"]}`, "service.endpoints[2]", "service.endpoints[0]"},
		{`{endpoint: "https://a.example/x", endpoints: ["https://a.example/x"]}`, "service.endpoints[0]", "service.endpoint"},
		{`{endpoints: ["https://a.example/x", "http://b.example/x"]}`, "service.endpoints[1]", "https://"},
		{`{endpoints: ["https://a.example/x", "b.example:443"]}`, "service.endpoints[1]", "https://"},
		{`{endpoint: "http://a.example/x"}`, "service.endpoint", "https://"},
		{`{endpoint: "https://z.example/x", endpoints: [` + strings.Join(many, ", ") + `]}`, "service.endpoints", "at most 64"},
		{`{endpoint: "https://a.example/x", health_every: 10ms}`, "service.health_every", "at least 100ms"},
	} {
		_, err := load("service: " + c.service + "\n")
		if err == nil {
			t.Errorf("%s: loaded", c.service)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, fmt.Sprintf("key %q", c.key)) || !strings.Contains(msg, c.says) || !strings.Contains(msg, "001.yml") {
			t.Errorf("%.80s: %v, want the file, key %q and %q", c.service, err, c.key, c.says)
		}
	}
}
