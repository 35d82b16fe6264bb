package metalbridge

import (
	"bytes"
	"maps"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/goembed/goembed/shaders"
)

// These tests check, on any system, what the Metal launchers and the kernels must agree on.
// The darwin-only tests (metal_test.go) run the ops themselves.

// TestArgsMirrors checks each Go argument struct against the C struct of the same name in
// shaders/*.h, field by field: same names (case aside), same 4-byte types, same order, so the
// bytes setBytes copies are the bytes the kernel reads.
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

// An entryParam is one parameter of a Metal entry point as written in shaders/*.metal.
type entryParam struct {
	decl, name, attr string // "GLOBAL const T* x", "x", "buffer(1)"
}

var (
	entryRE = regexp.MustCompile(`KERNEL\s+void\s+(?:BOUNDS\([^)]*\)\s+)?(\w+?)_##[\w#]*\s*\(`) // an optional BOUNDS(...) before the name
	paramRE = regexp.MustCompile(`^(.*?)\b(\w+)\s*\[\[\s*([\w()\s]+?)\s*\]\]$`)
)

// metalEntries reads the entry point templates of every .metal file: the family (the name up
// to its first '_'), and the parameters with their attributes.
func metalEntries(t *testing.T) map[string][]entryParam {
	t.Helper()
	_, files := shaders.Files(".metal")
	out := map[string][]entryParam{}
	for file, text := range files {
		text = strings.ReplaceAll(text, "\\\n", " ")
		for _, loc := range entryRE.FindAllStringSubmatchIndex(text, -1) {
			fam := text[loc[2]:loc[3]]
			depth, end := 1, loc[1]
			for ; end < len(text) && depth > 0; end++ {
				switch text[end] {
				case '(':
					depth++
				case ')':
					depth--
				}
			}
			var params []entryParam
			for _, p := range splitTop(text[loc[1] : end-1]) {
				m := paramRE.FindStringSubmatch(strings.Join(strings.Fields(p), " "))
				if m == nil {
					t.Errorf("%s: %s_*: parameter %q has no [[attribute]]", file, fam, strings.TrimSpace(p))
					continue
				}
				params = append(params, entryParam{strings.TrimSpace(m[1]), m[2], strings.ReplaceAll(m[3], " ", "")})
			}
			if _, dup := out[fam]; dup {
				t.Errorf("%s: entry family %s defined twice", file, fam)
			}
			out[fam] = params
		}
	}
	return out
}

// splitTop splits a parameter list at the commas outside parentheses and brackets.
func splitTop(s string) []string {
	var parts []string
	depth, start := 0, 0
	for i, c := range s {
		switch c {
		case '(', '[':
			depth++
		case ')', ']':
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}

// TestEntryBindings checks every Metal entry point against what its launcher binds: buffers at
// [[buffer(0)]], [[buffer(1)]], ... in the order of bindings, the argument struct last as
// `constant <Op>Args& a`; dynamic threadgroup memory ([[threadgroup(0)]]) exactly where the
// launcher sets it (dynamicThreadgroup); and the thread position attributes all of one type, as
// the Metal Shading Language requires of a kernel (all scalars or all vectors of one size).
func TestEntryBindings(t *testing.T) {
	entries := metalEntries(t)
	if len(entries) != len(bindings) {
		t.Errorf("shaders/*.metal have entry families %v, bindings %v", slices.Sorted(maps.Keys(entries)), slices.Sorted(maps.Keys(bindings)))
	}
	positionAttrs := map[string]bool{"thread_position_in_grid": true, "threads_per_grid": true,
		"thread_position_in_threadgroup": true, "threads_per_threadgroup": true,
		"threadgroup_position_in_grid": true, "threadgroups_per_grid": true}
	for fam, params := range entries {
		want, ok := bindings[fam]
		if !ok {
			t.Errorf("%s_*: no bindings in kernels.go", fam)
			continue
		}
		var buffers []string
		posTypes := map[string]bool{}
		tg := false
		for _, p := range params {
			switch attr := p.attr; {
			case strings.HasPrefix(attr, "buffer("):
				if attr != "buffer("+strconv.Itoa(len(buffers))+")" {
					t.Errorf("%s_*: %s is [[%s]], want [[buffer(%d)]] (buffers are bound in declaration order)", fam, p.name, attr, len(buffers))
				}
				buffers = append(buffers, p.name)
			case attr == "threadgroup(0)":
				tg = true
				if !strings.HasPrefix(p.decl, "SHARED ") {
					t.Errorf("%s_*: %s [[threadgroup(0)]] is %q, want a SHARED pointer", fam, p.name, p.decl)
				}
			case positionAttrs[attr]:
				posTypes[p.decl] = true
			case attr == "thread_index_in_threadgroup":
			default:
				t.Errorf("%s_*: %s has attribute [[%s]], which the launchers do not provide", fam, p.name, attr)
			}
		}
		if !slices.Equal(buffers, want) {
			t.Errorf("%s_*: buffers %v in shaders/%s.metal, launcher binds %v", fam, buffers, fam, want)
		}
		if n := len(params); n > 0 && len(buffers) > 0 {
			last := params[len(buffers)-1]
			if !regexp.MustCompile(`^constant \w+Args&$`).MatchString(last.decl) {
				t.Errorf("%s_*: last buffer %q is %q, want `constant <Op>Args& a`", fam, last.name, last.decl)
			}
		}
		if tg != dynamicThreadgroup[fam] {
			t.Errorf("%s_*: [[threadgroup(0)]] parameter %v, dynamicThreadgroup %v", fam, tg, dynamicThreadgroup[fam])
		}
		if len(posTypes) > 1 {
			t.Errorf("%s_*: thread position attributes of mixed types %v", fam, slices.Sorted(maps.Keys(posTypes)))
		}
	}
}

// TestLibrarySource checks the source metalbridge hands the Metal compiler: self-contained,
// every entry file and header in it once, and, where clang++ is installed, that it type-checks
// against shaders/metal_shim and defines every kernel the launchers look up.
func TestLibrarySource(t *testing.T) {
	entries, _ := shaders.Files(".metal")
	for _, sfx := range []string{"f16", "f32"} {
		src, err := librarySource(sfx)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(src, "#define STORAGE_"+strings.ToUpper(sfx)+" 1\n") {
			t.Errorf("%s: source does not start with the storage define", sfx)
		}
		if strings.Contains(src, `#include "`) {
			t.Errorf("%s: an #include \"...\" is left in the source", sfx)
		}
		for _, f := range append(entries, "prelude_metal.h", "common.h") {
			if n := strings.Count(src, "#line 1 \""+f+"\"\n"); n != 1 {
				t.Errorf("%s: %s inlined %d times", sfx, f, n)
			}
		}
		if k1, k2 := sourceKey(src), sourceKey(src+" "); k1 == k2 || len(k1) != 16 {
			t.Errorf("sourceKey: %q, %q", k1, k2)
		}

		clang, err := exec.LookPath("clang++")
		if err != nil {
			t.Logf("%s: clang++ not found: the assembled source is not type-checked (scripts/check_metal.sh installs it)", sfx)
			continue
		}
		_, self, _, _ := runtime.Caller(0)
		shim := filepath.Join(filepath.Dir(self), "..", "shaders", "metal_shim", "metal_shim.h")
		args := []string{"-std=c++14", "-Wall", "-Wno-unknown-attributes", "-include", shim, "-x", "c++", "-"}
		cmd := exec.Command(clang, append([]string{"-fsyntax-only"}, args...)...)
		cmd.Stdin = strings.NewReader(src)
		if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("%s: clang++ -fsyntax-only on the assembled source: %v\n%s", sfx, err, out)
		}
		cmd = exec.Command(clang, append([]string{"-E", "-P"}, args...)...)
		cmd.Stdin = strings.NewReader(src)
		pre, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: clang++ -E: %v", sfx, err)
		}
		for _, k := range kernelNames(sfx) {
			if !bytes.Contains(pre, []byte("void "+k+"(")) {
				t.Errorf("%s: kernel %s is not defined by the assembled source", sfx, k)
			}
		}
	}
}

func TestThreads(t *testing.T) {
	for _, c := range []struct{ cols, limit, want int }{
		{1, 1024, 32}, {384, 1024, 96}, {1024, 1024, 256}, {8192, 1024, 1024}, {8192, 448, 448}, {8192, 40, 32},
	} {
		if got := rowThreads(c.cols, c.limit); got != c.want {
			t.Errorf("rowThreads(%d, %d) = %d, want %d", c.cols, c.limit, got, c.want)
		}
	}
	for _, c := range []struct{ maxLen, HD, limit, want int }{
		{1, 64, 1024, 32}, {33, 64, 1024, 64}, {512, 64, 1024, 64}, {512, 32, 1024, 128}, {512, 32, 96, 96},
	} {
		if got := attentionThreads(c.maxLen, c.HD, c.limit); got != c.want {
			t.Errorf("attentionThreads(%d, %d, %d) = %d, want %d", c.maxLen, c.HD, c.limit, got, c.want)
		}
	}
	if threadgroupBytes(4*31) != 128 || threadgroupBytes(4*32) != 128 || threadgroupBytes(4) != 16 {
		t.Error("threadgroupBytes does not round up to 16")
	}
}
