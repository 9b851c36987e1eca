// Package netaddr holds the address checks shared by the configuration
// and the daemon's clients, and the TCP listener (TLS when configured)
// of the API and the webhook endpoint.
package netaddr

import "net"

// IsLoopbackHost reports whether host (a name or an IP, without a port)
// is localhost or a loopback address: the only place plain HTTP is
// accepted without an explicit setting.
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
