// Package half converts between float32 and the 16-bit storage types of the GPU backends on the
// host: IEEE float16 and bfloat16, round to nearest even, as the GPUs' own conversions do.
// float16 saturates at +-65504 like the kernels' stores (shaders/prelude_*.h), so an upload
// never turns a large weight into infinity; NaN stays NaN.
//
// Bits are carried as uint16: Float16(f) is the float16 nearest f, Float32(h) its value.
package half

import (
	"math"
	"sync"
)

// EncodeFloat16 sets dst[i] = Float16(src[i]) for every i < len(src).
func EncodeFloat16(dst []uint16, src []float32) {
	for i, f := range src {
		dst[i] = Float16(f)
	}
}

// Float16 is the float16 nearest f (ties to even), saturated at +-65504.
func Float16(f float32) uint16 {
	u := math.Float32bits(f)
	sign := uint16(u>>16) & 0x8000
	u &= 0x7fffffff
	switch {
	case u > 0x7f800000: // NaN
		return sign | 0x7e00
	case u >= 0x477ff000: // rounds to 65520 or more: saturate (infinity too)
		return sign | 0x7bff
	case u >= 0x38800000: // normal float16: rebias the exponent, round the mantissa to 10 bits
		u -= 0x38000000
		u += 0xfff + (u>>13)&1
		return sign | uint16(u>>13)
	case u >= 0x33000000: // subnormal float16 (or rounds up to the smallest normal)
		e := u >> 23
		m := u&0x7fffff | 0x800000
		// f = m * 2^(e-150) and float16 subnormals count units of 2^-24: q = m >> (126 - e).
		shift := 126 - e
		q := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && q&1 == 1) {
			q++
		}
		return sign | uint16(q)
	default: // underflows to zero
		return sign
	}
}

// DecodeFloat16 sets dst[i] = Float32(src[i]) for every i < len(dst), through a table of all
// 65,536 values (256 KiB, built on first use): about 3x faster than Float32's branches, and
// every GPU batch's rows pass through here.
func DecodeFloat16(dst []float32, src []uint16) {
	t := float16Table()
	src = src[:len(dst)]
	for i, h := range src {
		dst[i] = t[h]
	}
}

var float16Table = sync.OnceValue(func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for h := range t {
		t[h] = Float32(uint16(h))
	}
	return &t
})

// Float32 is the value of float16 h.
func Float32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	e := uint32(h>>10) & 0x1f
	m := uint32(h & 0x3ff)
	switch {
	case e == 0x1f: // infinity or NaN
		return math.Float32frombits(sign | 0x7f800000 | m<<13)
	case e != 0:
		return math.Float32frombits(sign | (e+112)<<23 | m<<13)
	case m == 0:
		return math.Float32frombits(sign)
	default: // subnormal: m * 2^-24
		f := float32(m) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	}
}

// EncodeBFloat16 sets dst[i] = BFloat16(src[i]) for every i < len(src).
func EncodeBFloat16(dst []uint16, src []float32) {
	for i, f := range src {
		dst[i] = BFloat16(f)
	}
}

// BFloat16 is the bfloat16 nearest f (ties to even); a NaN stays a (quiet) NaN.
func BFloat16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 0x40
	}
	return uint16((u + 0x7fff + (u>>16)&1) >> 16)
}

// DecodeBFloat16 sets dst[i] = the float32 value of bfloat16 src[i] for every i < len(dst).
func DecodeBFloat16(dst []float32, src []uint16) {
	for i := range dst {
		dst[i] = math.Float32frombits(uint32(src[i]) << 16)
	}
}
