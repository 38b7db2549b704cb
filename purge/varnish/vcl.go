package varnish

import (
	_ "embed"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// vclTemplate is stump.vcl, the recommended VCL with @NAME@ placeholders.
//
//go:embed stump.vcl
var vclTemplate string

// VCLOptions fill the placeholders of the recommended VCL (stump.vcl, explained in
// docs/varnish.md).
type VCLOptions struct {
	// BackendHost and BackendPort are the address of the S3 website endpoint Varnish
	// fetches from (an IP address or a name that resolves when the VCL loads).
	BackendHost string
	BackendPort int
	// WebsiteHost is the Host header the website endpoint expects for the bucket:
	// BUCKET.s3-website-REGION.amazonaws.com on AWS, BUCKET.localhost for versitygw.
	WebsiteHost string
	// Site is the site's name, the first part of its surrogate keys (site.yaml's name,
	// the folder under sites/).
	Site string
}

var (
	vclHostRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.:_-]*[A-Za-z0-9])?$`)
	vclSiteRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
)

// VCL returns the recommended VCL for one site behind one website endpoint. Varnish
// needs vmod xkey (Debian's varnish-modules) to load it.
func VCL(o VCLOptions) (string, error) {
	if !vclHostRE.MatchString(o.BackendHost) {
		return "", fmt.Errorf("varnish VCL: backend host %q is not a host name or address", o.BackendHost)
	}
	if o.BackendPort <= 0 || o.BackendPort > 65535 {
		return "", fmt.Errorf("varnish VCL: backend port %d is not a TCP port", o.BackendPort)
	}
	if !vclHostRE.MatchString(o.WebsiteHost) {
		return "", fmt.Errorf("varnish VCL: website host %q is not a host name", o.WebsiteHost)
	}
	if !vclSiteRE.MatchString(o.Site) {
		return "", fmt.Errorf("varnish VCL: site name %q is not a site name", o.Site)
	}
	return strings.NewReplacer(
		"@BACKEND_HOST@", o.BackendHost,
		"@BACKEND_PORT@", strconv.Itoa(o.BackendPort),
		"@WEBSITE_HOST@", o.WebsiteHost,
		"@SITE@", o.Site,
	).Replace(vclTemplate), nil
}
