package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/assayhq/assay/daemon/client"
)

func (a *app) watchCmd() *cobra.Command {
	var (
		output  outputFormat
		minSev  severityFlag
		verdict verdictFlag
		image   string
		evType  string
	)
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Follow assayd's scan and report events",
		Long: `Follow assayd's events until interrupted: one line per event, or with
-o json each event as assayd sent it. If assayd ends the stream (it drops a
client that reads too slowly, or it shuts down), watch exits 1.`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if evType != "" && evType != "scan" && evType != "report" {
				return usageErrorf("--type must be scan or report")
			}
			ctx := cmd.Context()
			// The stream is meant to stay open: --timeout bounds only its start.
			c := a.client()
			defer c.CloseIdleConnections()
			st, err := c.Events(ctx, client.EventFilter{MinSeverity: minSev.v, Verdict: verdict.v, Image: image, Type: evType})
			if err != nil {
				return err
			}
			defer st.Close()
			for {
				ev, err := st.Next()
				switch {
				case ctx.Err() != nil:
					return nil // interrupted: the way watch is meant to end
				case errors.Is(err, io.EOF):
					return errors.New("assayd closed the event stream")
				case err != nil:
					return err
				}
				if output == formatJSON {
					_, err = fmt.Fprintf(a.stdout, "%s\n", st.Raw())
				} else {
					_, err = fmt.Fprintln(a.stdout, eventLine(ev))
				}
				if err != nil {
					return err
				}
			}
		}),
	}
	addOutputFlag(cmd, &output)
	cmd.Flags().Var(&minSev, "min-severity", "only reports with a finding at least this severe")
	cmd.Flags().Var(&verdict, "verdict", "only reports with this verdict: healthy, unhealthy or incomplete")
	cmd.Flags().StringVar(&image, "image", "", "only events of this image reference")
	cmd.Flags().StringVar(&evType, "type", "", "only events of this type: scan or report")
	return cmd
}
