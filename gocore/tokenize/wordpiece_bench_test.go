package tokenize

import "testing"

// BenchmarkEncodeCorpus tokenizes the first 5,000 corpus passages with all-MiniLM-L6-v2's
// tokenizer on one goroutine, through the Go fast path (HF for the texts it leaves) and through
// HF alone: go test -run '^$' -bench EncodeCorpus ./gocore/tokenize (GOEMBED_PYTHONPATH set).
func BenchmarkEncodeCorpus(b *testing.B) {
	texts, _ := corpus(b)
	texts = texts[:5000]
	fast, hf := loadPair(b, minilmJSON(b), 256)
	for _, c := range []struct {
		name string
		tk   *Tokenizer
	}{{"go", fast}, {"hf", hf}} {
		b.Run(c.name, func(b *testing.B) {
			tokens := 0
			for _, text := range texts { // validate once before timing
				ids, err := c.tk.Encode(text)
				if err != nil {
					b.Fatal(err)
				}
				tokens += len(ids)
			}
			b.ResetTimer()
			for b.Loop() {
				for _, text := range texts {
					c.tk.Encode(text)
				}
			}
			s := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(float64(len(texts))/s, "texts/s")
			b.ReportMetric(float64(tokens)/s, "tokens/s")
		})
	}
}

// BenchmarkEncodeBatchCorpus tokenizes all 54,571 corpus passages with EncodeBatch on every
// core (GOMAXPROCS), as gocore does before a forward, through the fast path and through HF.
func BenchmarkEncodeBatchCorpus(b *testing.B) {
	texts, _ := corpus(b)
	fast, hf := loadPair(b, minilmJSON(b), 256)
	for _, c := range []struct {
		name string
		tk   *Tokenizer
	}{{"go", fast}, {"hf", hf}} {
		b.Run(c.name, func(b *testing.B) {
			if _, err := c.tk.EncodeBatch(texts, ""); err != nil { // validate once before timing
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				c.tk.EncodeBatch(texts, "")
			}
			b.ReportMetric(float64(len(texts))/(b.Elapsed().Seconds()/float64(b.N)), "texts/s")
		})
	}
}
