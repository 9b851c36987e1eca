package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
)

// notifyStatus is what the table output shows of GET /v1/notify (the
// CLI decodes answers into its own types: it links no server package).
type notifyStatus struct {
	Receivers []struct {
		URL           string     `json:"url"`
		Index         int        `json:"index"`
		Pending       int        `json:"pending"`
		Dead          int        `json:"dead"`
		OldestPending *time.Time `json:"oldest_pending"`
		LastError     string     `json:"last_error"`
	} `json:"receivers"`
	Undispatched int `json:"undispatched"`
	DeadLetters  []struct {
		EventID   string `json:"event_id"`
		Type      string `json:"type"`
		Receiver  string `json:"receiver"`
		Image     string `json:"image"`
		Attempts  int    `json:"attempts"`
		LastError string `json:"last_error"`
	} `json:"dead_letters"`
}

func (a *app) notifyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "notify",
		Short: "Outgoing notifications: the receivers' pending and dead-lettered deliveries",
	}
	cmd.AddCommand(a.notifyStatusCmd(), a.notifyRetryCmd())
	return cmd
}

func (a *app) notifyStatusCmd() *cobra.Command {
	var output outputFormat
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each receiver's pending and dead deliveries, and the dead letters",
		Args:  cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			c := a.client()
			defer c.CloseIdleConnections()
			raw, err := c.NotifyStatus(cmd.Context())
			if err != nil {
				return err
			}
			if output == formatJSON {
				return writeRawJSON(a.stdout, raw)
			}
			var st notifyStatus
			if err := json.Unmarshal(raw, &st); err != nil {
				return fmt.Errorf("bad answer from assayd: %w", err)
			}
			return writeNotifyStatus(a.stdout, &st)
		}),
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func (a *app) notifyRetryCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "retry [EVENT_ID | --all]",
		Short: "Send dead-lettered notifications again (one event's, or --all), with a fresh notify.max_age",
		Args:  cobra.MaximumNArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == all {
				return usageErrorf("give an event id (assay notify status lists the dead letters) or --all")
			}
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			c := a.client()
			defer c.CloseIdleConnections()
			raw, err := c.NotifyRetry(cmd.Context(), id)
			if err != nil {
				return err
			}
			var r struct {
				Retried int `json:"retried"`
			}
			if err := json.Unmarshal(raw, &r); err != nil {
				return fmt.Errorf("bad answer from assayd: %w", err)
			}
			fmt.Fprintf(a.stdout, "%d deliveries will be sent again\n", r.Retried)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&all, "all", false, "retry every dead letter")
	return cmd
}

func writeNotifyStatus(w io.Writer, st *notifyStatus) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "#\tRECEIVER\tPENDING\tDEAD\tOLDEST PENDING\tLAST ERROR")
	for _, r := range st.Receivers {
		oldest := "-"
		if r.OldestPending != nil {
			oldest = time.Since(*r.OldestPending).Round(time.Second).String() + " ago"
		}
		last := r.LastError
		if last == "" {
			last = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\t%s\n", r.Index, r.URL, r.Pending, r.Dead, oldest, last)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if st.Undispatched > 0 {
		fmt.Fprintf(w, "\n%d events not yet handed to receivers\n", st.Undispatched)
	}
	if len(st.DeadLetters) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nDead letters (assay notify retry EVENT_ID, or --all):\n")
	tw = newTable(w)
	fmt.Fprintln(tw, "EVENT\tTYPE\tRECEIVER\tIMAGE\tATTEMPTS\tLAST ERROR")
	for _, d := range st.DeadLetters {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", d.EventID, d.Type, d.Receiver, d.Image, d.Attempts, d.LastError)
	}
	return tw.Flush()
}
