package cpu

import (
	"math"

	"github.com/goembed/goembed/gocore/backend"
)

// Pool reduces the rows s0+skip' .. s1-1 of x [T, H] (s0 = seqStarts[b], s1 = seqStarts[b+1],
// skip' = min(skip, L), L = s1-s0, n = L-skip' rows kept) to row b of out [B, K*H], one H-wide
// part per mode in the order of the backend.Pooling constants:
//
//	cls          the first kept row (row s0 when none is kept)
//	max          the element-wise maximum (-inf when none is kept)
//	mean         the sum of the kept rows / n
//	mean_sqrt    the sum of the kept rows / sqrt(n)
//	weightedmean sum_r (r+1) x[s0+r] / sum_r (r+1) over the kept rows, r counted from s0
//	last         the last row
//
// sums in float64; no kept rows give zeros (but for cls and max), an empty sequence zeros. With
// normalize, each row of out is then divided by max(||row||_2, 1e-12), as
// torch.nn.functional.normalize does.
func (b *Backend) Pool(out, x, seqStarts backend.Tensor, B, H int, mode backend.Pooling, skip int, normalize bool) {
	if !mode.Valid() {
		b.failf("Pool: invalid pooling modes %d", mode)
		return
	}
	if skip < 0 {
		b.failf("Pool: negative skip %d", skip)
		return
	}
	K := mode.Count()
	st := b.seqStarts("Pool", seqStarts, B, -1, -1)
	if st == nil {
		return
	}
	xs := b.floats("Pool", "x", x, int(st[B])*H)
	o := b.floats("Pool", "out", out, B*K*H)
	if !b.ok() {
		return
	}
	b.parallel(B, 1, func(lo, hi int) {
		sum, wsum := make([]float64, H), make([]float64, H)
		for s := lo; s < hi; s++ {
			rows := xs[int(st[s])*H : int(st[s+1])*H]
			dst := o[s*K*H : (s+1)*K*H]
			L := len(rows) / H
			first := min(skip, L)
			n := L - first
			if L == 0 {
				clear(dst)
				continue
			}
			clear(sum)
			clear(wsum)
			var wtot float64
			if mode&(backend.PoolMean|backend.PoolMeanSqrtLen|backend.PoolWeightedMean) != 0 {
				for r := first; r < L; r++ {
					w := float64(r + 1)
					wtot += w
					for j, v := range rows[r*H : (r+1)*H] {
						sum[j] += float64(v)
						wsum[j] += w * float64(v)
					}
				}
			}
			part := dst
			for m := backend.PoolCLS; m <= backend.PoolLast; m <<= 1 {
				if mode&m == 0 {
					continue
				}
				d := part[:H]
				part = part[H:]
				switch m {
				case backend.PoolCLS:
					r := first
					if n == 0 {
						r = 0 // as argmax over an all-zero mask
					}
					copy(d, rows[r*H:(r+1)*H])
				case backend.PoolLast:
					if n == 0 {
						clear(d)
					} else {
						copy(d, rows[(L-1)*H:])
					}
				case backend.PoolMax:
					for j := range d {
						d[j] = float32(math.Inf(-1))
					}
					for r := first; r < L; r++ {
						for j, v := range rows[r*H : (r+1)*H] {
							d[j] = max(d[j], v)
						}
					}
				case backend.PoolMean:
					for j, v := range sum {
						d[j] = float32(v / max(float64(n), 1e-9))
					}
				case backend.PoolMeanSqrtLen:
					for j, v := range sum {
						d[j] = float32(v / math.Sqrt(max(float64(n), 1e-9)))
					}
				case backend.PoolWeightedMean:
					for j, v := range wsum {
						d[j] = float32(v / max(wtot, 1e-9))
					}
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
