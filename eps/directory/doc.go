// Package directory is the EPS network's directory: who the operators are, where their nodes
// listen, which groups they belong to, which methods they offer to which groups, which
// certificates they may present, and the per-service settings one operator grants another (such as
// a proxy's allowed_domains).
//
// Typical usage:
//
//	dir, err := directory.Load([]string{"settings/dev/directory"})
//	entry := dir.Entry("private-proxy-1.ga")
//	if err := dir.CanCall(caller, "public-proxy-1.ga", "announceConnections"); err != nil { ... }
//
// The directory is YAML (or JSON, which is YAML) loaded by the settings loader: every file of the
// directory folder, merged in name order, so that a generated file can add certificate pins. A
// loaded *Directory is immutable and safe for concurrent use.
//
// Entry is also the wire form of the `_client.entry` object a node adds to every call it
// delivers, so the receiving service reads the caller's groups and settings from it. The package
// knows nothing of proxies or TLS passthrough.
package directory
