package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/assayhq/assay/daemon/client"
)

func (a *app) healthCmd() *cobra.Command {
	var output outputFormat
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Show whether assayd is up, its version, its queue and its analyzers",
		Args:  cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			c := a.client()
			defer c.CloseIdleConnections()
			h, err := c.Health(cmd.Context())
			var apiErr *client.APIError
			if err != nil && !(errors.As(err, &apiErr) && h.Status != "") {
				return err
			}
			// An unavailable assayd that still says how it is: show it, then fail.
			var werr error
			if output == formatJSON {
				werr = writeJSON(a.stdout, h)
			} else {
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "Status:\t%s\n", h.Status)
				fmt.Fprintf(tw, "Version:\t%s\n", h.Version)
				fmt.Fprintf(tw, "Uptime:\t%s\n", (time.Duration(h.UptimeSeconds) * time.Second).String())
				fmt.Fprintf(tw, "Queue:\t%d queued, %d running\n", h.Queue.Queued, h.Queue.Running)
				if len(h.Analyzers) == 0 {
					fmt.Fprintf(tw, "Analyzers:\tnone (every verdict is incomplete)\n")
				}
				for i, an := range h.Analyzers {
					label := ""
					if i == 0 {
						label = "Analyzers:"
					}
					line := an.Name + " " + an.Version
					if len(an.Extractors) > 0 {
						line += " (" + strings.Join(an.Extractors, ", ") + ")"
					}
					fmt.Fprintf(tw, "%s\t%s\n", label, line)
				}
				werr = tw.Flush()
			}
			return errors.Join(werr, err)
		}),
	}
	addOutputFlag(cmd, &output)
	return cmd
}
