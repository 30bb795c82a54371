package redisproc_test

import (
	"testing"

	"epsproxy/internal/redisproc"
	"epsproxy/internal/testnet"
)

func TestStartCountKillRestart(t *testing.T) {
	s, err := redisproc.Start(testnet.FreeAddr(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Kill()
	if _, err := s.Command("SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Command("GET", "k"); err != nil || v != "v" {
		t.Fatalf("GET k = %q, %v", v, err)
	}
	n, err := s.Calls()
	if err != nil || n < 2 {
		t.Fatalf("Calls = %d, %v; want at least the SET and the GET", n, err)
	}
	s.Kill()
	if _, err := s.Command("PING"); err == nil {
		t.Fatal("the server answers after Kill")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Command("GET", "k"); err != nil || v != "" {
		t.Fatalf("after a restart without persistence GET k = %q, %v; want it gone", v, err)
	}
	if _, err := s.Command("NOSUCHCOMMAND"); err == nil {
		t.Error("an error reply is not an error")
	}
}
