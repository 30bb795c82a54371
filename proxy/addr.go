package proxy

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"epsproxy/internal/config"
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

// AddrList is a settings list of addresses a peer may make this proxy connect to: a host:port
// matches exactly, and a network in CIDR form ("10.1.0.0/16") matches any port of an IP inside
// it. An empty list allows nothing.
type AddrList []string

// Validate checks every entry; key names the list in errors.
func (l AddrList) Validate(key string) error {
	for i, e := range l {
		if _, err := netip.ParsePrefix(e); err == nil {
			continue
		}
		if err := CheckHostPort(e); err != nil {
			return config.Errorf(key+"["+strconv.Itoa(i)+"]", "want host:port or a network such as 10.1.0.0/16, got %q", e)
		}
	}
	return nil
}

// Allows reports whether hostport is listed, or is an IP inside a listed network.
func (l AddrList) Allows(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	ip, ipErr := netip.ParseAddr(host)
	for _, e := range l {
		if pfx, err := netip.ParsePrefix(e); err == nil {
			if ipErr == nil && pfx.Contains(ip.Unmap()) {
				return true
			}
			continue
		}
		if e == hostport {
			return true
		}
	}
	return false
}
