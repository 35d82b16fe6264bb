package shaders

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The kernels are written once (the bodies, *.h) and entered twice: *.cu for CUDA and *.metal
// for Metal. These tests fail when the two languages drift apart: an entry point, an entry file
// or a body header present for one GPU language and not the other, or a prelude helper that
// CUDA has and Metal lacks.
//
// Entry names are produced by macros (FOR_EACH_STORAGE over the storage types, token pasting:
// attention_##S##_hd##HD), so the test expands each entry file with a small C preprocessor
// (cpp below) in the configuration that builds every variant: no STORAGE_* define and, for
// Metal, the newest language (__HAVE_BFLOAT__, Metal 3.1).

// TestEntryPointParity checks that X.cu and X.metal exist together, define the same entry
// points and include the same body headers.
func TestEntryPointParity(t *testing.T) {
	cuNames, cu := Files(".cu")
	mtNames, mt := Files(".metal")
	if len(cuNames) == 0 || len(mtNames) == 0 {
		t.Fatalf("no entry files embedded: %d .cu, %d .metal", len(cuNames), len(mtNames))
	}
	stems := map[string]bool{}
	for _, n := range cuNames {
		stems[strings.TrimSuffix(n, ".cu")] = true
	}
	for _, n := range mtNames {
		stems[strings.TrimSuffix(n, ".metal")] = true
	}
	total := 0
	for _, stem := range sortedKeys(stems) {
		cuText, hasCU := cu[stem+".cu"]
		mtText, hasMT := mt[stem+".metal"]
		if !hasCU || !hasMT {
			t.Errorf("%s: %s.cu present %v, %s.metal present %v: every op needs both", stem, stem, hasCU, stem, hasMT)
			continue
		}
		cuK, cuInc, err := entryPoints(stem+".cu", cuText, nil)
		if err != nil {
			t.Fatal(err)
		}
		mtK, mtInc, err := entryPoints(stem+".metal", mtText, map[string]string{"__HAVE_BFLOAT__": "1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(cuK) == 0 {
			t.Errorf("%s.cu: no KERNEL entry point found", stem)
		}
		dk, dh := diff(cuK, mtK), diff(cuInc, mtInc)
		if dk != "" {
			t.Errorf("%s: entry points differ between CUDA and Metal:\n%s", stem, dk)
		}
		if dh != "" {
			t.Errorf("%s: body headers differ between CUDA and Metal:\n%s", stem, dh)
		}
		if dk == "" && dh == "" {
			t.Logf("%s: %d entry points in both languages (%s); bodies %v", stem, len(cuK), strings.Join(cuK, " "), cuInc)
			total += len(cuK)
		}
	}
	t.Logf("%d entry points match in %d ops", total, len(stems))
}

// TestBodiesAreUsed checks that every body header is included by an entry file or another
// header, so that no kernel is written for neither language.
func TestBodiesAreUsed(t *testing.T) {
	hNames, headers := Files(".h")
	_, cu := Files(".cu")
	_, mt := Files(".metal")
	included := map[string]bool{}
	for _, src := range []map[string]string{headers, cu, mt} {
		for _, text := range src {
			for _, m := range includeRE.FindAllStringSubmatch(text, -1) {
				included[m[1]] = true
			}
		}
	}
	for _, h := range hNames {
		if strings.HasPrefix(h, "prelude_") {
			continue
		}
		if !included[h] {
			t.Errorf("%s is included by no entry file or header", h)
		}
	}
}

// TestPreludeParity checks that prelude_metal.h defines every name prelude_cuda.h offers the
// bodies (macros, DEVICE_FN helpers, types), so that a helper added for CUDA is added for Metal
// too before a body uses it.
func TestPreludeParity(t *testing.T) {
	_, h := Files(".h")
	cudaOnly := map[string]bool{"uint": true} // a Metal builtin type
	cudaNames, metalNames := preludeNames(h["prelude_cuda.h"]), preludeNames(h["prelude_metal.h"])
	if len(cudaNames) < 10 {
		t.Fatalf("prelude_cuda.h: only %d names found (%v): the patterns below no longer match it", len(cudaNames), sortedKeys(cudaNames))
	}
	for _, n := range sortedKeys(cudaNames) {
		if !metalNames[n] && !cudaOnly[n] {
			t.Errorf("prelude_cuda.h defines %s, prelude_metal.h does not", n)
		}
	}
}

var (
	includeRE    = regexp.MustCompile(`(?m)^\s*#\s*include\s+"([^"]+)"`)
	kernelRE     = regexp.MustCompile(`\bKERNEL\s+void\s+(?:\w+\s*\([^)]*\)\s*)?(\w+)\s*\(`) // an optional BOUNDS(...) before the name
	defineNameRE = regexp.MustCompile(`(?m)^\s*#\s*define\s+(\w+)`)
	helperRE     = regexp.MustCompile(`(?m)^\s*(?:template\s*<[^>]*>\s*)?DEVICE_FN\s+[\w<>:]+\s+(\w+)\s*(?:<[^>]*>)?\s*\(`)
	typeRE       = regexp.MustCompile(`(?m)^\s*(?:typedef\s+[\w\s]+\s+(\w+)\s*;|struct\s+(\w+)\s*\{)`)
)

func preludeNames(text string) map[string]bool {
	names := map[string]bool{}
	for _, re := range []*regexp.Regexp{defineNameRE, helperRE, typeRE} {
		for _, m := range re.FindAllStringSubmatch(text, -1) {
			for _, g := range m[1:] {
				if g != "" {
					names[g] = true
				}
			}
		}
	}
	return names
}

// entryPoints expands an entry file and returns the names of its KERNEL functions and the body
// headers (non-prelude includes) it uses, both sorted.
func entryPoints(name, text string, predefined map[string]string) (kernels, bodies []string, err error) {
	p := newCPP(predefined)
	out, err := p.run(name, text)
	if err != nil {
		return nil, nil, err
	}
	for _, m := range kernelRE.FindAllStringSubmatch(out, -1) {
		kernels = append(kernels, m[1])
	}
	sort.Strings(kernels)
	if dup := slices.Compact(slices.Clone(kernels)); len(dup) != len(kernels) {
		return nil, nil, fmt.Errorf("%s: an entry point is defined twice: %v", name, kernels)
	}
	for h := range p.bodies {
		bodies = append(bodies, h)
	}
	sort.Strings(bodies)
	return kernels, bodies, nil
}

// cpp is a small C preprocessor, enough for the entry files: #define (object- and function-like,
// with ## pasting), #undef, #if/#ifdef/#ifndef/#elif/#else/#endif over defined(), integers and
// comparisons, #include "prelude_*.h" (followed, from FS) and other #include "x.h" (recorded as
// bodies, not followed). KERNEL is kept as written so the entry points can be found.
type cpp struct {
	macros map[string]macro
	bodies map[string]bool
	seen   map[string]bool
}

type macro struct {
	params []string // nil: object-like
	fn     bool
	body   []string // tokens
}

func newCPP(predefined map[string]string) *cpp {
	p := &cpp{macros: map[string]macro{}, bodies: map[string]bool{}, seen: map[string]bool{}}
	for k, v := range predefined {
		p.macros[k] = macro{body: tokenize(v)}
	}
	return p
}

var (
	commentRE = regexp.MustCompile(`(?s)//[^\n]*|/\*.*?\*/`)
	directRE  = regexp.MustCompile(`^\s*#\s*(\w+)\s*(.*)$`)
	defineRE  = regexp.MustCompile(`^(\w+)(\(([^)]*)\))?\s*(.*)$`)
	tokenRE   = regexp.MustCompile(`##|#|>=|<=|==|!=|&&|\|\||<<|>>|->|::|[A-Za-z_]\w*|\d[\w.]*|"(?:[^"\\]|\\.)*"|\S`)
	definedRE = regexp.MustCompile(`\bdefined\s*(?:\(\s*(\w+)\s*\)|(\w+))`)
	identRE   = regexp.MustCompile(`\b[A-Za-z_]\w*\b`)
)

func tokenize(s string) []string { return tokenRE.FindAllString(s, -1) }

// run preprocesses one file and returns its expanded text, one output line per source line.
func (p *cpp) run(name, text string) (string, error) {
	text = strings.ReplaceAll(text, "\\\n", " ")
	text = commentRE.ReplaceAllStringFunc(text, func(c string) string {
		return strings.Repeat("\n", strings.Count(c, "\n")) + " "
	})
	type cond struct{ active, taken, parentActive bool }
	var stack []cond
	active := func() bool { return len(stack) == 0 || stack[len(stack)-1].active }
	var out strings.Builder
	for i, line := range strings.Split(text, "\n") {
		d := directRE.FindStringSubmatch(line)
		if d == nil {
			if active() {
				out.WriteString(strings.Join(p.expand(tokenize(line), nil), " "))
				out.WriteByte('\n')
			}
			continue
		}
		where := fmt.Sprintf("%s:%d", name, i+1)
		switch dir, rest := d[1], strings.TrimSpace(d[2]); dir {
		case "if", "ifdef", "ifndef":
			expr := rest
			if dir == "ifdef" {
				expr = "defined(" + rest + ")"
			} else if dir == "ifndef" {
				expr = "!defined(" + rest + ")"
			}
			v := false
			if active() {
				var err error
				if v, err = p.eval(expr); err != nil {
					return "", fmt.Errorf("%s: #%s %s: %v", where, dir, rest, err)
				}
			}
			stack = append(stack, cond{active: active() && v, taken: v, parentActive: active()})
		case "elif", "else":
			if len(stack) == 0 {
				return "", fmt.Errorf("%s: #%s without #if", where, dir)
			}
			c := &stack[len(stack)-1]
			v := true
			if dir == "elif" && c.parentActive && !c.taken {
				var err error
				if v, err = p.eval(rest); err != nil {
					return "", fmt.Errorf("%s: #elif %s: %v", where, rest, err)
				}
			}
			c.active = c.parentActive && !c.taken && v
			c.taken = c.taken || c.active
		case "endif":
			if len(stack) == 0 {
				return "", fmt.Errorf("%s: #endif without #if", where)
			}
			stack = stack[:len(stack)-1]
		default:
			if !active() {
				continue
			}
			switch dir {
			case "define":
				m := defineRE.FindStringSubmatch(rest)
				if m == nil {
					return "", fmt.Errorf("%s: cannot read #define %s", where, rest)
				}
				if m[1] == "KERNEL" {
					continue // kept as a marker of entry points
				}
				mac := macro{body: tokenize(m[4]), fn: m[2] != ""}
				for _, a := range strings.Split(m[3], ",") {
					if a = strings.TrimSpace(a); a != "" {
						mac.params = append(mac.params, a)
					}
				}
				p.macros[m[1]] = mac
			case "undef":
				delete(p.macros, rest)
			case "include":
				if !strings.HasPrefix(rest, `"`) {
					continue // <metal_stdlib>
				}
				inc := strings.Trim(rest, `"`)
				if !strings.HasPrefix(inc, "prelude_") {
					p.bodies[inc] = true
					continue
				}
				if p.seen[inc] {
					continue
				}
				p.seen[inc] = true
				b, err := FS.ReadFile(inc)
				if err != nil {
					return "", fmt.Errorf("%s: %v", where, err)
				}
				if _, err := p.run(inc, string(b)); err != nil {
					return "", err
				}
			}
		}
	}
	if len(stack) != 0 {
		return "", fmt.Errorf("%s: unterminated #if", name)
	}
	return out.String(), nil
}

// expand macro-expands toks; off holds the macros being expanded (not expanded again).
func (p *cpp) expand(toks []string, off map[string]bool) []string {
	var out []string
	for i := 0; i < len(toks); i++ {
		tok := toks[i]
		m, ok := p.macros[tok]
		if !ok || off[tok] {
			out = append(out, tok)
			continue
		}
		var args [][]string
		if m.fn {
			if i+1 >= len(toks) || toks[i+1] != "(" {
				out = append(out, tok) // a function-like macro's name without arguments
				continue
			}
			var end int
			args, end = splitArgs(toks, i+1)
			i = end
		}
		body := substitute(m, args, func(a []string) []string { return p.expand(a, off) })
		inner := map[string]bool{tok: true}
		for k := range off {
			inner[k] = true
		}
		out = append(out, p.expand(body, inner)...)
	}
	return out
}

// splitArgs reads the parenthesised argument list starting at toks[open] and returns the
// arguments and the index of the closing parenthesis.
func splitArgs(toks []string, open int) ([][]string, int) {
	var args [][]string
	var cur []string
	depth := 0
	for i := open; i < len(toks); i++ {
		switch t := toks[i]; {
		case t == "(":
			depth++
			if depth > 1 {
				cur = append(cur, t)
			}
		case t == ")":
			depth--
			if depth == 0 {
				args = append(args, cur)
				return args, i
			}
			cur = append(cur, t)
		case t == "," && depth == 1:
			args = append(args, cur)
			cur = nil
		default:
			cur = append(cur, t)
		}
	}
	return append(args, cur), len(toks) - 1
}

// substitute replaces the parameters of m by args (macro-expanded, except next to ##) and
// performs the ## pastes.
func substitute(m macro, args [][]string, expand func([]string) []string) []string {
	idx := map[string]int{}
	for i, p := range m.params {
		idx[p] = i
	}
	var out []string
	pasteNext := false
	for i, t := range m.body {
		if t == "##" {
			pasteNext = true
			continue
		}
		var repl []string
		if j, ok := idx[t]; ok && j < len(args) {
			nextPaste := i+1 < len(m.body) && m.body[i+1] == "##"
			if pasteNext || nextPaste {
				repl = args[j]
			} else {
				repl = expand(args[j])
			}
		} else {
			repl = []string{t}
		}
		if pasteNext && len(out) > 0 && len(repl) > 0 {
			out[len(out)-1] += repl[0]
			repl = repl[1:]
		}
		pasteNext = false
		out = append(out, repl...)
	}
	return out
}

// eval evaluates a #if expression: defined(X), then macros by their values (0 when undefined),
// then integer arithmetic and logic, parsed as a Go expression (the C operators used in #if
// have the same spelling and precedence there).
func (p *cpp) eval(expr string) (bool, error) {
	expr = definedRE.ReplaceAllStringFunc(expr, func(s string) string {
		m := definedRE.FindStringSubmatch(s)
		if _, ok := p.macros[m[1]+m[2]]; ok {
			return "1"
		}
		return "0"
	})
	expr = strings.Join(p.expand(tokenize(expr), nil), " ")
	expr = identRE.ReplaceAllString(expr, "0")
	e, err := parser.ParseExpr(expr)
	if err != nil {
		return false, err
	}
	v, err := evalInt(e)
	return v != 0, err
}

func evalInt(e ast.Expr) (int64, error) {
	b2i := func(b bool) int64 {
		if b {
			return 1
		}
		return 0
	}
	switch e := e.(type) {
	case *ast.BasicLit:
		return strconv.ParseInt(strings.TrimRight(e.Value, "uUlL"), 0, 64)
	case *ast.ParenExpr:
		return evalInt(e.X)
	case *ast.UnaryExpr:
		x, err := evalInt(e.X)
		switch e.Op {
		case token.NOT:
			return b2i(x == 0), err
		case token.SUB:
			return -x, err
		}
	case *ast.BinaryExpr:
		x, err := evalInt(e.X)
		if err != nil {
			return 0, err
		}
		y, err := evalInt(e.Y)
		if err != nil {
			return 0, err
		}
		switch e.Op {
		case token.LAND:
			return b2i(x != 0 && y != 0), nil
		case token.LOR:
			return b2i(x != 0 || y != 0), nil
		case token.EQL:
			return b2i(x == y), nil
		case token.NEQ:
			return b2i(x != y), nil
		case token.LSS:
			return b2i(x < y), nil
		case token.LEQ:
			return b2i(x <= y), nil
		case token.GTR:
			return b2i(x > y), nil
		case token.GEQ:
			return b2i(x >= y), nil
		case token.ADD:
			return x + y, nil
		case token.SUB:
			return x - y, nil
		}
	}
	return 0, fmt.Errorf("unsupported #if expression %T", e)
}

// diff lists the names only in a and only in b.
func diff(a, b []string) string {
	inA, inB := map[string]bool{}, map[string]bool{}
	for _, x := range a {
		inA[x] = true
	}
	for _, x := range b {
		inB[x] = true
	}
	var lines []string
	for _, x := range a {
		if !inB[x] {
			lines = append(lines, "  only in CUDA:  "+x)
		}
	}
	for _, x := range b {
		if !inA[x] {
			lines = append(lines, "  only in Metal: "+x)
		}
	}
	return strings.Join(lines, "\n")
}

func sortedKeys(m map[string]bool) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// TestCPP checks the preprocessor on the constructs the entry files use.
func TestCPP(t *testing.T) {
	src := `
#define FOR_EACH(X) X(f32, float) X(f16, half_t)
#if defined(ONLY_F16)
#define BAD 1
#elif !defined(NOPE) && 310 >= 300
#define GOOD 1
#else
#define BAD 1
#endif
#define E(S, T, HD) KERNEL void att_##S##_hd##HD(T* x) { body<T, HD>(x); }
#define ES(S, T) E(S, T, 32) E(S, T, 64)
FOR_EACH(ES)
#ifdef BAD
KERNEL void wrong(
#endif
#ifndef GOOD
KERNEL void wrong2(
#endif
#include "body.h"
`
	k, bodies, err := entryPoints("test.cu", src, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"att_f16_hd32", "att_f16_hd64", "att_f32_hd32", "att_f32_hd64"}
	if !slices.Equal(k, want) || !slices.Equal(bodies, []string{"body.h"}) {
		t.Errorf("got %v %v, want %v [body.h]", k, bodies, want)
	}
}
