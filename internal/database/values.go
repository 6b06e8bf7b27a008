package database

import (
	"strconv"
	"strings"
)

// Deref is the value p points to, or T's zero value when p is nil: gorm
// rows hold nullable columns as pointers, domain types hold zero values.
func Deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// Int64Array is ids as a PostgreSQL bigint[] literal ("{1,2,3}"), bound as
// one parameter and cast to bigint[] in the statement (gorm expands a slice into one
// parameter per element, which a long list makes slow to plan).
func Int64Array(ids []int64) string {
	var b strings.Builder
	b.Grow(2 + len(ids)*8)
	b.WriteByte('{')
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	b.WriteByte('}')
	return b.String()
}
