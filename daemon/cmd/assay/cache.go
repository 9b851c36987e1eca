package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/docker/go-units"
	"github.com/spf13/cobra"
)

// cacheInfo is what the table output shows of GET /v1/cache.
type cacheInfo struct {
	Entries   int   `json:"entries"`
	Bytes     int64 `json:"bytes"`
	MaxBytes  int64 `json:"max_bytes"`
	MaxAgeSec int64 `json:"max_age_seconds"`
	Hits      int64 `json:"hits"`
	Misses    int64 `json:"misses"`
	Evictions int64 `json:"evictions"`
	Corrupt   int64 `json:"corrupt"`
	Pruned    *int  `json:"pruned"`
}

func (a *app) cacheCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "The layer cache: what the extractors found per layer",
	}
	cmd.AddCommand(
		a.cacheSubCmd("status", "Show the layer cache: entries, size, limits, hits, misses, evictions", func(ctx context.Context) (json.RawMessage, error) {
			c := a.client()
			defer c.CloseIdleConnections()
			return c.CacheInfo(ctx)
		}),
		a.cachePruneCmd(),
	)
	return cmd
}

func (a *app) cachePruneCmd() *cobra.Command {
	var all bool
	cmd := a.cacheSubCmd("prune", "Remove expired entries and evict to the size limit now (--all: every entry)", func(ctx context.Context) (json.RawMessage, error) {
		c := a.client()
		defer c.CloseIdleConnections()
		return c.PruneCache(ctx, all)
	})
	cmd.Flags().BoolVar(&all, "all", false, "remove every entry: the next scans read every layer again")
	return cmd
}

func (a *app) cacheSubCmd(use, short string, call func(context.Context) (json.RawMessage, error)) *cobra.Command {
	var output outputFormat
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			raw, err := call(cmd.Context())
			if err != nil {
				return err
			}
			if output == formatJSON {
				return writeRawJSON(a.stdout, raw)
			}
			var info cacheInfo
			if err := json.Unmarshal(raw, &info); err != nil {
				return fmt.Errorf("bad answer from assayd: %w", err)
			}
			return writeCacheInfo(a.stdout, &info)
		}),
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func writeCacheInfo(w io.Writer, c *cacheInfo) error {
	tw := newTable(w)
	if c.Pruned != nil {
		fmt.Fprintf(tw, "Pruned:\t%d entries\n", *c.Pruned)
	}
	fmt.Fprintf(tw, "Entries:\t%d\n", c.Entries)
	fmt.Fprintf(tw, "Size:\t%s of %s\n", units.BytesSize(float64(c.Bytes)), units.BytesSize(float64(c.MaxBytes)))
	fmt.Fprintf(tw, "Max age:\t%s unused\n", time.Duration(c.MaxAgeSec)*time.Second)
	fmt.Fprintf(tw, "Hits:\t%d\n", c.Hits)
	fmt.Fprintf(tw, "Misses:\t%d\n", c.Misses)
	fmt.Fprintf(tw, "Evictions:\t%d\n", c.Evictions)
	fmt.Fprintf(tw, "Corrupt:\t%d (dropped and recomputed)\n", c.Corrupt)
	return tw.Flush()
}
