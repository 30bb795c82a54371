//go:build race

package engine_test

// bulkSize is what TestBulkThroughTheWholePath sends each way. The race detector slows the
// test's own generating and hashing by an order of magnitude; the engine's path is the same.
const bulkSize = 16 << 20
