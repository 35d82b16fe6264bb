package gocore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/goembed/goembed/gocore/backend"
)

// snapshotAsync is the CPU backend with backend.AsyncDownloader: DownloadAsync copies the rows
// at once into a buffer of its own (what a GPU's queued copy would read) and Wait hands them
// over later, after the engine has launched the next batch, which overwrites the tensor.
type snapshotAsync struct {
	backend.Backend
	pending, most int // downloads not yet waited for, and their most at one time
}

func (s *snapshotAsync) DownloadAsync(src backend.Tensor, n int) (backend.Pending, error) {
	rows := make([]float32, n)
	if err := s.Download(rows, src); err != nil {
		return nil, err
	}
	s.pending++
	s.most = max(s.most, s.pending)
	return &snapshot{s: s, rows: rows}, nil
}

type snapshot struct {
	s    *snapshotAsync
	rows []float32
	done bool
}

func (p *snapshot) Wait(dst []float32) error {
	if p.done {
		return errors.New("waited twice")
	}
	p.done = true
	p.s.pending--
	copy(dst, p.rows)
	return nil
}

// TestRowPipeAsync: with asynchronous downloads the engine keeps one batch in flight while it
// launches the next, across the windows of the pipeline too, and still writes every row where
// it belongs; a failure or a cancellation midway leaves no download pending.
func TestRowPipeAsync(t *testing.T) {
	e := loadMiniLM(t)
	texts := variedTexts(53, 11, "text number ")
	texts[40] = texts[3]
	H := e.Dim()
	sync := e.sh.be
	async := &snapshotAsync{Backend: sync}
	defer func() { e.sh.be = sync }()
	defer func(w int, c bool) { pipelineWindow, pipelineOnCPU = w, c }(pipelineWindow, pipelineOnCPU)
	// bothWays encodes texts with the synchronous backend, then with the asynchronous one, and
	// fails the test where a vector differs by more than tol (0: in any bit).
	bothWays := func(what string, tol float64) {
		t.Helper()
		want, got := make([]float32, len(texts)*H), make([]float32, len(texts)*H)
		for _, run := range []struct {
			be  backend.Backend
			dst []float32
		}{{sync, want}, {async, got}} {
			e.sh.be = run.be
			if err := e.EncodeWith(texts, run.dst, EncodeOptions{BatchSize: 4}); err != nil {
				t.Fatal(err)
			}
		}
		for i := range got {
			if math.Abs(float64(got[i])-float64(want[i])) > tol || math.IsNaN(float64(got[i])) {
				t.Fatalf("%s: text %d dim %d: %v, synchronous %v", what, i/H, i%H, got[i], want[i])
			}
		}
	}
	for _, window := range []int{1000, 7} { // one window; windows of 7 texts (each a batch or two)
		pipelineWindow, pipelineOnCPU = window, true
		bothWays(fmt.Sprintf("window %d", window), 0)
		if async.pending != 0 || async.most != 2 {
			t.Errorf("window %d: %d downloads left pending, at most %d at once (want 0 and 2)", window, async.pending, async.most)
		}
	}
	// Out of memory while a batch is in flight: it is finished, the rest split, same results.
	if err := e.SetDebugOOMAfter(30 * 15 * 1024); err != nil { // about 30 tokens of MiniLM fit
		t.Fatal(err)
	}
	// Not bit for bit: after the first failure the batcher plans the windows it has not planned
	// yet under the smaller budget, while those already planned are split batch by batch, and
	// which windows those are depends on the goroutines' timing. The CPU's GEMMs round a row
	// differently in batches of different sizes (a few units in the last place).
	bothWays("after out-of-memory splits", 1e-6)
	if err := e.SetDebugOOMAfter(0); err != nil {
		t.Fatal(err)
	}
	if async.pending != 0 {
		t.Errorf("%d downloads left pending after out-of-memory splits", async.pending)
	}
	bad := append([]string(nil), texts...)
	bad[30] = "bad \xff utf-8"
	if err := e.EncodeWith(bad, make([]float32, len(bad)*H), EncodeOptions{BatchSize: 4}); err == nil {
		t.Fatal("a bad text midway: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.EncodeContext(ctx, texts, make([]float32, len(texts)*H), EncodeOptions{BatchSize: 4}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if async.pending != 0 {
		t.Errorf("%d downloads left pending after a failure and a cancellation", async.pending)
	}
}

// TestSplitTail: the last of several batches loses its n shortest sequences to a batch of
// their own, with every sequence still planned once and the counts right.
func TestSplitTail(t *testing.T) {
	var ids [][]int32
	for i := range 300 {
		ids = append(ids, make([]int32, 1+i%100))
	}
	rows := make([]int, len(ids))
	for i := range rows {
		rows[i] = i
	}
	plans := planRows(ids, rows, 1000, 8000)
	split := splitTail(ids, slices.Clone(plans), 32)
	if len(split) != len(plans)+1 {
		t.Fatalf("%d batches became %d", len(plans), len(split))
	}
	seen := map[int]bool{}
	for _, b := range split {
		tokens, most := 0, 0
		for _, i := range b.Index {
			if seen[i] {
				t.Fatalf("sequence %d planned twice", i)
			}
			seen[i] = true
			tokens += len(ids[i])
			most = max(most, len(ids[i]))
		}
		if tokens != b.Tokens || most != b.MaxLen {
			t.Errorf("batch of %d: tokens %d (counted %d), max %d (counted %d)", len(b.Index), b.Tokens, tokens, b.MaxLen, most)
		}
	}
	if len(seen) != len(ids) || len(split[len(split)-1].Index) != 32 {
		t.Errorf("%d of %d sequences planned, last batch %d", len(seen), len(ids), len(split[len(split)-1].Index))
	}
	if got := splitTail(ids, plans[:1], len(plans[0].Index)/2); len(got) != 1 {
		t.Errorf("a batch of 2n sequences was split into %d", len(got))
	}
	if got := splitTail(ids, slices.Clone(plans), 0); len(got) != len(plans) {
		t.Errorf("n = 0 changed the plan")
	}
}
