package images

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
	dockerconfig "github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
)

// resolver speaks to registries as containerd's own CRI would: the hosts
// directory (mirrors, plain HTTP, CA files per registry), credentials from
// a Docker config.json, and plain HTTP for loopback registries and those
// of Options.PlainHTTPHosts. A scan's own credentials (WithAuthorization)
// go to its registry host only, and replace the config.json's there.
func (im *Images) resolver(ctx context.Context) (remotes.Resolver, error) {
	creds, err := credentials(im.o.AuthFile)
	if err != nil {
		return nil, err
	}
	opts := config.HostOptions{Credentials: creds}
	if im.o.HostsDir != "" {
		opts.HostDir = config.HostDirFromRoot(im.o.HostsDir)
	}
	scanAuth, hasAuth := ctx.Value(authKey{}).(authorization)
	hosts := func(host string) ([]docker.RegistryHost, error) {
		o := opts
		if slices.Contains(im.o.PlainHTTPHosts, host) {
			o.DefaultScheme = "http"
		}
		var bearer string
		if hasAuth && host == scanAuth.host {
			scheme, value, _ := strings.Cut(scanAuth.header, " ")
			switch strings.ToLower(scheme) {
			case "basic":
				user, pass, err := decodeBasic(value)
				if err != nil {
					return nil, err
				}
				o.Credentials = func(h string) (string, string, error) {
					if h == host {
						return user, pass, nil
					}
					return "", "", nil
				}
			case "bearer":
				bearer = scanAuth.header
			default:
				return nil, errors.New("images: the scan's registry authorization is neither Basic nor Bearer")
			}
		}
		rh, err := config.ConfigureHosts(ctx, o)(host)
		if err != nil {
			return nil, err
		}
		if bearer != "" {
			for i := range rh {
				if rh[i].Host == host {
					rh[i].Authorizer = bearerAuthorizer(bearer)
				}
			}
		}
		return rh, nil
	}
	return docker.NewResolver(docker.ResolverOptions{Hosts: hosts}), nil
}

type authKey struct{}

type authorization struct{ host, header string }

// WithAuthorization gives the pulls made with ctx an Authorization header
// value ("Basic base64(user:password)" or "Bearer TOKEN") for the
// registry host (host[:port]): Basic credentials answer the registry's
// challenge (basic, or a token exchange); a Bearer token is sent as is.
// Other hosts (mirrors, redirects) never get it.
func WithAuthorization(ctx context.Context, host, header string) context.Context {
	return context.WithValue(ctx, authKey{}, authorization{host: host, header: header})
}

func decodeBasic(v string) (user, pass string, err error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
	if err != nil {
		return "", "", errors.New("images: the scan's Basic registry authorization is not base64")
	}
	user, pass, ok := strings.Cut(string(b), ":")
	if !ok {
		return "", "", errors.New("images: the scan's Basic registry authorization is not user:password")
	}
	return user, pass, nil
}

// bearerAuthorizer sends a token it was given; it cannot get another.
type bearerAuthorizer string

func (b bearerAuthorizer) Authorize(_ context.Context, req *http.Request) error {
	req.Header.Set("Authorization", string(b))
	return nil
}

func (bearerAuthorizer) AddResponses(context.Context, []*http.Response) error {
	return errors.New("the registry refused the scan request's bearer token (expired, or without pull access to the repository)")
}

// credentials reads a Docker config.json once per pull, so a rotated file
// is picked up without a restart.
func credentials(path string) (func(host string) (string, string, error), error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("images: registries.auth_file: %w", err)
	}
	defer f.Close()
	cf, err := dockerconfig.LoadFromReader(f)
	if err != nil {
		return nil, fmt.Errorf("images: registries.auth_file %s: %w", path, err)
	}
	return func(host string) (string, string, error) { return lookup(cf, host) }, nil
}

func lookup(cf *configfile.ConfigFile, host string) (string, string, error) {
	for _, key := range []string{host, "https://" + host, "http://" + host} {
		ac, ok := cf.AuthConfigs[key]
		if !ok {
			continue
		}
		if ac.IdentityToken != "" {
			return "", ac.IdentityToken, nil
		}
		return ac.Username, ac.Password, nil
	}
	if host == "registry-1.docker.io" {
		return lookup(cf, "https://index.docker.io/v1/")
	}
	return "", "", nil
}
