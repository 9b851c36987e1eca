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
		output reportFormat
		fail   failOn
	)
	cmd := &cobra.Command{
		Use:   "report DIGEST|IMAGE",
		Short: "Show the latest report of a digest or an image reference",
		Long: `Show the latest report of a manifest digest (sha256:<64 hex>) or, for any
other argument, of an image reference. -o json prints the report as assayd
sent it, indented; the other -o formats print the standard documents
assayd writes (see -o's help).`,
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
			if output.machine() {
				digest, image := args[0], ""
				if !digestRE.MatchString(digest) {
					digest, image = "", args[0]
				}
				doc, err := c.ReportFormatted(cmd.Context(), digest, image, string(output.outputFormat))
				if err != nil {
					return err
				}
				return a.printDocument(doc, raw, fail)
			}
			return a.printReport(raw, output.outputFormat, fail)
		}),
	}
	addReportFormatFlag(cmd, &output)
	fail.addFlags(cmd)
	return cmd
}
