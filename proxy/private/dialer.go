package private

import (
	"context"
	"errors"
	"net"
	"net/netip"
)

// How this proxy reaches an address. Two ways, each for its place:
//   - A socket a relay loop is to own from the start (a standby socket to a public proxy, the
//     internal server of a standby client routed on a loop) is connected with relay.Connect:
//     a non-blocking connect that returns at once, so it can run on a loop and needs no
//     goroutine to wait.
//   - Everything else (dial-backs on the worker pool, the fallback path of a standby client, the
//     TLS terminator's HTTP transport) uses p.dialer, one net.Dialer, within dial_timeout as it
//     stands when the dial starts (a reload changes it).

// resolve turns endpoint (host:port) into one address for relay.Connect, looking a name up
// with the dial timeout.
func (p *Proxy) resolve(ctx context.Context, endpoint string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(endpoint); err == nil {
		return ap, nil
	}
	host, port, err := net.SplitHostPort(endpoint)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.live().DialTimeout.D())
	defer cancel()
	addrs, err := p.dialer.Resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if len(addrs) == 0 {
		return netip.AddrPort{}, errors.New("no address for " + host)
	}
	return netip.ParseAddrPort(net.JoinHostPort(addrs[0].Unmap().String(), port))
}

// dial connects to address within dial_timeout (and ctx): every blocking connect but those of
// relay.Connect goes through here.
func (p *Proxy) dial(ctx context.Context, network, address string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, p.live().DialTimeout.D())
	defer cancel()
	return p.dialer.DialContext(ctx, network, address)
}
