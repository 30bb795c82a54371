//go:build !race

package engine_test

// bulkSize is what TestBulkThroughTheWholePath sends each way.
const bulkSize = 256 << 20
