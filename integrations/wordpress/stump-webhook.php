<?php
/**
 * Plugin Name: stump webhook
 * Description: Tells `stump wordpress listen` when content changes, so the static site is
 *              published seconds after Publish is pressed. A must-use plugin: copy this
 *              file into wp-content/mu-plugins/.
 * Version: 1
 *
 * Configuration, in wp-config.php (or as options stump_webhook_url and
 * stump_webhook_secret, for instance with wp option update):
 *
 *   define('STUMP_WEBHOOK_URL', 'http://stump.internal:8787/hook');
 *   define('STUMP_WEBHOOK_SECRET', 'the value of STUMP_WP_WEBHOOK_SECRET');
 *
 * Each event is a JSON body signed with HMAC-SHA256 over the body (header
 * X-Stump-Signature: sha256=<hex>), with a random id and the time, so the listener can
 * refuse forgeries and replays. It is sent on every post status transition that touches
 * "publish" or "future" (publish, update, unpublish, trash, schedule) and when a post is
 * deleted. Revisions, autosaves and auto-drafts are ignored. A listener that is down
 * costs the editor at most two seconds; the listener's --every polling catches up.
 */

if (!defined('ABSPATH')) {
	exit;
}

function stump_webhook_setting($name) {
	$const = 'STUMP_WEBHOOK_' . strtoupper($name);
	if (defined($const)) {
		return constant($const);
	}
	return get_option('stump_webhook_' . $name, '');
}

function stump_webhook_send($event, $post, $old_status = '') {
	$url = stump_webhook_setting('url');
	$secret = stump_webhook_setting('secret');
	if (!$url || !$secret || !$post) {
		return;
	}
	if (wp_is_post_revision($post) || wp_is_post_autosave($post) || $post->post_status === 'auto-draft') {
		return;
	}
	$body = wp_json_encode([
		'id' => bin2hex(random_bytes(16)),
		'time' => time(),
		'event' => $event,
		'site' => home_url('/'),
		'post' => [
			'id' => (int) $post->ID,
			'type' => $post->post_type,
			'status' => $post->post_status,
			'old_status' => $old_status,
		],
	]);
	$response = wp_remote_post($url, [
		'timeout' => 2,
		'redirection' => 0,
		'headers' => [
			'Content-Type' => 'application/json',
			'X-Stump-Signature' => 'sha256=' . hash_hmac('sha256', $body, $secret),
		],
		'body' => $body,
	]);
	if (is_wp_error($response)) {
		error_log('stump webhook: ' . $response->get_error_message());
	}
}

add_action('transition_post_status', function ($new_status, $old_status, $post) {
	$public = ['publish', 'future'];
	if (!in_array($new_status, $public, true) && !in_array($old_status, $public, true)) {
		return; // draft to draft, pending, private: nothing public changed
	}
	stump_webhook_send('transition_post_status', $post, $old_status);
}, 10, 3);

add_action('before_delete_post', function ($post_id, $post = null) {
	$post = $post ?: get_post($post_id);
	if ($post && in_array($post->post_status, ['publish', 'future'], true)) {
		stump_webhook_send('delete_post', $post, $post->post_status);
	}
}, 10, 2);
