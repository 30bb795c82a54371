package relay

import (
	"bytes"
	"cmp"
	"fmt"
	"iter"
	"testing"

	"golang.org/x/sys/unix"
)

// The pipes a loop splices through have the capacity Config.PipeSize asks for (the kernel's
// own default is 64 KiB), so a bulk stream moves in chunks of that size; a stream many pipes
// long arrives intact through them.
func TestPipesTakeTheConfiguredSize(t *testing.T) {
	for _, size := range []int{0, MinPipeSize, 256 << 10} {
		want := cmp.Or(size, DefaultPipeSize)
		t.Run(fmt.Sprintf("%dKiB", want>>10), func(t *testing.T) {
			r, done := testRelay(t, Config{Loops: 1, PipeSize: size})
			client, server := newRig(t).pipeline(t, r, nil, nil, nil)
			up, down := randomBytes(5, 4<<20), randomBytes(6, 3<<20)
			atClient, atServer := exchange(t, client, server, up, down)
			if !bytes.Equal(atServer, up) || !bytes.Equal(atClient, down) {
				t.Fatalf("bytes changed on the way: server got %d of %d, client %d of %d", len(atServer), len(up), len(atClient), len(down))
			}
			waitStats(t, done, 1)

			var sizes []int
			var errs []error
			r.Visit(func(loop int, _ iter.Seq[Flow]) {
				for _, p := range r.loops[loop].pipes.free {
					n, err := unix.FcntlInt(uintptr(p.w), unix.F_GETPIPE_SZ, 0)
					sizes, errs = append(sizes, n), append(errs, err)
				}
			})
			if len(sizes) == 0 {
				t.Fatal("no pipe in the pool after two streams were spliced")
			}
			for i, n := range sizes {
				if errs[i] != nil || n != want {
					t.Errorf("pooled pipe %d holds %d bytes (%v), want %d", i, n, errs[i], want)
				}
			}
		})
	}
}
