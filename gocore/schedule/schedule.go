// Package schedule orders sequences for the encoder: longest first (as sentence-transformers
// sorts), cut into batches by a sequence count and a token budget; each batch keeps the
// caller's indices so results go back to their original places.
package schedule

import "sort"

// Batch is a run of sequences encoded in one forward.
type Batch struct {
	Index  []int // caller's index of each sequence, in batch order
	Tokens int   // sum of the sequences' lengths (packed size)
	MaxLen int   // the longest sequence
}

// Plan sorts sequences by length, longest first (ties keep input order), and cuts batches of at
// most batchSize sequences and at most tokenBudget tokens (a longer single sequence gets a batch
// of its own). batchSize and tokenBudget must be positive.
func Plan(lengths []int, batchSize, tokenBudget int) []Batch {
	order := make([]int, len(lengths))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return lengths[order[a]] > lengths[order[b]] })

	var batches []Batch
	var cur Batch
	for _, i := range order {
		n := lengths[i]
		if len(cur.Index) > 0 && (len(cur.Index) == batchSize || cur.Tokens+n > tokenBudget) {
			batches = append(batches, cur)
			cur = Batch{}
		}
		cur.Index = append(cur.Index, i)
		cur.Tokens += n
		cur.MaxLen = max(cur.MaxLen, n)
	}
	if len(cur.Index) > 0 {
		batches = append(batches, cur)
	}
	return batches
}
