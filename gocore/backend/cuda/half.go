package cuda

import "math"

// Host conversions between float32 and the 16-bit storage types, round to nearest even, as the
// GPU's cvt.rn does. float16 saturates at +-65504 like the kernels' stores (prelude_cuda.h), so
// an upload never turns a large weight into infinity; NaN stays NaN.

// f32ToF16 sets dst[i] = float16(src[i]).
func f32ToF16(dst []uint16, src []float32) {
	for i, f := range src {
		dst[i] = f16FromF32(f)
	}
}

func f16FromF32(f float32) uint16 {
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

// f16ToF32 sets dst[i] = float32(src[i]) for the first len(dst) elements.
func f16ToF32(dst []float32, src []uint16) {
	for i := range dst {
		dst[i] = f32FromF16(src[i])
	}
}

func f32FromF16(h uint16) float32 {
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

// f32ToBF16 sets dst[i] = bfloat16(src[i]).
func f32ToBF16(dst []uint16, src []float32) {
	for i, f := range src {
		dst[i] = bf16FromF32(f)
	}
}

func bf16FromF32(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 0x40
	}
	return uint16((u + 0x7fff + (u>>16)&1) >> 16)
}

// bf16ToF32 sets dst[i] = float32(src[i]) for the first len(dst) elements.
func bf16ToF32(dst []float32, src []uint16) {
	for i := range dst {
		dst[i] = math.Float32frombits(uint32(src[i]) << 16)
	}
}
