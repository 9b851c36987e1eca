package main

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// dbInfo is what the table output shows of GET /v1/db.
type dbInfo struct {
	UpdatedAt  time.Time      `json:"updated_at"`
	Records    int            `json:"records"`
	Withdrawn  int            `json:"withdrawn"`
	SizeBytes  int64          `json:"size_bytes"`
	Ecosystems map[string]int `json:"ecosystems"`
	Sources    []struct {
		Name        string    `json:"name"`
		Records     int       `json:"records"`
		LastAttempt time.Time `json:"last_attempt"`
		LastSuccess time.Time `json:"last_success"`
		LastError   string    `json:"last_error"`
	} `json:"sources"`
}

// importResult is what the table output shows of POST /v1/db/import.
type importResult struct {
	Records   int `json:"records"`
	Added     int `json:"added"`
	Updated   int `json:"updated"`
	Withdrawn int `json:"withdrawn"`
	Invalid   int `json:"invalid"`
	// KeptScheduled: records a configured source owns, left as it has them.
	KeptScheduled int `json:"kept_scheduled"`
}

func (a *app) dbCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "db",
		Short: "The vulnerability database: its state, and offline import",
	}
	cmd.AddCommand(a.dbStatusCmd(), a.dbImportCmd())
	return cmd
}

func (a *app) dbStatusCmd() *cobra.Command {
	var output outputFormat
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the vulnerability database: records per ecosystem, sources, last update",
		Args:  cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			c := a.client()
			defer c.CloseIdleConnections()
			raw, err := c.DBInfo(cmd.Context())
			if err != nil {
				return err
			}
			if output == formatJSON {
				return writeRawJSON(a.stdout, raw)
			}
			var info dbInfo
			if err := json.Unmarshal(raw, &info); err != nil {
				return fmt.Errorf("bad answer from assayd: %w", err)
			}
			return writeDBInfo(a.stdout, &info)
		}),
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func writeDBInfo(w io.Writer, info *dbInfo) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "Updated:\t%s\n", timeText(info.UpdatedAt))
	fmt.Fprintf(tw, "Records:\t%d (%d withdrawn)\n", info.Records, info.Withdrawn)
	fmt.Fprintf(tw, "Size:\t%d bytes\n", info.SizeBytes)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(info.Ecosystems) > 0 {
		fmt.Fprintln(w)
		tw = newTable(w)
		fmt.Fprintln(tw, "ECOSYSTEM\tRECORDS")
		names := make([]string, 0, len(info.Ecosystems))
		for e := range info.Ecosystems {
			names = append(names, e)
		}
		sort.Strings(names)
		for _, e := range names {
			fmt.Fprintf(tw, "%s\t%d\n", cell(e, 0), info.Ecosystems[e])
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(info.Sources) > 0 {
		fmt.Fprintln(w)
		tw = newTable(w)
		fmt.Fprintln(tw, "SOURCE\tRECORDS\tLAST SUCCESS\tLAST ATTEMPT\tLAST ERROR")
		for _, s := range info.Sources {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", cell(s.Name, 0), s.Records, timeText(s.LastSuccess),
				timeText(s.LastAttempt), cell(s.LastError, 60))
		}
		return tw.Flush()
	}
	return nil
}

func (a *app) dbImportCmd() *cobra.Command {
	var (
		output outputFormat
		source string
	)
	cmd := &cobra.Command{
		Use:   "import PATH...",
		Short: "Import OSV records: zip archives, JSON files, or directories of them",
		Long: `Import OSV vulnerability records into assayd's database, with no network:
OSV zip archives (the public all.zip of an ecosystem), single JSON records,
or directories, walked for *.json and *.zip. The records are merged by id
into the named source (--source); each path is uploaded and applied in one
transaction, so a failed import changes nothing.`,
		Args: cobra.MinimumNArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			c := a.client()
			defer c.CloseIdleConnections()
			for _, p := range args {
				start := time.Now()
				archives, cleanup, err := archivesFor(p)
				if err != nil {
					return err
				}
				for _, arch := range archives {
					f, err := os.Open(arch)
					if err != nil {
						cleanup()
						return fmt.Errorf("import %s: %w", p, err)
					}
					st, err := f.Stat()
					if err != nil {
						f.Close()
						cleanup()
						return fmt.Errorf("import %s: %w", p, err)
					}
					raw, err := c.ImportDB(cmd.Context(), source, f, st.Size())
					f.Close()
					if err != nil {
						cleanup()
						return fmt.Errorf("import %s: %w", p, err)
					}
					if output == formatJSON {
						if err := writeRawJSON(a.stdout, raw); err != nil {
							cleanup()
							return err
						}
						continue
					}
					var res importResult
					if err := json.Unmarshal(raw, &res); err != nil {
						cleanup()
						return fmt.Errorf("bad answer from assayd: %w", err)
					}
					fmt.Fprintf(a.stdout, "%s: %d records (%d added, %d updated, %d withdrawn, %d invalid) in %s\n",
						p, res.Records, res.Added, res.Updated, res.Withdrawn, res.Invalid, time.Since(start).Round(time.Millisecond))
					if res.KeptScheduled > 0 {
						fmt.Fprintf(a.stdout, "%s: %d records left as a configured source has them (an import never replaces a scheduled source's records)\n", p, res.KeptScheduled)
					}
				}
				cleanup()
			}
			return nil
		}),
	}
	addOutputFlag(cmd, &output)
	cmd.Flags().StringVar(&source, "source", "import", "name of the source the records are merged into")
	return cmd
}

// archivesFor returns the zip archives to upload for path: the zip itself,
// or one zip built in a temporary file from a JSON file or a directory's
// JSON files plus the directory's zips as they are.
func archivesFor(path string) (archives []string, cleanup func(), err error) {
	cleanup = func() {}
	st, err := os.Stat(path)
	if err != nil {
		return nil, cleanup, fmt.Errorf("import: %w", err)
	}
	if !st.IsDir() {
		if strings.HasSuffix(strings.ToLower(path), ".zip") {
			return []string{path}, cleanup, nil
		}
		if !strings.HasSuffix(strings.ToLower(path), ".json") {
			return nil, cleanup, fmt.Errorf("import %s: not a directory, .zip or .json file", path)
		}
	}
	var jsons []string
	if st.IsDir() {
		err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			switch strings.ToLower(filepath.Ext(p)) {
			case ".json":
				jsons = append(jsons, p)
			case ".zip":
				archives = append(archives, p)
			}
			return nil
		})
		if err != nil {
			return nil, cleanup, fmt.Errorf("import %s: %w", path, err)
		}
	} else {
		jsons = []string{path}
	}
	if len(jsons) == 0 {
		if len(archives) == 0 {
			return nil, cleanup, fmt.Errorf("import %s: no .json or .zip files found", path)
		}
		return archives, cleanup, nil
	}
	tmp, err := os.CreateTemp("", "assay-import-*.zip")
	if err != nil {
		return nil, cleanup, fmt.Errorf("import %s: %w", path, err)
	}
	cleanup = func() { os.Remove(tmp.Name()) }
	zw := zip.NewWriter(tmp)
	for i, j := range jsons {
		w, err := zw.Create(fmt.Sprintf("%06d-%s", i, filepath.Base(j)))
		if err == nil {
			err = copyFile(w, j)
		}
		if err != nil {
			tmp.Close()
			cleanup()
			return nil, func() {}, fmt.Errorf("import %s: %w", path, err)
		}
	}
	if err := zw.Close(); err != nil {
		tmp.Close()
		cleanup()
		return nil, func() {}, fmt.Errorf("import %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		cleanup()
		return nil, func() {}, fmt.Errorf("import %s: %w", path, err)
	}
	return append([]string{tmp.Name()}, archives...), cleanup, nil
}

func copyFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}
