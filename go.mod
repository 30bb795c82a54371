module epsproxy

go 1.26.0

require (
	github.com/cespare/xxhash/v2 v2.3.0
	golang.org/x/crypto v0.58.0
	golang.org/x/sys v0.49.0
	gopkg.in/yaml.v3 v3.0.1
)
