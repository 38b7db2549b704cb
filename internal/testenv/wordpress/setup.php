<?php
// Installs WordPress into a fresh test database (see wp-config.php), creates the user
// "stump" (an editor) with an application password, and prints that password as the
// last line of output. Run with php-cli, STUMP_WP_DIR and STUMP_WP_URL set.
$_SERVER['HTTP_HOST'] = parse_url(getenv('STUMP_WP_URL'), PHP_URL_HOST);
$_SERVER['REQUEST_URI'] = '/';
define('WP_INSTALLING', true);
define('ABSPATH', getenv('STUMP_WP_DIR') . '/www/');
require ABSPATH . 'wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
$r = wp_install('stump test', 'admin', 'admin@example.org', false, '', wp_generate_password(24), 'en_US');
update_option('permalink_structure', '/%year%/%monthnum%/%postname%/');
update_option('timezone_string', 'UTC');
$uid = wp_insert_user(['user_login' => 'stump', 'user_pass' => wp_generate_password(24),
	'user_email' => 'stump@example.org', 'role' => 'editor', 'display_name' => 'Stump Bot']);
if (is_wp_error($uid)) { fwrite(STDERR, $uid->get_error_message() . "\n"); exit(1); }
[$password] = WP_Application_Passwords::create_new_application_password($uid, ['name' => 'stump']);
echo $password, "\n";
