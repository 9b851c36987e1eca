package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/assayhq/assay/daemon/client"
	"github.com/assayhq/assay/daemon/report"
	"github.com/assayhq/assay/daemon/scans"
)

func (a *app) scanCmd() *cobra.Command {
	var (
		platform     string
		wait         bool
		output       reportFormat
		fail         failOn
		waitTimeout  time.Duration
		pollInterval time.Duration
		minSeverity  severityFlag
		onlyFixed    bool
		ignores      []string
	)
	cmd := &cobra.Command{
		Use:   "scan IMAGE",
		Short: "Ask assayd to scan an image",
		Long: `Ask assayd to scan an image reference. Without --wait, print the scan's ID
and status and return at once. With --wait, follow the scan (progress goes to
stderr) and print its report; a scan that failed or was cancelled exits 4.`,
		Example: `  assay scan docker.io/library/nginx:1.25
  assay scan --wait --fail-on-unhealthy registry.example/app@sha256:...
  assay scan --wait --min-severity high --ignore "CVE-2023-4039=not reachable in our use" IMAGE`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if !wait {
				for _, f := range []string{"fail-on-unhealthy", "fail-on-incomplete", "wait-timeout"} {
					if cmd.Flags().Changed(f) {
						return usageErrorf("--%s needs --wait", f)
					}
				}
				if output.machine() {
					return usageErrorf("-o %s is a report format: it needs --wait", output.outputFormat)
				}
			}
			if waitTimeout < 0 || pollInterval <= 0 {
				return usageErrorf("--wait-timeout must not be negative and --poll-interval must be positive")
			}
			ctx := cmd.Context()
			c := a.client()
			defer c.CloseIdleConnections()

			req := scans.Request{Image: args[0], Platform: platform}
			pol, err := scanPolicy(minSeverity.v, onlyFixed, ignores)
			if err != nil {
				return err
			}
			req.Policy = pol
			s, dedup, err := c.Submit(ctx, req)
			if err != nil {
				return err
			}
			if !wait {
				if output.outputFormat == formatJSON {
					return writeJSON(a.stdout, struct {
						scans.Scan
						Deduplicated bool `json:"deduplicated"`
					}{s, dedup})
				}
				line := s.ID + " " + string(s.Status)
				if dedup {
					line += " (deduplicated: the same image was already queued or running)"
				}
				_, err := fmt.Fprintln(a.stdout, line)
				return err
			}
			return a.waitAndReport(ctx, c, s, waitTimeout, pollInterval, output.outputFormat, fail)
		}),
	}
	cmd.Flags().StringVar(&platform, "platform", "", "os/arch[/variant] to scan (default: assayd's)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the scan to finish and print its report")
	cmd.Flags().DurationVar(&waitTimeout, "wait-timeout", 0, "give up waiting after this long (0: wait as long as it takes)")
	cmd.Flags().DurationVar(&pollInterval, "poll-interval", time.Second, "how often to ask assayd about the scan while waiting")
	cmd.Flags().Var(&minSeverity, "min-severity", "this scan's report hides findings below this severity (added to assayd's policy)")
	cmd.Flags().BoolVar(&onlyFixed, "only-fixed", false, "this scan's report hides findings with no fixed version")
	cmd.Flags().StringArrayVar(&ignores, "ignore", nil, "ID=REASON: this scan's report hides the advisory ID (or alias), with the reason (repeatable)")
	addReportFormatFlag(cmd, &output)
	fail.addFlags(cmd)
	return cmd
}

// scanPolicy is the policy a scan request adds to assayd's, as the API
// takes it; nil when the flags set none.
func scanPolicy(minSeverity report.Severity, onlyFixed bool, ignores []string) (json.RawMessage, error) {
	type rule struct {
		ID     string `json:"id"`
		Reason string `json:"reason"`
	}
	pol := struct {
		MinSeverity report.Severity `json:"min_severity,omitempty"`
		OnlyFixed   bool            `json:"only_fixed,omitempty"`
		Ignore      []rule          `json:"ignore,omitempty"`
	}{MinSeverity: minSeverity, OnlyFixed: onlyFixed}
	for _, ig := range ignores {
		id, reason, _ := strings.Cut(ig, "=")
		if strings.TrimSpace(id) == "" || strings.TrimSpace(reason) == "" {
			return nil, usageErrorf("--ignore %q: want ID=REASON, like CVE-2023-4039=\"not reachable\"", ig)
		}
		pol.Ignore = append(pol.Ignore, rule{ID: strings.TrimSpace(id), Reason: strings.TrimSpace(reason)})
	}
	if pol.MinSeverity == "" && !pol.OnlyFixed && len(pol.Ignore) == 0 {
		return nil, nil
	}
	return json.Marshal(pol)
}

func (a *app) waitAndReport(ctx context.Context, c *client.Client, s scans.Scan, waitTimeout, every time.Duration, output outputFormat, fail failOn) error {
	waitCtx := ctx
	if waitTimeout > 0 {
		var cancel context.CancelFunc
		waitCtx, cancel = context.WithTimeout(ctx, waitTimeout)
		defer cancel()
	}
	p := &progress{w: a.stderr, tty: isTerminal(a.stderr), now: a.now, start: a.now()}
	last := s
	final, err := c.Wait(waitCtx, s.ID, every, func(s scans.Scan) {
		last = s
		p.update(s)
	})
	p.done()
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted; scan %s goes on in assayd (stop it with: assay cancel %s)", s.ID, s.ID)
	case waitCtx.Err() != nil:
		return fmt.Errorf("gave up waiting for scan %s after %s, still %s; it goes on in assayd", s.ID, waitTimeout, last.Status)
	default:
		return err
	}

	if final.Status == scans.Failed || final.Status == scans.Cancelled {
		if output == formatJSON {
			if err := writeJSON(a.stdout, final); err != nil {
				return err
			}
		}
		msg := fmt.Sprintf("scan %s of %s %s", final.ID, final.Image, final.Status)
		if final.Error != "" {
			msg += ": " + final.Error
		}
		return &exitError{code: codeScanFailed, err: errors.New(msg)}
	}
	if final.Digest == "" {
		return fmt.Errorf("scan %s is %s but names no digest", final.ID, final.Status)
	}
	raw, err := c.ScanReportJSON(ctx, final.Digest, final.ID)
	if err != nil {
		return err
	}
	if output.machine() {
		doc, err := c.ScanReportFormatted(ctx, final.Digest, final.ID, string(output))
		if err != nil {
			return err
		}
		return a.printDocument(doc, raw, fail)
	}
	return a.printReport(raw, output, fail)
}

// printDocument prints a report document assayd wrote (SARIF, CycloneDX,
// ...) as it is, then applies the --fail-on flags to the report (raw).
func (a *app) printDocument(doc []byte, raw json.RawMessage, fail failOn) error {
	if _, err := a.stdout.Write(doc); err != nil {
		return err
	}
	var r report.Report
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("bad report from assayd: %w", err)
	}
	return fail.check(&r)
}

// printReport prints a report as the API sent it (json) or for people
// (table), then applies the --fail-on flags.
func (a *app) printReport(raw json.RawMessage, output outputFormat, fail failOn) error {
	var r report.Report
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("bad report from assayd: %w", err)
	}
	var err error
	if output == formatJSON {
		err = writeRawJSON(a.stdout, raw)
	} else {
		err = writeReport(a.stdout, &r)
	}
	if err != nil {
		return err
	}
	return fail.check(&r)
}

// progress shows a waited-for scan's status changes: on a terminal one
// line redrawn in place, elsewhere (logs, CI) one line per change.
type progress struct {
	w     io.Writer
	tty   bool
	now   func() time.Time
	start time.Time
	width int // of the line on screen, to blank what a shorter one leaves
}

func (p *progress) update(s scans.Scan) {
	line := fmt.Sprintf("scan %s %s: %s", s.ID, s.Image, s.Status)
	if s.Attempts > 1 {
		line += fmt.Sprintf(" (attempt %d)", s.Attempts)
	}
	line += fmt.Sprintf(" [%s]", p.now().Sub(p.start).Round(time.Second))
	if !p.tty {
		fmt.Fprintln(p.w, line)
		return
	}
	pad := max(p.width-len(line), 0)
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
	p.width = len(line)
}

func (p *progress) done() {
	if p.tty && p.width > 0 {
		fmt.Fprintln(p.w)
	}
}
