// Command goembed embeds a corpus into .npy or raw float32 with a progress bar (resumable),
// describes a model, and benchmarks a corpus. See package cli, or run `goembed -h`.
//
//	goembed embed --model all-MiniLM-L6-v2 --input corpus.jsonl.gz --field text --output emb.npy
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/goembed/goembed/cmd/goembed/cli"
)

func main() {
	// The first Ctrl-C stops after the current window with the output consistent; after it the
	// default handling is back, so a second one kills.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	os.Exit(cli.Main(ctx, os.Args[1:], cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}))
}
