package private

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"epsproxy/internal/fsutil"
)

// StoreFile is the announcements file inside the data directory.
const StoreFile = "announcements.json"

// maxStore caps the announcements file read at start.
const maxStore = 64 << 20

type storeFile struct {
	Version       int            `json:"version"`
	Announcements []Announcement `json:"announcements"`
}

// loadStore reads the persisted announcements; a missing file is an empty set.
func loadStore(path string) ([]Announcement, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var sf storeFile
	dec := json.NewDecoder(io.LimitReader(f, maxStore))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sf); err != nil {
		return nil, fmt.Errorf("%s: not an announcements file: %v", path, err)
	}
	if sf.Version != 1 {
		return nil, fmt.Errorf("%s: unknown version %d", path, sf.Version)
	}
	return sf.Announcements, nil
}

// saveStore writes the announcements atomically (temporary file, fsync, rename, directory
// fsync).
func saveStore(path string, list []Announcement) error {
	return fsutil.WriteFile(path, 0o600, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(storeFile{Version: 1, Announcements: list})
	})
}
