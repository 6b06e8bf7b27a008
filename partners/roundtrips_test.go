package partners_test

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"gorm.io/gorm"
)

// countStatements counts the statements gorm sends on db (not BEGIN and
// COMMIT, nor the statements that bypass gorm): testdb.NewCounting counts
// them all at the driver.
func countStatements(db *gorm.DB) *atomic.Int64 {
	var n atomic.Int64
	inc := func(d *gorm.DB) {
		n.Add(1)
		if os.Getenv("BENCH_SQL") != "" {
			fmt.Println("SQL:", strings.Join(strings.Fields(d.Statement.SQL.String()), " "))
		}
	}
	cb := db.Callback()
	_ = cb.Create().After("gorm:create").Register("bench:count", inc)
	_ = cb.Query().After("gorm:query").Register("bench:count", inc)
	_ = cb.Update().After("gorm:update").Register("bench:count", inc)
	_ = cb.Delete().After("gorm:delete").Register("bench:count", inc)
	_ = cb.Row().After("gorm:row").Register("bench:count", inc)
	_ = cb.Raw().After("gorm:raw").Register("bench:count", inc)
	return &n
}
