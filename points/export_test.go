package points

// SetGroupCommitHook makes the group commit of t call f with the size of
// each batch, in the goroutine that posts it, before posting it (f may
// block, holding the batch in flight).
func SetGroupCommitHook(t *Transactions, f func(n int)) { t.group.onBatch = f }
