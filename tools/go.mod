// Build tools for goembed (not part of the library): gopy generates the CPython
// extension, goimports is run by gopy on the code it generates.
// Install into build/bin with:  GOBIN=$PWD/../build/bin go install tool
module github.com/goembed/goembed/tools

go 1.26

tool (
	github.com/go-python/gopy
	golang.org/x/tools/cmd/goimports
)

require (
	github.com/go-python/gopy v0.4.10 // indirect
	github.com/gonuts/commander v0.1.0 // indirect
	github.com/gonuts/flag v0.1.0 // indirect
	github.com/pkg/errors v0.9.1 // indirect
	golang.org/x/mod v0.23.0 // indirect
	golang.org/x/sync v0.11.0 // indirect
	golang.org/x/tools v0.30.0 // indirect
)
