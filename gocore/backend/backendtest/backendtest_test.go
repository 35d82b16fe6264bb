package backendtest

import (
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/goembed/goembed/gocore/backend"
	"github.com/goembed/goembed/gocore/backend/cpu"
)

// storage is a test double for a GPU backend: the cpu backend with every tensor rounded to a
// narrower storage type after each upload and op, and optionally one deliberate bug.
type storage struct {
	backend.Backend
	round func(float32) float32
	bug   string
}

type wrapped struct{ t backend.Tensor }

func (w *wrapped) Len() int { return w.t.Len() }

func in(t backend.Tensor) backend.Tensor {
	if w, ok := t.(*wrapped); ok {
		return w.t
	}
	return t // nil
}

func newStorage(t *testing.T, round func(float32) float32, bug string) *storage {
	b, err := cpu.New()
	if err != nil {
		t.Fatal(err)
	}
	return &storage{Backend: b, round: round, bug: bug}
}

func (s *storage) host(t backend.Tensor) []float32 {
	v := make([]float32, t.Len())
	s.Backend.Download(v, in(t))
	return v
}

// set replaces t's contents by v, rounded.
func (s *storage) set(t backend.Tensor, v []float32) {
	for i := range v {
		v[i] = s.round(v[i])
	}
	w := t.(*wrapped)
	s.Backend.Free(w.t)
	w.t = s.Backend.Upload(v)
}

func (s *storage) Upload(v []float32) backend.Tensor {
	t := &wrapped{s.Backend.Upload(v)}
	s.set(t, append([]float32(nil), v...))
	return t
}
func (s *storage) UploadInt32(v []int32) backend.Tensor { return &wrapped{s.Backend.UploadInt32(v)} }
func (s *storage) WriteInt32(d backend.Tensor, v []int32) {
	s.Backend.WriteInt32(in(d), v)
}
func (s *storage) Alloc(n int) backend.Tensor { return &wrapped{s.Backend.Alloc(n)} }
func (s *storage) Free(t backend.Tensor)      { s.Backend.Free(in(t)) }
func (s *storage) Download(d []float32, t backend.Tensor) error {
	return s.Backend.Download(d, in(t))
}

func (s *storage) Embed(out, ids, positions, types, word, pos, typ, gamma, beta backend.Tensor, T, H int, eps float32) {
	if s.bug == "embed-no-types" {
		typ = nil
	}
	s.Backend.Embed(in(out), in(ids), in(positions), in(types), in(word), in(pos), in(typ), in(gamma), in(beta), T, H, eps)
	s.set(out, s.host(out))
}

func (s *storage) Linear(out, x, w, bias backend.Tensor, T, inDim, outDim int, act backend.Activation) {
	if s.bug == "gelu-tanh" && act == backend.ActGELU {
		s.Backend.Linear(in(out), in(x), in(w), in(bias), T, inDim, outDim, backend.ActNone)
		v := s.host(out)
		for i, x := range v {
			f := float64(x)
			v[i] = float32(0.5 * f * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(f+0.044715*f*f*f))))
		}
		s.set(out, v)
		return
	}
	s.Backend.Linear(in(out), in(x), in(w), in(bias), T, inDim, outDim, act)
	s.set(out, s.host(out))
}

func (s *storage) Attention(out, qkv, seqStarts backend.Tensor, B, maxLen, NH, HD int) {
	q := qkv
	if s.bug == "attn-scale" { // scores / HD instead of / sqrt(HD)
		v := s.host(qkv)
		H := NH * HD
		for i := range v {
			if i%(3*H) < H {
				v[i] /= float32(math.Sqrt(float64(HD)))
			}
		}
		q = s.Upload(v)
		defer s.Free(q)
	}
	s.Backend.Attention(in(out), in(q), in(seqStarts), B, maxLen, NH, HD)
	s.set(out, s.host(out))
}

func (s *storage) AddLayerNorm(out, x, residual, gamma, beta backend.Tensor, T, H int, eps float32) {
	s.Backend.AddLayerNorm(in(out), in(x), in(residual), in(gamma), in(beta), T, H, eps)
	s.set(out, s.host(out))
}

func (s *storage) Pool(out, x, seqStarts backend.Tensor, B, H int, mode backend.Pooling, skip int, normalize bool) {
	s.Backend.Pool(in(out), in(x), in(seqStarts), B, H, mode, skip, normalize)
	s.set(out, s.host(out))
}

// toFloat16 rounds to the nearest IEEE half (ties to even), subnormals included.
func toFloat16(x float32) float32 {
	if math.Abs(float64(x)) < 0x1p-14 {
		return float32(math.RoundToEven(float64(x)*0x1p24) * 0x1p-24)
	}
	b := math.Float32bits(x)
	b += 0x0fff + (b>>13)&1
	return math.Float32frombits(b &^ 0x1fff)
}

// toBFloat16 rounds to the nearest bfloat16 (ties to even).
func toBFloat16(x float32) float32 {
	b := math.Float32bits(x)
	b += 0x7fff + (b>>16)&1
	return math.Float32frombits(b &^ 0xffff)
}

func TestRounding(t *testing.T) {
	for _, c := range []struct {
		f        func(float32) float32
		in, want float32
	}{
		{toFloat16, 1 + 0x1p-11, 1}, // tie, to even
		{toFloat16, 1 + 3*0x1p-11, 1 + 0x1p-9},
		{toFloat16, 0x1p-25 * 3, 0x1p-23}, // subnormal
		{toFloat16, 65504, 65504},
		{toBFloat16, 1 + 0x1p-8, 1},
		{toBFloat16, 1 + 3*0x1p-8, 1 + 0x1p-6},
	} {
		if got := c.f(c.in); got != c.want {
			t.Errorf("round(%g) = %g, want %g", c.in, got, c.want)
		}
	}
}

// TestStorageTypes checks that the default tolerances let a correct backend with half-width
// storage and float32 arithmetic pass: the ceilings are not too tight.
func TestStorageTypes(t *testing.T) {
	for _, c := range []struct {
		round func(float32) float32
		tol   Tolerance
	}{
		{func(x float32) float32 { return x }, TolFloat32},
		{toFloat16, TolFloat16},
		{toBFloat16, TolBFloat16},
	} {
		t.Run(c.tol.Name, func(t *testing.T) {
			Run(t, func() backend.Backend { return newStorage(t, c.round, "") }, c.tol)
		})
	}
}

// TestTape runs the suite, its Graphs cases included, on Tape over the cpu backend, and checks
// that the graph cases are really there.
func TestTape(t *testing.T) {
	var records int
	t.Run("float32", func(t *testing.T) {
		Run(t, func() backend.Backend {
			b, err := cpu.New()
			if err != nil {
				t.Fatal(err)
			}
			tb := Tape(b)
			t.Cleanup(func() { records = tb.Records })
			return tb
		}, TolFloat32)
	})
	if want := 3 * 4; records != want {
		t.Errorf("the Graphs cases recorded %d graphs, want %d", records, want)
	}
}

// TestBuggyBackend is run by TestSuiteCatchesBugs in a child process, with one bug planted.
func TestBuggyBackend(t *testing.T) {
	bug := os.Getenv("BACKENDTEST_BUG")
	if bug == "" {
		t.Skip("run by TestSuiteCatchesBugs")
	}
	round, tol := toFloat16, TolFloat16
	if bug == "gelu-tanh" { // a 1e-3 difference only float32 can see
		round, tol = func(x float32) float32 { return x }, TolFloat32
	}
	Run(t, func() backend.Backend { return newStorage(t, round, bug) }, tol)
}

// TestSuiteCatchesBugs plants one bug at a time and checks that the suite fails exactly the
// cases that use the broken op, with a message that says where.
func TestSuiteCatchesBugs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite in child processes")
	}
	for _, c := range []struct {
		bug    string
		fail   []string // failing subtests
		nofail []string // passing ones
	}{
		{"gelu-tanh", []string{"Linear/T64_in384_out1536_gelu", "Layer/"}, []string{"Linear/T64_in384_out1536_tanh", "Attention/"}},
		{"attn-scale", []string{"Attention/seqs1,7,33,128_NH12_HD32", "Layer/"}, []string{"Attention/seqs1_NH12_HD32", "Linear/"}},
		{"embed-no-types", []string{"Embed/H384_seqs1,7,33,128_types", "WriteInt32/", "Layer/"}, []string{"Embed/H384_seqs1,7,33,128_notypes", "Pool/"}},
	} {
		t.Run(c.bug, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBuggyBackend$", "-test.v")
			cmd.Env = append(os.Environ(), "BACKENDTEST_BUG="+c.bug)
			outb, err := cmd.CombinedOutput()
			out := string(outb)
			if err == nil {
				t.Fatalf("suite passed a backend with bug %s", c.bug)
			}
			for _, name := range c.fail {
				if !strings.Contains(out, "--- FAIL: TestBuggyBackend/"+name) {
					t.Errorf("%s: no failure of %s", c.bug, name)
				}
			}
			for _, name := range c.nofail {
				if !strings.Contains(out, "--- PASS: TestBuggyBackend/"+name) || strings.Contains(out, "--- FAIL: TestBuggyBackend/"+name) {
					t.Errorf("%s: %s should pass", c.bug, name)
				}
			}
			for _, want := range []string{"normalised error", "max abs diff", "first mismatch at ["} {
				if !strings.Contains(out, want) {
					t.Errorf("%s: failure messages lack %q:\n%s", c.bug, want, out)
				}
			}
		})
	}
}

func TestCompare(t *testing.T) {
	want := []float32{1, -2, 3, 4, 5, 6}
	for _, c := range []struct {
		name string
		got  []float32
		msg  []string // "" when it must pass
	}{
		{"equal", []float32{1, -2, 3, 4, 5, 6}, nil},
		{"within", []float32{1, -2, 3, 4, 5, 6.0001}, nil},
		{"off", []float32{1, -2, 3, 4, 7, 6}, []string{"max abs diff 2 at [1, 1]", "first mismatch at [1, 1]"}},
		{"nan", []float32{1, -2, float32(math.NaN()), 4, 5, 6}, []string{"non-finite value at [0, 2]"}},
		{"short", []float32{1}, []string{"1 values, want 6"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			msg := Compare(c.got, want, 3, 1e-4)
			if (msg == "") != (c.msg == nil) {
				t.Fatalf("Compare = %q", msg)
			}
			for _, s := range c.msg {
				if !strings.Contains(msg, s) {
					t.Errorf("Compare = %q, want it to contain %q", msg, s)
				}
			}
		})
	}
}
