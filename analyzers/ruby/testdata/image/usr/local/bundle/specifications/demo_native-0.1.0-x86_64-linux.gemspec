# -*- encoding: utf-8 -*-
# stub: demo_native 0.1.0 x86_64-linux lib

Gem::Specification.new do |s|
  s.name = "demo_native".freeze
  s.version = "0.1.0"
  s.platform = "x86_64-linux".freeze

  s.required_rubygems_version = Gem::Requirement.new(">= 0".freeze) if s.respond_to? :required_rubygems_version=
  s.require_paths = ["lib".freeze]
  s.authors = ["assay".freeze]
  s.date = "2026-11-27"
  s.licenses = ["MIT".freeze]
  s.rubygems_version = "3.3.15".freeze
  s.summary = "Test data of assay's Ruby analyzer: a gem with a platform".freeze

  s.installed_by_version = "3.3.15" if s.respond_to? :installed_by_version
end
