package relay

import "golang.org/x/sys/unix"

// pipe is a kernel pipe that carries one direction's chunk from socket to socket.
type pipe struct{ r, w int32 }

var noPipe = pipe{-1, -1}

// pipePool is one loop's set of pipes. A pipe is in use only while a chunk sits in
// it, normally for the two splices of one chunk, longer only while the destination
// is full. Only the loop goroutine touches it.
type pipePool struct {
	free  []pipe // empty pipes ready for reuse
	open  int    // pooled plus in use, never above max
	inUse int
	max   int // < 0: never create pipes
	size  int
}

func newPipe(size int) (pipe, error) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return noPipe, err
	}
	// Tolerated: an unprivileged user over fs.pipe-user-pages-soft gets EPERM and a
	// smaller pipe, which still works, just in smaller chunks.
	_, _ = unix.FcntlInt(uintptr(fds[1]), unix.F_SETPIPE_SZ, size)
	return pipe{int32(fds[0]), int32(fds[1])}, nil
}

func (p pipe) close() {
	_ = unix.Close(int(p.r))
	_ = unix.Close(int(p.w))
}

// get takes an empty pipe, creating one under the cap. It reports false when the
// cap is reached or the kernel refuses (EMFILE, ENFILE): the caller then copies.
func (pp *pipePool) get() (pipe, bool) {
	if n := len(pp.free); n > 0 {
		p := pp.free[n-1]
		pp.free = pp.free[:n-1]
		pp.inUse++
		return p, true
	}
	if pp.open >= pp.max {
		return noPipe, false
	}
	p, err := newPipe(pp.size)
	if err != nil {
		return noPipe, false
	}
	pp.open++
	pp.inUse++
	return p, true
}

// put gives a pipe back. A pipe that still holds bytes is closed, never pooled:
// its bytes belong to a pair that has ended and must not leak into another.
func (pp *pipePool) put(p pipe, empty bool) {
	pp.inUse--
	if empty {
		pp.free = append(pp.free, p)
		return
	}
	p.close()
	pp.open--
}

// closeAll closes the pooled pipes; in-use pipes are closed by their pairs.
func (pp *pipePool) closeAll() {
	for _, p := range pp.free {
		p.close()
	}
	pp.open -= len(pp.free)
	pp.free = nil
}
