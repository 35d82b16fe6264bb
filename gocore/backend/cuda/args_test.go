package cuda

import (
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/goembed/goembed/shaders"
)

// TestArgsMirrors checks each Go argument struct against the C struct of the same name in
// shaders/*.h, field by field: same names (case aside), same 4-byte types, same order, so the
// bytes the launcher copies are the bytes the kernel reads.
func TestArgsMirrors(t *testing.T) {
	_, headers := shaders.Files(".h")
	structRE := regexp.MustCompile(`(?s)struct (\w+Args) \{(.*?)\};`)
	fieldRE := regexp.MustCompile(`^\s*(int|float|uint)\s+(\w+);`)
	cStructs := map[string][][2]string{}
	for _, text := range headers {
		for _, m := range structRE.FindAllStringSubmatch(text, -1) {
			for _, line := range strings.Split(m[2], "\n") {
				if f := fieldRE.FindStringSubmatch(line); f != nil {
					cStructs[m[1]] = append(cStructs[m[1]], [2]string{f[1], f[2]})
				}
			}
		}
	}
	mirrors := map[string]any{
		"EmbedArgs":         embedArgs{},
		"LayerNormArgs":     layerNormArgs{},
		"ActArgs":           actArgs{},
		"AttentionArgs":     attentionArgs{},
		"AttentionBiasArgs": attentionBiasArgs{},
		"PoolArgs":          poolArgs{},
	}
	if len(cStructs) != len(mirrors) {
		t.Errorf("shaders declare %d Args structs, Go mirrors %d", len(cStructs), len(mirrors))
	}
	for name, v := range mirrors {
		fields, ok := cStructs[name]
		if !ok {
			t.Errorf("%s: not found in shaders/*.h", name)
			continue
		}
		ty := reflect.TypeOf(v)
		if ty.NumField() != len(fields) || ty.Size() != uintptr(4*len(fields)) {
			t.Errorf("%s: Go has %d fields (%d bytes), C has %d", name, ty.NumField(), ty.Size(), len(fields))
			continue
		}
		for i, f := range fields {
			gf := ty.Field(i)
			want := map[string]reflect.Kind{"int": reflect.Int32, "uint": reflect.Uint32, "float": reflect.Float32}[f[0]]
			if !strings.EqualFold(gf.Name, f[1]) || gf.Type.Kind() != want || gf.Offset != uintptr(4*i) {
				t.Errorf("%s field %d: Go %s %s at %d, C %s %s at %d", name, i, gf.Name, gf.Type, gf.Offset, f[0], f[1], 4*i)
			}
		}
	}
}
