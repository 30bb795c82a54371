package hello

import (
	"crypto/tls"
	"errors"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestDifferentialCryptoTLS feeds hellos from randomly configured crypto/tls
// clients to both Parse and a crypto/tls server, and requires the same name.
func TestDifferentialCryptoTLS(t *testing.T) {
	const rounds = 60
	seed := uint64(mrand.Int64())
	t.Logf("seed %d", seed)
	r := mrand.New(mrand.NewPCG(seed, 0))
	var p Parser
	for i := range rounds {
		cfg, echPublic := randomClientConfig(t, r)
		raw := capture(t, cfg)
		h, err := p.Parse(raw)
		goName, ok := serverSees(t, raw)
		if !ok {
			t.Fatalf("round %d: crypto/tls server refused the hello of config %+v", i, cfg)
		}
		if goName == "" {
			if !errors.Is(err, ErrNoSNI) {
				t.Fatalf("round %d: server saw no SNI, Parse gave %q, %v", i, h.ServerName, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("round %d: Parse: %v; crypto/tls saw %q", i, err, goName)
		}
		if want := strings.ToLower(goName); string(h.ServerName) != want {
			t.Fatalf("round %d: ServerName %q, crypto/tls saw %q", i, h.ServerName, goName)
		}
		if h.ECH != (echPublic != "") {
			t.Fatalf("round %d: ECH %v with ECH config %q", i, h.ECH, echPublic)
		}
		if echPublic != "" {
			continue // the outer hello's ALPN is Go's business
		}
		var alpn []string
		for p := range h.ALPN.All() {
			alpn = append(alpn, string(p))
		}
		if !slices.Equal(alpn, cfg.NextProtos) {
			t.Fatalf("round %d: ALPN %q, configured %q", i, alpn, cfg.NextProtos)
		}
	}
}

var allCurves = []tls.CurveID{
	tls.X25519MLKEM768, tls.SecP256r1MLKEM768, tls.SecP384r1MLKEM1024,
	tls.X25519, tls.CurveP256, tls.CurveP384, tls.CurveP521,
}

// randomClientConfig returns a client config and, when it uses ECH, the
// public name the outer hello must carry.
func randomClientConfig(t testing.TB, r *mrand.Rand) (*tls.Config, string) {
	cfg := &tls.Config{}
	if r.IntN(10) == 0 {
		cfg.InsecureSkipVerify = true // no SNI at all
	} else {
		cfg.ServerName = randomName(r)
	}
	for range r.IntN(12) {
		p := make([]byte, 1+r.IntN(40))
		for j := range p {
			p[j] = byte(0x21 + r.IntN(0x5e))
		}
		if !slices.Contains(cfg.NextProtos, string(p)) {
			cfg.NextProtos = append(cfg.NextProtos, string(p))
		}
	}
	if r.IntN(3) > 0 {
		curves := slices.Clone(allCurves)
		r.Shuffle(len(curves), func(i, j int) { curves[i], curves[j] = curves[j], curves[i] })
		curves = curves[:1+r.IntN(len(curves))]
		if !slices.Contains(curves, tls.X25519) {
			curves = append(curves, tls.X25519) // keep TLS 1.0-1.2 usable
		}
		cfg.CurvePreferences = curves
	}
	versions := []uint16{tls.VersionTLS10, tls.VersionTLS11, tls.VersionTLS12, tls.VersionTLS13}
	lo := r.IntN(len(versions))
	hi := lo + r.IntN(len(versions)-lo)
	cfg.MinVersion, cfg.MaxVersion = versions[lo], versions[hi]
	if cfg.ServerName != "" && r.IntN(6) == 0 {
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS13, tls.VersionTLS13
		// crypto/tls insists on an LDH public_name of two or more labels.
		public := make([]byte, 1+r.IntN(30))
		for j := range public {
			public[j] = byte('a' + r.IntN(26))
		}
		public = append(public, ".example"...)
		cfg.EncryptedClientHelloConfigList = echConfigList(t, string(public))
		return cfg, string(public)
	}
	return cfg, ""
}
