package cuda

import (
	"math/rand/v2"
	"testing"

	"github.com/goembed/goembed/gocore/backend"
)

// TestDownloadAsyncPipeline runs the engine's pattern without a Sync: write ids, run an op that
// reads them, start the download of its output, and wait for the previous round's download only
// after the next round is enqueued. Every round must see its own ids, although the staged
// uploads and the output tensor are reused while copies are still queued. The op is Embed with
// one-hot word rows: LayerNorm keeps each row's largest element at the token's id. Token counts
// vary and grow, so the upload halves switch and grow while earlier copies are pending.
func TestDownloadAsyncPipeline(t *testing.T) {
	b := openOrSkip(t, "float32")
	defer b.Close()
	const V, maxT = 64, 60000
	word := make([]float32, V*V)
	for v := range V {
		word[v*V+v] = 1
	}
	gamma, beta := make([]float32, V), make([]float32, V)
	for i := range gamma {
		gamma[i] = 1
	}
	wT, pT, gT, bT := b.Upload(word), b.Upload(make([]float32, V)), b.Upload(gamma), b.Upload(beta)
	idsT, posT, out := b.UploadInt32(make([]int32, maxT)), b.UploadInt32(make([]int32, maxT)), b.Alloc(maxT*V)
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	type round struct {
		ids []int32
		p   backend.Pending
	}
	check := func(r round) {
		t.Helper()
		got := make([]float32, len(r.ids)*V)
		if err := r.p.Wait(got); err != nil {
			t.Fatal(err)
		}
		for i, id := range r.ids {
			row := got[i*V : (i+1)*V]
			best := 0
			for j := range row {
				if row[j] > row[best] {
					best = j
				}
			}
			if best != int(id) {
				t.Fatalf("round of %d tokens: token %d has id %d, its row peaks at %d", len(r.ids), i, id, best)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var prev *round
	for k := range 40 {
		T := 1000 + rng.IntN(maxT/40*(k+1)-1000+1)
		ids := make([]int32, T)
		for i := range ids {
			ids[i] = int32(rng.IntN(V))
		}
		b.WriteInt32(idsT, ids)
		b.WriteInt32(posT, make([]int32, T))
		b.Embed(out, idsT, posT, nil, wT, pT, nil, gT, bT, T, V, 1e-5)
		p, err := b.DownloadAsync(out, T*V)
		if err != nil {
			t.Fatal(err)
		}
		if prev != nil {
			check(*prev)
		}
		prev = &round{ids: ids, p: p}
	}
	check(*prev)
	if err := prev.p.Wait(nil); err == nil {
		t.Error("a second Wait: no error")
	}
	// A released download frees its buffer: many unwaited-for rounds would keep adding buffers.
	for range 10 {
		p, err := b.DownloadAsync(out, V)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(nil); err != nil {
			t.Fatal(err)
		}
	}
	if len(b.staging) > 3 {
		t.Errorf("%d staging buffers after the pipeline (at most 2 in flight, 1 grown)", len(b.staging))
	}
	// A bad source is an error from DownloadAsync, and nothing is pending.
	if p, err := b.DownloadAsync(idsT, 10); err == nil || p != nil {
		t.Errorf("download of an int32 tensor: %v, %v", p, err)
	}
	if err := b.Sync(); err != nil {
		t.Errorf("after the refused download: %v", err)
	}
}
