/*
 * The parser and encoder of hsm.wallet (keystore/hsm_wallet.c, docs/WALLET.md "HSM wallets"):
 * a file as written parses to its identity, keys and token objects and is written back byte
 * for byte; each way of being wrong is refused as damaged (or newer) with the line named,
 * never read as a wallet with fewer or other keys.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "keystore/hsm_wallet.h"

#define KEY_A "00112233445566778899aabbccddeeff"
#define KEY_B "ffeeddccbbaa99887766554433221100"
/* "tdefs-" + KEY_A, "tde", "root@host" and "nightly" in hex. */
#define LABEL_A "74646566732d3030313132323333343435353636373738383939616162626363646465656666"
#define TEXT_TDE "746465"
#define TEXT_CREATOR "726f6f7440686f7374"
#define TEXT_TAG "6e696768746c79"

static const char good[] =
	"tdefs-hsm-wallet 1\n"
	"wallet-id 0102030405060708090a0b0c0d0e0f10\n"
	"container default\n"
	"generation 7\n"
	"written 1700000000\n"
	"module /usr/lib/softhsm/libsofthsm2.so\n"
	"token-label " TEXT_TDE "\n"
	"token-serial -\n"
	"key " KEY_A " RETIRED LOCAL 1600000000 1600000001 1 " KEY_A " " LABEL_A
	" default " TEXT_TAG " " TEXT_CREATOR "\n"
	"key " KEY_B " ACTIVE LOCAL 1700000000 1700000000 0 0a0b " TEXT_TDE " default - -\n"
	"end\n";

static int parse_text(const char *text, struct hsm_wallet *wallet, char why[WALLET_WHY_SIZE])
{
	return hsm_wallet_parse((const uint8_t *)text, strlen(text), wallet, why);
}

static void test_parse_and_write_back(void **state)
{
	struct hsm_wallet wallet;
	char why[WALLET_WHY_SIZE];
	uint8_t id[KEY_ID_SIZE], expected[KEY_ID_SIZE];
	char *text;
	size_t len;

	(void)state;
	assert_int_equal(parse_text(good, &wallet, why), 0);
	assert_string_equal(wallet.identity.module, "/usr/lib/softhsm/libsofthsm2.so");
	assert_string_equal(wallet.identity.token_label, "tde");
	assert_string_equal(wallet.identity.token_serial, "");
	assert_int_equal(wallet.generation, 7);
	assert_int_equal(wallet.write_time, 1700000000);
	assert_int_equal(keyring_count(wallet.ring), 2);
	assert_int_equal(wallet.object_count, 2);
	assert_int_equal(keyring_generation(wallet.ring), 7);
	assert_int_equal(keyring_source_kind(wallet.ring), WALLET_KIND_HSM);
	assert_string_equal(keyring_record(wallet.ring, 0)->tag, "nightly");
	assert_string_equal(keyring_record(wallet.ring, 0)->creator, "root@host");
	assert_true(keyring_record(wallet.ring, 0)->backed_up);
	assert_int_equal(keyring_record(wallet.ring, 0)->state, MEK_STATE_RETIRED);
	assert_string_equal(wallet.objects[0].label, "tdefs-" KEY_A);
	assert_int_equal(wallet.objects[1].cka_id_len, 2);
	assert_int_equal(wallet.objects[1].cka_id[0], 0x0a);
	/* Every key is on the token: the ring has no bytes of any of them. */
	for (size_t i = 0; i < keyring_count(wallet.ring); i++) {
		assert_true(keyring_record(wallet.ring, i)->on_token);
		assert_null(keyring_find(wallet.ring, keyring_record(wallet.ring, i)->id));
		assert_true(keyring_holds(wallet.ring, keyring_record(wallet.ring, i)->id));
	}
	assert_int_equal(keyring_active(wallet.ring, id, NULL), 0);
	assert_int_equal(key_id_parse(KEY_B, expected), 0);
	assert_memory_equal(id, expected, KEY_ID_SIZE);
	assert_int_equal(hsm_wallet_encode(&wallet.identity, wallet.ring, wallet.objects,
					   wallet.object_count, wallet.write_time, &text, &len),
			 0);
	assert_int_equal(len, strlen(good));
	assert_memory_equal(text, good, len);
	free(text);
	hsm_wallet_release(&wallet);
}

/* good with the first occurrence of from replaced by to. */
static char *edited(const char *from, const char *to)
{
	const char *at = strstr(good, from);
	char *out;

	assert_non_null(at);
	out = malloc(sizeof(good) + strlen(to));
	assert_non_null(out);
	memcpy(out, good, (size_t)(at - good));
	strcpy(out + (at - good), to);
	strcat(out, at + strlen(from));
	return out;
}

static void refused(const char *from, const char *to, int expected, const char *words)
{
	struct hsm_wallet wallet;
	char why[WALLET_WHY_SIZE] = "";
	char *text = edited(from, to);

	assert_int_equal(parse_text(text, &wallet, why), expected);
	if (!strstr(why, words))
		fail_msg("'%s' -> '%s': reason '%s' lacks '%s'", from, to, why, words);
	assert_null(wallet.ring);
	free(text);
}

static void test_refusals(void **state)
{
	const int damaged = KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED);

	(void)state;
	refused("end\n", "", damaged, "ends before its end line");
	refused("end\n", "end", damaged, "no newline");
	refused("end\n", "end\nkey", damaged, "bytes after the end line");
	refused("tdefs-hsm-wallet 1", "tdefs-hsm-wallet 2", KEYSTORE_ERROR(KEYSTORE_ERR_NEWER_FORMAT),
		"newer");
	refused("tdefs-hsm-wallet 1", "tdefs-hsm-wallet 01", damaged, "bad version");
	refused("tdefs-hsm-wallet 1", "tdefs-wallet 1", damaged, "line 1");
	refused("generation 7", "generation 07", damaged, "bad generation");
	refused("generation 7", "generation 18446744073709551616", damaged, "bad generation");
	refused("generation 7", "generation -7", damaged, "bad generation");
	refused("written 1700000000", "written 9223372036854775808", damaged, "bad write time");
	refused("wallet-id 0102", "wallet-id 0A02", damaged, "wallet ID");
	refused("container default\n", "container bad/name\n", damaged, "container");
	refused("container default\ngeneration 7\n", "generation 7\ncontainer default\n", damaged,
		"expected 'container VALUE'");
	refused("module /usr", "module usr", damaged, "absolute path");
	refused("token-label " TEXT_TDE, "token-label -", damaged, "token label");
	refused("token-label " TEXT_TDE, "token-label 20" TEXT_TDE, damaged, "no space at");
	refused("token-serial -", "token-serial 01", damaged, "token serial");
	refused(" ACTIVE ", " ACTIVE  ", damaged, "12 fields");
	refused(" ACTIVE ", " active ", damaged, "unknown key state");
	refused(" ACTIVE LOCAL", " ACTIVE IMPORTED", damaged, "origin");
	refused(" RETIRED ", " ACTIVE ", damaged, "second ACTIVE");
	refused("key " KEY_B, "key " KEY_A, damaged, "listed twice");
	refused("0 0a0b", "2 0a0b", damaged, "backed-up");
	refused("0 0a0b", "0 0a0", damaged, "CKA_ID");
	refused(" default - -\n", " default 0 -\n", damaged, "bad tag");
	refused(" default - -\n", " default - 0a\n", damaged, "bad creator");
	refused("module /usr/lib", "module /usr/\x01lib", damaged, "not printable");
}

static void test_size_limits(void **state)
{
	struct hsm_wallet wallet;
	char why[WALLET_WHY_SIZE];
	size_t long_len = HSM_WALLET_LINE_MAX + 8;
	char *text = malloc(sizeof(good) + long_len);

	(void)state;
	assert_non_null(text);
	/* A line longer than any the encoder writes. */
	strcpy(text, "tdefs-hsm-wallet 1\nwallet-id ");
	memset(text + strlen(text), 'a', long_len);
	text[29 + long_len] = '\0';
	strcat(text, "\nend\n");
	assert_int_equal(parse_text(text, &wallet, why), KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED));
	assert_non_null(strstr(why, "line 2: line too long"));
	free(text);
	/* A length past the largest wallet is refused before a byte is parsed. */
	assert_int_equal(hsm_wallet_parse((const uint8_t *)good, HSM_WALLET_MAX_SIZE + 1, &wallet,
					  why),
			 KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED));
	assert_int_equal(hsm_wallet_parse((const uint8_t *)good, 0, &wallet, why),
			 KEYSTORE_ERROR(KEYSTORE_ERR_DAMAGED));
}

/* The encoder writes only what the parser reads back: no key without its token object. */
static void test_encode_refuses(void **state)
{
	struct hsm_wallet wallet;
	struct hsm_wallet_identity identity;
	char why[WALLET_WHY_SIZE];
	char *text = NULL;
	size_t len;

	(void)state;
	assert_int_equal(parse_text(good, &wallet, why), 0);
	assert_int_equal(hsm_wallet_encode(&wallet.identity, wallet.ring, wallet.objects, 1,
					   wallet.write_time, &text, &len),
			 -EINVAL);
	identity = wallet.identity;
	strcpy(identity.module, "relative.so");
	assert_int_equal(hsm_wallet_encode(&identity, wallet.ring, wallet.objects,
					   wallet.object_count, wallet.write_time, &text, &len),
			 -EINVAL);
	assert_null(text);
	hsm_wallet_release(&wallet);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_and_write_back),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_size_limits),
		cmocka_unit_test(test_encode_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
