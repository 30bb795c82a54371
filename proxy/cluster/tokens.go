package cluster

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"epsproxy/proxy/wire"
)

// Standby tokens for another instance: the instance a private proxy asked mints them and
// publishes their SHA-256 hashes on the other's channel; the other files them (Hooks.Tokens).

// MaxTokens caps the hashes of one message.
const MaxTokens = 4096

// ErrNoInstance is returned by SendTokens when no live instance listens at the endpoint.
var ErrNoInstance = errors.New("no live instance of this public proxy has that endpoint")

type tokenMessage struct {
	Operator string    `json:"operator"`
	Until    time.Time `json:"until"`
	Hashes   []string  `json:"hashes"` // standard base64 of 32 bytes each
	// The tokens' socket mode (client_address, framed). An instance of a version without a field
	// ignores it: without client_address it parks their sockets without the address header;
	// without framed it relays unframed bytes, which the private proxy refuses, closing the socket
	// (run one version across the instances of a public proxy).
	wire.SocketMode
}

// SendTokens hands the hashes of tokens minted for operator to the instance whose internal
// endpoint is endpoint, with the socket mode they were reserved with. It fails with
// ErrNoInstance if that instance does not listen, and with ErrUnavailable if Redis cannot be
// reached.
func (st *Store) SendTokens(ctx context.Context, endpoint, operator string, hashes [][32]byte, until time.Time, mode wire.SocketMode) error {
	if len(hashes) > MaxTokens {
		return fmt.Errorf("at most %d tokens per hand-over", MaxTokens)
	}
	m := tokenMessage{Operator: operator, Until: until.UTC(), Hashes: make([]string, len(hashes)), SocketMode: mode}
	for i, h := range hashes {
		m.Hashes[i] = base64.StdEncoding.EncodeToString(h[:])
	}
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	n, err := st.rdb.Publish(ctx, st.k.tokens+endpoint, body).Result()
	if err != nil {
		return st.unavailable(err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", ErrNoInstance, endpoint)
	}
	return nil
}

// tokensFor files a hand-over addressed to this instance.
func (st *Store) tokensFor(payload string) {
	var m tokenMessage
	if err := json.Unmarshal([]byte(payload), &m); err != nil || len(m.Hashes) > MaxTokens {
		st.log.Warn("ignoring a malformed standby token hand-over", "err", err)
		return
	}
	hs := make([][32]byte, 0, len(m.Hashes))
	for _, s := range m.Hashes {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != 32 {
			st.log.Warn("ignoring a malformed standby token hand-over", "err", "bad hash")
			return
		}
		hs = append(hs, [32]byte(b))
	}
	if st.hooks.Tokens != nil {
		st.hooks.Tokens(m.Operator, hs, m.Until, m.SocketMode)
	}
}
