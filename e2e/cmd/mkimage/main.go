// Command mkimage builds a small real OCI image from local files and pushes
// it to a registry. The demo and tests use it where no image can be pulled
// from the internet: `mkimage -push 127.0.0.1:5000/demo/app:1 bin/assay:/usr/local/bin/assay`.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	push := flag.String("push", "", "reference to push to (required)")
	platform := flag.String("platform", "linux/amd64", "os/arch of the image")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: mkimage -push REF [-platform os/arch] SRC:DEST...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *push == "" || flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*push, *platform, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(ref, platform string, files []string) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	p, err := v1.ParsePlatform(platform)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		src, dest, ok := strings.Cut(f, ":")
		if !ok || !strings.HasPrefix(dest, "/") {
			return fmt.Errorf("%q: want SRC:/absolute/dest", f)
		}
		if err := addTree(tw, src, strings.TrimPrefix(dest, "/")); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
	})
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = v1.Time{Time: time.Now().UTC()}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return err
	}
	if err := remote.Write(r, img); err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s@%s\n", r.Context().Name(), d)
	return nil
}

// addTree writes the file src at dest, or the regular files under the
// directory src below dest.
func addTree(tw *tar.Writer, src, dest string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return addFile(tw, src, dest)
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		return addFile(tw, p, path.Join(dest, filepath.ToSlash(rel)))
	})
}

// addFile writes src at dest with its parent directories.
func addFile(tw *tar.Writer, src, dest string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	parts := strings.Split(dest, "/")
	for i := 1; i < len(parts); i++ {
		dir := strings.Join(parts[:i], "/") + "/"
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755}); err != nil {
			return err
		}
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: dest, Mode: int64(fi.Mode().Perm()), Size: int64(len(data)), ModTime: fi.ModTime()}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = tw.Write(data)
	return err
}
