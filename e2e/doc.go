// Package e2e is the end-to-end suite: it builds the commands and runs the demo chain as real
// processes (internal/chain) on free loopback ports, then checks what a user of the README's demo
// would check. It has no non-test code of its own.
package e2e
