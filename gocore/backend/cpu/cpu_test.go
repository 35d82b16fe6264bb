package cpu

// Each op against a plain float64 loop written here, independent of the code under test, under
// every GEMM available (the BLAS found, gonum) and several worker counts.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/goembed/goembed/gocore/backend"
)

// variants are the CPU backend under each GEMM and with uneven work splits.
func variants(t *testing.T) map[string]*Backend {
	t.Helper()
	lib, err := loadBLAS()
	if err != nil {
		t.Fatal(err)
	}
	v := map[string]*Backend{
		"gonum/1worker":  {blas: gonumBLAS(nil), workers: 1},
		"gonum/3workers": {blas: gonumBLAS(nil), workers: 3},
	}
	if lib.path != "" {
		v["blas/2workers"] = &Backend{blas: lib, workers: 2}
		v["blas/5workers"] = &Backend{blas: lib, workers: 5}
	} else {
		t.Logf("no BLAS library here (%s): testing the gonum GEMM only", lib.describe())
	}
	return v
}

func randoms(rng *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(scale * (2*rng.Float64() - 1))
	}
	return v
}

// near fails unless |got - want| <= tol * (|want| + rms(want)) everywhere.
func near(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	var ss float64
	for _, w := range want {
		ss += w * w
	}
	rms := math.Sqrt(ss / float64(max(len(want), 1)))
	for i, w := range want {
		if d := math.Abs(float64(got[i]) - w); !(d <= tol*(math.Abs(w)+rms)) {
			t.Fatalf("%s: [%d] = %.8g, want %.8g (diff %.3g)", what, i, got[i], w, d)
		}
	}
}

func download(t *testing.T, b *Backend, x backend.Tensor) []float32 {
	t.Helper()
	v := make([]float32, x.Len())
	if err := b.Download(v, x); err != nil {
		t.Fatal(err)
	}
	return v
}

func f64(v []float32) []float64 {
	r := make([]float64, len(v))
	for i, x := range v {
		r[i] = float64(x)
	}
	return r
}

func refGELU(x float64) float64 { return 0.5 * x * math.Erfc(-x/math.Sqrt2) }

func refLayerNorm(v, gamma, beta []float64, eps float64) []float64 {
	var mean, vr float64
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	for _, x := range v {
		vr += (x - mean) * (x - mean)
	}
	vr /= float64(len(v))
	out := make([]float64, len(v))
	for j, x := range v {
		out[j] = (x-mean)/math.Sqrt(vr+eps)*gamma[j] + beta[j]
	}
	return out
}

func TestGELU(t *testing.T) {
	tab := geluTable()
	for _, c := range []struct{ x, want float64 }{
		{0, 0}, {1, 0.8413447460685429}, {-1, -0.15865525393145707}, {3, 2.99595030590511}, {-3, -0.0040496940948901},
	} {
		if got := tab.gelu(float32(c.x)); math.Abs(float64(got)-c.want) > 1e-7*math.Abs(c.want) {
			t.Errorf("gelu(%g) = %.9g, want %.9g", c.x, got, c.want)
		}
	}
	// Off the table's nodes, through both ends and into float32's subnormals.
	for x := float32(-16); x <= 16; x += 1.0 / 999 {
		want := refGELU(float64(x))
		if d := math.Abs(float64(tab.gelu(x)) - want); d > 1e-7*math.Abs(want)+1e-44 {
			t.Fatalf("gelu(%g) = %g, want x/2 erfc(-x/sqrt2) = %g", x, tab.gelu(x), want)
		}
	}
	// Near 0, where GELU(x) ~ x/2, down to subnormals, and around the ends of the table.
	for _, x := range []float32{1e-4, 3e-8, 1e-8, 1e-12, 1e-30, 1e-38, 1e-40, 1e-45, 0x1p-26, 8, 7.9999995, -7.9999995} {
		for _, x := range []float32{x, -x} {
			want := refGELU(float64(x))
			if d := math.Abs(float64(tab.gelu(x)) - want); d > 1e-7*math.Abs(want)+1e-45 {
				t.Errorf("gelu(%g) = %g, want %g", x, tab.gelu(x), want)
			}
		}
	}
	if g := tab.gelu(float32(math.NaN())); !math.IsNaN(float64(g)) {
		t.Errorf("gelu(NaN) = %g", g)
	}
}

func TestExpNeg(t *testing.T) {
	// A fine grid over every x softmax can see, and on through float32's subnormals to zero.
	for x := -110.0; x <= 0; x += 1.0 / 4096 {
		got, want := expNeg(x), math.Exp(x)
		if x >= -104 && math.Abs(got-want) > 6e-10*want {
			t.Fatalf("expNeg(%g) = %.17g, want %.17g (relative error %.3g)", x, got, want, got/want-1)
		}
		// Rounded to float32, at most half an ulp (2^-24 relative) plus that error from e^x.
		if float32(got) != float32(want) && math.Abs(float64(float32(got))-want) > (0x1p-24+6e-10)*want+1e-45 {
			t.Fatalf("float32(expNeg(%g)) = %g, want %g", x, float32(got), float32(want))
		}
	}
	for _, x := range []float64{math.Inf(-1), -1e300, -745} {
		if got := expNeg(x); float32(got) != 0 || got < 0 {
			t.Errorf("expNeg(%g) = %g, want 0 in float32", x, got)
		}
	}
	if got := expNeg(0); got != 1 {
		t.Errorf("expNeg(0) = %.17g", got)
	}
	if got := expNeg(math.NaN()); !math.IsNaN(got) {
		t.Errorf("expNeg(NaN) = %g", got)
	}
}

func TestSoftmax(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	rows := [][]float32{{0}, {1, 2, 3}, {1000, 1001, 999}, {-1e4, 0, -1e4}, {5, 5, 5, 5}, {3, float32(math.Inf(-1)), 2}}
	for _, n := range []int{2, 7, 83, 128, 513} {
		rows = append(rows, randoms(rng, n, 8))
	}
	for _, row := range rows {
		got := append([]float32(nil), row...)
		inv := 1 / expRow(got)
		var sum, mx float64
		mx = math.Inf(-1)
		for _, v := range row {
			mx = max(mx, float64(v))
		}
		want := make([]float64, len(row))
		for j, v := range row {
			want[j] = math.Exp(float64(v) - mx)
			sum += want[j]
		}
		var gotSum float64
		for j := range want {
			want[j] /= sum
			got[j] = float32(float64(got[j]) * inv)
			gotSum += float64(got[j])
		}
		near(t, fmt.Sprint("softmax", row), got, want, 1e-6)
		if math.Abs(gotSum-1) > 1e-6 {
			t.Errorf("softmax%v sums to %g", row, gotSum)
		}
	}
	if s := expRow([]float32{1, float32(math.NaN()), 2}); !math.IsNaN(s) {
		t.Errorf("a NaN score gives the sum %g, want NaN", s)
	}
}

func TestLinear(t *testing.T) {
	for name, b := range variants(t) {
		for _, s := range [][3]int{{1, 1, 1}, {1, 32, 32}, {5, 33, 31}, {37, 384, 1536}, {9, 1536, 384}} {
			for _, act := range []backend.Activation{backend.ActNone, backend.ActGELU, backend.ActTanh} {
				for _, withBias := range []bool{true, false} {
					T, in, out := s[0], s[1], s[2]
					t.Run(fmt.Sprintf("%s/T%d_in%d_out%d_act%d_bias%v", name, T, in, out, act, withBias), func(t *testing.T) {
						rng := rand.New(rand.NewPCG(uint64(T*in), uint64(out)))
						x, w, bias := randoms(rng, T*in, 1), randoms(rng, out*in, 3/math.Sqrt(float64(in))), randoms(rng, out, 0.5)
						want := make([]float64, T*out)
						for r := range T {
							for o := range out {
								var v float64
								for k := range in {
									v += float64(x[r*in+k]) * float64(w[o*in+k])
								}
								if withBias {
									v += float64(bias[o])
								}
								switch act {
								case backend.ActGELU:
									v = refGELU(v)
								case backend.ActTanh:
									v = math.Tanh(v)
								}
								want[r*out+o] = v
							}
						}
						var tb backend.Tensor
						if withBias {
							tb = b.Upload(bias)
						}
						o := b.Alloc(T * out)
						b.Linear(o, b.Upload(x), b.Upload(w), tb, T, in, out, act)
						near(t, "Linear", download(t, b, o), want, 1e-5)
					})
				}
			}
		}
	}
}

func TestLinearByHand(t *testing.T) {
	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	// x [1,2] = [1 2]; w [3,2] = [[1 0] [0 1] [1 1]]; bias [0.5 0 -1]
	o := b.Alloc(3)
	b.Linear(o, b.Upload([]float32{1, 2}), b.Upload([]float32{1, 0, 0, 1, 1, 1}), b.Upload([]float32{0.5, 0, -1}), 1, 2, 3, backend.ActNone)
	near(t, "Linear", download(t, b, o), []float64{1.5, 2, 2}, 0)
}

func TestEmbed(t *testing.T) {
	const V, P, TT = 50, 40, 3
	for name, b := range variants(t) {
		for _, H := range []int{1, 31, 384} {
			for _, types := range []string{"types", "typ-only", "none"} {
				t.Run(fmt.Sprintf("%s/H%d_%s", name, H, types), func(t *testing.T) {
					rng := rand.New(rand.NewPCG(uint64(H), 7))
					const T = 23
					ids, pos, tys := make([]int32, T), make([]int32, T), make([]int32, T)
					for i := range T {
						ids[i], pos[i], tys[i] = int32(rng.IntN(V)), int32(rng.IntN(P)), int32(rng.IntN(TT))
					}
					word, posT, typT := randoms(rng, V*H, 1), randoms(rng, P*H, 1), randoms(rng, TT*H, 1)
					gamma, beta := randoms(rng, H, 2), randoms(rng, H, 1)
					want := make([]float64, 0, T*H)
					for i := range T {
						row := make([]float64, H)
						for j := range row {
							row[j] = float64(word[int(ids[i])*H+j]) + float64(posT[int(pos[i])*H+j])
							switch types {
							case "types":
								row[j] += float64(typT[int(tys[i])*H+j])
							case "typ-only": // no types: every token has type 0
								row[j] += float64(typT[j])
							}
						}
						want = append(want, refLayerNorm(row, f64(gamma), f64(beta), 1e-5)...)
					}
					var ttys, ttyp backend.Tensor
					if types != "none" {
						ttyp = b.Upload(typT)
					}
					if types == "types" {
						ttys = b.UploadInt32(tys)
					}
					o := b.Alloc(T * H)
					b.Embed(o, b.UploadInt32(ids), b.UploadInt32(pos), ttys, b.Upload(word), b.Upload(posT), ttyp, b.Upload(gamma), b.Upload(beta), T, H, 1e-5)
					near(t, "Embed", download(t, b, o), want, 1e-6)
				})
			}
		}
	}
}

func TestAddLayerNorm(t *testing.T) {
	for name, b := range variants(t) {
		for _, H := range []int{1, 2, 31, 384, 1024} {
			for _, alias := range []string{"", "x", "residual"} {
				t.Run(fmt.Sprintf("%s/H%d_out=%s", name, H, alias), func(t *testing.T) {
					const T = 13
					rng := rand.New(rand.NewPCG(uint64(H), 3))
					x, r := randoms(rng, T*H, 3), randoms(rng, T*H, 1)
					for i := range r {
						r[i] += 100 // a large mean: float32 one-pass statistics would lose digits
					}
					gamma, beta := randoms(rng, H, 2), randoms(rng, H, 1)
					var want []float64
					for i := range T {
						row := make([]float64, H)
						for j := range row {
							row[j] = float64(x[i*H+j] + r[i*H+j]) // the add is float32
						}
						want = append(want, refLayerNorm(row, f64(gamma), f64(beta), 1e-12)...)
					}
					tx, tr := b.Upload(x), b.Upload(r)
					o := map[string]backend.Tensor{"": b.Alloc(T * H), "x": tx, "residual": tr}[alias]
					b.AddLayerNorm(o, tx, tr, b.Upload(gamma), b.Upload(beta), T, H, 1e-12)
					near(t, "AddLayerNorm", download(t, b, o), want, 1e-6)
				})
			}
		}
	}
}

func TestAttention(t *testing.T) {
	for name, b := range variants(t) {
		for _, c := range []struct {
			lens      []int
			NH, HD, R int // R > 0: AttentionBiased with a table of 2R-1 relative positions
		}{{[]int{1}, 1, 1, 0}, {[]int{1}, 12, 32, 0}, {[]int{1, 7, 33, 128}, 12, 32, 0}, {[]int{5, 0, 70}, 2, 64, 0},
			{[]int{1}, 2, 8, 1}, {[]int{1, 7, 33, 128}, 12, 32, 20}, {[]int{5, 0, 70}, 2, 64, 100}} {
			t.Run(fmt.Sprintf("%s/seqs%v_NH%d_HD%d_R%d", name, c.lens, c.NH, c.HD, c.R), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(c.NH), uint64(c.HD)))
				H, st, maxLen := c.NH*c.HD, []int32{0}, 0
				for _, n := range c.lens {
					st = append(st, st[len(st)-1]+int32(n))
					maxLen = max(maxLen, n)
				}
				T := int(st[len(c.lens)])
				qkv := randoms(rng, T*3*H, 2)
				rel := randoms(rng, max(c.NH*(2*c.R-1), 0), 3)
				want := make([]float64, T*H)
				for s := range c.lens {
					for h := range c.NH {
						for i := int(st[s]); i < int(st[s+1]); i++ {
							p := make([]float64, 0, c.lens[s])
							var m, sum float64 = math.Inf(-1), 0
							for j := int(st[s]); j < int(st[s+1]); j++ {
								var d float64
								for e := range c.HD {
									d += float64(qkv[i*3*H+h*c.HD+e]) * float64(qkv[j*3*H+H+h*c.HD+e])
								}
								if c.R > 0 { // the bias of relative position j-i, clamped to the table
									d += math.Sqrt(float64(c.HD)) * float64(rel[h*(2*c.R-1)+min(max(j-i, 1-c.R), c.R-1)+c.R-1])
								}
								p = append(p, d/math.Sqrt(float64(c.HD)))
								m = max(m, p[len(p)-1])
							}
							for k := range p {
								p[k] = math.Exp(p[k] - m)
								sum += p[k]
							}
							for e := range c.HD {
								var v float64
								for k, j := 0, int(st[s]); j < int(st[s+1]); k, j = k+1, j+1 {
									v += p[k] / sum * float64(qkv[j*3*H+2*H+h*c.HD+e])
								}
								want[i*H+h*c.HD+e] = v
							}
						}
					}
				}
				o := b.Alloc(T * H)
				if c.R > 0 {
					b.AttentionBiased(o, b.Upload(qkv), b.UploadInt32(st), b.UploadFloat32(rel), len(c.lens), maxLen, c.NH, c.HD, c.R)
				} else {
					b.Attention(o, b.Upload(qkv), b.UploadInt32(st), len(c.lens), maxLen, c.NH, c.HD)
				}
				near(t, "Attention", download(t, b, o), want, 2e-5)
			})
		}
	}
}

func TestPoolByHand(t *testing.T) {
	// Three sequences of H = 2: rows {[1 2] [3 -4]}, {}, {[5 6]}.
	x := []float32{1, 2, 3, -4, 5, 6}
	st := []int32{0, 2, 2, 3}
	for _, c := range []struct {
		mode      backend.Pooling
		normalize bool
		want      []float64
	}{
		{backend.PoolMean, false, []float64{2, -1, 0, 0, 5, 6}},
		{backend.PoolCLS, false, []float64{1, 2, 0, 0, 5, 6}},
		{backend.PoolMax, false, []float64{3, 2, 0, 0, 5, 6}},
		{backend.PoolLast, false, []float64{3, -4, 0, 0, 5, 6}},
		{backend.PoolMean, true, []float64{2 / math.Sqrt(5), -1 / math.Sqrt(5), 0, 0, 5 / math.Sqrt(61), 6 / math.Sqrt(61)}},
		{backend.PoolLast, true, []float64{0.6, -0.8, 0, 0, 5 / math.Sqrt(61), 6 / math.Sqrt(61)}},
	} {
		t.Run(fmt.Sprintf("%s_normalize%v", c.mode, c.normalize), func(t *testing.T) {
			for name, b := range variants(t) {
				o := b.Alloc(6)
				b.Pool(o, b.Upload(x), b.UploadInt32(st), 3, 2, c.mode, c.normalize)
				near(t, name, download(t, b, o), c.want, 1e-7)
			}
		})
	}
}

func TestPoolMean(t *testing.T) {
	for name, b := range variants(t) {
		t.Run(name, func(t *testing.T) {
			const H = 384
			rng := rand.New(rand.NewPCG(1, 1))
			lens := []int{1, 7, 33, 128, 500}
			st := []int32{0}
			for _, n := range lens {
				st = append(st, st[len(st)-1]+int32(n))
			}
			x := randoms(rng, int(st[len(lens)])*H, 1)
			want := make([]float64, len(lens)*H)
			for s := range lens {
				for j := range H {
					var sum float64
					for r := st[s]; r < st[s+1]; r++ {
						sum += float64(x[int(r)*H+j])
					}
					want[s*H+j] = sum / float64(lens[s])
				}
			}
			o := b.Alloc(len(lens) * H)
			b.Pool(o, b.Upload(x), b.UploadInt32(st), len(lens), H, backend.PoolMean, false)
			near(t, "mean", download(t, b, o), want, 1e-6)
		})
	}
}

// TestErrors checks that misuse is recorded, reported once by Sync, and skips later ops.
func TestErrors(t *testing.T) {
	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	f := func(n int) backend.Tensor { return b.Alloc(n) }
	ids := b.UploadInt32([]int32{0, 5})
	freed := b.Alloc(8)
	b.Free(freed)
	type foreign struct{ backend.Tensor }
	for _, c := range []struct {
		name, want string
		op         func()
	}{
		{"short x", "Linear: x has 5 elements, need 6", func() { b.Linear(f(6), f(5), f(4), nil, 3, 2, 2, backend.ActNone) }},
		{"int as float", "Linear: w holds int32", func() { b.Linear(f(2), f(2), ids, nil, 1, 2, 1, backend.ActNone) }},
		{"nil x", "AddLayerNorm: x is nil", func() { b.AddLayerNorm(f(4), nil, f(4), f(2), f(2), 2, 2, 1e-5) }},
		{"freed", "freed", func() { b.AddLayerNorm(freed, f(4), f(4), f(2), f(2), 2, 2, 1e-5) }},
		{"foreign", "not a cpu tensor", func() { b.Pool(foreign{f(2)}, f(2), b.UploadInt32([]int32{0, 1}), 1, 2, backend.PoolCLS, false) }},
		{"id out of range", "Embed: ids[1] = 5, outside the table's 4 rows", func() {
			b.Embed(f(4), ids, b.UploadInt32([]int32{0, 0}), nil, f(8), f(2), nil, f(2), f(2), 2, 2, 1e-5)
		}},
		{"bad table", "Embed: word table has 7 elements", func() {
			b.Embed(f(4), ids, b.UploadInt32([]int32{0, 0}), nil, f(7), f(2), nil, f(2), f(2), 2, 2, 1e-5)
		}},
		{"longer than maxLen", "sequence 1 has length 3 (maxLen 2)", func() {
			b.Attention(f(12), f(36), b.UploadInt32([]int32{0, 1, 4}), 2, 2, 1, 3)
		}},
		{"decreasing starts", "Pool: sequence 0 has length -1", func() { b.Pool(f(2), f(2), b.UploadInt32([]int32{0, -1}), 1, 2, backend.PoolMean, false) }},
		{"beyond x", "Pool: x has 2 elements, need 4", func() { b.Pool(f(2), f(2), b.UploadInt32([]int32{0, 2}), 1, 2, backend.PoolMean, false) }},
		{"activation", "unknown activation 7", func() { b.Linear(f(1), f(1), f(1), nil, 1, 1, 1, 7) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.op()
			b.Linear(f(1), f(1), f(1), nil, 1, 1, 1, backend.ActNone) // skipped, keeps the first error
			if err := b.Download(make([]float32, 1), f(1)); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Download error = %v, want %q", err, c.want)
			}
			if err := b.Sync(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Sync error = %v, want %q", err, c.want)
			}
			if err := b.Sync(); err != nil {
				t.Errorf("second Sync = %v, want nil", err)
			}
		})
	}
	b.Close()
	b.Linear(f(1), f(1), f(1), nil, 1, 1, 1, backend.ActNone)
	if err := b.Sync(); err == nil || !strings.Contains(err.Error(), "after Close") {
		t.Errorf("use after Close: %v", err)
	}
}

func TestOpen(t *testing.T) {
	for _, dtype := range []string{"auto", "float32", ""} {
		b, _, err := backend.Open("cpu", dtype)
		if err != nil {
			t.Fatalf("Open(cpu, %q): %v", dtype, err)
		}
		if b.Name() != "cpu" || !strings.Contains(b.Describe(), "GEMM: ") {
			t.Errorf("Name %q, Describe %q", b.Name(), b.Describe())
		}
		t.Log(b.Describe())
	}
	for _, dtype := range []string{"float16", "bfloat16", "tfloat32"} {
		if _, _, err := backend.Open("cpu", dtype); err == nil || !strings.Contains(err.Error(), "computes in float32") {
			t.Errorf("Open(cpu, %q) error = %v", dtype, err)
		}
	}
}

func TestLinearBlocks(t *testing.T) {
	for _, c := range []struct{ T, out, workers, rows, cols int }{
		{0, 384, 2, 1, 1},
		{1, 384, 2, 1, 2},
		{1, 32, 2, 1, 1},      // too narrow to split
		{83, 1536, 2, 2, 1},   // one query: a row block per worker
		{15, 1536, 2, 1, 2},   // too short for two row blocks of 8
		{9, 384, 5, 1, 5},     // columns of 76
		{2656, 1152, 2, 6, 1}, // 32 passages of 83: 6 blocks of 442-443 rows
		{1100, 384, 2, 4, 1},  // 3 blocks would leave one worker idle a third of the time
		{4096, 384, 3, 9, 1},
	} {
		rows, cols := linearBlocks(c.T, c.out, c.workers)
		if rows != c.rows || cols != c.cols {
			t.Errorf("linearBlocks(T %d, out %d, workers %d) = %d x %d blocks, want %d x %d", c.T, c.out, c.workers, rows, cols, c.rows, c.cols)
		}
	}
}

func TestAttentionGroups(t *testing.T) {
	for _, c := range []struct{ B, L, NH, workers, groups, per int }{
		{32, 73, 12, 2, 1, 12},
		{32, 83, 12, 2, 2, 6},
		{32, 104, 12, 2, 2, 6},
		{32, 105, 12, 2, 3, 4},
		{16, 256, 12, 2, 12, 1},
		{1, 16, 12, 2, 2, 6}, // one sequence: a group per worker
		{1, 16, 12, 5, 4, 3}, // 5 groups of 3 would leave the last one empty
		{1, 1, 1, 2, 1, 1},
		{0, 0, 12, 2, 1, 12},
	} {
		groups, per := attentionGroups(c.B, c.L, c.NH, c.workers)
		if groups != c.groups || per != c.per || (groups-1)*per >= c.NH || groups*per < c.NH {
			t.Errorf("attentionGroups(B %d, L %d, NH %d, workers %d) = %d groups of %d, want %d of %d",
				c.B, c.L, c.NH, c.workers, groups, per, c.groups, c.per)
		}
	}
}
