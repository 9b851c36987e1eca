# assay build and test entry points. `make help` lists them.
SHELL   := /bin/bash
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/assayhq/assay/daemon.Version=$(VERSION)
GOBUILD := $(GO) build -trimpath -ldflags '$(LDFLAGS)'

.PHONY: all deps build demo test test-unit test-integration test-e2e bench fmt vet clean help proto install uninstall deb

all: build

help:
	@echo "make build            bin/assayd, bin/assay, bin/mkimage, bin/containerd"
	@echo "make demo             start a loopback registry and assayd, push a real image, scan it, print the report"
	@echo "make test             every tier: unit, integration (root), e2e (root, built binaries)"
	@echo "make test-unit        go test -race ./... (tiers that need root skip themselves)"
	@echo "make test-integration systemd unit verification and the other root-only tests"
	@echo "make test-e2e         the built binaries against a real registry over a real socket"
	@echo "make proto            regenerate plugins/proto Go code (needs protoc)"
	@echo "make bench            API latency over the socket, idle RSS, restart time"

# assayd needs cgo (libcontainer's nsenter) and libseccomp (-tags seccomp).
# Plugins are static binaries with a manifest carrying their sha256:
# NAME:PACKAGE of each example tree plugin, built into bin/example-plugins
# (not bin/plugins: assayd enables every plugin of bin/plugins by default,
# and a tree plugin makes every scan unpack the image). The built-in
# extractors are one layer plugin, builtin, whose manifest lists them
# (analyzers.Names, read from analyzers/registry.go).
PLUGINS := example:./plugins/example/cmd/assay-example
EXTRACTORS := $(shell sed -n 's/^\t"\([a-z0-9._-]*\)",$$/\1/p' analyzers/registry.go)

build: bin/containerd
	@mkdir -p bin/plugins bin/example-plugins
	@rm -f bin/plugins/assay-example bin/plugins/example.plugin.json
	CGO_ENABLED=1 $(GOBUILD) -tags seccomp -o bin/assayd ./daemon/cmd/assayd
	$(GOBUILD) -o bin/assay ./daemon/cmd/assay
	$(GOBUILD) -o bin/mkimage ./e2e/cmd/mkimage
	@for p in $(PLUGINS); do \
	  name=$${p%%:*}; pkg=$${p#*:}; \
	  echo "plugin $$name ($$pkg)"; \
	  CGO_ENABLED=0 $(GOBUILD) -o bin/example-plugins/assay-$$name $$pkg || exit 1; \
	  sum=$$(sha256sum bin/example-plugins/assay-$$name | cut -d' ' -f1); \
	  printf '{"name":"%s","version":"%s","binary":"assay-%s","sha256":"%s"}\n' $$name $(VERSION) $$name $$sum > bin/example-plugins/$$name.plugin.json; \
	done
	@echo "plugin builtin (./analyzers/cmd/assay-builtin: $(EXTRACTORS))"
	CGO_ENABLED=0 $(GOBUILD) -o bin/plugins/assay-builtin ./analyzers/cmd/assay-builtin
	@sum=$$(sha256sum bin/plugins/assay-builtin | cut -d' ' -f1); \
	  list=$$(printf '"%s",' $(EXTRACTORS)); \
	  printf '{"name":"builtin","version":"%s","binary":"assay-builtin","sha256":"%s","input":"layers","extractors":[%s]}\n' $(VERSION) $$sum "$${list%,}" > bin/plugins/builtin.plugin.json
	@rm -f $(foreach n,apk dpkg gobinary java npm python rpm ruby rust,bin/plugins/assay-$(n) bin/plugins/$(n).plugin.json)

# make install [PREFIX=/usr/local] [DESTDIR=...]: assayd, its containerd and
# its plugins in $(PREFIX)/lib/assay (assayd finds containerd and plugins/
# next to itself), assayd and assay on $(PREFIX)/bin, the systemd units,
# sysusers and tmpfiles entries in $(PREFIX)/lib/..., and
# /etc/assay/assayd.yaml unless one is there. make uninstall removes all
# but /etc/assay/assayd.yaml and /var/lib/assay.
PREFIX  ?= /usr/local
DESTDIR ?=
LIBDIR  := $(PREFIX)/lib/assay
INSTALLED := $(LIBDIR)/assayd $(LIBDIR)/containerd $(LIBDIR)/plugins/assay-builtin $(LIBDIR)/plugins/builtin.plugin.json \
	$(PREFIX)/bin/assayd $(PREFIX)/bin/assay \
	$(PREFIX)/lib/systemd/system/assayd.service $(PREFIX)/lib/systemd/system/assayd.socket \
	$(PREFIX)/lib/sysusers.d/assay.conf $(PREFIX)/lib/tmpfiles.d/assay.conf

install: build
	install -d -m 0755 $(DESTDIR)$(LIBDIR)/plugins $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/systemd/system \
	  $(DESTDIR)$(PREFIX)/lib/sysusers.d $(DESTDIR)$(PREFIX)/lib/tmpfiles.d $(DESTDIR)/etc/assay
	install -m 0755 bin/assayd bin/containerd $(DESTDIR)$(LIBDIR)/
	install -m 0755 bin/plugins/assay-builtin $(DESTDIR)$(LIBDIR)/plugins/
	install -m 0644 bin/plugins/builtin.plugin.json $(DESTDIR)$(LIBDIR)/plugins/
	ln -sfn ../lib/assay/assayd $(DESTDIR)$(PREFIX)/bin/assayd
	install -m 0755 bin/assay $(DESTDIR)$(PREFIX)/bin/
	sed 's#/usr/local/bin/assayd#$(PREFIX)/bin/assayd#' systemd/assayd.service > $(DESTDIR)$(PREFIX)/lib/systemd/system/assayd.service
	install -m 0644 systemd/assayd.socket $(DESTDIR)$(PREFIX)/lib/systemd/system/
	install -m 0644 systemd/assay.sysusers.conf $(DESTDIR)$(PREFIX)/lib/sysusers.d/assay.conf
	install -m 0644 systemd/assay.tmpfiles.conf $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/assay.conf
	@if [ -e $(DESTDIR)/etc/assay/assayd.yaml ]; then echo "kept $(DESTDIR)/etc/assay/assayd.yaml"; \
	  else install -m 0644 configs/assayd.yaml $(DESTDIR)/etc/assay/assayd.yaml; fi
	@echo "installed under $(DESTDIR)$(PREFIX); then: systemd-sysusers; systemd-tmpfiles --create; systemctl daemon-reload; systemctl enable --now assayd.socket"

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	-rmdir $(DESTDIR)$(LIBDIR)/plugins $(DESTDIR)$(LIBDIR) 2>/dev/null
	@echo "removed; $(DESTDIR)/etc/assay/assayd.yaml and /var/lib/assay are left in place"

# make deb: bin/assay_<version>_amd64.deb, with nfpm (pinned; go run fetches
# it through the module proxy) from the tree make install stages for
# PREFIX=/usr. The configuration is a conffile (kept on upgrade); the
# maintainer scripts (systemd/deb/) create the group through sysusers and
# enable the socket.
NFPM := github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0
DEB_VERSION := 0.0.0~git$(subst -,.,$(VERSION))

deb:
	rm -rf bin/deb-root
	$(MAKE) install PREFIX=/usr DESTDIR=$(CURDIR)/bin/deb-root
	ASSAY_DEB_VERSION=$(DEB_VERSION) $(GO) run $(NFPM) package --config systemd/deb/nfpm.yaml --packager deb --target bin/assay_$(DEB_VERSION)_amd64.deb

# The managed containerd: the version pinned in go.mod (a go tool), rebuilt
# when go.mod changes.
bin/containerd: go.mod
	@mkdir -p bin
	$(GO) build -tags no_btrfs -trimpath -o bin/containerd github.com/containerd/containerd/v2/cmd/containerd

# The demo installs what it needs from Debian first, then builds.
demo:
	./e2e/demo.sh

# The Debian packages the tests need (installed when missing; see the script).
deps:
	./e2e/deps.sh

test: deps
	$(MAKE) test-unit test-integration test-e2e

test-unit:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

test-integration: build
	ASSAY_INTEGRATION=1 ASSAY_CONTAINERD=$(CURDIR)/bin/containerd $(GO) test -count=1 -timeout 20m ./systemd/... ./daemon/... ./plugins/...
	ASSAY_INTEGRATION=1 CGO_ENABLED=1 $(GO) test -tags seccomp -count=1 -timeout 20m ./sandbox/...

test-e2e: build
	ASSAY_E2E=1 ASSAY_BIN=$(CURDIR)/bin $(GO) test -count=1 -timeout 15m -v ./e2e/...

bench: build
	ASSAY_E2E=1 ASSAY_BIN=$(CURDIR)/bin $(GO) test -count=1 -run '^$$' -bench . -benchtime 2000x ./e2e/...
	ASSAY_INTEGRATION=1 ASSAY_CONTAINERD=$(CURDIR)/bin/containerd $(GO) test -count=1 -run '^$$' -bench . -benchtime 5x ./daemon/images/
	ASSAY_INTEGRATION=1 CGO_ENABLED=1 $(GO) test -tags seccomp -count=1 -run '^$$' -bench . -benchtime 200x ./sandbox/
	$(GO) test -count=1 -run '^$$' -bench . ./daemon/match/ ./daemon/vulndb/ ./daemon/formats/

PROTOC_GEN_GO      := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2

# The analyzer plugin contract: regenerate the committed Go code with the
# pinned generators (protoc itself: Debian's protobuf-compiler, 3.21).
proto:
	GOBIN=$(CURDIR)/bin/protoc-gen $(GO) install $(PROTOC_GEN_GO)
	GOBIN=$(CURDIR)/bin/protoc-gen $(GO) install $(PROTOC_GEN_GO_GRPC)
	PATH=$(CURDIR)/bin/protoc-gen:$$PATH protoc -I . \
		--go_out=. --go_opt=module=github.com/assayhq/assay \
		--go-grpc_out=. --go-grpc_opt=module=github.com/assayhq/assay \
		plugins/proto/analyzer/v1/analyzer.proto

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
