package public

import (
	"errors"
	"strings"
	"testing"

	"epsproxy/internal/config"
)

// The per-source caps: -1 turns one off, 0 leaves it to the engine's default, and the values
// reach the engine unchanged (Validate changes nothing).
func TestSourceCapSettings(t *testing.T) {
	base := Settings{TLSBind: "127.0.0.1:4433", InternalBind: "127.0.0.1:9999"}
	ok := base
	ok.MaxHelloPerSource, ok.MaxTokenConns, ok.MaxTokenPerSource = -1, 0, 7
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if c := ok.engineConfig(); c.MaxHelloPerSource != -1 || c.MaxTokenConns != 0 || c.MaxTokenPerSource != 7 {
		t.Errorf("engine config: hello/source %d, token conns %d, token/source %d", c.MaxHelloPerSource, c.MaxTokenConns, c.MaxTokenPerSource)
	}
	for key, set := range map[string]func(*Settings){
		"max_hello_per_source": func(s *Settings) { s.MaxHelloPerSource = -2 },
		"max_token_conns":      func(s *Settings) { s.MaxTokenConns = 1<<20 + 1 },
		"max_token_per_source": func(s *Settings) { s.MaxTokenPerSource = -5 },
	} {
		bad := base
		set(&bad)
		var ke *config.KeyError
		if err := bad.Validate(); !errors.As(err, &ke) || !strings.Contains(err.Error(), key) {
			t.Errorf("%s out of range: %v, want a key error naming it", key, err)
		}
	}
}
