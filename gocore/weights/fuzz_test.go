package weights

import (
	"encoding/binary"
	"testing"

	"github.com/nlpodyssey/safetensors"
)

// FuzzParse feeds arbitrary bytes to the safetensors reader: it must return an error or
// tensors whose float32 conversion has as many values as the shape says, never panic.
// Seeds: testdata/fuzz/FuzzParse and the ones added here.
func FuzzParse(f *testing.F) {
	good, err := safetensors.Serialize(map[string]safetensors.TensorView{
		"a": mustView(safetensors.F32, []uint64{2, 2}, make([]byte, 16)),
		"b": mustView(safetensors.F16, []uint64{3}, make([]byte, 6)),
		"c": mustView(safetensors.BF16, []uint64{1, 1}, make([]byte, 2)),
		"d": mustView(safetensors.I64, []uint64{1}, make([]byte, 8)),
	}, map[string]string{"format": "pt"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(good[:9])
	f.Add([]byte{})
	huge := binary.LittleEndian.AppendUint64(nil, 1<<62)
	f.Add(append(huge, '{', '}'))
	h := `{"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`
	f.Add(append(binary.LittleEndian.AppendUint64(nil, uint64(len(h))), h...))
	f.Fuzz(func(t *testing.T, data []byte) {
		w := &File{tensors: map[string]tensor{}}
		if err := w.add("fuzz.safetensors", data); err != nil {
			return
		}
		for _, name := range w.Names() {
			v, shape, err := w.Float32(name)
			if err != nil {
				continue
			}
			n := 1
			for _, d := range shape {
				n *= d
			}
			if len(v) != n {
				t.Fatalf("tensor %q: %d values for shape %v", name, len(v), shape)
			}
		}
	})
}

func mustView(dt safetensors.DType, shape []uint64, data []byte) safetensors.TensorView {
	v, err := safetensors.NewTensorView(dt, shape, data)
	if err != nil {
		panic(err)
	}
	return v
}
