package wire

// The methods of the "proxy" service, by the proxy that serves them.
const (
	// Served by a public proxy, called by private proxies.
	AnnounceConnections = "announceConnections" // AnnounceParams → AnnounceResult
	ReserveConnections  = "reserveConnections"  // ReserveParams → ReserveResult
	// Served by both: a public proxy lists the caller's names ([]Listed), a private proxy the
	// names it serves ([]Served).
	GetAnnouncements = "getAnnouncements"

	// Served by a private proxy.
	IncomingConnection = "incomingConnection" // IncomingParams → Ack
	AnnounceConnection = "announceConnection" // AnnounceConnectionParams → "ok"
)

// Service is the directory service whose per-operator settings (Grant) say what a caller may
// announce through a proxy.
const Service = "proxy"

// Limits of one call.
const (
	// MaxAnnounceBatch caps the names of one announceConnections call.
	MaxAnnounceBatch = 10000
	// MaxReserve caps the tokens one reserveConnections call hands out.
	MaxReserve = 1024
)
