package cuda

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/goembed/goembed/gocore/backend"
)

// TestGemmSearch: a product large enough to be searched gives the heuristic's result (within
// float16 rounding of differently ordered sums), runs one search, and a second backend finds
// the winner in the on-disk cache instead of searching again.
func TestGemmSearch(t *testing.T) {
	t.Setenv("GOEMBED_CACHE_DIR", t.TempDir())
	defer func(v bool) { gemmSearch = v }(gemmSearch)
	const T, in, outDim = 32768, 384, 1152 // 29 GFLOP: searched (searchMinFlops)
	rng := rand.New(rand.NewPCG(3, 4))
	rnd := func(n int, scale float32) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = scale * (2*rng.Float32() - 1)
		}
		return v
	}
	x, w, bias := rnd(T*in, 1), rnd(outDim*in, 0.05), rnd(outDim, 0.1)
	run := func(search bool) ([]float32, int) {
		gemmSearch = search
		be := openOrSkip(t, "float16")
		defer be.Close()
		tx, tw, tb, out := be.Upload(x), be.Upload(w), be.Upload(bias), be.Alloc(T*outDim)
		be.Linear(out, tx, tw, tb, T, in, outDim, backend.ActNone)
		got := make([]float32, T*outDim)
		if err := be.Download(got, out); err != nil {
			t.Fatal(err)
		}
		return got, be.searches
	}
	want, _ := run(false)
	got, n := run(true)
	if n != 1 {
		t.Fatalf("first backend ran %d searches, want 1", n)
	}
	again, n := run(true)
	if n != 0 {
		t.Fatalf("second backend ran %d searches, want 0 (the cached winner)", n)
	}
	for name, g := range map[string][]float32{"searched": got, "cached": again} {
		worst := 0.0
		for i := range want {
			worst = max(worst, math.Abs(float64(g[i]-want[i]))/(1+math.Abs(float64(want[i]))))
		}
		if worst > 4e-3 {
			t.Errorf("%s configuration: max relative difference %.2g from the heuristic's", name, worst)
		}
		t.Logf("%s configuration: max relative difference %.2g", name, worst)
	}
}

// BenchmarkGemmSearch times the four all-MiniLM-L6-v2 products at a full batch (65,536 rows)
// tuned two ways: the fastest of the heuristic's candidates, and the search from there
// (gemmsearch.go). tune_ms is the first call, tuning included.
func BenchmarkGemmSearch(b *testing.B) {
	const T, H, F = 65536, 384, 1536
	for _, s := range []struct {
		name    string
		in, out int
		act     backend.Activation
	}{{"qkv", H, 3 * H, backend.ActNone}, {"attn_out", H, H, backend.ActNone},
		{"ffn_up_gelu", H, F, backend.ActGELU}, {"ffn_down", F, H, backend.ActNone}} {
		for _, search := range []bool{false, true} {
			name := s.name + "/heuristic"
			if search {
				name = s.name + "/search"
			}
			b.Run(name, func(b *testing.B) {
				defer func(v bool) { gemmSearch = v }(gemmSearch)
				gemmSearch = search
				b.Setenv("GOEMBED_CACHE_DIR", b.TempDir()) // a search each time, not the cache's
				be := openOrSkip(b, "float16")
				defer be.Close()
				x, w, bias, out := be.Alloc(T*s.in), be.Alloc(s.out*s.in), be.Alloc(s.out), be.Alloc(T*s.out)
				start := time.Now()
				be.Linear(out, x, w, bias, T, s.in, s.out, s.act)
				if err := be.Sync(); err != nil {
					b.Fatal(err)
				}
				tuneMs := float64(time.Since(start).Microseconds()) / 1000
				const per = 20
				for b.Loop() {
					for range per {
						be.Linear(out, x, w, bias, T, s.in, s.out, s.act)
					}
					if err := be.Sync(); err != nil {
						b.Fatal(err)
					}
				}
				us := float64(b.Elapsed().Microseconds()) / float64(b.N*per)
				b.ReportMetric(us, "us/op")
				b.ReportMetric(2*float64(T)*float64(s.in)*float64(s.out)/us/1e6, "TFLOP/s")
				b.ReportMetric(tuneMs, "tune_ms")
			})
		}
	}
}

// TestSearchCacheFile: a search's winner is found again by the same GPU, library, dtype and
// bucket, and by no other (no GPU needed).
func TestSearchCacheFile(t *testing.T) {
	t.Setenv("GOEMBED_CACHE_DIR", t.TempDir())
	b := &Backend{name: "NVIDIA H100 80GB HBM3", ccMajor: 9, sms: 132, lt: &cublasLt{version: 130100}, dtype: "float16"}
	bucket := gemmKey{m: 1152, n: 65536, k: 384, epilogue: ltEpilogueBias}
	var algo [64]byte
	for i := range algo {
		algo[i] = byte(i * 7)
	}
	if _, ok := b.loadSearch(bucket); ok {
		t.Fatal("found a winner before any was saved")
	}
	b.saveSearch(bucket, algo)
	if got, ok := b.loadSearch(bucket); !ok || got != algo {
		t.Fatalf("loadSearch = %v, %v; want the saved configuration", got, ok)
	}
	other := *b
	other.dtype = "bfloat16"
	otherLib := *b
	otherLib.lt = &cublasLt{version: 130200}
	otherBucket := bucket
	otherBucket.n = 32768
	for name, c := range map[string]struct {
		b   *Backend
		key gemmKey
	}{"dtype": {&other, bucket}, "cuBLASLt version": {&otherLib, bucket}, "bucket": {b, otherBucket}} {
		if _, ok := c.b.loadSearch(c.key); ok {
			t.Errorf("another %s found the winner", name)
		}
	}
}
