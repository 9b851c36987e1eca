package main

import (
	"encoding/json"
	"regexp"

	"github.com/spf13/cobra"
)

// digestRE is what the report argument must look like to be taken as a
// manifest digest rather than an image reference.
var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func (a *app) reportCmd() *cobra.Command {
	var (
		output outputFormat
		fail   failOn
	)
	cmd := &cobra.Command{
		Use:   "report DIGEST|IMAGE",
		Short: "Show the latest report of a digest or an image reference",
		Long: `Show the latest report of a manifest digest (sha256:<64 hex>) or, for any
other argument, of an image reference. -o json prints the report as assayd
sent it, indented.`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			c := a.client()
			defer c.CloseIdleConnections()
			var (
				raw json.RawMessage
				err error
			)
			if digestRE.MatchString(args[0]) {
				raw, err = c.ReportJSON(cmd.Context(), args[0])
			} else {
				raw, err = c.ReportForImageJSON(cmd.Context(), args[0])
			}
			if err != nil {
				return err
			}
			return a.printReport(raw, output, fail)
		}),
	}
	addOutputFlag(cmd, &output)
	fail.addFlags(cmd)
	return cmd
}
