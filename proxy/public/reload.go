package public

import (
	"epsproxy/proxy"
)

// Reload applies settings read again (SIGHUP). Nothing is applied yet beyond what the command
// applies itself (log_level): every changed key is returned in restart.
func (p *Proxy) Reload(s Settings) (restart []string, err error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	s = s.WithDefaults()
	return proxy.ChangedKeys(p.s, s), nil
}
