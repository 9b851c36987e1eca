// Command logbomb is a hostile test plugin: it writes log lines to its real
// stderr that go-plugin v1.8.0's log parser would panic on, and then more
// log than the host accepts, and otherwise behaves.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/assayhq/assay/plugins/sdk"
)

type logbomb struct{}

func (logbomb) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{Name: "logbomb", Version: "1"}, nil
}

// stderr is the process's real stderr: plugin.Serve replaces os.Stderr
// with a pipe to go-plugin's stdio stream.
var stderr = os.Stderr

func (logbomb) Analyze(ctx context.Context, req sdk.Request, emit sdk.Emitter) error {
	fmt.Fprintln(stderr, `{"@message":1}`)
	fmt.Fprintln(stderr, ` {"@level":["error"],"@message":"x"}`)
	fmt.Fprintln(stderr, `{"@message":"x","@timestamp":7}`)
	line := strings.Repeat("y", 1000)
	for range 3000 {
		fmt.Fprintln(stderr, line)
	}
	return emit.Warning(sdk.Warning{Message: "still here"})
}

func main() { sdk.Serve(logbomb{}) }
