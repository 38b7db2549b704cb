package testenv

import "os"

// IsolateAWS points the AWS SDK's default chain at the test S3 server's credentials and
// at nothing else, for the tests of a package whose code under test loads the default
// configuration (s3store.Open does). Call it first in TestMain, before Main:
//
//	func TestMain(m *testing.M) {
//		testenv.IsolateAWS()
//		testenv.Main(m)
//	}
//
// When the environment names no server (EnvS3Endpoint is unset), it sets
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to the fixed credentials of the server
// that testenv starts; otherwise it keeps the ones scripts/services.sh exported. In
// both cases it unsets the profile, session token, region, endpoint and retry settings,
// points the shared config and credentials files at the null device and turns off the
// EC2 instance metadata, so that no setting of the machine reaches the tests.
func IsolateAWS() {
	if os.Getenv(EnvS3Endpoint) == "" {
		// testenv starts versitygw with these fixed credentials.
		os.Setenv("AWS_ACCESS_KEY_ID", TestAccessKey)
		os.Setenv("AWS_SECRET_ACCESS_KEY", TestSecretKey)
	}
	for _, k := range []string{"AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
		"AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"} {
		os.Unsetenv(k)
	}
	os.Setenv("AWS_CONFIG_FILE", os.DevNull)
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}
