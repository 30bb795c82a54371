package matcher

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"epsproxy/internal/fsutil"
)

// File format and limits.
const (
	// FileVersion is the "version" a saved table carries; Load refuses
	// other versions rather than guess.
	FileVersion = 1
	// MaxFileBytes caps the file Load reads: a full default table
	// (DefaultMaxEntries of the longest names) fits well within it.
	MaxFileBytes = 1 << 30
	// MaxLoadErrors caps LoadReport.Errors; the counts stay exact.
	MaxLoadErrors = 100
)

// fileRecord is one announcement on disk, in the original EPS datastore's
// vocabulary.
type fileRecord struct {
	Domain    string     `json:"domain"`
	Operator  string     `json:"operator"`
	ExpiresAt *time.Time `json:"expires_at"` // null: no expiry
}

// testHookAfterWrite, when set by a test, runs after every record is written
// to the temporary file; an error makes Save fail at that point.
var testHookAfterWrite func() error

// Save writes every stored announcement (expired ones too: Load drops them
// against its own clock) to path as JSON, atomically: a temporary file in
// the same directory is written, synced, renamed over path, and the
// directory is synced. If Save fails, the previous file at path is intact
// and no temporary file is left behind. The file is created with mode 0600.
//
// Save reads one snapshot, so it never blocks Lookup or writers; it is safe
// for concurrent use, and concurrent Saves land in the order they took
// their snapshots.
func (t *Table) Save(path string) error {
	t.saveMu.Lock()
	defer t.saveMu.Unlock()
	var recs []fileRecord
	if s := t.snap.Load(); s != nil {
		recs = make([]fileRecord, 0, s.count)
		s.each(func(e entry) {
			a := e.announcement()
			r := fileRecord{Domain: a.Domain, Operator: a.Operator}
			if !a.ExpiresAt.IsZero() {
				r.ExpiresAt = &a.ExpiresAt
			}
			recs = append(recs, r)
		})
	}
	// Sorted so that saving the same table twice gives the same bytes.
	slices.SortFunc(recs, func(a, b fileRecord) int { return strings.Compare(a.Domain, b.Domain) })
	if err := writeAtomic(path, recs); err != nil {
		return fmt.Errorf("matcher: save %s: %w", path, err)
	}
	return nil
}

func writeAtomic(path string, recs []fileRecord) error {
	return fsutil.WriteFile(path, 0o600, func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		fmt.Fprintf(bw, "{\"version\":%d,\"announcements\":[", FileVersion)
		for i, r := range recs {
			b, err := json.Marshal(r)
			if err != nil {
				return err
			}
			if i > 0 {
				bw.WriteByte(',')
			}
			bw.WriteString("\n")
			bw.Write(b)
		}
		bw.WriteString("\n]}\n")
		if err := bw.Flush(); err != nil {
			return err
		}
		if testHookAfterWrite != nil {
			return testHookAfterWrite()
		}
		return nil
	})
}

// LoadReport says what Load did with the file's entries.
type LoadReport struct {
	Loaded  int     // announcements now in the table
	Expired int     // entries dropped because they were expired at now
	Invalid int     // entries rejected by validation
	Errors  []error // the first MaxLoadErrors rejections, each naming its entry
}

// Load replaces the table's contents with the announcements saved at path,
// validated as Announce would (names, operator names, expiry at most
// MaxExpiry after now, one live holder per name, the caps), except for
// allowed domains, which are the directory's business at announce time.
// Invalid entries are skipped and reported; entries expired at now are
// dropped, so a restart never revives or keeps a dead announcement.
//
// A missing file gives an empty table and no error. A file that is not a
// saved table (bad JSON, wrong version, too large) gives an error naming
// the file and leaves the table unchanged. Safe for concurrent use; meant to
// run once before serving.
func (t *Table) Load(path string, now time.Time) (LoadReport, error) {
	var rep LoadReport
	f, err := os.Open(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return rep, fmt.Errorf("matcher: load %s: %w", path, err)
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	t.initLocked()
	ops := make(map[string]int)
	w := t.writer(emptySnapshot(t.shardCount()), ops, now)
	w.b.changed = true // an empty file still replaces the contents
	// A missing file (err set) leaves the table empty.
	if err == nil {
		defer f.Close()
		if off, err := decodeFile(f, w, &rep); err != nil {
			return LoadReport{}, fmt.Errorf("matcher: load %s: near byte %d: %w", path, off, err)
		}
	}
	t.ops = ops
	t.publish(w)
	rep.Loaded = w.b.count
	return rep, nil
}

// decodeFile streams the file into w, so a large table never sits in
// memory twice. off is where decoding stopped, for the error message.
func decodeFile(f *os.File, w *writer, rep *LoadReport) (off int64, err error) {
	if st, err := f.Stat(); err == nil && st.Size() > MaxFileBytes {
		return 0, fmt.Errorf("file is %d bytes, more than the %d a table can take", st.Size(), MaxFileBytes)
	}
	dec := json.NewDecoder(bufio.NewReader(io.LimitReader(f, MaxFileBytes)))
	err = decodeTable(dec, w, rep)
	return dec.InputOffset(), err
}

func decodeTable(dec *json.Decoder, w *writer, rep *LoadReport) error {
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	version := 0
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case "version":
			if err := dec.Decode(&version); err != nil {
				return fmt.Errorf("version: %w", err)
			}
		case "announcements":
			if err := decodeRecords(dec, w, rep); err != nil {
				return err
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return err
			}
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the table")
	}
	if version != FileVersion {
		return fmt.Errorf("version %d, want %d", version, FileVersion)
	}
	return nil
}

func decodeRecords(dec *json.Decoder, w *writer, rep *LoadReport) error {
	if err := expectDelim(dec, '['); err != nil {
		return err
	}
	now := w.now
	for i := 0; dec.More(); i++ {
		// Each entry is first read as raw JSON: a syntax error means a
		// corrupt file, but a well-formed entry with bad contents is only
		// skipped.
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("announcement %d: %w", i, err)
		}
		var r fileRecord
		err := json.Unmarshal(raw, &r)
		if err == nil {
			err = loadRecord(w, r, now, rep)
		}
		if err != nil {
			rep.Invalid++
			if len(rep.Errors) < MaxLoadErrors {
				rep.Errors = append(rep.Errors, fmt.Errorf("announcement %d %s: %w", i, bytes.TrimSpace(raw), err))
			}
		}
	}
	return expectDelim(dec, ']')
}

func loadRecord(w *writer, r fileRecord, now time.Time, rep *LoadReport) error {
	if err := checkOperator(r.Operator); err != nil {
		return err
	}
	name, err := Normalize(r.Domain)
	if err != nil {
		return err
	}
	var exp time.Time
	if r.ExpiresAt != nil {
		if r.ExpiresAt.IsZero() {
			return newError(ErrInvalid, r.Domain, "expires_at is the zero time; use null for no expiry")
		}
		exp = *r.ExpiresAt
		if !exp.After(now) {
			rep.Expired++ // dead on arrival: not stored
			return nil
		}
	}
	return w.apply(r.Operator, name, r.Domain, exp)
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("found %v where %q was expected", tok, want)
	}
	return nil
}
