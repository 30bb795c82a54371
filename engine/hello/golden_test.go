package hello

import (
	"crypto/tls"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "regenerate testdata from live crypto/tls clients")

// golden describes one ClientHello kept in testdata and what Parse must make
// of it. Hellos from crypto/tls are captured live by make; the few shapes
// Go's client will not send are built by hand.
type golden struct {
	file    string
	make    func(t testing.TB) []byte
	name    string
	alpn    []string
	ech     bool
	wantErr error
}

var manyProtos = func() []string {
	var ps []string
	for i := range 60 {
		ps = append(ps, strings.Repeat(string(rune('a'+i%26)), 1+i*4%255))
	}
	return append(ps, "h2", "http/1.1", strings.Repeat("z", 255))
}()

var longName = strings.Repeat("abcdefghi.", 25) + "abc" // 253 bytes

var goldens = []golden{
	{
		file: "go126-mlkem.bin",
		make: func(t testing.TB) []byte {
			return capture(t, &tls.Config{ServerName: "www.example.com", NextProtos: []string{"h2", "http/1.1"}})
		},
		name: "www.example.com", alpn: []string{"h2", "http/1.1"},
	},
	{
		// Go 1.26's largest hybrid key share: about the size of a Chrome hello.
		file: "go126-p384mlkem1024.bin",
		make: func(t testing.TB) []byte {
			return capture(t, &tls.Config{
				ServerName:       "pq.example.com",
				NextProtos:       []string{"h2", "http/1.1"},
				CurvePreferences: []tls.CurveID{tls.SecP384r1MLKEM1024, tls.X25519},
			})
		},
		name: "pq.example.com", alpn: []string{"h2", "http/1.1"},
	},
	{
		file: "go-tls12.bin",
		make: func(t testing.TB) []byte {
			return capture(t, &tls.Config{ServerName: "tls12.example.org", MaxVersion: tls.VersionTLS12})
		},
		name: "tls12.example.org",
	},
	{
		file: "go-tls10.bin",
		make: func(t testing.TB) []byte {
			return capture(t, &tls.Config{ServerName: "legacy.example.org", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10})
		},
		name: "legacy.example.org",
	},
	{
		file: "go-alpn-many.bin",
		make: func(t testing.TB) []byte {
			return capture(t, &tls.Config{ServerName: "alpn.example.com", NextProtos: manyProtos})
		},
		name: "alpn.example.com", alpn: manyProtos,
	},
	{
		file: "go-ech.bin",
		make: func(t testing.TB) []byte {
			return capture(t, &tls.Config{
				ServerName:                     "secret.example.com",
				MinVersion:                     tls.VersionTLS13,
				EncryptedClientHelloConfigList: echConfigList(t, "public.example.net"),
			})
		},
		name: "public.example.net", ech: true,
	},
	{
		file: "go-upper.bin",
		make: func(t testing.TB) []byte {
			return capture(t, &tls.Config{ServerName: "WWW.Example.COM"})
		},
		name: "www.example.com",
	},
	{
		file: "go-long-name.bin",
		make: func(t testing.TB) []byte {
			return capture(t, &tls.Config{ServerName: strings.ToUpper(longName)})
		},
		name: longName,
	},
	{
		file: "go-no-sni.bin",
		make: func(t testing.TB) []byte {
			return capture(t, &tls.Config{InsecureSkipVerify: true})
		},
		wantErr: ErrNoSNI,
	},
	{
		// Go's client strips trailing dots, other clients have not always.
		file: "hand-trailing-dot.bin",
		make: func(t testing.TB) []byte { return basicSpec("Shop.Example.com.").bytes() },
		name: "shop.example.com", alpn: []string{"h2", "http/1.1"},
	},
}

func loadGolden(t testing.TB, file string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatalf("%v (regenerate with go test -run TestGolden -update)", err)
	}
	return raw
}

// goldenOK returns the golden hellos Parse must accept.
func goldenOK(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	for _, g := range goldens {
		if g.wantErr == nil {
			out[g.file] = loadGolden(t, g.file)
		}
	}
	return out
}

func TestGolden(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.file, func(t *testing.T) {
			if *update {
				if err := os.WriteFile(filepath.Join("testdata", g.file), g.make(t), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			raw := loadGolden(t, g.file)
			var p Parser
			h, err := p.Parse(raw)
			if g.wantErr != nil {
				if !errors.Is(err, g.wantErr) {
					t.Fatalf("Parse: %v, want %v", err, g.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if string(h.ServerName) != g.name {
				t.Errorf("ServerName %q, want %q", h.ServerName, g.name)
			}
			if h.ECH != g.ech {
				t.Errorf("ECH %v, want %v", h.ECH, g.ech)
			}
			var alpn []string
			for p := range h.ALPN.All() {
				alpn = append(alpn, string(p))
			}
			if !slices.Equal(alpn, g.alpn) {
				t.Errorf("ALPN %q, want %q", alpn, g.alpn)
			}
			if h.ALPN.Len() != len(g.alpn) {
				t.Errorf("ALPN.Len %d, want %d", h.ALPN.Len(), len(g.alpn))
			}
			if h.Length != len(raw) || h.Records != 1 {
				t.Errorf("Length %d Records %d, want %d and 1", h.Length, h.Records, len(raw))
			}
		})
	}
}

// TestGoldenMLKEMSpansSegments checks the point of the ML-KEM golden file:
// Go's default client sends a hello larger than one TCP segment.
func TestGoldenMLKEMSpansSegments(t *testing.T) {
	raw := loadGolden(t, "go126-mlkem.bin")
	if len(raw) <= 1460 {
		t.Fatalf("default Go hello is %d bytes; expected an X25519MLKEM768 key share to push it past one 1460-byte segment", len(raw))
	}
	t.Logf("default Go %s ClientHello: %d bytes", "1.26", len(raw))
}
