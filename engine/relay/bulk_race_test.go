//go:build race

package relay

// bulkSize is what TestBulkHalfClose sends each way. The race detector slows the
// test's own hashing and I/O by an order of magnitude, so it moves 64 MiB instead
// of 1 GiB; the relay's code paths are the same.
const bulkSize = 64 << 20
