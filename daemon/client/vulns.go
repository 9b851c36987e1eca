package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/assayhq/assay/daemon/errdefs"
)

// ReportFormatted returns the latest report of a manifest digest, or of an
// image reference when digest is "", in one of the API's formats (json,
// sarif, cyclonedx, spdx), as the daemon wrote it.
func (c *Client) ReportFormatted(ctx context.Context, digest, image, format string) ([]byte, error) {
	q := url.Values{"format": {format}}
	if digest != "" {
		seg, err := segment("digest", digest)
		if err != nil {
			return nil, err
		}
		return c.roundTrip(ctx, http.MethodGet, "/v1/reports/"+seg, q, nil)
	}
	if image == "" {
		return nil, fmt.Errorf("client: empty image reference: %w", errdefs.ErrInvalid)
	}
	q.Set("image", image)
	return c.roundTrip(ctx, http.MethodGet, "/v1/reports", q, nil)
}

// ScanReportFormatted returns the report one scan of digest produced, in
// format (daemon/formats).
func (c *Client) ScanReportFormatted(ctx context.Context, digest, scanID, format string) ([]byte, error) {
	seg, err := segment("digest", digest)
	if err != nil {
		return nil, err
	}
	return c.roundTrip(ctx, http.MethodGet, "/v1/reports/"+seg, url.Values{"format": {format}, "scan": {scanID}}, nil)
}

// DBInfo returns GET /v1/db: the vulnerability database's state.
func (c *Client) DBInfo(ctx context.Context) (json.RawMessage, error) {
	return c.roundTrip(ctx, http.MethodGet, "/v1/db", nil, nil)
}

// ImportDB uploads an OSV zip archive into the daemon's database, merged
// into the named source.
func (c *Client) ImportDB(ctx context.Context, source string, archive io.Reader, size int64) (json.RawMessage, error) {
	q := url.Values{}
	setIf(q, "source", source)
	const path = "/v1/db/import"
	resp, err := c.sendBody(ctx, http.MethodPost, path, q, archive, "application/zip", size)
	if err != nil {
		return nil, err
	}
	return readAnswer(ctx, http.MethodPost, path, resp)
}

// Vulnerability returns GET /v1/vulnerabilities/{id}: the advisory's
// records and the images and packages it affects, by id or alias.
func (c *Client) Vulnerability(ctx context.Context, id string) (json.RawMessage, error) {
	seg, err := segment("vulnerability id", id)
	if err != nil {
		return nil, err
	}
	return c.roundTrip(ctx, http.MethodGet, "/v1/vulnerabilities/"+seg, nil, nil)
}

// Packages returns GET /v1/packages: the images whose latest report holds
// a package of that name (in that ecosystem, when given).
func (c *Client) Packages(ctx context.Context, ecosystem, name string) (json.RawMessage, error) {
	if name == "" {
		return nil, fmt.Errorf("client: empty package name: %w", errdefs.ErrInvalid)
	}
	q := url.Values{"name": {name}}
	setIf(q, "ecosystem", ecosystem)
	return c.roundTrip(ctx, http.MethodGet, "/v1/packages", q, nil)
}

// CacheInfo returns GET /v1/cache: the layer cache's size and counters.
func (c *Client) CacheInfo(ctx context.Context) (json.RawMessage, error) {
	return c.roundTrip(ctx, http.MethodGet, "/v1/cache", nil, nil)
}

// PruneCache asks for POST /v1/cache/prune: expired entries removed and the
// cache evicted to its size now.
func (c *Client) PruneCache(ctx context.Context, all bool) (json.RawMessage, error) {
	var q url.Values
	if all {
		q = url.Values{"all": {"true"}}
	}
	return c.roundTrip(ctx, http.MethodPost, "/v1/cache/prune", q, nil)
}

// NotifyStatus returns GET /v1/notify: the receivers' pending and dead
// deliveries.
func (c *Client) NotifyStatus(ctx context.Context) (json.RawMessage, error) {
	return c.roundTrip(ctx, http.MethodGet, "/v1/notify", nil, nil)
}

// NotifyRetry asks for POST /v1/notify/retry: the dead letters of eventID
// (all when "") sent again.
func (c *Client) NotifyRetry(ctx context.Context, eventID string) (json.RawMessage, error) {
	var q url.Values
	if eventID != "" {
		q = url.Values{"event": {eventID}}
	}
	return c.roundTrip(ctx, http.MethodPost, "/v1/notify/retry", q, nil)
}
