package images

import (
	"context"
	"fmt"
	"os"

	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
	dockerconfig "github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
)

// resolver speaks to registries as containerd's own CRI would: the hosts
// directory (mirrors, plain HTTP, CA files per registry), credentials from
// a Docker config.json, and plain HTTP for loopback registries.
func (im *Images) resolver(ctx context.Context) (remotes.Resolver, error) {
	creds, err := credentials(im.o.AuthFile)
	if err != nil {
		return nil, err
	}
	opts := config.HostOptions{Credentials: creds}
	if im.o.HostsDir != "" {
		opts.HostDir = config.HostDirFromRoot(im.o.HostsDir)
	}
	return docker.NewResolver(docker.ResolverOptions{Hosts: config.ConfigureHosts(ctx, opts)}), nil
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
