package gocore

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestEncodeFeed: texts handed over in parts while the pipeline already runs give the vectors
// of one EncodeWith call; aborting the feed midway ends the call with the abort's error.
func TestEncodeFeed(t *testing.T) {
	e := loadMiniLM(t)
	texts := variedTexts(41, 7, "fed text ")
	texts[33] = texts[4] // a duplicate across parts
	H := e.Dim()
	defer func(w int, c bool) { pipelineWindow, pipelineOnCPU = w, c }(pipelineWindow, pipelineOnCPU)
	for _, pipelined := range []bool{false, true} {
		pipelineWindow, pipelineOnCPU = 8, pipelined
		want := make([]float32, len(texts)*H)
		if err := e.EncodeWith(texts, want, EncodeOptions{BatchSize: 4}); err != nil {
			t.Fatal(err)
		}
		feed := NewTextFeed(len(texts))
		go func() {
			for start := 0; start < len(texts); start += 6 {
				time.Sleep(2 * time.Millisecond) // the pipeline waits for most parts
				if err := feed.Add(texts[start:min(start+6, len(texts))]); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		got := make([]float32, len(texts)*H)
		if err := e.EncodeFeed(context.Background(), feed, got, EncodeOptions{BatchSize: 4}); err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("pipelined %v: text %d dim %d: fed %v, one call %v", pipelined, i/H, i%H, got[i], want[i])
			}
		}
		if err := feed.Add(texts[:1]); err == nil {
			t.Errorf("pipelined %v: adding to a finished feed: no error", pipelined)
		}

		feed = NewTextFeed(len(texts))
		stop := errors.New("the caller could not convert text 20")
		go func() {
			feed.Add(texts[:20])
			time.Sleep(5 * time.Millisecond)
			feed.Abort(stop)
		}()
		if err := e.EncodeFeed(context.Background(), feed, got, EncodeOptions{BatchSize: 4}); !errors.Is(err, stop) {
			t.Errorf("pipelined %v: aborted feed: %v, want the abort's error", pipelined, err)
		}
	}
}
