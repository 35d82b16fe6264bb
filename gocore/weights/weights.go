// Package weights reads safetensors checkpoints through github.com/nlpodyssey/safetensors over a
// read-only memory map, and converts F32, F16 and BF16 tensors to float32 for the backend.
package weights

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"sort"
	"syscall"

	"github.com/nlpodyssey/safetensors"

	"github.com/goembed/goembed/gocore/backend/half"
)

// File is one or more safetensors files opened together (a sharded checkpoint is several).
type File struct {
	paths   []string
	maps    [][]byte
	tensors map[string]tensor
}

type tensor struct {
	path string
	view safetensors.TensorView
}

// Open maps each file and parses its header. Tensor names must be unique across files.
func Open(paths ...string) (*File, error) {
	f := &File{tensors: map[string]tensor{}}
	for _, p := range paths {
		data, err := mmap(p)
		if err != nil {
			f.Close()
			return nil, err
		}
		f.maps = append(f.maps, data)
		if err := f.add(p, data); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// add parses the safetensors file p held in data (which must outlive f).
func (f *File) add(p string, data []byte) error {
	f.paths = append(f.paths, p)
	st, err := safetensors.Deserialize(data)
	if err != nil {
		return fmt.Errorf("%s: not a valid safetensors file: %w", p, err)
	}
	for _, nt := range st.Tensors() {
		if _, dup := f.tensors[nt.Name]; dup {
			return fmt.Errorf("%s: tensor %q appears in more than one file", p, nt.Name)
		}
		f.tensors[nt.Name] = tensor{path: p, view: nt.TensorView}
	}
	return nil
}

// Names lists the tensors, sorted.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.tensors))
	for n := range f.tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Has reports whether a tensor is present.
func (f *File) Has(name string) bool {
	_, ok := f.tensors[name]
	return ok
}

// Shape returns a tensor's shape, or nil if absent.
func (f *File) Shape(name string) []int {
	t, ok := f.tensors[name]
	if !ok {
		return nil
	}
	return toInts(t.view.Shape())
}

// Files lists the files opened.
func (f *File) Files() []string { return f.paths }

// Path is the file that holds a tensor, or "" if absent.
func (f *File) Path(name string) string { return f.tensors[name].path }

// Float32 returns a tensor converted to float32, with its shape. F32, F16 and BF16 are accepted.
func (f *File) Float32(name string) ([]float32, []int, error) {
	t, ok := f.tensors[name]
	if !ok {
		return nil, nil, fmt.Errorf("tensor %q not found in the checkpoint", name)
	}
	shape := toInts(t.view.Shape())
	raw := t.view.Data()
	var out []float32
	switch dt := t.view.DType(); dt {
	case safetensors.F32:
		out = make([]float32, len(raw)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case safetensors.F16:
		out = make([]float32, len(raw)/2)
		for i := range out {
			out[i] = half.Float32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case safetensors.BF16:
		out = make([]float32, len(raw)/2)
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(raw[2*i:])) << 16)
		}
	default:
		return nil, nil, fmt.Errorf("%s: tensor %q has dtype %s; only F32, F16 and BF16 are supported", t.path, name, dt)
	}
	return out, shape, nil
}

// Close unmaps the files. Slices returned by Float32 are copies and stay valid.
func (f *File) Close() error {
	var first error
	for _, m := range f.maps {
		if err := syscall.Munmap(m); err != nil && first == nil {
			first = err
		}
	}
	f.maps = nil
	f.tensors = nil
	return first
}

func mmap(path string) ([]byte, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() < 8 {
		return nil, fmt.Errorf("%s: file too small (%d bytes) to be safetensors", path, st.Size())
	}
	if int64(int(st.Size())) != st.Size() {
		return nil, fmt.Errorf("%s: file too large to map", path)
	}
	data, err := syscall.Mmap(int(fd.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("%s: mmap: %w", path, err)
	}
	return data, nil
}

func toInts(s []uint64) []int {
	out := make([]int, len(s))
	for i, v := range s {
		out[i] = int(v)
	}
	return out
}
