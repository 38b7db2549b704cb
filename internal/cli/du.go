package cli

import (
	"encoding/json"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/stump-dev/stump/publish/store/file"
)

func duCommand() *cli.Command {
	return &cli.Command{
		Name:  "du",
		Usage: "show the disk space of sites' local (file://) targets, hard-linked copies counted once",
		Flags: append(siteFlags(), &cli.BoolFlag{Name: "json", Usage: "print a machine-readable result on stdout"}),
		Action: func(c *cli.Context) error {
			ws, sites, err := workspaceSites(c)
			if err != nil {
				return err
			}
			type row struct {
				Site   string      `json:"site"`
				Target string      `json:"target"`
				Usage  *file.Usage `json:"usage,omitempty"`
				Error  string      `json:"error,omitempty"`
			}
			var rows []row
			var total file.Usage
			failed := false
			for _, site := range sites {
				r := row{Site: site}
				_, t, err := resolveTarget(c, ws, site)
				if err == nil && t.Scheme != "file" {
					err = fmt.Errorf("target %s is not a local folder", t)
				}
				if err == nil {
					r.Target = t.String()
					var s *file.Store
					if s, err = file.Open(t.Dir); err == nil {
						var u file.Usage
						if u, err = s.Usage(); err == nil {
							r.Usage = &u
							total.Objects, total.Links, total.Bytes, total.Disk = total.Objects+u.Objects, total.Links+u.Links, total.Bytes+u.Bytes, total.Disk+u.Disk
						}
						s.Close()
					}
				}
				if err != nil {
					r.Error, failed = err.Error(), true
				}
				rows = append(rows, r)
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				_ = enc.Encode(map[string]any{"sites": rows, "total": total})
			} else {
				for _, r := range rows {
					if r.Usage == nil {
						fmt.Fprintf(c.App.ErrWriter, "%s: %s\n", r.Site, r.Error)
						continue
					}
					fmt.Fprintf(c.App.Writer, "%s: %s on disk: %d objects, %s of bytes stored once (%d are hard links of another)\n", r.Site, humanBytes(r.Usage.Disk), r.Usage.Objects, humanBytes(r.Usage.Bytes), r.Usage.Links)
				}
				if len(rows) > 1 {
					fmt.Fprintf(c.App.Writer, "total: %s on disk: %d objects, %s of bytes stored once (%d hard links)\n", humanBytes(total.Disk), total.Objects, humanBytes(total.Bytes), total.Links)
				}
			}
			if failed {
				return cli.Exit("", ExitFail)
			}
			return nil
		},
	}
}
