// Package proc reads what the benchmark needs from Linux's /proc: a process's CPU time
// (utime+stime from /proc/PID/stat), its resident memory (VmRSS from /proc/PID/status), its open
// file descriptors, and a description of the machine. It also raises the harness's own
// RLIMIT_NOFILE. It only reads other processes; it never signals or changes them.
//
// Typical use, around a phase of load:
//
//	before, _ := proc.ReadCPU(pid)
//	// ... load ...
//	after, _ := proc.ReadCPU(pid)
//	perConn := (after - before) / time.Duration(conns)
package proc
