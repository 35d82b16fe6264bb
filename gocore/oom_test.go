package gocore

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/goembed/goembed/gocore/arch"
	"github.com/goembed/goembed/gocore/backend"
	"github.com/goembed/goembed/gocore/schedule"
)

func oomTexts() []string {
	var texts []string
	for i := range 40 {
		texts = append(texts, strings.Repeat(fmt.Sprintf("the quick brown fox%d ", i%7), 1+i%9))
	}
	return texts
}

// TestOutOfMemorySplitsTheBatch: with the workspace limited so that a batch of 32 does not fit
// but one sequence does, encode splits and gives the results of an unlimited run exactly;
// when not even one sequence fits, the error is ErrOutOfMemory; afterwards the same Encoder
// gives the same results again.
func TestOutOfMemorySplitsTheBatch(t *testing.T) {
	e, err := Load(tinyDir(t), Options{Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	texts := oomTexts()
	want, err := e.Encode(texts)
	if err != nil {
		t.Fatal(err)
	}
	// A token takes 258 workspace elements (ids, positions, hidden, qkv, context, projection,
	// ffn): one 48-token sequence fits under 300 per token, two do not.
	if err := e.SetDebugOOMAfter(4 * 48 * 300); err != nil {
		t.Fatal(err)
	}
	got, err := e.Encode(texts)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(got, want); d > 1e-5 {
		t.Errorf("results after splitting differ from the unsplit run by %g", d)
	}
	// The limit is real: a batch of 32 long texts alone fails.
	long := make([]string, 32)
	for i := range long {
		long[i] = strings.Repeat("hello world ", 30) + fmt.Sprint(i)
	}
	dst := make([]float32, len(long)*e.Dim())
	ids, _ := e.Tokenize(long, "")
	if _, err := e.launch(pack(ids, planAll(ids)), dst, arch.Output{}, false); !errors.Is(err, backend.ErrOutOfMemory) {
		t.Fatalf("a forward of 32 sequences under the limit: %v, want ErrOutOfMemory", err)
	}

	if err := e.SetDebugOOMAfter(100); err != nil {
		t.Fatal(err)
	}
	_, err = e.Encode(texts)
	if !errors.Is(err, backend.ErrOutOfMemory) || !strings.Contains(err.Error(), "one sequence") {
		t.Fatalf("nothing fits: %v, want ErrOutOfMemory naming one sequence", err)
	}
	if err := e.SetDebugOOMAfter(0); err != nil {
		t.Fatal(err)
	}
	got, err = e.Encode(texts)
	if err != nil || !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("after an out-of-memory failure: %v (or different results)", err)
	}
}

// maxDiff is the largest absolute difference of two sets of embeddings.
func maxDiff(a, b [][]float32) float64 {
	var d float64
	for i := range a {
		for j := range a[i] {
			d = max(d, math.Abs(float64(a[i][j]-b[i][j])))
		}
	}
	return d
}

// planAll is one batch of every sequence.
func planAll(ids [][]int32) (p schedule.Batch) {
	for i, s := range ids {
		p.Index = append(p.Index, i)
		p.Tokens += len(s)
		p.MaxLen = max(p.MaxLen, len(s))
	}
	return p
}

// TestOutOfMemoryFromTheEnvironment: GOEMBED_DEBUG_OOM_AFTER applies at load.
func TestOutOfMemoryFromTheEnvironment(t *testing.T) {
	t.Setenv("GOEMBED_DEBUG_OOM_AFTER", "100")
	e, err := Load(tinyDir(t), Options{Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.Encode([]string{"hello"}); !errors.Is(err, backend.ErrOutOfMemory) {
		t.Errorf("GOEMBED_DEBUG_OOM_AFTER=100: %v, want ErrOutOfMemory", err)
	}
	t.Setenv("GOEMBED_DEBUG_OOM_AFTER", "lots")
	if _, err := Load(tinyDir(t), Options{Device: "cpu"}); err == nil || !strings.Contains(err.Error(), "GOEMBED_DEBUG_OOM_AFTER") {
		t.Errorf("a bad GOEMBED_DEBUG_OOM_AFTER: %v", err)
	}
}

// TestDebugPanicsAreRecovered: a panic in a tokenizer worker comes back as an error; one in the
// caller's goroutine unwinds without leaving the device lock held; the Encoder works after both.
func TestDebugPanicsAreRecovered(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4)) // so a batch is tokenized on several goroutines
	e, err := Load(tinyDir(t), Options{Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	texts := oomTexts()
	want, err := e.Encode(texts)
	if err != nil {
		t.Fatal(err)
	}
	if err := DebugPanicNext("worker"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Encode(texts); err == nil || !strings.Contains(err.Error(), "internal error") {
		t.Errorf("worker panic: %v, want an internal error", err)
	}
	if err := DebugPanicNext("caller"); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "debug panic") {
				t.Errorf("caller panic: recovered %v", r)
			}
		}()
		e.Encode(texts)
	}()
	got, err := e.Encode(texts)
	if err != nil || !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("after the panics: %v (or different results)", err)
	}
	if err := DebugPanicNext("elsewhere"); err == nil {
		t.Error("DebugPanicNext accepted an unknown place")
	}
}

// TestOutOfMemoryPipelined: the split also works when tokenization runs ahead in windows.
func TestOutOfMemoryPipelined(t *testing.T) {
	defer func(on bool, w int) { pipelineOnCPU, pipelineWindow = on, w }(pipelineOnCPU, pipelineWindow)
	pipelineOnCPU, pipelineWindow = true, 8
	e, err := Load(tinyDir(t), Options{Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	texts := oomTexts()
	want := mustEncode(t, e, texts)
	e.SetDebugOOMAfter(4 * 48 * 300)
	if got := mustEncode(t, e, texts); maxDiff(got, want) > 1e-5 {
		t.Errorf("pipelined, split: differs by %g", maxDiff(got, want))
	}
	e.SetDebugOOMAfter(100)
	if _, err := e.Encode(texts); !errors.Is(err, backend.ErrOutOfMemory) {
		t.Errorf("pipelined, nothing fits: %v", err)
	}
}
