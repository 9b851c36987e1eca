package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// vulnHit and pkgHit are what the table outputs show of the cross-image
// queries (daemon/store's VulnHit and PackageHit).
type vulnHit struct {
	ID      string `json:"id"`
	Digest  string `json:"digest"`
	Image   string `json:"image"`
	Package struct {
		Ecosystem string `json:"ecosystem"`
		Name      string `json:"name"`
		Version   string `json:"version"`
	} `json:"package"`
	Severity   string `json:"severity"`
	Fixed      string `json:"fixed_version"`
	Suppressed bool   `json:"suppressed"`
}

type pkgHit struct {
	Digest    string   `json:"digest"`
	Image     string   `json:"image"`
	Verdict   string   `json:"verdict"`
	Ecosystem string   `json:"ecosystem"`
	Name      string   `json:"name"`
	Version   string   `json:"version"`
	Locations []string `json:"locations"`
}

func (a *app) vulnCmd() *cobra.Command {
	var output outputFormat
	cmd := &cobra.Command{
		Use:   "vuln ID",
		Short: "Show which scanned images and packages an advisory affects (by id or alias)",
		Args:  cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			c := a.client()
			defer c.CloseIdleConnections()
			raw, err := c.Vulnerability(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if output == formatJSON {
				return writeRawJSON(a.stdout, raw)
			}
			var out struct {
				Records []struct {
					ID      string   `json:"id"`
					Aliases []string `json:"aliases"`
					Summary string   `json:"summary"`
				} `json:"records"`
				Affected []vulnHit `json:"affected"`
			}
			if err := json.Unmarshal(raw, &out); err != nil {
				return fmt.Errorf("bad answer from assayd: %w", err)
			}
			for _, r := range out.Records {
				fmt.Fprintf(a.stdout, "%s (%s): %s\n", r.ID, strings.Join(r.Aliases, ", "), cell(r.Summary, 100))
			}
			if len(out.Records) > 0 {
				fmt.Fprintln(a.stdout)
			}
			if len(out.Affected) == 0 {
				fmt.Fprintln(a.stdout, "No scanned image is affected.")
				return nil
			}
			tw := newTable(a.stdout)
			fmt.Fprintln(tw, "IMAGE\tDIGEST\tPACKAGE\tVERSION\tFIXED\tSEVERITY\tSUPPRESSED")
			for _, h := range out.Affected {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%v\n", cell(h.Image, 60), cell(h.Digest, 19), cell(h.Package.Name, 0),
					cell(h.Package.Version, 0), cell(h.Fixed, 0), cell(h.Severity, 0), h.Suppressed)
			}
			return tw.Flush()
		}),
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) packagesCmd() *cobra.Command {
	var (
		output    outputFormat
		ecosystem string
	)
	cmd := &cobra.Command{
		Use:   "packages NAME",
		Short: "Show which scanned images contain a package",
		Long: `Show which scanned images (their latest reports) contain a package, by name,
optionally in one ecosystem (--ecosystem Debian matches every Debian release,
Debian:12 only bookworm).`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			c := a.client()
			defer c.CloseIdleConnections()
			raw, err := c.Packages(cmd.Context(), ecosystem, args[0])
			if err != nil {
				return err
			}
			if output == formatJSON {
				return writeRawJSON(a.stdout, raw)
			}
			var out struct {
				Packages []pkgHit `json:"packages"`
			}
			if err := json.Unmarshal(raw, &out); err != nil {
				return fmt.Errorf("bad answer from assayd: %w", err)
			}
			if len(out.Packages) == 0 {
				fmt.Fprintln(a.stdout, "No scanned image contains it.")
				return nil
			}
			tw := newTable(a.stdout)
			fmt.Fprintln(tw, "IMAGE\tDIGEST\tECOSYSTEM\tPACKAGE\tVERSION\tVERDICT\tLOCATIONS")
			for _, h := range out.Packages {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(h.Image, 60), cell(h.Digest, 19), cell(h.Ecosystem, 0),
					cell(h.Name, 0), cell(h.Version, 0), cell(h.Verdict, 0), cell(strings.Join(h.Locations, ","), 60))
			}
			return tw.Flush()
		}),
	}
	addOutputFlag(cmd, &output)
	cmd.Flags().StringVar(&ecosystem, "ecosystem", "", "OSV ecosystem, like Debian, Debian:12, npm, PyPI, Go")
	return cmd
}
