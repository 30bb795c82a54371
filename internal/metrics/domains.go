package metrics

import (
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"epsproxy/engine/relay"
)

// The domain labels that are not announced names. An announced name spelled like one of them
// counts under Other.
const (
	// Unannounced counts the connections for names nobody announced, whatever the name.
	Unannounced = "_unannounced"
	// NoName counts the connections refused before a name was read (or with none).
	NoName = "_none"
	// Other counts the announced names that came after MaxDomains others had a label.
	Other = "_other"
)

// MaxDomains caps the announced names that get a domain label of their own. A name keeps its
// label for the life of the process, so the series stay monotonic; once MaxDomains names have
// one, every further name counts under Other (and one warning says so) until the process
// restarts. With the fixed labels and the refusal reasons, a label costs a dozen series or so.
const MaxDomains = 1000

// Domain is one domain label's counters. The data path adds to them; Domains collects them.
type Domain struct {
	name     string
	idx      int // in Domains.all
	accepted atomic.Int64
	relayed  atomic.Int64
	refused  []atomic.Int64 // by reason index
	// done holds, per relay loop, the bytes of the domain's pairs that loop has finished. Only
	// that loop touches its entry: PairDone (OnDone) writes it and the collector reads it on a
	// relay.Visit turn, so it needs no atomics (see relay.Visit).
	done []flowBytes
}

type flowBytes struct{ up, down int64 }

// Accepted counts a connection taken for the domain.
func (d *Domain) Accepted() { d.accepted.Add(1) }

// Relayed counts a connection of the domain handed to the relay.
func (d *Domain) Relayed() { d.relayed.Add(1) }

// Refused counts a connection of the domain refused for the reason at index why of the list
// Domains was made with; an index out of it is ignored.
func (d *Domain) Refused(why int) {
	if why >= 0 && why < len(d.refused) {
		d.refused[why].Add(1)
	}
}

// Domains is the set of domain labels of one proxy and their counters, and the collector of the
// connection metrics: accepted, refused by reason, relayed, and the relay's bytes and active
// pairs per domain. Register it with a Registry.
type Domains struct {
	reasons []string
	rl      *relay.Relay // nil: no relay metrics
	log     *slog.Logger

	byName atomic.Pointer[map[string]*Domain] // copy on write
	all    atomic.Pointer[[]*Domain]          // in label order: the fixed labels, then names as seen
	mu     sync.Mutex                         // serialises adding names
	full   bool                               // the cap was reached (warned); under mu

	noName, unannounced, other *Domain

	accepted, relayed, refused, bytes, active *prometheus.Desc
}

// fixedLabels are the labels every Domains starts with, in this order.
var fixedLabels = []string{NoName, Unannounced, Other}

// NewDomains returns the label set of a proxy whose refusals have the given reasons (a refusal's
// reason is an index into them) and whose pairs rl relays, tagged with their domain name (nil:
// no relay bytes nor active pairs are collected). The warning for the cap goes to log.
func NewDomains(reasons []string, rl *relay.Relay, log *slog.Logger) *Domains {
	d := &Domains{reasons: slices.Clone(reasons), rl: rl, log: log}
	all := make([]*Domain, 0, len(fixedLabels))
	for _, name := range fixedLabels {
		all = append(all, d.newDomain(name, len(all)))
	}
	d.noName, d.unannounced, d.other = all[0], all[1], all[2]
	// No announced name may take a fixed label's name: that would be two series of one label.
	byName := map[string]*Domain{"": d.noName, NoName: d.other, Unannounced: d.other, Other: d.other}
	d.all.Store(&all)
	d.byName.Store(&byName)
	d.accepted = NewDesc("connections_accepted_total", "Connections taken for a domain: a hello routed to its announcement (public proxy), a dial-back or standby client for it (private proxy).", "domain")
	d.refused = NewDesc("connections_refused_total", "Connections closed before they were relayed, by domain and reason.", "domain", "reason")
	d.relayed = NewDesc("connections_relayed_total", "Connections handed to the relay, by domain.", "domain")
	d.bytes = NewDesc("relay_bytes_total", "Bytes relayed, by domain and direction: upstream from the client towards the internal server, downstream back; counted while connections are open.", "domain", "direction")
	d.active = NewDesc("relay_active_connections", "Connections being relayed now, by domain.", "domain")
	return d
}

func (d *Domains) newDomain(name string, idx int) *Domain {
	dm := &Domain{name: name, idx: idx, refused: make([]atomic.Int64, len(d.reasons))}
	if d.rl != nil {
		dm.done = make([]flowBytes, d.rl.Loops())
	}
	return dm
}

// NoName returns the counters of connections refused before a name was read.
func (d *Domains) NoName() *Domain { return d.noName }

// Unannounced returns the counters of connections for names nobody announced.
func (d *Domains) Unannounced() *Domain { return d.unannounced }

// Get returns the counters of an announced name (Announcement.Domain: a pattern for a wildcard),
// giving the name a label of its own if it has none yet and fewer than MaxDomains names have
// one; past that, or for a name spelled like a fixed label, it returns Other's; "" is NoName.
// Call it only with names an announcement served: the label set is bounded by what was
// announced. A name must have been given to Get before a pair tagged with it is added to the
// relay. Safe from any goroutine; it never blocks except the first time it sees a name.
func (d *Domains) Get(name string) *Domain {
	if dm, ok := (*d.byName.Load())[name]; ok {
		return dm
	}
	return d.add(name)
}

func (d *Domains) add(name string) *Domain {
	d.mu.Lock()
	defer d.mu.Unlock()
	byName := *d.byName.Load()
	if dm, ok := byName[name]; ok {
		return dm
	}
	all := *d.all.Load()
	if len(all)-len(fixedLabels) >= MaxDomains {
		if !d.full {
			d.full = true
			d.log.Warn("metrics: more announced names than domain labels; further names count under "+Other+" until restart", "labels", MaxDomains)
		}
		return d.other
	}
	dm := d.newDomain(name, len(all))
	next := maps.Clone(byName)
	next[name] = dm
	list := append(slices.Clip(all), dm)
	d.all.Store(&list)
	d.byName.Store(&next)
	return dm
}

// lookup returns the domain of a relay tag without adding one: Other for a name without a label.
func (d *Domains) lookup(tag any) *Domain {
	if name, ok := tag.(string); ok {
		if dm, ok := (*d.byName.Load())[name]; ok {
			return dm
		}
	}
	return d.other
}
