// Package config loads the daemon's configuration into one typed, validated
// Config. It is the only package that imports viper; everything else takes a
// Config (or the part of it it needs) and never reads files, flags or the
// environment for settings itself.
//
// Each setting has one key, written the same way everywhere: dotted in the
// YAML file's sections (scan.concurrency), as a flag (--scan.concurrency) and,
// upper-cased with dots turned into underscores and prefixed with ASSAY_, as
// an environment variable (ASSAY_SCAN_CONCURRENCY, ASSAY_STATE_DIR).
//
// A list (scan.platforms) is a YAML sequence in the file and a,b,c in the
// environment and flags; a map (webhook.registries) is a YAML mapping in the
// file and name=value pairs, a=x,b=y, in the environment and flags. A value
// from a higher layer replaces a list or map whole; it is never merged with
// a lower layer's.
//
// Precedence, highest first:
//
//  1. flags, only those given on the command line;
//  2. environment variables ASSAY_<SECTION>_<KEY>;
//  3. the YAML file (DefaultPath unless another is named);
//  4. the built-in defaults, Default().
//
// Mistakes are errors, never silently ignored: an unknown key in the file, a
// value of the wrong type, a duration without a unit and an impossible value
// each fail the load with a message that starts with "config: " and names the
// key as it is written in the file. An ASSAY_ variable that matches no key is
// only a warning, since the environment is shared with other tools
// (ASSAY_SOCKET, used by the CLI, and ASSAY_TEST_* are not warned about).
//
// The package reads settings and checks them; it must not act on them: it
// creates no directories or sockets and starts nothing. The look-ups it
// makes outside its inputs are resolving socket.group through os/user and
// reading the secret in webhook.token_file (Webhook.Secret returns it).
// Config.YAML never shows webhook.token.
package config
