// Package e2e holds end-to-end fault tests of the deploy engine: the stump CLI run as a
// subprocess against a real S3-compatible server (versitygw, see internal/testenv),
// killed at every step of the publish protocol, refused by a fault-injecting proxy, given
// bad targets and credentials, and raced against itself; a crawler checks the live tree
// throughout. TestKillStorm (issue 13's acceptance test) does all of it at random, with
// rollbacks and stopped publishes, through Varnish running the generated VCL. The
// package has no code outside its tests.
package e2e
