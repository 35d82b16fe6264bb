package metalbridge

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	"github.com/goembed/goembed/shaders"
)

// compileOptions names the MTLCompileOptions set in compile (pipeline.go); it is part of the
// cache key. Fast math is off: the kernels rely on IEEE exp2, division and x == x.
const compileOptions = "fastMathEnabled=NO"

var includeRE = regexp.MustCompile(`^\s*#\s*include\s+"([^"]+)"\s*$`)

// librarySource returns the one Metal source metalbridge compiles for the storage type with
// suffix sfx ("f16", "f32"): "#define STORAGE_F16 1", then every shaders/*.metal file in name
// order with each #include "x.h" replaced by shaders/x.h, every header once.
// newLibraryWithSource:options:error: has no include path, so the source must stand alone
// (<metal_stdlib> is the compiler's own). #line directives keep the compiler's messages
// pointing at the original files and lines.
func librarySource(sfx string) (string, error) {
	_, headers := shaders.Files(".h")
	names, entries := shaders.Files(".metal")
	if len(names) == 0 {
		return "", fmt.Errorf("no shaders/*.metal embedded")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "#define STORAGE_%s 1\n", strings.ToUpper(sfx))
	seen := map[string]bool{}
	var inline func(name, text string) error
	inline = func(name, text string) error {
		fmt.Fprintf(&b, "#line 1 %q\n", name)
		for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
			m := includeRE.FindStringSubmatch(line)
			switch {
			case strings.TrimSpace(line) == "#pragma once":
				b.WriteString("\n") // meaningless in one string: inline includes each header once
			case m == nil:
				b.WriteString(line + "\n")
			case seen[m[1]]:
				b.WriteString("\n")
			default:
				h, ok := headers[m[1]]
				if !ok {
					return fmt.Errorf("shaders/%s:%d: #include %q: no such file in shaders/", name, i+1, m[1])
				}
				seen[m[1]] = true
				if err := inline(m[1], h); err != nil {
					return err
				}
				fmt.Fprintf(&b, "#line %d %q\n", i+2, name)
			}
		}
		return nil
	}
	for _, n := range names {
		if err := inline(n, entries[n]); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}

// sourceKey hashes everything a compiled library depends on besides the device: the source
// and the compile options.
func sourceKey(src string) string {
	h := sha256.Sum256([]byte(compileOptions + "\n" + src))
	return hex.EncodeToString(h[:])[:16]
}
