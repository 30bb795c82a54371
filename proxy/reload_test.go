package proxy

import (
	"slices"
	"testing"
	"time"

	"epsproxy/internal/config"
)

func TestChangedKeysNamesWhatDiffers(t *testing.T) {
	type block struct {
		Bind string `yaml:"bind"`
	}
	type settings struct {
		Relay    RelaySettings `yaml:",inline"`
		Name     string        `yaml:"name"`
		List     []string      `yaml:"list"`
		Inner    block         `yaml:"inner"`
		Skipped  int           `yaml:"skipped"`
		Internal int           `yaml:"-"`
	}
	a := settings{Name: "x", List: []string{"a"}, Inner: block{"1"}, Skipped: 1, Internal: 1}
	b := a
	b.List = []string{"a", "b"}
	b.Inner.Bind = "2"
	b.Relay.IdleTimeout = config.Duration(time.Second)
	b.Skipped, b.Internal = 2, 2
	got := ChangedKeys(a, b, "skipped")
	if want := []string{"idle_timeout", "inner.bind", "list"}; !slices.Equal(got, want) {
		t.Errorf("ChangedKeys = %v, want %v", got, want)
	}
	if got := ChangedKeys(a, a); len(got) != 0 {
		t.Errorf("equal values: %v", got)
	}
	// What a reload applies is left out; everything else that changed is named.
	if got, want := RestartKeys(a, b, append([]string{"list"}, LiveRelayKeys...)), []string{"inner.bind", "skipped"}; !slices.Equal(got, want) {
		t.Errorf("RestartKeys = %v, want %v", got, want)
	}
}
