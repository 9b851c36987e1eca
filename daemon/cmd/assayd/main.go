// Command assayd is the assay scan daemon. See README.md and
// docs/architecture.md; `assayd --help` lists the flags, one per config key.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/assayhq/assay/daemon"
	"github.com/assayhq/assay/daemon/config"
	"github.com/assayhq/assay/sandbox"
)

func main() {
	// A sandbox's init is this binary re-executed by libcontainer: handle
	// that before anything else (it never returns then).
	sandbox.Init()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(stderr, "assayd:", err)
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

type usageError struct{ error }

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	var configPath string
	root := &cobra.Command{
		Use:   "assayd",
		Short: "assay scan daemon",
		Long: `assayd scans container images and serves results on a local Unix socket.

Configuration precedence, highest first: flags (--section.key), environment
variables (ASSAY_SECTION_KEY), the YAML file (--config, default ` + config.DefaultPath + `),
built-in defaults (see configs/assayd.yaml).`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       daemon.Version,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	root.PersistentFlags().StringVar(&configPath, "config", "", "configuration file (default "+config.DefaultPath+")")
	config.BindFlags(root.Flags())

	load := func(cmd *cobra.Command) (*config.Config, []string, error) {
		return config.Load(config.LoadOptions{
			File:         configPath,
			FileRequired: cmd.Flags().Changed("config"),
			Flags:        cmd.Flags(),
			Environ:      os.Environ(),
		})
	}

	root.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, warnings, err := load(cmd)
		if err != nil {
			return err
		}
		level := new(slog.LevelVar)
		level.Set(cfg.Log.SlogLevel())
		slog.SetDefault(slog.New(newHandler(stderr, cfg.Log.Format, level)))
		for _, w := range warnings {
			slog.Warn(w)
		}
		return daemon.Run(cmd.Context(), cfg, daemon.Options{
			Level: level,
			Reload: func() (*config.Config, error) {
				c, _, err := load(cmd)
				return c, err
			},
		})
	}

	cfgCmd := &cobra.Command{Use: "config", Short: "Show or check configuration"}
	printCmd := &cobra.Command{
		Use:   "print",
		Short: "Print the effective configuration (file, environment and flags merged)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, warnings, err := load(cmd)
			if err != nil {
				return err
			}
			for _, w := range warnings {
				fmt.Fprintln(stderr, "warning:", w)
			}
			out, err := cfg.YAML()
			if err != nil {
				return err
			}
			_, err = stdout.Write(out)
			return err
		},
	}
	config.BindFlags(printCmd.Flags())
	validateCmd := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a configuration file (defaults + that file; no environment, no flags)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := config.ValidateFile(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s: ok\n", args[0])
			return nil
		},
	}
	cfgCmd.AddCommand(printCmd, validateCmd)
	root.AddCommand(cfgCmd)
	root.SetContext(context.Background())
	return root
}

func newHandler(w io.Writer, format string, level *slog.LevelVar) slog.Handler {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}
