package cli

import (
	"context"
	"flag"
	"fmt"
	"iter"
	"math"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/goembed/goembed/gocore"
)

const embedUsage = `usage: goembed embed --input corpus.jsonl[.gz] --output emb.npy [flags]

Embeds every record of the input, in order: row i of the output is the embedding of the i-th
non-blank line. Input: JSON lines (the text under --field), or text lines (a .txt[.gz] name,
or --field ''), gzipped or not; - reads stdin. Output: .npy (float32, rows x dim) or .f32 (raw
little-endian float32 rows). An existing output is continued where it ends (a torn last row is
cut off), after checking that its last row matches this model and settings; --overwrite starts
over. Ctrl-C stops after the current window with the file consistent.

flags:
`

func runEmbed(ctx context.Context, args []string, env Env) error {
	fs := flag.NewFlagSet("embed", flag.ContinueOnError)
	var m modelFlags
	m.register(fs)
	input := fs.String("input", "", "corpus: .jsonl or .txt, optionally gzipped; - reads stdin")
	field := fs.String("field", "text", "JSON field holding the text ('' reads each line as a text)")
	outPath := fs.String("output", "", "output: .npy (float32, rows x dim) or .f32 (raw little-endian float32)")
	batch := fs.Int("batch-size", 32, "sequences per forward pass")
	normalize := fs.Bool("normalize", false, "L2-normalise (always done when the model has a Normalize module)")
	prompt := fs.String("prompt", "", "text prepended to every input")
	promptName := fs.String("prompt-name", "", "name of one of the model's prompts (see goembed info)")
	window := fs.Int("window", 0, "texts per call into the engine, which bounds memory (0: 8 batches but at least 256 on CPU, 32768 on GPU)")
	limit := fs.Int64("limit", 0, "stop once the output holds this many rows (0: the whole input)")
	overwrite := fs.Bool("overwrite", false, "start a new output instead of continuing an existing one")
	quiet := fs.Bool("quiet", false, "no progress bar")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), embedUsage)
		fs.PrintDefaults()
	}
	if err := parse(fs, args, env); err != nil {
		return err
	}
	switch {
	case *input == "" || *outPath == "":
		fmt.Fprintln(env.Stderr, "goembed embed: --input and --output are required")
		fs.Usage()
		return errUsage
	case *batch <= 0:
		return fmt.Errorf("--batch-size must be positive, got %d", *batch)
	case *window < 0 || *limit < 0:
		return fmt.Errorf("--window and --limit must not be negative")
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
	opts := gocore.StreamOptions{
		EncodeOptions: gocore.EncodeOptions{BatchSize: *batch, Normalize: *normalize, Prompt: promptText},
		Window:        *window,
	}
	if opts.Window == 0 {
		opts.Window = enc.DefaultWindow(*batch)
	}

	src := newSource(*input, *field, env.Stdin)
	total, err := src.Count()
	if err != nil {
		return err
	}
	if *limit > 0 && (total < 0 || total > *limit) {
		total = *limit
	}
	out, err := openOutput(*outPath, enc.Dim(), *overwrite)
	if err != nil {
		return err
	}
	defer out.Close()
	done := out.Rows()
	switch {
	case total >= 0 && done > total:
		return fmt.Errorf("%s holds %d rows but the input gives %d: it is not an output of this input (use --overwrite)", *outPath, done, total)
	}

	next, stop := iter.Pull(src.Texts())
	defer stop()
	if done > 0 {
		if err := checkResume(enc, out, next, done, opts.EncodeOptions); err != nil {
			return err
		}
	}
	if total >= 0 && done == total {
		switch {
		case *quiet:
		case total == 0:
			fmt.Fprintf(env.Stderr, "goembed embed: %s has no records; %s holds no rows\n", *input, *outPath)
		default:
			fmt.Fprintf(env.Stderr, "goembed embed: %s already holds all %d rows\n", *outPath, done)
		}
		return nil
	}
	rest := func(yield func(string) bool) {
		for n := done; *limit == 0 || n < *limit; n++ {
			t, ok := next()
			if !ok || !yield(t) {
				return
			}
		}
	}

	var bar *progressbar.ProgressBar
	if !*quiet {
		desc := "embed"
		if done > 0 {
			desc = fmt.Sprintf("embed (from row %d)", done)
		}
		max := int64(-1)
		if total >= 0 {
			max = total - done
		}
		bar = progressbar.NewOptions64(max, progressbar.OptionSetWriter(env.Stderr),
			progressbar.OptionSetDescription(desc), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("docs"), progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionSetRenderBlankState(true),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(env.Stderr) }))
	}
	// Rows arrive a window at a time; commit and move the bar once per window, so the file is
	// consistent at window boundaries and the bar's rate is not fooled by bursts.
	pending := 0
	commit := func() error {
		if bar != nil && pending > 0 {
			bar.Add(pending)
		}
		pending = 0
		return out.Commit()
	}
	start := time.Now()
	var runErr error
	for vec, err := range enc.EncodeStream(ctx, rest, opts) {
		if err != nil {
			runErr = err
			break
		}
		if err := out.Write(vec); err != nil {
			runErr = err
			break
		}
		if pending++; pending == opts.Window {
			if err := commit(); err != nil {
				runErr = err
				break
			}
		}
	}
	if runErr == nil {
		runErr = src.Err()
	}
	if err := commit(); err != nil && runErr == nil {
		runErr = err
	}
	if bar != nil {
		if runErr == nil && total >= 0 {
			bar.Finish()
		} else {
			fmt.Fprintln(env.Stderr)
		}
	}
	added := out.Rows() - done
	if runErr != nil {
		if added > 0 || done > 0 {
			fmt.Fprintf(env.Stderr, "goembed embed: %s holds %d rows; run the same command again to continue\n", *outPath, out.Rows())
		}
		return runErr
	}
	if !*quiet {
		secs := time.Since(start).Seconds()
		fmt.Fprintf(env.Stderr, "goembed embed: %d rows in %s (%d new in %.1fs, %.0f docs/s, device %s)\n",
			out.Rows(), *outPath, added, secs, float64(added)/max(secs, 1e-9), enc.Device())
	}
	return nil
}

// checkResume skips the done records and checks that the last stored row is the embedding of
// the last skipped record with these settings, so a file from another model, prompt or input is
// not silently extended. Batching differs between runs, so the check allows float noise.
func checkResume(enc *gocore.Encoder, out *output, next func() (string, bool), done int64, o gocore.EncodeOptions) error {
	var last string
	for i := int64(0); i < done; i++ {
		t, ok := next()
		if !ok {
			return fmt.Errorf("%s holds %d rows but the input ends after %d records: it is not an output of this input (use --overwrite)", out.path, done, i)
		}
		last = t
	}
	stored, err := out.Row(done - 1)
	if err != nil {
		return err
	}
	want := make([]float32, enc.Dim())
	if err := enc.EncodeWith([]string{last}, want, o); err != nil {
		return err
	}
	var diff, norm float64
	for j := range want {
		d := float64(stored[j] - want[j])
		diff += d * d
		norm += float64(want[j]) * float64(want[j])
	}
	if rel := math.Sqrt(diff / max(norm, 1e-30)); rel > 1e-3 {
		return fmt.Errorf("%s: row %d is not the embedding of record %d with this model and these settings "+
			"(relative difference %.3g): was it written with another model, --prompt or --normalize? "+
			"Use --overwrite to start over", out.path, done-1, done-1, rel)
	}
	return nil
}
