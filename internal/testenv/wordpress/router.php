<?php
// Router of `php -S` for a test WordPress (see wp-config.php): the document root is the
// instance's www/ folder (links to Debian's /usr/share/wordpress and this wp-config.php).
// Static files are served as they are, /wp-content/ from the instance's folder, PHP
// files run, and every other path goes to index.php (pretty permalinks, /wp-json/).
$root = rtrim($_SERVER['DOCUMENT_ROOT'], '/') . '/';
define('ABSPATH', $root);
$path = rawurldecode(parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH) ?? '/');
if (strpos($path, '..') !== false) {
	http_response_code(400);
	return true;
}
if (strpos($path, '/wp-content/') === 0) {
	$file = getenv('STUMP_WP_DIR') . $path;
	if (!is_file($file) || substr($file, -4) === '.php') {
		http_response_code(404);
		return true;
	}
	$types = ['jpg' => 'image/jpeg', 'jpeg' => 'image/jpeg', 'png' => 'image/png', 'gif' => 'image/gif',
		'webp' => 'image/webp', 'svg' => 'image/svg+xml', 'mp4' => 'video/mp4', 'pdf' => 'application/pdf'];
	$ext = strtolower(pathinfo($file, PATHINFO_EXTENSION));
	header('Content-Type: ' . ($types[$ext] ?? 'application/octet-stream'));
	header('Content-Length: ' . filesize($file));
	readfile($file);
	return true;
}
$file = $root . ltrim($path, '/');
if (is_dir($file)) {
	$file = rtrim($file, '/') . '/index.php';
}
if (is_file($file)) {
	if (substr($file, -4) !== '.php') {
		return false;
	}
	$_SERVER['SCRIPT_NAME'] = $_SERVER['PHP_SELF'] = substr($file, strlen($root) - 1);
	$_SERVER['SCRIPT_FILENAME'] = $file;
	chdir(dirname($file));
	require $file;
	return true;
}
$_SERVER['SCRIPT_NAME'] = $_SERVER['PHP_SELF'] = '/index.php';
$_SERVER['SCRIPT_FILENAME'] = $root . 'index.php';
chdir($root);
require $root . 'index.php';
