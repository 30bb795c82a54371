// Package hello reads the server name out of a TLS ClientHello without
// terminating TLS, so the public proxy can route a connection whose bytes it
// must later replay untouched.
//
// Typical use, from a gnet OnTraffic callback with one Parser per event loop:
//
//	buf, _ := c.Peek(-1) // every byte the client has sent so far
//	h, err := lp.hello.Parse(buf)
//	switch {
//	case errors.Is(err, hello.ErrIncomplete):
//		return gnet.None // wait for more bytes, under the hello deadline
//	case err != nil:
//		lp.rejected.Inc(hello.Reason(err))
//		return gnet.Close
//	}
//	name := h.ServerName       // lower case, no trailing dot; copy it to keep it
//	replay := buf[:h.Length]   // the records that carried the hello
//
// Parse takes the whole buffer each time and keeps no per-connection state,
// so the caller may re-feed a longer slice after every read. It never blocks,
// never retains the input and does not allocate on the success path of a
// hello carried by one record. A caller that must bound its buffer can stop
// reading at [Parser.MaxInput] bytes: any input that long is decided.
//
// The package owns the wire format of the ClientHello up to the server name:
// TLS record framing and reassembly, the handshake header, the fixed hello
// fields, the extension block, server_name, ALPN and the presence of
// encrypted_client_hello. It must not touch sockets, deadlines, the
// announcement table or anything cryptographic: it validates structure, not
// cipher suites or key shares, which remain the business of the TLS endpoint
// behind the proxy.
package hello
