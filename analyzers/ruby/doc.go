// Package ruby is the analyzer of installed Ruby gems: the specification
// RubyGems writes for each gem it installs.
//
// # What is read
//
// The analyzer walks the whole image (never following a symbolic link
// while walking, so a linked directory is not entered) and reads every
// NAME.gemspec file in a directory named specifications, or in its
// default subdirectory: a gem directory's specifications
// (/usr/lib/ruby/gems/3.1.0, /usr/local/lib/ruby/gems/3.3.0,
// /var/lib/gems/3.1.0, the official Ruby images' /usr/local/bundle,
// Bundler's vendor/bundle/ruby/3.1.0, ~/.gem/ruby/3.1.0), Debian's
// /usr/share/rubygems-integration/all and
// /usr/lib/<triplet>/rubygems-integration/3.1.0, and the default gems
// that come with Ruby (specifications/default). Gemfile.lock files, .gem
// archives and the gemspecs of source trees are not read.
//
// A specification is Ruby code and is never evaluated. RubyGems writes
// each installed one with Gem::Specification#to_ruby, whose second line
// is a stub, "# stub: NAME VERSION PLATFORM REQUIRE_PATHS", that RubyGems
// itself lists gems by without loading them; that line is read. A
// specification without it (RubyGems before 2.1) is read from the
// literal assignments of its Gem::Specification.new block (s.name = "x",
// s.version = "1.2.3" or Gem::Version.new("1.2.3"), s.platform = "...",
// .freeze or not), as osv-scalibr and syft do. Name, version and platform
// must match RubyGems' own patterns.
//
// # What is reported
//
// One package per specification: Ecosystem "RubyGems", Name, Version,
// PURL pkg:gem/<name>@<version> (with ?platform=<platform> for a gem built
// for a platform, "x86_64-linux", "java"), Locations the specification's
// image path. If the image has a dpkg database, the file lists
// /var/lib/dpkg/info/*.list are read, and a gem whose specification a
// Debian package lists (ruby-rack, rake, libruby3.1 for the default gems)
// gets that package's name (without a ":arch" qualifier) as Owner:
// scanners then know that the Debian package's version, not the
// RubyGems one, is what to match advisories against. A gem installed
// twice (a default gem and a newer one, or in two gem directories) is
// reported once for each specification.
//
// # Safety and limits
//
// Every file is opened through an os.Root, links resolved inside the
// image (package imageroot), so nothing outside the image is read; a
// specification that is a link to another file of the image (even
// /etc/shadow) is parsed as a specification, and the warnings about it
// never quote its content. At most MaxFiles entries of the image are
// walked (and at most MaxFiles dpkg file lists read), no file of more
// than MaxFileBytes bytes is read, and of a line only its first 4 KB are
// looked at; when a limit cuts the analysis short, a warning says so.
// Malformed specifications, unreadable files and loops are warnings,
// never errors; only cancellation and a failure to send stop the
// analysis.
//
// This package imports only plugins/sdk, the standard library,
// packageurl-go and the analyzers' own imageroot and warncap; never the
// daemon, the plugin host, the sandbox, containerd or runc (a test in
// analyzers/ checks it).
package ruby
