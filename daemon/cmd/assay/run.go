package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/assayhq/assay/daemon/formats"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/assayhq/assay/daemon/client"
	"github.com/assayhq/assay/daemon/report"
)

// Exit codes; keep them in step with the package comment and exitCodesHelp.
const (
	codeOK         = 0
	codeError      = 1
	codeUsage      = 2
	codeUnhealthy  = 3
	codeScanFailed = 4
	codeIncomplete = 5
)

const exitCodesHelp = `Exit codes:
  0  success
  1  error: assayd unreachable, an API error, a bad response, interrupted
  2  usage error: bad flags or arguments
  3  the verdict is unhealthy and --fail-on-unhealthy was given (scan --wait, report)
  4  the waited-for scan ended failed or cancelled (scan --wait)
  5  the verdict is incomplete and --fail-on-incomplete was given (scan --wait, report)`

// exitError carries the exit code of a failed command. Errors that reach
// run without one came from cobra's own parsing: usage errors.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &exitError{code: codeUsage, err: fmt.Errorf(format, args...)}
}

// app is one invocation: its streams and its global flags.
type app struct {
	stdout, stderr io.Writer
	now            func() time.Time
	socket         string
	timeout        time.Duration
	// server, tokenFile and caFile select assayd's TCP API instead of the
	// socket; remote is the client made of them (PersistentPreRunE).
	server, tokenFile, caFile string
	remote                    *client.Client
}

func (a *app) client() *client.Client {
	if a.remote != nil {
		return a.remote
	}
	return client.New(a.socket, client.WithTimeout(a.timeout))
}

// remoteClient makes the client of --server from the token file and the
// CA file.
func (a *app) remoteClient() (*client.Client, error) {
	if a.tokenFile == "" {
		return nil, usageErrorf("--server needs --token-file (or $ASSAY_TOKEN_FILE)")
	}
	b, err := os.ReadFile(a.tokenFile)
	if err != nil {
		return nil, usageErrorf("--token-file: %v", err)
	}
	token := strings.TrimSpace(string(b))
	var roots *x509.CertPool
	if a.caFile != "" {
		pem, err := os.ReadFile(a.caFile)
		if err != nil {
			return nil, usageErrorf("--ca-file: %v", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, usageErrorf("--ca-file %s: no PEM certificate in it", a.caFile)
		}
	}
	c, err := client.NewRemote(a.server, token, roots, client.WithTimeout(a.timeout))
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	return c, nil
}

// run is the whole CLI; main only exits with its result.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	a := &app{stdout: stdout, stderr: stderr, now: time.Now}
	socket := os.Getenv("ASSAY_SOCKET")
	if socket == "" {
		socket = client.DefaultSocket
	}
	root := a.rootCmd(socket)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return codeOK
	}
	code := codeUsage
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if code == codeError && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = errors.New("interrupted")
	}
	fmt.Fprintf(stderr, "assay: %v\n", err)
	if code == codeUsage {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// runE marks the errors of a command's own work as exit code 1 unless they
// carry a code already.
func runE(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := f(cmd, args)
		var ee *exitError
		if err == nil || errors.As(err, &ee) {
			return err
		}
		return &exitError{code: codeError, err: err}
	}
}

func (a *app) rootCmd(socket string) *cobra.Command {
	root := &cobra.Command{
		Use:   "assay",
		Short: "Scan container images with assayd",
		Long: `assay asks assayd, the container-image scan daemon, to scan images and shows
the scans, reports and events it keeps. It talks to assayd's API on a Unix
socket: --socket, else $ASSAY_SOCKET, else ` + client.DefaultSocket + `; or, with
--server https://HOST:PORT and --token-file, to its TCP API (api.listen).

` + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if a.timeout < 0 {
				return usageErrorf("--timeout must not be negative")
			}
			if a.socket == "" {
				return usageErrorf("--socket must not be empty")
			}
			if a.server != "" {
				c, err := a.remoteClient()
				if err != nil {
					return err
				}
				a.remote = c
			}
			return nil
		},
	}
	root.PersistentFlags().StringVar(&a.socket, "socket", socket, "assayd's API socket; $ASSAY_SOCKET sets the default")
	root.PersistentFlags().StringVar(&a.server, "server", os.Getenv("ASSAY_SERVER"), "assayd's TCP API instead of the socket, https://HOST:PORT; $ASSAY_SERVER sets the default")
	root.PersistentFlags().StringVar(&a.tokenFile, "token-file", os.Getenv("ASSAY_TOKEN_FILE"), "file holding the bearer token for --server; $ASSAY_TOKEN_FILE sets the default")
	root.PersistentFlags().StringVar(&a.caFile, "ca-file", os.Getenv("ASSAY_CA_FILE"), "PEM CA certificates the --server's certificate chains to (default: the system's); $ASSAY_CA_FILE")
	root.PersistentFlags().DurationVar(&a.timeout, "timeout", 30*time.Second, "bound on each request to assayd (0: none)")
	root.AddCommand(a.scanCmd(), a.statusCmd(), a.cancelCmd(), a.reportCmd(), a.watchCmd(), a.healthCmd(),
		a.dbCmd(), a.vulnCmd(), a.packagesCmd(), a.cacheCmd(), a.notifyCmd())
	return root
}

// outputFormat is the -o flag.
type outputFormat string

const (
	formatTable outputFormat = "table"
	formatJSON  outputFormat = "json"
)

// machine reports whether o is a document format assayd writes other than
// its JSON (daemon/formats.All), fetched with ?format=.
func (o outputFormat) machine() bool {
	f, ok := formats.Lookup(string(o))
	return ok && f.Name != formats.JSON
}

// reportFormat is the -o flag of report and scan: table, or a format of
// daemon/formats' table.
type reportFormat struct{ outputFormat }

func (o *reportFormat) Type() string { return "table|" + strings.Join(formats.Names(), "|") }
func (o *reportFormat) Set(s string) error {
	if s == string(formatTable) {
		o.outputFormat = formatTable
		return nil
	}
	if f, ok := formats.Lookup(s); ok && f.Name == s {
		o.outputFormat = outputFormat(s)
		return nil
	}
	return fmt.Errorf("want table, %s", strings.Join(formats.Names(), ", "))
}

func addReportFormatFlag(cmd *cobra.Command, o *reportFormat) {
	o.outputFormat = formatTable
	help := []string{"table"}
	for _, f := range formats.All {
		help = append(help, fmt.Sprintf("%s (%s)", f.Name, f.Title))
	}
	cmd.Flags().VarP(o, "output", "o", "output format: "+strings.Join(help, ", "))
}

func (o *outputFormat) String() string { return string(*o) }
func (o *outputFormat) Type() string   { return "table|json" }
func (o *outputFormat) Set(s string) error {
	switch f := outputFormat(s); f {
	case formatTable, formatJSON:
		*o = f
		return nil
	}
	return errors.New("want table or json")
}

func addOutputFlag(cmd *cobra.Command, o *outputFormat) {
	*o = formatTable
	cmd.Flags().VarP(o, "output", "o", "output format: table or json")
}

// severityFlag and verdictFlag check their values while flags are parsed,
// so a bad one is a usage error.
type severityFlag struct{ v report.Severity }

func (f *severityFlag) String() string { return string(f.v) }
func (f *severityFlag) Type() string   { return "severity" }
func (f *severityFlag) Set(s string) (err error) {
	f.v, err = report.ParseSeverity(s)
	return err
}

type verdictFlag struct{ v report.Verdict }

func (f *verdictFlag) String() string { return string(f.v) }
func (f *verdictFlag) Type() string   { return "verdict" }
func (f *verdictFlag) Set(s string) (err error) {
	f.v, err = report.ParseVerdict(s)
	return err
}

// failOn holds --fail-on-unhealthy and --fail-on-incomplete.
type failOn struct{ unhealthy, incomplete bool }

func (f *failOn) addFlags(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.unhealthy, "fail-on-unhealthy", false, "exit 3 when the verdict is unhealthy")
	cmd.Flags().BoolVar(&f.incomplete, "fail-on-incomplete", false, "exit 5 when the verdict is incomplete")
}

// check turns a verdict into the exit the flags ask for.
func (f failOn) check(r *report.Report) error {
	switch {
	case f.unhealthy && r.Verdict == report.Unhealthy:
		return &exitError{code: codeUnhealthy, err: fmt.Errorf("verdict for %s is unhealthy: %s", r.Digest, summaryText(r.Summary))}
	case f.incomplete && r.Verdict == report.Incomplete:
		return &exitError{code: codeIncomplete, err: fmt.Errorf("verdict for %s is incomplete: %s", r.Digest, incompleteReason(r))}
	}
	return nil
}

func incompleteReason(r *report.Report) string {
	if len(r.Analyzers) == 0 {
		return "no analyzer ran"
	}
	var bad []string
	for _, an := range sortedAnalyzers(r.Analyzers) {
		if an.Status != report.AnalyzerOK {
			bad = append(bad, fmt.Sprintf("%s %s", an.Name, an.Status))
		}
	}
	if len(bad) == 0 {
		return "assayd did not say why"
	}
	return strings.Join(bad, ", ")
}

// isTerminal reports whether w is a terminal, where progress may redraw
// one line.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
