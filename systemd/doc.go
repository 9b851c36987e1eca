// Package systemd holds assay's systemd integration: assayd.service, assayd.socket,
// sysusers.d and tmpfiles.d entries (see README.md in this directory). It contains no
// Go code; systemd_test.go checks the files, with `systemd-analyze verify` when
// available.
package systemd
