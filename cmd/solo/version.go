package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...". Left
// unset, [buildVersion] derives one from the build itself.
var version = ""

// buildVersion is the one version of this binary, which `solo version`,
// `solo --version` and the daemon's system_started all report: the
// -ldflags version if one was given, else the module version Go recorded
// (a release), else "dev" with the commit it was built from, if known.
func buildVersion() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return "dev-" + rev
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print Solo's version",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.json {
				return a.printJSON(map[string]string{"version": buildVersion()})
			}
			fmt.Fprintln(a.stdout, "solo", buildVersion())
			return nil
		},
	}
}
