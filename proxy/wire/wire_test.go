package wire

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestTokenJSON(t *testing.T) {
	var tok Token
	for i := range tok {
		tok[i] = byte(i)
	}
	b, err := json.Marshal(IncomingParams{Domain: "a.example", Token: tok, Endpoint: "127.0.0.1:9"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"domain":"a.example","token":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","endpoint":"127.0.0.1:9"}`
	if string(b) != want {
		t.Errorf("incomingConnection params:\n got %s\nwant %s", b, want)
	}
	var back IncomingParams
	if err := json.Unmarshal(b, &back); err != nil || back.Token != tok {
		t.Errorf("round trip: %v %x", err, back.Token)
	}
	if p, err := ParseToken(tok.String()); err != nil || p != tok {
		t.Errorf("ParseToken(String()): %v", err)
	}
}

func TestTokenRefusesAnythingButBase64Of32Bytes(t *testing.T) {
	for _, s := range []string{
		"",
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==",     // 31 bytes
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gIQ==", // 34 bytes
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",      // no padding
		"!!ECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",     // not base64
		strings.Repeat("A", 1<<16),
	} {
		if _, err := ParseToken(s); err == nil {
			t.Errorf("ParseToken(%.50q) accepted", s)
		}
		var p IncomingParams
		if err := json.Unmarshal([]byte(`{"token":"`+s+`"}`), &p); err == nil {
			t.Errorf("JSON token %.50q accepted", s)
		}
	}
}

// The forms the original EPS proxy exchanged stay byte for byte what they were.
func TestMessagesKeepTheirJSONForms(t *testing.T) {
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		v    any
		want string
	}{
		{AnnounceParams{Connections: []Announcement{{Domain: "a.example"}, {Domain: "b.example", ExpiresAt: &at}}},
			`{"connections":[{"domain":"a.example"},{"domain":"b.example","expires_at":"2026-12-02T10:00:00Z"}]}`},
		{[]Listed{{Domain: "a.example", Operator: "op"}}, `[{"domain":"a.example","operator":"op","expires_at":null}]`},
		{OK, `{"message":"ok"}`},
		{ReserveParams{Count: 8}, `{"count":8}`},
		{ReserveResult{Tokens: []Token{{}}, Endpoint: "127.0.0.1:9", ExpiresAt: at},
			`{"tokens":["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="],"endpoint":"127.0.0.1:9","expires_at":"2026-12-02T10:00:00Z"}`},
		{AnnounceConnectionParams{Domain: "a.example", Proxy: "pub"}, `{"domain":"a.example","proxy":"pub"}`},
		{Served{Domain: "a.example", Proxy: "pub", Target: "127.0.0.1:1"}, `{"domain":"a.example","proxy":"pub","target":"127.0.0.1:1"}`},
		{Grant{AllowedDomains: []string{".a.example"}}, `{"allowed_domains":[".a.example"]}`},
	} {
		b, err := json.Marshal(c.v)
		if err != nil || string(b) != c.want {
			t.Errorf("%T: %s %v, want %s", c.v, b, err, c.want)
		}
	}
}

// The optional fields are left out when not set, so that a call without them is the form above
// byte for byte; set, they are the client's addresses as host:port text and the reservation's
// flag.
func TestOptionalFieldsJSONForms(t *testing.T) {
	in := IncomingParams{Domain: "a.example", Endpoint: "127.0.0.1:9",
		Source: netip.MustParseAddrPort("127.0.0.2:40000"), Destination: netip.MustParseAddrPort("[2001:db8::1]:443")}
	b, err := json.Marshal(in)
	want := `{"domain":"a.example","token":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","endpoint":"127.0.0.1:9","source":"127.0.0.2:40000","destination":"[2001:db8::1]:443"}`
	if err != nil || string(b) != want {
		t.Errorf("incomingConnection with addresses:\n got %s %v\nwant %s", b, err, want)
	}
	var back IncomingParams
	if err := json.Unmarshal(b, &back); err != nil || back != in || !back.Addresses().Known() {
		t.Errorf("round trip: %+v %v", back, err)
	}
	for _, bad := range []string{`"source":"127.0.0.2"`, `"source":"host:1"`, `"destination":"[::1]:99999"`, `"source":1`} {
		if err := json.Unmarshal([]byte(`{"domain":"a",`+bad+`}`), &back); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	for _, c := range []struct {
		v    any
		want string
	}{
		{ReserveParams{Count: 8, SocketMode: SocketMode{ClientAddress: true, Framed: true}}, `{"count":8,"client_address":true,"framed":true}`},
		{ReserveResult{Tokens: []Token{}, Endpoint: "127.0.0.1:9", SocketMode: SocketMode{ClientAddress: true}},
			`{"tokens":[],"endpoint":"127.0.0.1:9","expires_at":"0001-01-01T00:00:00Z","client_address":true}`},
	} {
		b, err := json.Marshal(c.v)
		if err != nil || string(b) != c.want {
			t.Errorf("%T: %s %v, want %s", c.v, b, err, c.want)
		}
	}
}
