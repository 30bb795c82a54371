package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxFileSize caps one settings file; settings are small and a huge file is a mistake.
const maxFileSize = 4 << 20

// Load reads the files named by the environment variable envVar into dst (a pointer to a struct)
// and applies environment overrides with the given prefix (see the package doc). An unset or
// empty envVar is an error: every command needs its settings.
func Load(envVar, envPrefix string, dst any) error {
	list := os.Getenv(envVar)
	if strings.TrimSpace(list) == "" {
		return fmt.Errorf("%s is not set: it names the settings directory, e.g. %s=settings/dev/roles/<role>", envVar, envVar)
	}
	return LoadPaths(strings.Split(list, ":"), envPrefix, dst)
}

// LoadPaths is Load with an explicit list of directories or files.
func LoadPaths(paths []string, envPrefix string, dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: destination must be a pointer to a struct, got %T", dst)
	}
	files, err := expand(paths)
	if err != nil {
		return err
	}
	origins := map[string]string{}
	var merged *yaml.Node
	for _, f := range files {
		root, err := loadFile(f, rv.Elem().Type(), origins)
		if err != nil {
			return err
		}
		merged = merge(merged, root)
	}
	if merged != nil {
		if err := merged.Decode(dst); err != nil {
			// The walk checked every key and value, so this is unexpected; still say where.
			return fmt.Errorf("%s: %v", strings.Join(files, ", "), err)
		}
	}
	if envPrefix != "" {
		if err := applyEnv(rv.Elem(), "", envPrefix, origins); err != nil {
			return err
		}
	}
	if v, ok := dst.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return attribute(err, origins, files)
		}
	}
	return nil
}

// expand turns the list into files: directories give their YAML files in name order.
func expand(paths []string) ([]string, error) {
	var files []string
	for _, p := range paths {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("settings path %s: %w", p, unwrapPathError(err))
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("settings directory %s: %w", p, unwrapPathError(err))
		}
		var found []string
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || strings.HasPrefix(name, ".") {
				continue
			}
			if ext := filepath.Ext(name); ext == ".yml" || ext == ".yaml" {
				found = append(found, filepath.Join(p, name))
			}
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("settings directory %s holds no *.yml or *.yaml file", p)
		}
		sort.Strings(found)
		files = append(files, found...)
	}
	if len(files) == 0 {
		return nil, errors.New("no settings files given")
	}
	return files, nil
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// loadFile parses and checks one file and returns its root node (nil for an empty file).
func loadFile(file string, t reflect.Type, origins map[string]string) (*yaml.Node, error) {
	data, err := readCapped(file)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %s", file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) == 0 {
		return nil, nil // an empty file sets nothing
	}
	root := doc.Content[0]
	w := walker{file: file, dir: filepath.Dir(file), origins: origins}
	if err := w.walk(root, t, ""); err != nil {
		return nil, err
	}
	return root, nil
}

// merge lays b over a: mappings merge key by key (recursively), anything else in b replaces
// what a had, and a null in b keeps a's value.
func merge(a, b *yaml.Node) *yaml.Node {
	if b == nil || b.Tag == "!!null" {
		return a
	}
	if a == nil {
		return b
	}
	if a.Kind == yaml.AliasNode {
		a = a.Alias
	}
	if b.Kind == yaml.AliasNode {
		b = b.Alias
	}
	if a.Kind != yaml.MappingNode || b.Kind != yaml.MappingNode {
		return b
	}
	out := *a
	out.Content = append([]*yaml.Node(nil), a.Content...)
	for i := 0; i+1 < len(b.Content); i += 2 {
		k, v := b.Content[i], b.Content[i+1]
		found := false
		for j := 0; j+1 < len(out.Content); j += 2 {
			if out.Content[j].Value == k.Value {
				out.Content[j+1] = merge(out.Content[j+1], v)
				found = true
				break
			}
		}
		if !found {
			out.Content = append(out.Content, k, v)
		}
	}
	return &out
}

func readCapped(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("settings file %s: %w", file, unwrapPathError(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("settings file %s: %w", file, unwrapPathError(err))
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("settings file %s: larger than %d bytes", file, maxFileSize)
	}
	return data, nil
}

// attribute names the file that set the key of a *KeyError.
func attribute(err error, origins map[string]string, files []string) error {
	var ke *KeyError
	if !errors.As(err, &ke) {
		return fmt.Errorf("%s: %w", strings.Join(files, ", "), err)
	}
	out := *ke
	if out.File == "" {
		if f, ok := originOf(out.Key, origins); ok {
			out.File = f
		} else {
			out.File = strings.Join(files, ", ")
			if out.Key != "" {
				out.Problem += " (the key is not set in any of these files)"
			}
		}
	}
	return &out
}

// originOf finds the file that set key or its nearest parent that was set.
func originOf(key string, origins map[string]string) (string, bool) {
	for k := key; k != ""; {
		if f, ok := origins[k]; ok {
			return f, true
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return "", false
}
