// Package client is the Go client of assayd's HTTP/JSON API, served under
// /v1 on a local Unix socket. The assay CLI and the e2e tests use it.
//
// It holds no global state and talks to nothing but the socket it is given:
// no proxies, no redirects, no TCP. It turns the API's error bodies into
// *APIError values that match the errdefs sentinels with errors.Is, and a
// socket it cannot reach into a *ConnectError that says what to do about it.
package client
