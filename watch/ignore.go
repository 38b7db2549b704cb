package watch

import (
	"strings"
)

// Ignored reports whether a file or folder name (a base name, not a path) is one that
// editors, version control or stump itself write next to real files, and that a change
// to must not rebuild the site:
//
//   - dotfiles and dot folders: .git, .DS_Store, vim swap files (.x.md.swp), emacs lock
//     links (.#x.md), stump's own temporary files (.stump-tmp-*);
//   - vim: backups (x.md~), swap files kept elsewhere (x.md.swp, .swx, .swo...) and the
//     numbered probe file it creates to test a folder (4913, 5036, ...);
//   - emacs: auto-save files (#x.md#);
//   - JetBrains IDEs: x.md___jb_tmp___ and x.md___jb_old___ (their "safe write");
//   - VS Code, helix and others: x.md.tmp, and VS Code's x.md.<random>.crswap.
func Ignored(name string) bool {
	if name == "" || strings.HasPrefix(name, ".") {
		return true
	}
	if strings.HasSuffix(name, "~") {
		return true
	}
	if len(name) > 1 && strings.HasPrefix(name, "#") && strings.HasSuffix(name, "#") {
		return true
	}
	if allDigits(name) {
		return true // vim's write probe: 4913, then 4913+123*n
	}
	for _, suf := range ignoredSuffixes {
		if strings.HasSuffix(name, suf) {
			return true
		}
	}
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		ext := name[i:]
		// .swp, .swo, .swn ... (vim swap files, a to p) and .swx (vim's probe).
		if len(ext) == 4 && strings.HasPrefix(ext, ".sw") && (ext[3] >= 'a' && ext[3] <= 'p' || ext[3] == 'x') {
			return true
		}
	}
	return false
}

var ignoredSuffixes = []string{"___jb_tmp___", "___jb_old___", ".tmp", ".crswap"}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
