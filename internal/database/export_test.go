package database

import (
	"time"

	"gorm.io/gorm"
)

// NewReadsWithLagQuery is NewReads measuring the lag with query instead: the
// tests make a lag that a server on the same machine never shows.
func NewReadsWithLagQuery(primary, replica *gorm.DB, maxLag time.Duration, query string) *Reads {
	r := NewReads(primary, replica, maxLag)
	r.lagQuery = query
	return r
}
