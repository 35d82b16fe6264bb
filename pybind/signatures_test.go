package pybind

import (
	"go/ast"
	"go/parser"
	"go/token"
	"testing"
)

// TestNoErrorOnlyFunctions keeps the rule in the package comment: gopy v0.4.10 wraps an
// exported function whose only result is an error so that every call leaks a C string, so each
// such function must return a value besides its error.
func TestNoErrorOnlyFunctions(t *testing.T) {
	pkgs, err := parser.ParseDir(token.NewFileSet(), ".", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, pkg := range pkgs {
		for name, file := range pkg.Files {
			for _, d := range file.Decls {
				fn, ok := d.(*ast.FuncDecl)
				if !ok || fn.Recv != nil || !fn.Name.IsExported() || fn.Type.Results == nil {
					continue
				}
				checked++
				res := fn.Type.Results.List
				if len(res) == 1 && len(res[0].Names) <= 1 {
					if id, ok := res[0].Type.(*ast.Ident); ok && id.Name == "error" {
						t.Errorf("%s: %s returns only an error, which gopy's wrapper leaks per call", name, fn.Name.Name)
					}
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked %d exported functions; the package has more", checked)
	}
}
