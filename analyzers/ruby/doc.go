// Package ruby is the extractor of installed Ruby gems: the specification
// RubyGems writes for each gem it installs, read layer by layer from the
// files the layer streaming framework (plugins/sdk) hands it.
//
// # What is read
//
// The extractor wants every NAME.gemspec regular file in a directory
// named specifications, or in its default subdirectory: a gem directory's
// specifications (/usr/lib/ruby/gems/3.1.0, /usr/local/lib/ruby/gems/3.3.0,
// /var/lib/gems/3.1.0, the official Ruby images' /usr/local/bundle,
// Bundler's vendor/bundle/ruby/3.1.0, ~/.gem/ruby/3.1.0), Debian's
// /usr/share/rubygems-integration/all and
// /usr/lib/<triplet>/rubygems-integration/3.1.0, and the default gems
// that come with Ruby (specifications/default). Gemfile.lock files, .gem
// archives and the gemspecs of source trees are not read. Links are never
// followed: a specification that is a symbolic link is not read.
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
// image path. A gem installed twice (a default gem and a newer one, or in
// two gem directories) is reported once for each specification. Owner is
// not set here: the image merge sets it from the OS packages' file lists
// (ruby-rack, rake, libruby3.1 for the default gems).
//
// # Limits
//
// Files over MaxFileBytes (64 MiB) are skipped by the framework with a
// warning, and of a line only its first 4 KB are looked at. Malformed
// specifications are warnings that never quote the file. Entry counts and
// layer sizes are the framework's limits.
//
// This package imports only plugins/sdk, the standard library and
// packageurl-go; never the daemon, the plugin host, the sandbox,
// containerd or runc (a test in analyzers/ checks it).
package ruby
