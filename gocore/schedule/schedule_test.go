package schedule

import (
	"math/rand"
	"testing"
)

func TestPlanCoversEveryIndexOnce(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, c := range []struct{ n, batch, budget int }{
		{0, 32, 1000}, {1, 1, 1}, {100, 7, 1 << 30}, {1000, 32, 500}, {257, 256, 8192},
	} {
		lengths := make([]int, c.n)
		for i := range lengths {
			lengths[i] = 2 + rng.Intn(300)
		}
		seen := make([]bool, c.n)
		prevMin := 1 << 30
		for _, b := range Plan(lengths, c.batch, c.budget) {
			if len(b.Index) == 0 || len(b.Index) > c.batch {
				t.Fatalf("%+v: batch of %d sequences", c, len(b.Index))
			}
			if b.Tokens > c.budget && len(b.Index) > 1 {
				t.Fatalf("%+v: %d tokens over budget with %d sequences", c, b.Tokens, len(b.Index))
			}
			tokens, maxLen := 0, 0
			for _, i := range b.Index {
				if seen[i] {
					t.Fatalf("%+v: index %d twice", c, i)
				}
				seen[i] = true
				if lengths[i] > prevMin {
					t.Fatalf("%+v: not sorted longest first", c)
				}
				prevMin = lengths[i]
				tokens += lengths[i]
				maxLen = max(maxLen, lengths[i])
			}
			if tokens != b.Tokens || maxLen != b.MaxLen {
				t.Fatalf("%+v: batch totals %d/%d, want %d/%d", c, b.Tokens, b.MaxLen, tokens, maxLen)
			}
		}
		for i, ok := range seen {
			if !ok {
				t.Fatalf("%+v: index %d missing", c, i)
			}
		}
	}
}

func TestOversizedSequenceGetsOwnBatch(t *testing.T) {
	got := Plan([]int{10, 600, 10}, 32, 512)
	if len(got) != 2 || len(got[0].Index) != 1 || got[0].Index[0] != 1 || len(got[1].Index) != 2 {
		t.Errorf("plan %+v", got)
	}
}
