package wire

import (
	"encoding/base64"
	"fmt"
)

// TokenSize is the size of the one-time token: a private proxy sends exactly these bytes first on
// the public proxy's internal port, and nothing else identifies its connection there.
const TokenSize = 32

// Token is a one-time token. In JSON it is the standard base64 of its 32 bytes.
type Token [TokenSize]byte

// TokenHash is the SHA-256 of a Token: what one public proxy instance files for a standby token
// another instance of it minted, so that the token itself never travels between them.
type TokenHash [32]byte

// String is the token's JSON form (standard base64).
func (t Token) String() string { return base64.StdEncoding.EncodeToString(t[:]) }

// MarshalText encodes the token as standard base64.
func (t Token) MarshalText() ([]byte, error) {
	out := make([]byte, base64.StdEncoding.EncodedLen(TokenSize))
	base64.StdEncoding.Encode(out, t[:])
	return out, nil
}

// UnmarshalText decodes standard base64 of exactly TokenSize bytes.
func (t *Token) UnmarshalText(b []byte) error {
	var raw [TokenSize + 3]byte // room to notice a longer token without allocating
	if base64.StdEncoding.DecodedLen(len(b)) > len(raw) {
		return fmt.Errorf("token: want the base64 of %d bytes, got %d characters", TokenSize, len(b))
	}
	n, err := base64.StdEncoding.Decode(raw[:], b)
	if err != nil || n != TokenSize {
		return fmt.Errorf("token: want the base64 of %d bytes", TokenSize)
	}
	copy(t[:], raw[:n])
	return nil
}

// ParseToken decodes a token's JSON form.
func ParseToken(s string) (Token, error) {
	var t Token
	return t, t.UnmarshalText([]byte(s))
}
