//go:build darwin

package metalbridge

import (
	"unsafe"

	"github.com/goembed/goembed/gocore/backend"
)

// AddLayerNorm dispatches layernorm_<dtype>: one threadgroup per row t of [T, H], computing
//
//	v = x[t] + residual[t];  out[t] = (v - mean(v)) / sqrt(var(v) + eps) * gamma + beta
//
// with the row in H floats of threadgroup memory and the statistics in float32. residual may
// be nil; out may alias x or residual.
func (b *Backend) AddLayerNorm(out, x, residual, gamma, beta backend.Tensor, T, H int, eps float32) {
	const op = "AddLayerNorm"
	name := "layernorm_" + b.storage.suffix()
	if !b.rowKernelOK(op, name, T, H) {
		return
	}
	o, xx := b.floats(op, "out", out, T*H), b.floats(op, "x", x, T*H)
	r, rok := b.optFloats(op, "residual", residual, T*H)
	g, be := b.floats(op, "gamma", gamma, H), b.floats(op, "beta", beta, H)
	if o == nil || xx == nil || !rok || g == nil || be == nil {
		return
	}
	pool, ok := b.enter()
	if !ok {
		return
	}
	defer b.unlock(pool)
	a := layerNormArgs{T: int32(T), H: int32(H), Eps: eps}
	if r != nil {
		a.HasResidual = 1
	}
	b.dispatch(name, [3]int{T, 1, 1}, rowThreads(H, b.pipes[name].maxThreads), 4*H,
		unsafe.Pointer(&a), unsafe.Sizeof(a), o, xx, r, g, be)
}
