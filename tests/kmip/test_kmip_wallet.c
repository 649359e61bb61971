/*
 * Unit tests of kmip.wallet (keystore/kmip_wallet.c): encode and parse agree; every line the
 * parser refuses is refused with its line named (a lying checksum, truncation, bytes that are
 * not printable, doubled spaces, a long line, a second ACTIVE key, a key ID twice, nine
 * servers, a relative TLS wallet path, lines out of order); a newer version is named as such;
 * the file on disk is written with a backup of the previous one, and refused when another user
 * could write it or it is a link.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto/crypto.h"
#include "keystore/kmip_wallet.h"
#include "../keystore/test_helpers.h"

static struct kmip_wallet *sample(void)
{
	struct kmip_wallet *w = calloc(1, sizeof(*w));
	size_t count;
	char why[KMIP_WHY_SIZE];

	assert_non_null(w);
	memset(w->wallet_id, 0xab, KEY_ID_SIZE);
	w->generation = 3;
	strcpy(w->container, "default");
	strcpy(w->tls_wallet, "/etc/tdefs/tls");
	w->timeout_ms = 2500;
	assert_int_equal(kmip_servers_parse("kms1.example:5696,[::1]:7000", w->servers, &count, why),
			 0);
	w->server_count = count;
	for (int i = 0; i < 2; i++) {
		struct kmip_wallet_key *k = &w->keys[i];
		memset(k->id, 0x10 + i, KEY_ID_SIZE);
		k->state = i == 0 ? MEK_STATE_RETIRED : MEK_STATE_ACTIVE;
		k->creation_time = 1700000000 + i;
		k->activation_time = 1700000100 + i;
		snprintf(k->unique_id, sizeof(k->unique_id), "%d", 40 + i);
		snprintf(k->name, sizeof(k->name), "tdefs-key-%d", i);
	}
	w->key_count = 2;
	return w;
}

static char *encoded(const struct kmip_wallet *w, size_t *len)
{
	/* Through a heap slot: GCC's dangling-pointer check would otherwise suspect the address
	 * of a local escaping through the out-parameter. */
	char **slot = calloc(1, sizeof(*slot));
	char *text;

	assert_non_null(slot);
	assert_int_equal(kmip_wallet_encode(w, slot, len), 0);
	text = *slot;
	free(slot);
	assert_non_null(text);
	return text;
}

/* text with its sha256 line made right again (for a change to the body). */
static char *resealed(const char *body_text, size_t *len)
{
	size_t body = strlen(body_text);
	uint8_t digest[SHA256_SIZE];
	char *out = malloc(body + 80);

	assert_non_null(out);
	memcpy(out, body_text, body);
	assert_int_equal(crypto_sha256(body_text, body, digest), 0);
	memcpy(out + body, "sha256 ", 7);
	for (size_t i = 0; i < SHA256_SIZE; i++)
		snprintf(out + body + 7 + 2 * i, 3, "%02x", digest[i]);
	out[body + 7 + 64] = '\n';
	out[body + 8 + 64] = '\0';
	*len = body + 8 + 64;
	return out;
}

/* The body (everything before the sha256 line) of w's text. */
static char *body_of(const struct kmip_wallet *w)
{
	size_t len;
	char *text = encoded(w, &len);
	char *last = strstr(text, "sha256 ");

	assert_non_null(last);
	*last = '\0';
	return text;
}

static int parse_text(const char *text, size_t len, char why[KMIP_WALLET_WHY_SIZE])
{
	struct kmip_wallet *w = malloc(sizeof(*w));
	int ret;

	assert_non_null(w);
	ret = kmip_wallet_parse((const uint8_t *)text, len, w, why);
	free(w);
	return ret;
}

static void test_round_trip(void **state)
{
	struct kmip_wallet *w = sample(), *back = malloc(sizeof(*back));
	char why[KMIP_WALLET_WHY_SIZE] = "";
	size_t len;
	char *text = encoded(w, &len);

	(void)state;
	assert_non_null(strstr(text, "tdefs-kmip-wallet 1\nwallet-id abababab"));
	assert_non_null(strstr(text, "server [::1]:7000\n"));
	assert_non_null(strstr(text, " ACTIVE 1700000001 1700000101 41 tdefs-key-1\n"));
	assert_int_equal(kmip_wallet_parse((const uint8_t *)text, len, back, why), 0);
	assert_memory_equal(back->wallet_id, w->wallet_id, KEY_ID_SIZE);
	assert_true(back->generation == 3);
	assert_int_equal(back->timeout_ms, 2500);
	assert_int_equal(back->server_count, 2);
	assert_string_equal(back->servers[1].host, "::1");
	assert_string_equal(back->servers[1].port, "7000");
	assert_int_equal(back->key_count, 2);
	assert_int_equal(back->keys[0].state, MEK_STATE_RETIRED);
	assert_string_equal(back->keys[1].unique_id, "41");
	assert_string_equal(back->keys[1].name, "tdefs-key-1");
	assert_true(back->keys[1].activation_time == 1700000101);
	free(text);
	free(w);
	free(back);
}

static void expect_damaged(const char *body, const char *reason)
{
	char why[KMIP_WALLET_WHY_SIZE] = "";
	size_t len;
	char *text = resealed(body, &len);

	assert_int_equal(parse_text(text, len, why), KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED));
	if (!strstr(why, reason))
		fail_msg("expected '%s' in '%s' for:\n%s", reason, why, body);
	free(text);
}

/* body with the first occurrence of from replaced by to. */
static char *edited(const char *body, const char *from, const char *to)
{
	const char *at = strstr(body, from);
	char *out;

	assert_non_null(at);
	out = malloc(strlen(body) + strlen(to) + 1);
	assert_non_null(out);
	sprintf(out, "%.*s%s%s", (int)(at - body), body, to, at + strlen(from));
	return out;
}

static void test_refused_lines(void **state)
{
	struct kmip_wallet *w = sample();
	char *body = body_of(w);
	struct {
		const char *from, *to, *reason;
	} cases[] = {
		{ "generation 3", "generation 03", "line 3: not a generation number" },
		{ "generation 3", "generation  3", "line 3: fields must be separated by one space" },
		{ "container default", "container a\tb", "line 4: a byte that is not printable" },
		{ "tls-wallet /etc/tdefs/tls", "tls-wallet etc/tdefs/tls", "line 5: the TLS wallet" },
		{ "timeout-ms 2500", "timeout-ms 0", "line 6: a timeout" },
		{ "timeout-ms 2500", "timeout-ms 9999999", "line 6: a timeout" },
		{ "timeout-ms 2500\n", "", "line 6: expected \"timeout-ms\"" },
		{ "server kms1.example:5696", "server kms1.example:99999", "line 7: not host:port" },
		{ "server kms1.example:5696", "server kms1.example:5696 extra", "one host:port" },
		{ "RETIRED", "ACTIVE", "line 10: a second ACTIVE key" },
		{ "RETIRED", "LOST", "a key state is" },
		{ "RETIRED 1700000000 1700000100", "PREACTIVE 1700000000 1700000100",
		  "activated exactly when" },
		{ "key 11111111111111111111111111111111", "key 1111", "not a key ID" },
		{ "wallet-id", "walletid", "line 2: expected \"wallet-id\"" },
		{ "server [::1]:7000\n", "frobnicate 1\n", "line 8: not a server, group, link or key line" },
		{ "server [::1]:7000\n", "server [::1]:7000\ngroup a/b\n", "line 9: a group is 1 to 64" },
		{ "server [::1]:7000\n", "server [::1]:7000\nlink etc/w\n",
		  "line 9: a link is an absolute path" },
		{ "server [::1]:7000\n", "server [::1]:7000\ngroup fleet\n",
		  "line 10: a group's keys are listed by the server" },
		{ "tdefs-key-1", "tdefs-key-1\n", "line 11: empty" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *changed = edited(body, cases[i].from, cases[i].to);
		if (cases[i].reason[0])
			expect_damaged(changed, cases[i].reason);
		free(changed);
	}
	/* A group wallet: the group line back, no key lines; a second group line refused. */
	{
		struct kmip_wallet *grouped = sample(), *back = malloc(sizeof(*back));
		char why[KMIP_WALLET_WHY_SIZE] = "";
		size_t len;
		char *text;

		assert_non_null(back);
		grouped->key_count = 0;
		strcpy(grouped->group, "fleet-1.db_");
		strcpy(grouped->link, "/etc/tdefs/wallet");
		text = encoded(grouped, &len);
		assert_non_null(strstr(text, "server [::1]:7000\ngroup fleet-1.db_\n"
					     "link /etc/tdefs/wallet\nsha256 "));
		assert_int_equal(kmip_wallet_parse((const uint8_t *)text, len, back, why), 0);
		assert_string_equal(back->group, "fleet-1.db_");
		assert_string_equal(back->link, "/etc/tdefs/wallet");
		assert_int_equal(back->key_count, 0);
		free(text);
		char *grouped_body = body_of(grouped);
		char *twice = edited(grouped_body, "group fleet-1.db_\n",
				     "group fleet-1.db_\ngroup other\n");
		expect_damaged(twice, "one group line, after the servers");
		free(twice);
		free(grouped_body);
		free(grouped);
		free(back);
	}
	/* A key ID twice. */
	{
		char *line = strstr(body, "key 1111");
		char *end = strchr(line, '\n');
		size_t size = strlen(body) + (size_t)(end - line) + 2;
		char *twice = malloc(size);

		/* Not assert_non_null: GCC cannot see that it does not return on NULL. */
		if (!twice)
			abort();
		snprintf(twice, size, "%s%.*s\n", body, (int)(end - line), line);
		expect_damaged(twice, "a key ID listed twice");
		free(twice);
	}
	/* A server after a key, nine servers, a line of 513 bytes. */
	{
		char *later = malloc(strlen(body) + 64);
		assert_non_null(later);
		sprintf(later, "%sserver late.example:1\n", body);
		expect_damaged(later, "servers come before the keys");
		free(later);
		char *nine = edited(body, "server [::1]:7000\n",
				    "server a:1\nserver b:1\nserver c:1\nserver d:1\nserver e:1\n"
				    "server f:1\nserver g:1\nserver h:1\n");
		expect_damaged(nine, "at most 8");
		free(nine);
		char longname[520];
		memset(longname, 'x', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		char *longer = edited(body, "tdefs-key-0", longname);
		expect_damaged(longer, "longer than 512 bytes");
		free(longer);
	}
	free(body);
	free(w);
}

static void test_checksum_truncation_version(void **state)
{
	struct kmip_wallet *w = sample();
	char why[KMIP_WALLET_WHY_SIZE] = "";
	size_t len;
	char *text = encoded(w, &len);

	(void)state;
	/* Every truncation is refused, and so is every single flipped bit of the body. */
	for (size_t cut = 0; cut < len; cut++)
		assert_int_equal(parse_text(text, cut, why), KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED));
	for (size_t at = 20; at < len - 72; at++) {
		text[at] ^= 0x01;
		assert_int_equal(parse_text(text, len, why), KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED));
		text[at] ^= 0x01;
	}
	text[30] ^= 0x01;
	parse_text(text, len, why);
	assert_non_null(strstr(why, "sha256 line does not match"));
	text[30] ^= 0x01;
	assert_int_equal(parse_text(text, len, why), 0);
	/* A newer version is named as such, before its content is judged. */
	text[18] = '2';
	assert_int_equal(parse_text(text, len, why), KEYSTORE_ERROR(KEYSTORE_ERR_NEWER_FORMAT));
	assert_non_null(strstr(why, "version 2 is newer"));
	assert_int_equal(parse_text("password.wallet\n", 16, why),
			 KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED));
	assert_non_null(strstr(why, "not a KMIP wallet"));
	free(text);
	free(w);
}

static void test_file_write_and_read(void **state)
{
	char dir[PATH_MAX], path[PATH_MAX], backup[PATH_MAX], error[KEYSTORE_ERROR_SIZE] = "";
	char link_dir[PATH_MAX], tls_dir[PATH_MAX];
	struct kmip_wallet *w = sample(), *back = malloc(sizeof(*back));

	(void)state;
	assert_non_null(back);
	scratch_dir_make(dir);
	path_join(tls_dir, dir, "tls");
	assert_int_equal(mkdir(tls_dir, 0700), 0);
	strcpy(w->tls_wallet, tls_dir);
	path_join(path, dir, "kms");
	assert_int_equal(kmip_wallet_write(path, w, true, backup, error), 0);
	assert_string_equal(backup, "");
	assert_true(kmip_wallet_present(path));
	assert_int_equal(kmip_wallet_write(path, w, true, backup, error), -EEXIST);
	assert_int_equal(kmip_wallet_read(path, back, error), 0);
	assert_true(back->generation == 3);
	/* A change: the file as it was goes to backup/ first. */
	back->keys[0].state = MEK_STATE_RETIRED;
	assert_int_equal(kmip_wallet_write(path, back, false, backup, error), 0);
	assert_non_null(strstr(backup, "/backup/kmip-"));
	assert_int_equal(access(backup, R_OK), 0);
	assert_int_equal(kmip_wallet_read(path, back, error), 0);
	assert_true(back->generation == 4);

	/* Writable by others: refused before a byte is parsed. */
	char file[PATH_MAX];
	path_join(file, path, KMIP_WALLET_FILE);
	assert_int_equal(chmod(file, 0622), 0);
	assert_int_equal(kmip_wallet_read(path, back, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES));
	assert_non_null(strstr(error, file));
	assert_int_equal(chmod(file, 0600), 0);
	/* A link in place of the file is not followed. */
	path_join(link_dir, dir, "linked");
	assert_int_equal(mkdir(link_dir, 0700), 0);
	char link_file[PATH_MAX];
	path_join(link_file, link_dir, KMIP_WALLET_FILE);
	assert_int_equal(symlink(file, link_file), 0);
	assert_true(kmip_wallet_read(link_dir, back, error) < 0);
	/* A TLS wallet directory open to others is refused as well. */
	assert_int_equal(chmod(tls_dir, 0777), 0);
	assert_int_equal(kmip_wallet_read(path, back, error),
			 KEYSTORE_ERROR(KEYSTORE_ERR_UNSAFE_MODES));
	assert_non_null(strstr(error, tls_dir));
	assert_int_equal(chmod(tls_dir, 0700), 0);
	/* Damage names the newest backup. */
	size_t len;
	uint8_t *bytes = read_whole(file, &len);
	bytes[40] ^= 0x20;
	write_whole(file, bytes, len, 0600);
	free(bytes);
	assert_int_equal(kmip_wallet_read(path, back, error), KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED));
	assert_non_null(strstr(error, "newest backup:"));
	assert_non_null(strstr(error, "backup/kmip-"));
	scratch_dir_remove(dir);
	free(w);
	free(back);
}

static void test_servers_parse(void **state)
{
	struct kmip_server servers[KMIP_MAX_SERVERS];
	char why[KMIP_WHY_SIZE], text[256];
	size_t count;

	(void)state;
	assert_int_equal(kmip_servers_parse("kms1.example,10.0.0.2:7000,[fe80::1]", servers, &count,
					    why), 0);
	assert_int_equal(count, 3);
	assert_string_equal(servers[0].port, "5696");
	assert_string_equal(servers[1].host, "10.0.0.2");
	assert_string_equal(servers[2].host, "fe80::1");
	assert_int_equal(kmip_servers_format(servers, count, text, sizeof(text)), 0);
	assert_string_equal(text, "kms1.example:5696,10.0.0.2:7000,[fe80::1]:5696");
	const char *bad[] = { "", "a,,b", "a:", "a:0", "a:65536", "a:12x", "::1:5696", "[::1",
			      "[::1]x", "-a:1", "a b:1", "a:1,b:1,c:1,d:1,e:1,f:1,g:1,h:1,i:1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (kmip_servers_parse(bad[i], servers, &count, why) != -EINVAL)
			fail_msg("accepted server list '%s'", bad[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_refused_lines),
		cmocka_unit_test(test_checksum_truncation_version),
		cmocka_unit_test(test_file_write_and_read),
		cmocka_unit_test(test_servers_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
