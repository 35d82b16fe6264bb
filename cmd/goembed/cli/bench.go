package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/goembed/goembed/gocore"
)

const benchUsage = `usage: goembed bench --input corpus.jsonl[.gz] [flags]

Times embedding the first --limit records of the input end to end (Go strings in, float32 rows
out: tokenization, scheduling, forward passes, copies), as goembed embed runs them, after
--warmup untimed runs; prints one JSON record (median, min, max of --repeat runs; docs/s,
tokens/s and achieved TFLOP/s at the median) on stdout.

flags:
`

func runBench(ctx context.Context, args []string, env Env) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var m modelFlags
	m.register(fs)
	input := fs.String("input", "", "corpus: .jsonl or .txt, optionally gzipped; - reads stdin")
	field := fs.String("field", "text", "JSON field holding the text ('' reads each line as a text)")
	limit := fs.Int("limit", 2000, "records to embed per run")
	batch := fs.Int("batch-size", 32, "sequences per forward pass")
	window := fs.Int("window", 0, "texts per call into the engine (0: as goembed embed)")
	prompt := fs.String("prompt", "", "text prepended to every input")
	promptName := fs.String("prompt-name", "", "name of one of the model's prompts")
	warmup := fs.Int("warmup", 1, "untimed runs first (the first run compiles kernels and captures graphs)")
	repeat := fs.Int("repeat", 5, "timed runs")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), benchUsage)
		fs.PrintDefaults()
	}
	if err := parse(fs, args, env); err != nil {
		return err
	}
	switch {
	case *input == "":
		fmt.Fprintln(env.Stderr, "goembed bench: --input is required")
		fs.Usage()
		return errUsage
	case *limit <= 0 || *batch <= 0 || *repeat <= 0 || *warmup < 0 || *window < 0:
		return fmt.Errorf("--limit, --batch-size and --repeat must be positive, --warmup and --window not negative")
	}

	src := newSource(*input, *field, env.Stdin)
	var texts []string
	for t := range src.Texts() {
		if texts = append(texts, t); len(texts) == *limit {
			break
		}
	}
	if err := src.Err(); err != nil {
		return err
	}
	if len(texts) == 0 {
		return fmt.Errorf("%s: no records", *input)
	}
	enc, err := m.load(env)
	if err != nil {
		return err
	}
	defer enc.Close()
	promptText, err := resolvePrompt(enc, *prompt, *promptName)
	if err != nil {
		return err
	}
	ids, err := enc.Tokenize(texts, promptText)
	if err != nil {
		return err
	}
	cfg := enc.Model.Config
	L, H, F := float64(cfg.NumHiddenLayers), float64(cfg.HiddenSize), float64(cfg.IntermediateSize)
	var tokens int
	var flops float64
	for _, s := range ids {
		S := float64(len(s))
		tokens += len(s)
		flops += S * L * (8*H*H + 4*H*F + 4*S*H) // MEASURING.md: GEMMs plus attention per real token
	}

	opts := gocore.StreamOptions{EncodeOptions: gocore.EncodeOptions{BatchSize: *batch, Prompt: promptText}, Window: *window}
	run := func() (time.Duration, error) {
		t0 := time.Now()
		n := 0
		for _, err := range enc.EncodeStream(ctx, slices.Values(texts), opts) {
			if err != nil {
				return 0, err
			}
			n++
		}
		if n != len(texts) {
			return 0, fmt.Errorf("got %d vectors for %d texts", n, len(texts))
		}
		return time.Since(t0), nil
	}
	for range *warmup {
		if _, err := run(); err != nil {
			return err
		}
	}
	times := make([]time.Duration, *repeat)
	for i := range times {
		if times[i], err = run(); err != nil {
			return err
		}
	}
	slices.Sort(times)
	med := times[len(times)/2].Seconds()
	if len(times)%2 == 0 {
		med = (times[len(times)/2-1] + times[len(times)/2]).Seconds() / 2
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	rec := map[string]any{
		"engine": "goembed", "command": "goembed bench " + strings.Join(args, " "),
		"model": enc.Model.Dir, "device": enc.Device(), "dtype": m.dtype, "batch": *batch,
		"corpus": *input, "docs": len(texts), "tokens": tokens, "mean_tokens": float64(tokens) / float64(len(texts)),
		"timed": "end_to_end", "median_ms": med * 1000, "min_ms": ms(times[0]), "max_ms": ms(times[len(times)-1]),
		"reps": *repeat, "docs_per_s": float64(len(texts)) / med, "tokens_per_s": float64(tokens) / med,
		"tflops": flops / med / 1e12, "date": time.Now().UTC().Format(time.RFC3339),
	}
	fmt.Fprintf(env.Stderr, "goembed bench: %d docs (%d tokens) on %s: %.0f docs/s, %.0f tokens/s (median of %d, %.1f to %.1f ms)\n",
		len(texts), tokens, enc.Device(), rec["docs_per_s"], rec["tokens_per_s"], *repeat, ms(times[0]), ms(times[len(times)-1]))
	return json.NewEncoder(env.Stdout).Encode(rec)
}
