# -*- encoding: utf-8 -*-
# stub: demo-pre 2.0.0.rc1 ruby lib

Gem::Specification.new do |s|
  s.name = "demo-pre".freeze
  s.version = "2.0.0.rc1"

  s.required_rubygems_version = Gem::Requirement.new("> 1.3.1".freeze) if s.respond_to? :required_rubygems_version=
  s.require_paths = ["lib".freeze]
  s.authors = ["assay".freeze]
  s.date = "2026-11-27"
  s.licenses = ["MIT".freeze]
  s.rubygems_version = "3.3.15".freeze
  s.summary = "Test data of assay's Ruby analyzer: a prerelease version".freeze

  s.installed_by_version = "3.3.15" if s.respond_to? :installed_by_version
end
