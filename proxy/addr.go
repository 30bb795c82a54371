package proxy

import (
	"fmt"
	"net"
)

// CheckHostPort accepts host:port with a host and a non-zero port: an address to dial, or one to
// tell a peer to dial.
func CheckHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if host == "" || port == "" || port == "0" {
		return fmt.Errorf("want host:port, got %q", s)
	}
	return nil
}
