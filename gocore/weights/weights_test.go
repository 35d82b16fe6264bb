package weights

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/nlpodyssey/safetensors"

	"github.com/goembed/goembed/gocore/backend/half"
)

// writeFile serialises tensors into a safetensors file in dir.
func writeFile(t *testing.T, dir string, tensors map[string]safetensors.TensorView) string {
	t.Helper()
	data, err := safetensors.Serialize(tensors, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "model.safetensors")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func view(t *testing.T, dt safetensors.DType, shape []uint64, data []byte) safetensors.TensorView {
	t.Helper()
	v, err := safetensors.NewTensorView(dt, shape, data)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDTypes(t *testing.T) {
	want := []float32{1, -2.5, 0.099975586, 65504}
	f32 := make([]byte, 16)
	for i, v := range want {
		b := math.Float32bits(v)
		f32[4*i], f32[4*i+1], f32[4*i+2], f32[4*i+3] = byte(b), byte(b>>8), byte(b>>16), byte(b>>24)
	}
	// The same values as IEEE half and as bfloat16 (upper 16 bits of float32, exact for these).
	f16 := []byte{0x00, 0x3c, 0x00, 0xc1, 0x66, 0x2e, 0xff, 0x7b}
	bf16 := []byte{0x80, 0x3f, 0x20, 0xc0, 0xcc, 0x3d, 0x80, 0x47}
	dir := t.TempDir()
	p := writeFile(t, dir, map[string]safetensors.TensorView{
		"a.f32":  view(t, safetensors.F32, []uint64{2, 2}, f32),
		"a.f16":  view(t, safetensors.F16, []uint64{4}, f16),
		"a.bf16": view(t, safetensors.BF16, []uint64{4}, bf16),
		"a.i64":  view(t, safetensors.I64, []uint64{1}, make([]byte, 8)),
	})
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tol := map[string]float64{"a.f32": 0, "a.f16": 0, "a.bf16": 0.004}
	for name, eps := range tol {
		got, shape, err := f.Float32(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n := shape[0]; n != 2 && n != 4 {
			t.Fatalf("%s: shape %v", name, shape)
		}
		for i := range want {
			w := float64(want[i])
			if name == "a.bf16" && i == 3 {
				w = 65536 // 65504 rounds to 2^16 in bfloat16
			}
			if math.Abs(float64(got[i])-w) > eps*math.Abs(w) {
				t.Errorf("%s[%d] = %v, want %v", name, i, got[i], w)
			}
		}
	}
	if _, _, err := f.Float32("a.i64"); err == nil {
		t.Error("I64 tensor converted without error")
	}
	if _, _, err := f.Float32("missing"); err == nil {
		t.Error("missing tensor gave no error")
	}
}

func TestF16Special(t *testing.T) {
	cases := map[uint16]float32{
		0x0000: 0, 0x8000: float32(math.Copysign(0, -1)), 0x0001: 5.9604645e-08,
		0x03ff: 6.097555e-05, 0x3555: 0.33325195, 0x7c00: float32(math.Inf(1)),
	}
	for h, want := range cases {
		if got := half.Float32(h); got != want {
			t.Errorf("half.Float32(%#04x) = %v, want %v", h, got, want)
		}
	}
	if !math.IsNaN(float64(half.Float32(0x7e00))) {
		t.Error("0x7e00 is not NaN")
	}
}

func TestCorrupt(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string][]byte{
		"short":    {1, 2, 3},
		"huge-hdr": {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, '{', '}'},
		"bad-json": append([]byte{4, 0, 0, 0, 0, 0, 0, 0}, []byte("{{{{")...),
		"past-end": append([]byte{60, 0, 0, 0, 0, 0, 0, 0}, []byte(`{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}    `)...),
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if f, err := Open(p); err == nil {
			f.Close()
			t.Errorf("%s: opened without error", name)
		}
	}
}
