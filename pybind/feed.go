package pybind

// A fed encode: EncodeStart begins embedding n texts that Python hands over in parts
// (EncodeFeedTexts) while the first parts already run on the device, so that packing the later
// parts into UTF-8 overlaps the work; EncodeFinish waits for the end. Python keeps every part's
// buffer alive until EncodeFinish returns.

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"github.com/goembed/goembed/gocore"
)

type fedEncode struct {
	feed *gocore.TextFeed
	done chan struct{}
	err  error // set before done is closed
}

var (
	fedMu   sync.Mutex
	feds    = map[int64]*fedEncode{}
	nextFed int64
)

// EncodeStart starts embedding n texts into dst (float32, n x dim) with the settings in opts (as
// EncodeCtl); truncPtr and cancelPtr as for EncodeCtl. It returns a handle for EncodeFeedTexts
// and EncodeFinish, which must follow.
func EncodeStart(h int64, n int, dstPtr uintptr, opts string, truncPtr uintptr, cancelPtr uintptr) (id int64, err error) {
	defer guard(&err)
	e, err := lookup(h)
	if err != nil {
		return 0, err
	}
	o, err := parseOptions(opts)
	if err != nil {
		return 0, err
	}
	if n <= 0 {
		return 0, fmt.Errorf("ValueError: a fed encode needs at least one text, got %d", n)
	}
	dst := unsafe.Slice((*float32)(mem(dstPtr)), n*e.Dim())
	ctx, stop := watch(cancelPtr)
	f := &fedEncode{feed: gocore.NewTextFeed(n), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		defer stop()
		defer guard(&f.err)
		f.err = encodeError(ctx, e.EncodeFeed(ctx, f.feed, dst, o.encodeOptions(truncPtr, n)))
	}()
	fedMu.Lock()
	defer fedMu.Unlock()
	nextFed++
	feds[nextFed] = f
	return nextFed, nil
}

// EncodeFeedTexts hands the next n texts (a UTF-8 buffer and n+1 offsets, as for EncodeCtl) to
// the encode started as id. It returns the texts handed over.
func EncodeFeedTexts(id int64, textPtr uintptr, textLen int, offsPtr uintptr, n int) (fed int, err error) {
	defer guard(&err)
	fedMu.Lock()
	f, ok := feds[id]
	fedMu.Unlock()
	if !ok {
		return 0, fmt.Errorf("ValueError: fed encode %d is finished or invalid", id)
	}
	ts, err := texts(textPtr, textLen, offsPtr, n)
	if err != nil {
		return 0, err
	}
	if err := f.feed.Add(ts); err != nil {
		return 0, fmt.Errorf("ValueError: %v", err)
	}
	return n, nil
}

// errFeedAborted ends a fed encode whose caller stopped handing over texts.
var errFeedAborted = errors.New("the caller stopped handing over texts")

// EncodeFinish waits for the encode started as id and returns its error; with abort it first
// tells the encode that no more texts will come (after a failure on the Python side). It returns
// whether the encode succeeded.
func EncodeFinish(id int64, abort bool) (ok bool, err error) {
	defer guard(&err)
	fedMu.Lock()
	f, found := feds[id]
	delete(feds, id)
	fedMu.Unlock()
	if !found {
		return false, fmt.Errorf("ValueError: fed encode %d is finished or invalid", id)
	}
	if abort {
		f.feed.Abort(errFeedAborted)
	}
	<-f.done
	return f.err == nil, f.err
}
