package half

import (
	"math"
	"testing"
)

// f16Ref rounds through float64 arithmetic: the nearest float16 by brute force.
func f16Ref(f float32) uint16 {
	if f != f {
		return 0x7e00
	}
	best, bestD := uint16(0), math.Inf(1)
	for h := 0; h < 0x7c00; h++ {
		d := math.Abs(float64(Float32(uint16(h))) - math.Abs(float64(f)))
		if d < bestD || (d == bestD && h&1 == 0) {
			best, bestD = uint16(h), d
		}
	}
	if math.Signbit(float64(f)) {
		best |= 0x8000
	}
	return best
}

func TestF16RoundTrip(t *testing.T) {
	for h := 0; h < 0x10000; h++ {
		if h&0x7c00 == 0x7c00 {
			continue
		}
		if got := Float16(Float32(uint16(h))); got != uint16(h) {
			t.Fatalf("f16 %#04x -> %v -> %#04x", h, Float32(uint16(h)), got)
		}
	}
	cases := []float32{0, 1, -1, 65504, 65519, 65520, 1e6, -1e6, 5.9604645e-08, 2.9802322e-08,
		2.98023259e-08, 6.1035156e-05, 6.1e-05, 1.0009765625, 1.00048828125, 1.00146484375, 0.1, -3.14159}
	for _, f := range cases {
		want := f16Ref(f)
		if math.Abs(float64(f)) >= 65520 {
			want = 0x7bff | uint16(math.Float32bits(f)>>16)&0x8000
		}
		if got := Float16(f); got != want {
			t.Errorf("f16(%v) = %#04x, want %#04x", f, got, want)
		}
	}
	if got := Float16(float32(math.NaN())); got&0x7c00 != 0x7c00 || got&0x3ff == 0 {
		t.Errorf("f16(NaN) = %#04x", got)
	}
}

func TestBF16(t *testing.T) {
	for _, c := range []struct {
		f    float32
		want uint16
	}{{1, 0x3f80}, {-2, 0xc000}, {1.00390625, 0x3f80}, {1.01171875, 0x3f82}, {3.0e38, 0x7f62}} {
		if got := BFloat16(c.f); got != c.want {
			t.Errorf("bf16(%v) = %#04x, want %#04x", c.f, got, c.want)
		}
	}
	dst := make([]float32, 1)
	DecodeBFloat16(dst, []uint16{0x3fc0})
	if dst[0] != 1.5 {
		t.Errorf("bf16 0x3fc0 = %v, want 1.5", dst[0])
	}
}

// TestDecodeFloat16Table: the table decode gives Float32's bits for all 65,536 values.
func TestDecodeFloat16Table(t *testing.T) {
	src := make([]uint16, 1<<16)
	for i := range src {
		src[i] = uint16(i)
	}
	dst := make([]float32, len(src))
	DecodeFloat16(dst, src)
	for i, h := range src {
		if got, want := math.Float32bits(dst[i]), math.Float32bits(Float32(h)); got != want {
			t.Fatalf("%#04x: table %#08x, Float32 %#08x", h, got, want)
		}
	}
}
