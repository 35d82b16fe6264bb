// Package pybind is the thin surface gopy turns into the CPython extension goembed._native.
// It deals only in handles, integers, strings and raw buffer addresses: texts arrive as one
// UTF-8 buffer plus int64 offsets, and embeddings are written straight into a numpy array's
// memory. Every function recovers panics into errors, since a panic would abort the interpreter.
// Errors start with the Python exception type the goembed package should raise ("ValueError: ").
//
// Every function that can fail returns a value besides its error (a count, or whether it acted):
// gopy v0.4.10 wraps a function whose only result is an error so that it leaks a C string on
// every call, about 30 bytes (29 MiB over a million calls, measured), while with a value it
// frees the error's string (tests/test_reliability.py checks that a million calls stay flat).
package pybind

import (
	"encoding/json"
	"errors"
	"fmt"

	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"unsafe"

	"github.com/goembed/goembed/gocore"
	"github.com/goembed/goembed/gocore/backend"
	_ "github.com/goembed/goembed/gocore/backend/cuda" // registers "cuda"
	_ "github.com/goembed/goembed/metalbridge"         // registers "metal" (off macOS: says why not)

	// gopy's generated wrapper imports its handle runtime; requiring it here pins the version.
	_ "github.com/go-python/gopy/gopyh"
)

var (
	mu       sync.Mutex
	encoders = map[int64]*gocore.Encoder{}
	nextID   int64
)

// guard turns a panic into an error; deferred by every exported function.
func guard(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("RuntimeError: goembed internal error (please report): %v\n%s", r, debug.Stack())
	}
}

func lookup(h int64) (*gocore.Encoder, error) {
	mu.Lock()
	defer mu.Unlock()
	e, ok := encoders[h]
	if !ok {
		return nil, fmt.Errorf("ValueError: encoder handle %d is closed or invalid", h)
	}
	return e, nil
}

// Load opens a model and returns a handle. cacheFolder is a hub cache searched first (may be
// empty); envJSON is a JSON object of the variables that locate caches (modeldir.EnvVars) as
// Python sees them now; searchPaths is os.PathListSeparator-joined (sys.path).
func Load(model, device, dtype, revision, cacheFolder, envJSON, searchPaths string) (h int64, err error) {
	defer guard(&err)
	var env map[string]string
	if envJSON != "" {
		if err := json.Unmarshal([]byte(envJSON), &env); err != nil {
			return 0, fmt.Errorf("ValueError: environment: %v", err)
		}
	}
	var paths []string
	for _, p := range filepath.SplitList(searchPaths) {
		if p != "" {
			paths = append(paths, p)
		}
	}
	e, err := gocore.Load(model, gocore.Options{Device: device, DType: dtype, Revision: revision, CacheFolder: cacheFolder, Env: env, SearchPaths: paths})
	if err != nil {
		return 0, classify(err)
	}
	mu.Lock()
	defer mu.Unlock()
	nextID++
	encoders[nextID] = e
	return nextID, nil
}

// classify prefixes an engine error with the Python exception it maps to.
func classify(err error) error {
	msg := err.Error()
	var dev *gocore.DeviceError
	var dt *gocore.DTypeError
	switch {
	case errors.Is(err, gocore.ErrClosed):
		return fmt.Errorf("ValueError: %s", msg)
	case errors.Is(err, backend.ErrOutOfMemory):
		return fmt.Errorf("MemoryError: %s", msg)
	case errors.As(err, &dt), errors.Is(err, backend.ErrUnsupportedDType):
		return fmt.Errorf("ValueError: %s", msg)
	case strings.Contains(msg, "internal error"), errors.As(err, &dev):
		return fmt.Errorf("RuntimeError: %s", msg)
	case strings.Contains(msg, "is a file, not a directory"):
		return fmt.Errorf("NotADirectoryError: %s", msg) // as sentence-transformers
	case strings.Contains(msg, "not found") || strings.Contains(msg, "missing file") || strings.Contains(msg, "does not exist"):
		return fmt.Errorf("FileNotFoundError: %s", msg)
	case strings.Contains(msg, "unavailable") || strings.Contains(msg, "no backend"):
		return fmt.Errorf("RuntimeError: %s", msg)
	default:
		return fmt.Errorf("ValueError: %s", msg)
	}
}

// Info describes a loaded encoder as JSON.
func Info(h int64) (s string, err error) {
	defer guard(&err)
	e, err := lookup(h)
	if err != nil {
		return "", err
	}
	m := e.Model
	b, err := json.Marshal(map[string]any{
		"dim": e.Dim(), "max_seq_length": m.MaxSeqLength, "device": e.Device(), "notes": e.Notes,
		"model_dir": m.Dir, "source": m.Source, "pooling": m.Pooling.String(), "normalize": m.Normalize,
		"include_prompt": m.IncludePrompt, "prompts": m.Prompts, "default_prompt_name": m.DefaultPromptName,
		"similarity_fn_name": m.Similarity, "model_type": m.Config.ModelType,
		"hidden_size": m.Config.HiddenSize, "dense_modules": len(m.Dense),
		"max_seq_limit": e.MaxSeqLimit(),
	})
	return string(b), err
}

// mem turns the address of memory Python owns (a bytes object or numpy array kept alive by
// the caller for the whole call) into a pointer. The Go collector never moves or frees it.
func mem(addr uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&addr)) }

// texts views n strings in a UTF-8 buffer at textPtr delimited by n+1 int64 offsets. The strings
// alias Python's memory and must not outlive the call.
func texts(textPtr uintptr, textLen int, offsPtr uintptr, n int) ([]string, error) {
	if n < 0 || textLen < 0 {
		return nil, fmt.Errorf("ValueError: negative sizes")
	}
	if n == 0 {
		return nil, nil
	}
	offs := unsafe.Slice((*int64)(mem(offsPtr)), n+1)
	var buf []byte
	if textLen > 0 {
		buf = unsafe.Slice((*byte)(mem(textPtr)), textLen)
	}
	out := make([]string, n)
	for i := range out {
		a, b := offs[i], offs[i+1]
		if a < 0 || b < a || b > int64(textLen) {
			return nil, fmt.Errorf("ValueError: text offsets out of range at %d", i)
		}
		out[i] = unsafe.String(unsafe.SliceData(buf[a:b]), int(b-a))
	}
	return out, nil
}

// EncodeTokens writes the token embeddings of n texts into dst (float32, dstLen elements): the
// [n_i, hidden] rows of each text one after another, in input order. The caller sizes dst from
// TokenizeCtl's counts with the same prompt.
// It returns the floats written.
func EncodeTokens(h int64, textPtr uintptr, textLen int, offsPtr uintptr, n int, dstPtr uintptr, dstLen int, batchSize int, prompt string) (written int, err error) {
	defer guard(&err)
	e, err := lookup(h)
	if err != nil {
		return 0, err
	}
	ts, err := texts(textPtr, textLen, offsPtr, n)
	if err != nil || n == 0 {
		return 0, err
	}
	rows, err := e.EncodeTokens(ts, gocore.EncodeOptions{BatchSize: batchSize, Prompt: prompt})
	if err != nil {
		return 0, classify(err)
	}
	total := 0
	for _, r := range rows {
		total += len(r)
	}
	if total != dstLen {
		return 0, fmt.Errorf("ValueError: token embeddings need %d floats, the buffer holds %d", total, dstLen)
	}
	dst := unsafe.Slice((*float32)(mem(dstPtr)), dstLen)
	for _, r := range rows {
		dst = dst[copy(dst, r):]
	}
	return total, nil
}

// EncodeIDs embeds n sequences of token ids into dst (float32, n x dim, C order): row i of
// ids (int32, n x width, C order) holds lens[i] (int32) ids, special tokens included. No
// tokenization: the forward pass from ids. It returns the rows written.
func EncodeIDs(h int64, idsPtr uintptr, width int, lensPtr uintptr, n int, dstPtr uintptr, batchSize int, normalize bool) (rows int, err error) {
	defer guard(&err)
	e, err := lookup(h)
	if err != nil {
		return 0, err
	}
	if n <= 0 || width <= 0 {
		return 0, nil
	}
	all := unsafe.Slice((*int32)(mem(idsPtr)), n*width)
	lens := unsafe.Slice((*int32)(mem(lensPtr)), n)
	seqs := make([][]int32, n)
	for i, l := range lens {
		if l < 0 || int(l) > width {
			return 0, fmt.Errorf("ValueError: length %d of sequence %d is outside 0..%d", l, i, width)
		}
		seqs[i] = all[i*width : i*width+int(l)]
	}
	dst := unsafe.Slice((*float32)(mem(dstPtr)), n*e.Dim())
	if err := e.EncodeIDs(seqs, dst, gocore.EncodeOptions{BatchSize: batchSize, Normalize: normalize}); err != nil {
		return 0, classify(err)
	}
	return n, nil
}

// Close frees an encoder; the handle is invalid afterwards. An encode in flight on another
// thread finishes its current batch and then fails with "encoder is closed". It returns
// whether h named an open encoder.
func Close(h int64) (closed bool, err error) {
	defer guard(&err)
	mu.Lock()
	e, ok := encoders[h]
	delete(encoders, h)
	mu.Unlock()
	if !ok {
		return false, nil
	}
	return true, e.Close()
}

// Devices lists the registered backends.
func Devices() string { return strings.Join(backend.Names(), ",") }

// Version is the goembed version.
func Version() string { return version }

const version = "0.1.0"
