module github.com/goembed/goembed

go 1.26

require (
	github.com/daulet/tokenizers v1.24.0
	github.com/ebitengine/purego v0.11.3
	github.com/go-python/gopy v0.4.10
	github.com/nlpodyssey/safetensors v0.0.0-20250209183917-bfb01cc25f7c
	golang.org/x/text v0.23.0
	gonum.org/v1/gonum v0.17.0
)
