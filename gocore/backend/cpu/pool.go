package cpu

import (
	"math"

	"github.com/goembed/goembed/gocore/backend"
)

// Pool reduces the rows seqStarts[b] .. seqStarts[b+1]-1 of x [T, H] to row b of out [B, H]:
//
//	mean  sum of the rows / L (summed in float64)
//	cls   the first row
//	max   the element-wise maximum
//	last  the last row
//
// An empty sequence gives a zero row. With normalize, each row is then divided by
// max(||row||_2, 1e-12), as torch.nn.functional.normalize does.
func (b *Backend) Pool(out, x, seqStarts backend.Tensor, B, H int, mode backend.Pooling, normalize bool) {
	if mode < backend.PoolMean || mode > backend.PoolLast {
		b.failf("Pool: unknown pooling mode %d", mode)
		return
	}
	st := b.seqStarts("Pool", seqStarts, B, -1, -1)
	if st == nil {
		return
	}
	xs := b.floats("Pool", "x", x, int(st[B])*H)
	o := b.floats("Pool", "out", out, B*H)
	if !b.ok() {
		return
	}
	b.parallel(B, 1, func(lo, hi int) {
		acc := make([]float64, H)
		for s := lo; s < hi; s++ {
			rows := xs[int(st[s])*H : int(st[s+1])*H]
			dst := o[s*H : (s+1)*H]
			L := len(rows) / H
			switch {
			case L == 0:
				clear(dst)
			case mode == backend.PoolCLS:
				copy(dst, rows[:H])
			case mode == backend.PoolLast:
				copy(dst, rows[(L-1)*H:])
			case mode == backend.PoolMax:
				copy(dst, rows[:H])
				for r := 1; r < L; r++ {
					for j, v := range rows[r*H : (r+1)*H] {
						dst[j] = max(dst[j], v)
					}
				}
			case mode == backend.PoolMean:
				clear(acc)
				for r := range L {
					for j, v := range rows[r*H : (r+1)*H] {
						acc[j] += float64(v)
					}
				}
				for j, v := range acc {
					dst[j] = float32(v / float64(L))
				}
			}
			if normalize {
				var ss float64
				for _, v := range dst {
					ss += float64(v) * float64(v)
				}
				inv := 1 / max(math.Sqrt(ss), 1e-12)
				for j, v := range dst {
					dst[j] = float32(float64(v) * inv)
				}
			}
		}
	})
}
