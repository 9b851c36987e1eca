// Package example is a small, real analyzer plugin that shows the shape of
// one: it names the image's distribution (from os-release) and counts the
// regular files under the root, up to the request's MaxFiles. It reports
// no packages; everything it says is a Warning.
//
// It reads the image only through os.Root, so a symbolic link in the image
// cannot lead it out of the root.
package example

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/assayhq/assay/plugins/sdk"
)

// Name and Version are what the plugin describes itself as; its manifest
// must say the same.
const (
	Name    = "example"
	Version = "0.1.0"
)

// osReleaseMax bounds how much of an os-release file is read when the
// request sets no MaxFileBytes.
const osReleaseMax = 64 << 10

// Analyzer is the example analyzer.
type Analyzer struct{}

var _ sdk.Analyzer = Analyzer{}

// Describe implements sdk.Analyzer.
func (Analyzer) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name:      Name,
		Version:   Version,
		Resources: sdk.Resources{MemoryBytes: 64 << 20, Pids: 16, Timeout: time.Minute},
	}, nil
}

// Analyze implements sdk.Analyzer.
func (Analyzer) Analyze(ctx context.Context, req sdk.Request, emit sdk.Emitter) error {
	root, err := os.OpenRoot(req.Root)
	if err != nil {
		return fmt.Errorf("example: %w", err)
	}
	defer root.Close()

	limit := req.MaxFileBytes
	if limit <= 0 {
		limit = osReleaseMax
	}
	distro, path, err := Distribution(root, limit)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		err = emit.Warning(sdk.Warning{Message: "no os-release file: distribution unknown"})
	case err != nil:
		err = emit.Warning(sdk.Warning{Message: fmt.Sprintf("os-release unreadable: %v", err), Path: path})
	default:
		err = emit.Warning(sdk.Warning{Message: "distribution: " + distro, Path: path})
	}
	if err != nil {
		return err
	}

	n, hit, err := CountFiles(ctx, root, req.MaxFiles)
	if err != nil {
		return fmt.Errorf("example: counting files: %w", err)
	}
	msg := fmt.Sprintf("%d regular files", n)
	if hit {
		msg = fmt.Sprintf("file limit of %d reached: counted %d regular files and stopped", req.MaxFiles, n)
	}
	return emit.Warning(sdk.Warning{Message: msg, Path: "/"})
}

// Distribution reads /etc/os-release, or /usr/lib/os-release when the first
// is missing (as os-release(5) says), inside root and returns its
// PRETTY_NAME (or NAME and VERSION_ID) and the path it read. At most limit
// bytes are read.
func Distribution(root *os.Root, limit int64) (name, path string, err error) {
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		f, err := root.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", "/" + p, err
		}
		kv, err := parseOSRelease(io.LimitReader(f, limit))
		f.Close()
		if err != nil {
			return "", "/" + p, err
		}
		name := kv["PRETTY_NAME"]
		if name == "" {
			name = strings.TrimSpace(kv["NAME"] + " " + kv["VERSION_ID"])
		}
		if name == "" {
			name = "unnamed (" + p + " has neither PRETTY_NAME nor NAME)"
		}
		return name, "/" + p, nil
	}
	return "", "", fs.ErrNotExist
}

// parseOSRelease parses the KEY=value lines of os-release(5).
func parseOSRelease(r io.Reader) (map[string]string, error) {
	kv := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		} else {
			v = strings.Trim(v, `"'`)
		}
		kv[k] = v
	}
	return kv, sc.Err()
}

// CountFiles counts the regular files under root, stopping at max (when
// max > 0; hit then says the limit stopped the count). Symbolic links are
// not followed. Directories that cannot be read are skipped.
func CountFiles(ctx context.Context, root *os.Root, max int64) (n int64, hit bool, err error) {
	stop := errors.New("stop")
	seen := 0
	err = fs.WalkDir(root.FS(), ".", func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if seen++; seen%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if d.Type().IsRegular() {
			if max > 0 && n >= max {
				hit = true
				return stop
			}
			n++
		}
		return nil
	})
	if errors.Is(err, stop) {
		err = nil
	}
	return n, hit, err
}
