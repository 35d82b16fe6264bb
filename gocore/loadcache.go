package gocore

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/goembed/goembed/gocore/arch"
	"github.com/goembed/goembed/gocore/backend"
	"github.com/goembed/goembed/gocore/backend/cpu"
	"github.com/goembed/goembed/gocore/modeldir"
	"github.com/goembed/goembed/gocore/tokenize"
)

// The load cache. Encoders of the same model folder (same configuration and files) on the same
// device and dtype share one loaded model: the tokenizer, the backend and the weights on it.
// Ten threads constructing the same Encoder at once load it once (the others wait for that
// load), and the model is freed when the last Encoder sharing it is closed.

// shared is one model loaded on one device.
type shared struct {
	key   string
	refs  int           // Encoders holding it; guarded by cache.mu
	ready chan struct{} // closed when the load has finished (err says how)
	err   error

	notes []string
	dim   int
	tokMu sync.RWMutex // guards tok against the last Close during tokenization
	tok   *tokenize.Tokenizer
	mu    sync.Mutex // guards everything below: one forward at a time per device
	be    backend.Backend
	net   arch.Encoder
	// gpuBudget is the token budget of a GPU forward, sized at load (gpuBudgetFor).
	gpuBudget int
}

var (
	cache = struct {
		sync.Mutex
		m map[string]*shared
	}{m: map[string]*shared{}}
	loads atomic.Int64
)

// Loads is the number of models loaded onto a device since the process started: Encoders that
// share a loaded model count once (a debug counter for tests).
func Loads() int64 { return loads.Load() }

// cacheKey names what a load depends on: the configuration as read, the device and dtype
// asked for, and the size and time of the weight and tokenizer files (so a model replaced on
// disk is loaded afresh).
func cacheKey(m *modeldir.Model, opts Options) string {
	cfg := *m
	cfg.Source = "" // the same folder reached by another name is the same model
	key := fmt.Sprintf("%q %q %+v", opts.Device, opts.DType, cfg)
	for _, p := range append([]string{m.Tokenizer}, m.Weights...) {
		if st, err := os.Stat(p); err == nil {
			key += fmt.Sprintf(" %s:%d:%d", p, st.Size(), st.ModTime().UnixNano())
		}
	}
	return key
}

// acquire returns the loaded model for m on the device opts name, loading it unless an
// Encoder already holds it or another goroutine is loading it (then it waits for that load).
func acquire(m *modeldir.Model, opts Options) (*shared, error) {
	key := cacheKey(m, opts)
	cache.Lock()
	if sh, ok := cache.m[key]; ok {
		sh.refs++
		cache.Unlock()
		<-sh.ready
		if sh.err != nil {
			return nil, sh.err
		}
		return sh, nil
	}
	sh := &shared{key: key, refs: 1, ready: make(chan struct{})}
	cache.m[key] = sh
	cpu.SearchPaths = opts.SearchPaths // read by the CPU backend when it opens, below
	cache.Unlock()

	defer close(sh.ready)
	defer func() {
		if r := recover(); r != nil { // never leave the waiters blocked
			sh.err = fmt.Errorf("goembed internal error (please report) while loading %s: %v", m.Dir, r)
		}
		if sh.err != nil {
			cache.Lock()
			delete(cache.m, key)
			cache.Unlock()
		}
	}()
	sh.err = sh.load(m, opts)
	if sh.err != nil {
		return nil, sh.err
	}
	return sh, nil
}

func (sh *shared) load(m *modeldir.Model, opts Options) error {
	loads.Add(1)
	tok, err := tokenize.Load(m.Tokenizer, m.MaxSeqLength, m.DoLowerCase, tokenize.WithLimit(positionLimit(m.Config)))
	if err != nil {
		return err
	}
	be, notes, err := backend.Open(opts.Device, opts.DType)
	if err != nil {
		tok.Close()
		if hint := dtypeHint(opts, err); hint != err {
			return hint // "auto" with a GPU-only dtype: the dtype is the cause
		}
		if errors.Is(err, backend.ErrUnsupportedDType) ||
			opts.Device != "" && opts.Device != "auto" && !slices.Contains(backend.Names(), opts.Device) {
			return err // a dtype the device refuses, or a name no backend has: the caller's mistake
		}
		return &DeviceError{Device: cmp.Or(opts.Device, "auto"), Err: err}
	}
	net, err := arch.Load(be, m)
	if err != nil {
		tok.Close()
		be.Close()
		return err
	}
	if v := os.Getenv("GOEMBED_DEBUG_OOM_AFTER"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		l, ok := net.(allocLimiter)
		if err != nil || !ok {
			net.Close()
			tok.Close()
			be.Close()
			return fmt.Errorf("GOEMBED_DEBUG_OOM_AFTER=%q: want a number of bytes (for an architecture with a workspace limit)", v)
		}
		l.SetAllocLimit(n)
	}
	sh.notes = append(notes, "device: "+be.Describe())
	sh.dim, sh.tok, sh.be, sh.net = net.Dim(), tok, be, net
	sh.gpuBudget = gpuBudgetFor(be, m.Config)
	if be.Name() != "cpu" {
		sh.notes = append(sh.notes, fmt.Sprintf("batches of at most %d tokens", sh.gpuBudget))
	}
	return nil
}

// release drops one Encoder's hold; the last one frees the model, after the calls in flight.
func release(sh *shared) error {
	cache.Lock()
	sh.refs--
	last := sh.refs == 0
	if last && cache.m[sh.key] == sh {
		delete(cache.m, sh.key)
	}
	cache.Unlock()
	if !last {
		return nil
	}
	sh.tokMu.Lock()
	if sh.tok != nil {
		sh.tok.Close()
		sh.tok = nil
	}
	sh.tokMu.Unlock()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.net == nil {
		return nil
	}
	sh.net.Close()
	sh.net = nil
	return sh.be.Close()
}
