package pybind

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/goembed/goembed/cmd/goembed/cli"
)

var (
	cliMu     sync.Mutex
	cliCancel context.CancelFunc
)

// RunCLI runs the goembed command in this process (the `goembed` console script): argsJSON is
// the JSON list of arguments after the program name, searchPaths the os.PathListSeparator-joined
// sys.path. It writes to the process's stdout and stderr and returns the exit status.
func RunCLI(argsJSON, searchPaths string) (code int, err error) {
	defer guard(&err)
	var args []string
	if err := json.Unmarshal([]byte(argsJSON), &args); err != nil {
		return 2, fmt.Errorf("ValueError: arguments must be a JSON list of strings: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cliMu.Lock()
	cliCancel = cancel
	cliMu.Unlock()
	env := cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, SearchPaths: filepath.SplitList(searchPaths)}
	return cli.Main(ctx, args, env), nil
}

// CancelCLI asks a running RunCLI to stop, as Ctrl-C stops the standalone command.
func CancelCLI() {
	cliMu.Lock()
	defer cliMu.Unlock()
	if cliCancel != nil {
		cliCancel()
	}
}
