// Package backend is the bulk-transfer server of the benchmark: it runs inside the harness,
// behind the chain and beside the internal server, and either terminates TLS (the "TLS bulk"
// name) or reads exactly one TLS record (the ClientHello a proxy routes on) and then speaks
// plain TCP (the "raw TCP" name). After that preamble the client sends one command byte:
// CmdUpload makes the server answer Ack and then sink everything it receives, CmdDownload makes
// it send without end. It counts the bytes it moves so the harness can measure throughput at the receiver.
//
// Typical use:
//
//	srv, err := backend.Listen("127.0.0.1:0", nil) // raw TCP; pass a *tls.Config for TLS
//	defer srv.Close()
//	before := srv.Received()
//	// ... clients upload through a proxy to srv.Addr() ...
//	mbps := float64(srv.Received()-before) / elapsed.Seconds() / 1e6
//
// It owns only its listener and the connections it accepted; it must not be used for anything
// but load (it trusts nothing it reads and answers nothing but bytes).
package backend
