<?php
// The configuration of a test WordPress that internal/testenv starts (and
// scripts/services.sh start_wordpress). Everything comes from the environment, so one
// file serves every instance: STUMP_WP_DIR (the instance's folder: www/, wp-content/,
// the database socket) and STUMP_WP_URL (http://127.0.0.1:PORT).
$stump_dir = getenv('STUMP_WP_DIR');
$stump_url = getenv('STUMP_WP_URL');
if (!$stump_dir || !$stump_url) {
	http_response_code(500);
	exit("STUMP_WP_DIR and STUMP_WP_URL must be set\n");
}
define('DB_NAME', 'wordpress');
define('DB_USER', 'root');
define('DB_PASSWORD', '');
define('DB_HOST', 'localhost:' . $stump_dir . '/mysql.sock');
define('DB_CHARSET', 'utf8mb4');
define('DB_COLLATE', '');
// Fixed salts: this WordPress lives on loopback for the length of a test.
foreach (['AUTH_KEY', 'SECURE_AUTH_KEY', 'LOGGED_IN_KEY', 'NONCE_KEY', 'AUTH_SALT',
	'SECURE_AUTH_SALT', 'LOGGED_IN_SALT', 'NONCE_SALT'] as $k) {
	define($k, 'stump-test-' . $k);
}
define('WP_HOME', $stump_url);
define('WP_SITEURL', $stump_url);
define('WP_CONTENT_DIR', $stump_dir . '/wp-content');
define('WP_CONTENT_URL', $stump_url . '/wp-content');
// Application passwords need HTTPS, or this environment type.
define('WP_ENVIRONMENT_TYPE', 'local');
define('DISABLE_WP_CRON', true);
define('AUTOMATIC_UPDATER_DISABLED', true);
define('WP_HTTP_BLOCK_EXTERNAL', true);
define('WP_ACCESSIBLE_HOSTS', '127.0.0.1,localhost');
define('WP_DEBUG', false);
$table_prefix = 'wp_';
require_once ABSPATH . 'wp-settings.php';
