#!/bin/sh
# want.sh IMAGE: prints, sorted, one line per Maven package in the Java
# archives under IMAGE: "location<TAB>groupId:artifactId<TAB>version<TAB>source",
# source being pom (META-INF/maven/*/*/pom.properties) or manifest (the
# MANIFEST.MF fallback, by the rules of java.Manifest.Coordinates). It
# uses only find, unzip and awk, not the analyzer: see README.md.
set -eu
export LC_ALL=C
img=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0

# scan FILE LOCATION DEPTH
scan() {
	file=$1 loc=$2 depth=$3
	found=0
	for e in $(unzip -Z1 "$file" | grep -E '^META-INF/maven/[^/]+/[^/]+/pom\.properties$' || true); do
		unzip -p "$file" "$e" | tr -d '\r' | awk -F= -v loc="$loc" '
			/^[ \t]*[#!]/ { next }
			{ k = $1; sub(/^[ \t]+/, "", k); sub(/[ \t]+$/, "", k); v = substr($0, index($0, "=") + 1); gsub(/^[ \t]+|[ \t]+$/, "", v); p[k] = v }
			END { printf "%s\t%s:%s\t%s\tpom\n", loc, p["groupId"], p["artifactId"], p["version"] }'
		found=1
	done
	if [ $found = 0 ] && unzip -Z1 "$file" | grep -qx 'META-INF/MANIFEST.MF'; then
		# The main section, continuation lines joined.
		unzip -p "$file" META-INF/MANIFEST.MF | tr -d '\r' | awk -v loc="$loc" '
			/^$/ { exit }
			/^ / { if (k != "") a[k] = a[k] substr($0, 2); next }
			{ i = index($0, ": "); k = tolower(substr($0, 1, i - 1)); a[k] = substr($0, i + 2) }
			function id(s) { return s ~ /^[A-Za-z0-9_.-]+$/ }
			END {
				bsn = a["bundle-symbolicname"]; sub(/;.*/, "", bsn); gsub(/^[ \t]+|[ \t]+$/, "", bsn)
				vid = a["implementation-vendor-id"]; gsub(/^[ \t]+|[ \t]+$/, "", vid)
				t = a["implementation-title"]; gsub(/^[ \t]+|[ \t]+$/, "", t)
				g = id(vid) ? vid : (id(bsn) ? bsn : "")
				if (id(t)) art = t; else if (id(bsn)) { art = bsn; sub(/.*\./, "", art) } else art = ""
				split(a["implementation-version"], iv, " "); split(a["bundle-version"], bv, " ")
				v = iv[1] != "" ? iv[1] : bv[1]
				if (g != "" && art != "" && v != "") printf "%s\t%s:%s\t%s\tmanifest\n", loc, g, art, v
			}'
	fi
	for e in $(unzip -Z1 "$file" | grep -Ei '\.(jar|war|ear|jpi|hpi|par|sar)$' || true); do
		n=$((n + 1))
		unzip -p "$file" "$e" >"$tmp/$n"
		scan "$tmp/$n" "$loc!/$e" $((depth + 1))
		file=$1 loc=$2 depth=$3 # restore after the recursive call (sh has no locals)
	done
}

find "$img" -type f | grep -Ei '\.(jar|war|ear|jpi|hpi|par|sar)$' | sort | while read -r f; do
	scan "$f" "${f#"$img"}" 0
done | sort -u
