// Package config loads the YAML settings shared by every command of the project.
//
// Typical usage:
//
//	var s MySettings // a struct with yaml tags
//	err := config.Load("PROXY_SETTINGS", "PROXY_", &s)
//
// The environment variable names one or more directories or files, separated by ':'. A directory
// contributes its *.yml and *.yaml files in name order; files are merged in order: mappings merge
// key by key, lists and scalars are replaced by the later file. Unknown keys, values of the wrong
// type and missing files are errors that name the file and the key. Fields of type Path are
// resolved against the directory of the file that set them, so a role directory can point at
// "../../certs/root.crt". Fields tagged `env:"NAME"` may be overridden by the environment variable
// prefix+NAME (bind addresses, in tests and deployments).
//
// After loading, a settings type that implements Validate() error is validated; a *KeyError
// returned from it is reported with the file that set the key.
//
// The package also holds the few helpers every command needs around settings: TLS configurations
// from certificate files and the process logger. It owns no behaviour of the proxies or the EPS
// node and must not import them.
package config
