// Package inventory merges the results of an image's layers into the
// image's inventory, as the mounted view of the image would show it, and
// then applies the rules that need the whole image:
//
//   - OCI whiteout semantics, top-down: what a lower layer found at a path
//     is dropped when a higher layer deletes the path (".wh.NAME"), makes
//     a parent directory opaque (".wh..wh..opq"), or puts another entry at
//     the path or at one of its parent directories;
//   - hard links: a package found at a link's target is also found at the
//     link, whichever layer the target came from;
//   - os-release: /etc/os-release (links followed within the merged
//     image), else /usr/lib/os-release; OS packages then get their
//     ecosystem, version and purl from it (analyzers/distro);
//   - OS ownership: a language package whose file (or its directory) an OS
//     package's file list names gets that package as Owner.
//
// It runs in assayd, on items plugins sent: it is bounded by what the
// plugin host let through, and trusts nothing in them beyond their shape.
package inventory

import (
	"path"
	"slices"
	"strings"

	"github.com/assayhq/assay/analyzers/distro"
	"github.com/assayhq/assay/analyzers/osrelease"
	"github.com/assayhq/assay/plugins/sdk"
)

// Layer is what the extractors found in one layer: its items in the order
// they came (Entries included). Index orders layers, bottom first.
type Layer struct {
	Index int
	Items []sdk.Item
}

// Warning is a warning with the extractor that gave it ("" for the
// framework or the merge).
type Warning struct {
	Extractor string
	sdk.Warning
}

// Finding is an analyzer finding with the extractor that gave it.
type Finding struct {
	Extractor string
	sdk.Finding
}

// Image is the merged inventory.
type Image struct {
	Packages []sdk.Package
	// Extractors names, for each package, the extractor that found it.
	Extractors []string
	Findings   []Finding
	Warnings   []Warning
	// OSRelease is the image's os-release; Found is false without one.
	OSRelease osrelease.Release
	Found     bool
}

// entry is one located item of the merge.
type entry struct {
	file  string // the image path it was found at
	alias string // for a hard link's copy: the target's path
	it    sdk.Item
}

// maxLinks bounds the os-release links followed.
const maxLinks = 40

// Merge merges layers (in any order: they are sorted by Index) into the
// image's inventory.
func Merge(layers []Layer) Image {
	layers = slices.Clone(layers)
	slices.SortStableFunc(layers, func(a, b Layer) int { return a.Index - b.Index })
	var live []entry
	var img Image
	for _, l := range layers {
		var hide, opaque []string
		var links []sdk.HardLink
		var added []entry
		for _, it := range l.Items {
			switch {
			case it.Entries != nil:
				hide = append(hide, it.Entries.Paths...)
				hide = append(hide, it.Entries.Whiteouts...)
				opaque = append(opaque, it.Entries.OpaqueDirs...)
				links = append(links, it.Entries.HardLinks...)
			case it.Warning != nil:
				img.Warnings = append(img.Warnings, Warning{Extractor: it.Extractor, Warning: *it.Warning})
			case it.LayerEnd != nil:
			default:
				if f := fileOf(it); f != "" {
					added = append(added, entry{file: f, it: it})
				}
			}
		}
		live = hidden(live, hide, opaque)
		live = append(live, added...)
		live = append(live, linked(live, links)...)
	}
	byPath := map[string]*sdk.OSRelease{}
	var owned []*sdk.OwnedFiles
	for _, e := range live {
		switch {
		case e.it.OSRelease != nil:
			byPath[e.file] = e.it.OSRelease
		case e.it.Owned != nil:
			owned = append(owned, e.it.Owned)
		}
	}
	img.OSRelease, img.Found = resolveOSRelease(byPath)
	owners := ownerIndex(owned)
	said := map[string]bool{}
	for _, e := range live {
		switch {
		case e.it.Package != nil:
			p := *e.it.Package
			p.Locations = slices.Clone(p.Locations)
			if p.OS != "" {
				if w := distro.Finish(&p, img.OSRelease, img.Found); w != "" && !said[w] {
					said[w] = true
					img.Warnings = append(img.Warnings, Warning{Extractor: e.it.Extractor, Warning: sdk.Warning{Message: w}})
				}
			} else if p.Owner == "" {
				// A hard link is the same file as its target: whoever
				// owns the target owns it.
				p.Owner = owners.of(e.file)
				if p.Owner == "" && e.alias != "" {
					p.Owner = owners.of(e.alias)
				}
			}
			img.Packages = append(img.Packages, p)
			img.Extractors = append(img.Extractors, e.it.Extractor)
		case e.it.Finding != nil:
			img.Findings = append(img.Findings, Finding{Extractor: e.it.Extractor, Finding: *e.it.Finding})
		}
	}
	return img
}

// fileOf is the image path an item was found at: for a package its first
// location, up to a "!" (a file inside an archive belongs to the
// archive's path).
func fileOf(it sdk.Item) string {
	var loc string
	switch {
	case it.Package != nil && len(it.Package.Locations) > 0:
		loc = it.Package.Locations[0]
	case it.Finding != nil:
		loc = it.Finding.Location
	case it.Owned != nil:
		loc = it.Owned.Location
	case it.OSRelease != nil:
		loc = it.OSRelease.Path
	}
	if i := strings.IndexByte(loc, '!'); i >= 0 {
		loc = loc[:i]
	}
	if loc == "" {
		// An item that says nowhere is kept whatever higher layers do:
		// nothing can replace it.
		if it.Package != nil || it.Finding != nil {
			return "/"
		}
		return ""
	}
	return path.Clean("/" + loc)
}

// hidden drops the entries of lower layers that a layer replaces: an
// entry at one of hide, or under one of hide or opaque.
func hidden(live []entry, hide, opaque []string) []entry {
	if len(hide) == 0 && len(opaque) == 0 {
		return live
	}
	exact := make(map[string]bool, len(hide))
	for _, p := range hide {
		exact[path.Clean("/"+p)] = true
	}
	under := make(map[string]bool, len(opaque))
	for _, d := range opaque {
		under[path.Clean("/"+d)] = true
	}
	out := live[:0]
	for _, e := range live {
		if !gone(e.file, exact, under) {
			out = append(out, e)
		}
	}
	return out
}

func gone(f string, exact, under map[string]bool) bool {
	if f == "/" {
		return false
	}
	if exact[f] {
		return true
	}
	for d := path.Dir(f); ; d = path.Dir(d) {
		if exact[d] || under[d] {
			return true
		}
		if d == "/" {
			return false
		}
	}
}

// linked returns copies of the entries found at a hard link's target, at
// the link's path.
func linked(live []entry, links []sdk.HardLink) []entry {
	if len(links) == 0 {
		return nil
	}
	at := map[string][]string{}
	for _, l := range links {
		t := path.Clean("/" + l.Target)
		at[t] = append(at[t], path.Clean("/"+l.Path))
	}
	var out []entry
	for _, e := range live {
		for _, p := range at[e.file] {
			out = append(out, entry{file: p, alias: e.file, it: relocate(e.it, e.file, p)})
		}
	}
	return out
}

// relocate returns a copy of it found at to instead of from.
func relocate(it sdk.Item, from, to string) sdk.Item {
	move := func(loc string) string {
		if loc == from || strings.HasPrefix(loc, from+"!") {
			return to + loc[len(from):]
		}
		return loc
	}
	switch {
	case it.Package != nil:
		p := *it.Package
		p.Locations = slices.Clone(p.Locations)
		for i := range p.Locations {
			p.Locations[i] = move(p.Locations[i])
		}
		it.Package = &p
	case it.Finding != nil:
		f := *it.Finding
		f.Location = move(f.Location)
		it.Finding = &f
	case it.Owned != nil:
		o := *it.Owned
		o.Location = to
		it.Owned = &o
	case it.OSRelease != nil:
		o := *it.OSRelease
		o.Path = to
		it.OSRelease = &o
	}
	return it
}

// resolveOSRelease finds the image's os-release among the merged ones:
// /etc/os-release, its links followed, else /usr/lib/os-release.
func resolveOSRelease(byPath map[string]*sdk.OSRelease) (osrelease.Release, bool) {
	for _, p := range osrelease.Paths {
		for range maxLinks {
			r, ok := byPath[p]
			if !ok {
				break
			}
			if r.LinkTarget == "" {
				rel := osrelease.FromFields(r.Fields)
				rel.Path = p
				return rel, true
			}
			t := r.LinkTarget
			if !path.IsAbs(t) {
				t = path.Join(path.Dir(p), t)
			}
			p = path.Clean("/" + t)
		}
	}
	return osrelease.Release{}, false
}

// owners maps image paths to the OS package that owns them.
type owners map[string]string

// usrMerged are the directories a merged-/usr system links into /usr:
// dpkg lists may name a file under either spelling.
var usrMerged = []string{"/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/"}

func ownerIndex(owned []*sdk.OwnedFiles) owners {
	o := owners{}
	for _, of := range owned {
		for _, p := range of.Paths {
			p = path.Clean("/" + p)
			if p == "/" {
				continue
			}
			o[p] = of.Owner
			for _, d := range usrMerged {
				if strings.HasPrefix(p, d) {
					o["/usr"+p] = of.Owner
				} else if strings.HasPrefix(p, "/usr"+d) {
					o[p[len("/usr"):]] = of.Owner
				}
			}
		}
	}
	return o
}

// of returns the owner of file, or of the directory holding it (a Python
// distribution's .dist-info directory is what dpkg's list names).
func (o owners) of(file string) string {
	if len(o) == 0 || file == "/" {
		return ""
	}
	if w, ok := o[file]; ok {
		return w
	}
	return o[path.Dir(file)]
}
