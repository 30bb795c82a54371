// Package proc reads what the test and benchmark harnesses watch in Linux's /proc: a process's
// CPU time (utime+stime from /proc/PID/stat), its resident memory (VmRSS from
// /proc/PID/status), its context switches (every thread's, from /proc/PID/task/*/status), its
// open file descriptors, the whole machine's busy CPU time (/proc/stat), and a description of the
// machine. It also raises the caller's own
// RLIMIT_NOFILE. It only reads other processes; it never signals or changes them. The benchmark
// harness (bench/harness) and the end-to-end tests use it; no command does, which is why it
// lives under internal/ beside internal/chain rather than in bench/.
//
// Typical use, around a phase of load:
//
//	before, _ := proc.ReadCPU(pid)
//	// ... load ...
//	after, _ := proc.ReadCPU(pid)
//	perConn := (after - before) / time.Duration(conns)
package proc
