package main

import (
	"fmt"
	"sort"

	"github.com/spf13/cobra"

	"github.com/assayhq/assay/daemon/scans"
)

func (a *app) statusCmd() *cobra.Command {
	var (
		output   outputFormat
		statuses []string
		image    string
		digest   string
		limit    int
		after    string
	)
	cmd := &cobra.Command{
		Use:   "status [ID]",
		Short: "Show one scan, or list scans",
		Long: `Show one scan by ID, or list scans, oldest first. The list filters combine;
--status takes a comma-separated list or repeats. When more scans follow, the
cursor for --after is printed to stderr.`,
		Args: cobra.MaximumNArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c := a.client()
			defer c.CloseIdleConnections()
			if len(args) == 1 {
				for _, f := range []string{"status", "image", "digest", "limit", "after"} {
					if cmd.Flags().Changed(f) {
						return usageErrorf("--%s filters the list of scans; it does not go with a scan ID", f)
					}
				}
				s, err := c.Scan(ctx, args[0])
				if err != nil {
					return err
				}
				if output == formatJSON {
					return writeJSON(a.stdout, s)
				}
				return writeScan(a.stdout, s)
			}

			f := scans.Filter{Image: image, Digest: digest, After: after, Limit: limit}
			if limit < 0 {
				return usageErrorf("--limit must not be negative")
			}
			for _, s := range statuses {
				st, err := scans.ParseStatus(s)
				if err != nil {
					return usageErrorf("--status: %v", err)
				}
				f.Status = append(f.Status, st)
			}
			list, next, err := c.Scans(ctx, f)
			if err != nil {
				return err
			}
			if list == nil {
				list = []scans.Scan{}
			}
			sort.SliceStable(list, func(i, j int) bool {
				if !list[i].CreatedAt.Equal(list[j].CreatedAt) {
					return list[i].CreatedAt.Before(list[j].CreatedAt)
				}
				return list[i].ID < list[j].ID
			})
			if output == formatJSON {
				return writeJSON(a.stdout, struct {
					Scans []scans.Scan `json:"scans"`
					Next  string       `json:"next,omitempty"`
				}{list, next})
			}
			if err := writeScanList(a.stdout, list, a.now()); err != nil {
				return err
			}
			if next != "" {
				fmt.Fprintf(a.stderr, "more scans follow: assay status --after %s\n", next)
			}
			return nil
		}),
	}
	addOutputFlag(cmd, &output)
	cmd.Flags().StringSliceVar(&statuses, "status", nil, "list scans in these statuses: "+statusNames())
	cmd.Flags().StringVar(&image, "image", "", "list scans of this image reference (exact match)")
	cmd.Flags().StringVar(&digest, "digest", "", "list scans of this manifest digest")
	cmd.Flags().IntVar(&limit, "limit", 0, "list at most this many scans (0: assayd's default)")
	cmd.Flags().StringVar(&after, "after", "", "list scans created after this scan ID (paging cursor)")
	return cmd
}

func statusNames() string {
	s := ""
	for i, st := range scans.Statuses {
		if i > 0 {
			s += ", "
		}
		s += string(st)
	}
	return s
}

func (a *app) cancelCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a queued or running scan",
		Args:  cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			c := a.client()
			defer c.CloseIdleConnections()
			s, err := c.Cancel(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "%s %s\n", s.ID, s.Status)
			return err
		}),
	}
}
