package backend

import "testing"

func TestPoolingSet(t *testing.T) {
	for _, c := range []struct {
		p     Pooling
		count int
		name  string
	}{
		{PoolMean, 1, "mean"},
		{PoolCLS | PoolMean, 2, "cls+mean"},
		{PoolAll, 6, "cls+max+mean+mean_sqrt_len_tokens+weightedmean+lasttoken"},
	} {
		if c.p.Count() != c.count || c.p.String() != c.name || !c.p.Valid() {
			t.Errorf("%d: count %d name %q valid %v, want %d %q", int(c.p), c.p.Count(), c.p.String(), c.p.Valid(), c.count, c.name)
		}
	}
	for _, bad := range []Pooling{0, PoolAll + 1, -1} {
		if bad.Valid() {
			t.Errorf("Pooling(%d) is valid", int(bad))
		}
	}
	for i, n := range poolNames {
		if p, ok := PoolingByName(n); !ok || p != 1<<i {
			t.Errorf("PoolingByName(%q) = %v, %v", n, p, ok)
		}
	}
	if _, ok := PoolingByName("median"); ok {
		t.Error(`PoolingByName("median") found a mode`)
	}
}
