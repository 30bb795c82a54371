//go:build !race

package relay

// bulkSize is what TestBulkHalfClose sends each way.
const bulkSize = 1 << 30
