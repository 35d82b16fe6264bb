package gocore

import (
	"fmt"
	"math"

	"github.com/goembed/goembed/gocore/arch"
	"github.com/goembed/goembed/gocore/schedule"
)

// EncodeTokens returns the token embeddings of each text: the transformer's last hidden state
// for each of its tokens (prompt and special tokens included), before pooling, as one row-major
// [n_i, Hidden] slice per text, in input order. It is sentence-transformers'
// output_value="token_embeddings"; o.Normalize does not apply to token vectors there either.
func (e *Encoder) EncodeTokens(texts []string, o EncodeOptions) ([][]float32, error) {
	if o.BatchSize == 0 {
		o.BatchSize = e.defaultBatchSize()
	}
	if o.BatchSize < 0 {
		return nil, fmt.Errorf("batch size must be positive, got %d", o.BatchSize)
	}
	ids, err := e.Tokenize(texts, o.Prompt)
	if err != nil {
		return nil, err
	}
	lengths := make([]int, len(ids))
	for i, s := range ids {
		lengths[i] = len(s)
	}
	budget := tokenBudget
	if e.Device() != "cpu" {
		budget = e.sh.gpuBudget
	}
	out := make([][]float32, len(ids))
	for _, plan := range schedule.Plan(lengths, o.BatchSize, budget) {
		in := pack(ids, plan)
		host, H, err := e.forwardTokens(in)
		if err != nil {
			return nil, err
		}
		for j, i := range plan.Index {
			rows := host[int(in.SeqStarts[j])*H : int(in.SeqStarts[j+1])*H : int(in.SeqStarts[j+1])*H]
			for _, v := range rows {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return nil, fmt.Errorf("non-finite value in the token embeddings of text %d (device %s)", i, e.Device())
				}
			}
			out[i] = rows
		}
	}
	return out, nil
}

// forwardTokens runs one packed batch under the device lock and downloads its token vectors
// [T, H] (a new slice, so that each text's rows can be handed out without a copy).
func (e *Encoder) forwardTokens(in *arch.Batch) ([]float32, int, error) {
	sh := e.sh
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e.closed.Load() || sh.net == nil {
		return nil, 0, ErrClosed
	}
	if _, err := sh.net.Forward(in, arch.Output{}); err != nil {
		return nil, 0, err
	}
	H := sh.net.Hidden()
	host := make([]float32, in.T()*H)
	return host, H, sh.be.Download(host, sh.net.Tokens())
}
