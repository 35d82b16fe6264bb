package cuda

import (
	"strings"
	"unsafe"
)

// The page-locked block b.pinned is laid out as
//
//	[0, 8*maxParams)                     kernelParams: void* to each argument's value
//	[8*maxParams, paramBytes)            the argument values, each at an 8-byte-aligned offset
//	[paramBytes, paramBytes+8)           cuBLASLt alpha and beta (float32)
//
// cuLaunchKernel copies the values before it returns, so one block serves every launch.
const (
	maxParams   = 16
	paramBytes  = 1024
	pinnedBytes = paramBytes + 64
)

// params builds the argument list of one kernel launch in b.pinned.
type params struct {
	b    *Backend
	n    int
	off  uintptr
	fail bool
}

func (b *Backend) params() *params {
	b.p = params{b: b, off: 8 * maxParams}
	return &b.p
}

// add copies size bytes at v as the next kernel argument.
func (p *params) add(v unsafe.Pointer, size uintptr) *params {
	if p.n == maxParams || p.off+size > paramBytes {
		p.fail = true
		return p
	}
	base := p.b.pinned
	copy(unsafe.Slice((*byte)(unsafe.Add(base, p.off)), size), unsafe.Slice((*byte)(v), size))
	*(*uint64)(unsafe.Add(base, 8*p.n)) = uint64(uintptr(unsafe.Add(base, p.off)))
	p.n++
	p.off += (size + 7) &^ 7
	return p
}

// ptr adds a device pointer argument (0 for an absent optional input).
func (p *params) ptr(t *tensor) *params {
	v := uint64(t.devptr())
	return p.add(unsafe.Pointer(&v), 8)
}

// launch enqueues kernel name with the arguments built in p on the stream: grid blocks of
// block threads, smem bytes of dynamic shared memory. The caller has entered.
func (p *params) launch(name string, grid [3]int, block, smem int) {
	b := p.b
	if p.fail {
		b.failf("%s: too many kernel parameters", name)
		return
	}
	f, ok := b.funcs[name]
	if !ok {
		b.failf("no kernel %s", name)
		return
	}
	if grid[0] == 0 || grid[1] == 0 || grid[2] == 0 {
		return
	}
	b.call("cuLaunchKernel("+name+")", b.drv.cuLaunchKernel, f,
		uintptr(grid[0]), uintptr(grid[1]), uintptr(grid[2]), uintptr(block), 1, 1,
		uintptr(smem), b.stream, uintptr(b.pinned), 0)
}

// scalars writes cuBLASLt's alpha = 1 and beta = 0 into the pinned block and returns their
// addresses.
func (b *Backend) scalars() (alpha, beta uintptr) {
	a := (*[2]float32)(unsafe.Add(b.pinned, paramBytes))
	a[0], a[1] = 1, 0
	return uintptr(unsafe.Add(b.pinned, paramBytes)), uintptr(unsafe.Add(b.pinned, paramBytes+4))
}

// rowThreads picks the block size for a kernel that has one block per row of width cols:
// about four columns a thread, a multiple of 32, between 32 and 1024.
func rowThreads(cols int) int {
	t := (cols/4 + 31) / 32 * 32
	return min(max(t, 32), 1024)
}

// kernelNames are the entry points of shaders/*.cu for the storage type with suffix sfx ("f16")
// that the launchers use; Open looks each one up.
func kernelNames(sfx string) []string {
	names := []string{"embed_" + sfx, "embed_warp_" + sfx, "layernorm_" + sfx, "layernorm_warp_" + sfx, "gelu_" + sfx, "tanh_" + sfx, "pool_" + sfx,
		"attention_" + sfx + "_hd32", "attention_" + sfx + "_hd64",
		"attention_bias_" + sfx + "_hd32", "attention_bias_" + sfx + "_hd64"}
	if sfx == "f16" || sfx == "bf16" {
		names = append(names, "attention_mma_"+sfx+"_hd32", "attention_mma_"+sfx+"_hd64",
			"attention_mma_bias_"+sfx+"_hd32", "attention_mma_bias_"+sfx+"_hd64")
	}
	return names
}

// kernelFile is the shaders/*.cu file that defines kernel name: its op, the name up to the
// first '_' (tanh_* lives with gelu_*).
func kernelFile(name string) string {
	op, _, _ := strings.Cut(name, "_")
	if op == "tanh" {
		op = "gelu"
	}
	return op + ".cu"
}
