// Package deploy holds what a production host installs: systemd units (systemd/), example
// settings for every role and a directory (etc/epsproxy/, installed as /etc/epsproxy), and the
// steps (README.md). It has no code of its own; its tests run `proxy check` and `eps check` on
// the examples and check the units against them, so an example that stops loading, or a unit
// that loses a required setting, fails `make test`.
package deploy
