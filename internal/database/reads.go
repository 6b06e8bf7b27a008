package database

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"
)

// Reads chooses the connection for reads that may be a little stale
// (reports, charts, statement lists, histories): the streaming replica
// while its measured lag is within the limit, the primary otherwise (no
// replica, lag unknown, replica unreachable, or too far behind). Reads that
// must see the caller's own writes never use it: they take the primary.
// Safe for concurrent use; the zero lag is "not measured yet".
type Reads struct {
	primary, replica *gorm.DB
	maxLag           time.Duration
	// lag is the last measured lag in nanoseconds; -1 while unknown.
	lag atomic.Int64
	// lagQuery measures the replica's lag in seconds: 0 when it has
	// replayed all it received, or when it is no replica (promoted).
	lagQuery string
}

const replicaLagQuery = `SELECT CASE
	WHEN NOT pg_is_in_recovery() THEN 0
	WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
	ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END::float8`

// NewReads routes stale-tolerant reads to replica while its lag is at most
// maxLag. replica nil: every read goes to the primary.
func NewReads(primary, replica *gorm.DB, maxLag time.Duration) *Reads {
	r := &Reads{primary: primary, replica: replica, maxLag: maxLag, lagQuery: replicaLagQuery}
	r.lag.Store(-1)
	return r
}

// DB is the connection for a stale-tolerant read now.
func (r *Reads) DB() *gorm.DB {
	if r == nil {
		return nil
	}
	if lag := r.lag.Load(); r.replica != nil && lag >= 0 && time.Duration(lag) <= r.maxLag {
		return r.replica
	}
	return r.primary
}

// Configured reports whether a replica was given at all.
func (r *Reads) Configured() bool { return r != nil && r.replica != nil }

// Replica is the replica connection, nil without one.
func (r *Reads) Replica() *gorm.DB { return r.replica }

// Primary is the primary connection, for a read that the replica missed.
func (r *Reads) Primary() *gorm.DB { return r.primary }

// OnReplica reports whether DB is the replica now.
func (r *Reads) OnReplica() bool { return r.replica != nil && r.DB() == r.replica }

// Lag is the last measured replica lag; ok is false while it is unknown
// (no replica, not measured yet, or the last measure failed).
func (r *Reads) Lag() (lag time.Duration, ok bool) {
	n := r.lag.Load()
	return time.Duration(n), n >= 0
}

// MaxLag is the lag past which reads go to the primary.
func (r *Reads) MaxLag() time.Duration { return r.maxLag }

// Measure asks the replica for its lag and records it; on failure the lag
// becomes unknown, so reads go to the primary until a measure succeeds.
func (r *Reads) Measure(ctx context.Context) (time.Duration, error) {
	if r.replica == nil {
		return 0, nil
	}
	var seconds float64 // a duration, not an amount: float is fine here
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := r.replica.WithContext(ctx).Raw(r.lagQuery).Scan(&seconds).Error; err != nil {
		r.lag.Store(-1)
		return 0, err
	}
	lag := time.Duration(seconds * float64(time.Second))
	r.lag.Store(int64(max(lag, 0)))
	return lag, nil
}

// Run measures the lag every interval until ctx ends.
func (r *Reads) Run(ctx context.Context, every time.Duration) {
	if r.replica == nil {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		_, _ = r.Measure(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Collectors are the replica's metrics: its lag in seconds (-1 unknown) and
// whether stale-tolerant reads go to it (1) or to the primary (0).
func (r *Reads) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hub_db_replica_lag_seconds",
			Help: "Replay lag of the read replica (HUB_DATABASE_READ_URL) in seconds; -1 when unknown or no replica."},
			func() float64 {
				if lag, ok := r.Lag(); ok {
					return lag.Seconds()
				}
				return -1
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hub_db_reads_on_replica",
			Help: "1 while stale-tolerant reads go to the replica, 0 while they go to the primary (no replica, or lag past HUB_READ_MAX_LAG)."},
			func() float64 {
				if r.OnReplica() {
					return 1
				}
				return 0
			}),
	}
}
