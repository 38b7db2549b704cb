package file

import "os"

// SideFiles makes the stores opened until restore is called keep sidecars in files
// (on) or in attributes where the file system has them (off).
func SideFiles(on bool) (restore func()) {
	old := forceSideFiles
	forceSideFiles = on
	return func() { forceSideFiles = old }
}

// AttrsWork reports whether the file system of dir has user attributes.
func AttrsWork(dir string) bool {
	s, err := Open(dir)
	if err != nil {
		return false
	}
	defer s.Close()
	return s.attrs
}

// AttrOf reads the sidecar attribute of the file at path.
func AttrOf(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return getAttr(f)
}
