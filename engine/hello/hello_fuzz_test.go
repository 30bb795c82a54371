package hello

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// nameRE is an independent statement of what Parse may return as a name.
var nameRE = regexp.MustCompile(`^[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*$`)
var numericRE = regexp.MustCompile(`(^|\.)([0-9]+|0x[0-9a-f]*)$`)

func validName(n []byte) bool {
	return len(n) <= MaxNameLen && nameRE.Match(n) && !numericRE.Match(n)
}

// fuzzSeeds are the real hellos, whole and re-framed.
func fuzzSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, g := range goldens {
		raw := loadGolden(t, g.file)
		seeds = append(seeds, raw)
		msg := unframe(t, raw)
		seeds = append(seeds, frameMsg(msg, (len(msg)+2)/3), frameSizes(msg, append([]int{1, 2, 3}, len(msg)-6)))
	}
	return seeds
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	parsers := []*Parser{{}, {MaxHandshake: 512, MaxRecords: 8}}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, p := range parsers {
			checkParse(t, p, data)
		}
	})
}

// checkParse asserts the invariants every input must satisfy.
func checkParse(t *testing.T, p *Parser, data []byte) {
	orig := bytes.Clone(data)
	h, err := p.Parse(data)
	if !bytes.Equal(data, orig) {
		t.Fatal("Parse modified its input")
	}
	verdict := Reason(err)
	switch verdict {
	case "ok":
		if !validName(h.ServerName) {
			t.Fatalf("accepted name %q", h.ServerName)
		}
		if h.Length > len(data) || h.Length < recordHeaderLen+handshakeHeaderLen+minBodyLen || h.Records < 1 {
			t.Fatalf("Length %d, Records %d for %d bytes", h.Length, h.Records, len(data))
		}
		for proto := range h.ALPN.All() {
			if len(proto) == 0 {
				t.Fatal("empty ALPN protocol")
			}
		}
		h = clone(h)
	case "incomplete":
		if err != ErrIncomplete {
			t.Fatalf("ErrIncomplete wrapped: %v", err)
		}
		if len(data) >= p.MaxInput() {
			t.Fatalf("ErrIncomplete for %d bytes, MaxInput %d", len(data), p.MaxInput())
		}
	case "other":
		t.Fatalf("unlabelled error %v", err)
	}

	// Same answer twice: scratch state does not leak between calls.
	h2, err2 := p.Parse(data)
	if Reason(err2) != verdict || (verdict == "ok" && sameHello(h, h2) != nil) {
		t.Fatalf("second Parse: %v / %v", err2, sameHello(h, h2))
	}

	// Prefix monotonicity: a prefix is incomplete or gets the same verdict,
	// and a successful hello is decided exactly at its Length.
	for _, k := range prefixLengths(len(data), h.Length) {
		hk, errk := p.Parse(data[:k])
		switch {
		case errk == ErrIncomplete:
			if verdict == "ok" && k >= h.Length {
				t.Fatalf("prefix %d of a hello of Length %d: ErrIncomplete", k, h.Length)
			}
		case Reason(errk) != verdict:
			t.Fatalf("prefix %d/%d: %v, whole input: %v", k, len(data), errk, err)
		case verdict == "ok":
			if k < h.Length {
				t.Fatalf("prefix %d accepted, Length %d", k, h.Length)
			}
			if e := sameHello(hk, h); e != nil {
				t.Fatalf("prefix %d: %v", k, e)
			}
		}
	}
}

// prefixLengths picks a bounded set of prefixes: the edges, the hello's end,
// and a spread in between.
func prefixLengths(n, length int) []int {
	ks := []int{0, 1, 2, 3, 5, 9, 11, n / 2, n - 1, length - 1, length}
	for i := 1; i < 8; i++ {
		ks = append(ks, n*i/8)
	}
	out := ks[:0]
	for _, k := range ks {
		if k >= 0 && k < n {
			out = append(out, k)
		}
	}
	return out
}

// TestFuzzCorpus writes the checked-in seed corpus when run with -update:
// the rejection table and short multi-record hellos, which the fuzzer would
// take long to find from the real hellos alone. Without -update it checks the
// corpus stays small enough to keep in the repository.
func TestFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	if *update {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		entries := map[string][]byte{}
		for i, c := range rejections(t) {
			if i%2 == 0 || len(c.in) > 2048 {
				continue
			}
			entries[fmt.Sprintf("reject-%02d", i)] = c.in
		}
		msg, _ := basicSpec("Fuzz.Example.").message()
		entries["multi-record-ones"] = frameSizes(msg, ones(len(msg)))
		entries["multi-record-split-header"] = frameSizes(msg, []int{2, 3, len(msg) - 5})
		entries["ech-in-4"] = frameMsg(unframe(t, loadGolden(t, "go-ech.bin")), 420)
		for name, data := range entries {
			body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(data)) + ")\n"
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	for _, f := range files {
		info, err := f.Info()
		if err != nil {
			t.Fatal(err)
		}
		total += info.Size()
	}
	if len(files) == 0 || len(files) >= 30 || total >= 200<<10 {
		t.Fatalf("corpus of %d files, %d bytes: want 1..29 files under 200 KiB", len(files), total)
	}
}
