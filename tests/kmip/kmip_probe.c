/*
 * tdefs-kmip-probe: the KMIP client (kmip/kmip.h) driven from a shell test against a real
 * server (tests/kmip/test_kmip_client.sh, PyKMIP). It opens a TLS wallet's auto-login file as
 * the daemon will, runs one operation, prints its result on one line, and on failure prints the
 * client's one-line reason and exits with a code per kind of failure, so the test can tell a
 * refused certificate from a refused operation. A fetched key is never printed: only its
 * SHA-256, which is what the test compares between two fetches.
 *
 * Usage: tdefs-kmip-probe SERVERS TLS_WALLET_DIR TIMEOUT_MS OPERATION [ARG [ARG]]
 *   create NAME | activate ID | locate NAME | get ID | revoke ID | destroy ID | connect
 * and the KMIP wallet (keystore/kmip_wallet.h) in a wallet directory DIR:
 *   wallet-create DIR (SERVERS, TLS_WALLET, TIMEOUT_MS go into it) | wallet-fetch DIR (one
 *   line per key: ID STATE SHA256) | wallet-rotate DIR | wallet-delete DIR KEY_ID
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "crypto/tls.h"
#include "keystore/kmip_wallet.h"
#include "keystore/tls_wallet.h"
#include "kmip/kmip.h"

enum {
	PROBE_OK = 0,
	PROBE_USAGE = 2,
	PROBE_CERT_EXPIRED = 3,
	PROBE_SERVER_NOT_TRUSTED = 4,
	PROBE_TLS_REFUSED = 5,
	PROBE_OPERATION_REFUSED = 6,
	PROBE_UNREACHABLE = 7,
	PROBE_MALFORMED = 8,
	PROBE_OTHER = 9,
};

static int exit_code(int ret)
{
	if (ret == KEYSTORE_ERROR(KEYSTORE_ERR_KEY_SERVER_UNREACHABLE))
		return PROBE_UNREACHABLE;
	if (ret == KEYSTORE_ERROR(KEYSTORE_ERR_KEY_SERVER_REFUSED))
		return PROBE_OPERATION_REFUSED;
	switch (ret) {
	case 0: return PROBE_OK;
	case -EKEYEXPIRED: return PROBE_CERT_EXPIRED;
	case -EPERM: return PROBE_SERVER_NOT_TRUSTED;
	case -EACCES: return PROBE_TLS_REFUSED;
	case -EREMOTEIO: return PROBE_OPERATION_REFUSED;
	case -ECONNREFUSED:
	case -ETIMEDOUT:
	case -EHOSTUNREACH:
	case -ENETUNREACH:
	case -ECONNRESET: return PROBE_UNREACHABLE;
	case -EBADMSG:
	case -EPROTO: return PROBE_MALFORMED;
	default: return PROBE_OTHER;
	}
}

static void print_digest(const uint8_t *key)
{
	uint8_t digest[SHA256_SIZE];

	if (crypto_sha256(key, KMIP_KEY_SIZE, digest) < 0)
		return;
	for (size_t i = 0; i < sizeof(digest); i++)
		printf("%02x", digest[i]);
}

/* The wallet operations; error gets the keystore's one-line message. */
static int run_wallet(char **argv, int argc, char error[KEYSTORE_ERROR_SIZE])
{
	const char *op = argv[4], *dir = argv[5];
	uint8_t id[KEY_ID_SIZE];
	char id_text[KEY_ID_TEXT_SIZE], backup[PATH_MAX];
	int ret;

	if (strcmp(op, "wallet-create") == 0) {
		struct kmip_create_options create = { .servers = argv[1], .tls_wallet = argv[2],
						      .container = "default",
						      .timeout_ms = atoi(argv[3]) };
		bool joined;
		ret = kmip_keystore_create(dir, &create, id, &joined, error);
	} else if (strcmp(op, "wallet-rotate") == 0) {
		ret = kmip_keystore_rotate(dir, id, backup, error);
	} else if (strcmp(op, "wallet-delete") == 0) {
		if (argc != 7 || key_id_parse(argv[6], id) < 0)
			return -EINVAL;
		return kmip_keystore_delete(dir, id, backup, error);
	} else {
		struct kmip_wallet *wallet = malloc(sizeof(*wallet));
		struct keyring *ring = NULL;
		if (!wallet)
			return -ENOMEM;
		ret = kmip_wallet_read(dir, wallet, error);
		if (ret == 0)
			ret = kmip_keystore_fetch(wallet, &ring, error);
		free(wallet);
		for (size_t i = 0; ret == 0 && i < keyring_count(ring); i++) {
			const struct mek_record *record = keyring_record(ring, i);
			key_id_format(record->id, id_text);
			printf("%s %s ", id_text, mek_state_name(record->state));
			print_digest(record->mek);
			printf("\n");
		}
		keyring_free(ring);
		return ret;
	}
	if (ret == 0) {
		key_id_format(id, id_text);
		printf("%s\n", id_text);
	}
	return ret;
}

static int run(struct kmip_client *client, const char *operation, const char *arg,
	       char why[KMIP_WHY_SIZE])
{
	char id[KMIP_ID_SIZE];
	size_t count;
	int ret;

	if (strcmp(operation, "connect") == 0) {
		ret = kmip_client_connect(client, why);
		if (ret == 0)
			printf("connected %s\n", kmip_client_server(client));
		return ret;
	}
	if (!arg)
		return -EINVAL;
	if (strcmp(operation, "create") == 0) {
		ret = kmip_create_aes256(client, arg, NULL, id, why);
		if (ret == 0)
			printf("%s\n", id);
	} else if (strcmp(operation, "activate") == 0) {
		ret = kmip_activate(client, arg, why);
	} else if (strcmp(operation, "locate") == 0) {
		ret = kmip_locate_name(client, arg, id, &count, why);
		if (ret == 0)
			printf("%zu %s\n", count, id);
	} else if (strcmp(operation, "get") == 0) {
		uint8_t *key = secure_alloc(KMIP_KEY_SIZE);
		uint8_t digest[SHA256_SIZE];
		if (!key)
			return -ENOMEM;
		ret = kmip_get_aes256(client, arg, key, why);
		if (ret == 0)
			ret = crypto_sha256(key, KMIP_KEY_SIZE, digest);
		if (ret == 0) {
			for (size_t i = 0; i < sizeof(digest); i++)
				printf("%02x", digest[i]);
			printf("\n");
		}
		secure_free(key);
	} else if (strcmp(operation, "state") == 0) {
		uint32_t state;
		int64_t activated;
		ret = kmip_get_state(client, arg, &state, NULL, &activated, why);
		if (ret == 0)
			printf("%s\n", kmip_state_name(state));
	} else if (strcmp(operation, "revoke") == 0) {
		ret = kmip_revoke(client, arg, KMIP_REVOKE_CESSATION, why);
	} else if (strcmp(operation, "destroy") == 0) {
		ret = kmip_destroy(client, arg, why);
	} else {
		return -EINVAL;
	}
	return ret;
}

int main(int argc, char **argv)
{
	struct kmip_server servers[KMIP_MAX_SERVERS];
	struct password_source source = { 0 };
	struct tls_wallet *wallet = NULL;
	struct kmip_client *client = NULL;
	char error[KEYSTORE_ERROR_SIZE] = "";
	char why[KMIP_WHY_SIZE] = "";
	size_t count;
	int ret;

	if (argc >= 6 && strncmp(argv[4], "wallet-", 7) == 0) {
		ret = run_wallet(argv, argc, error);
		if (ret < 0)
			fprintf(stderr, "tdefs-kmip-probe: %s\n", error[0] ? error : strerror(-ret));
		return exit_code(ret);
	}
	if (argc < 5 || argc > 6) {
		fprintf(stderr, "usage: tdefs-kmip-probe SERVERS TLS_WALLET TIMEOUT_MS OP [ARG]\n");
		return PROBE_USAGE;
	}
	ret = kmip_servers_parse(argv[1], servers, &count, why);
	if (ret < 0) {
		fprintf(stderr, "tdefs-kmip-probe: %s\n", why);
		return PROBE_USAGE;
	}
	ret = tls_wallet_open(argv[2], false, &source, &wallet, error);
	if (ret < 0) {
		fprintf(stderr, "tdefs-kmip-probe: %s\n", error);
		return PROBE_OTHER;
	}
	ret = kmip_client_new(servers, count, tls_wallet_content(wallet), atoi(argv[3]), &client);
	if (ret == 0)
		ret = run(client, argv[4], argc == 6 ? argv[5] : NULL, why);
	if (ret < 0)
		fprintf(stderr, "tdefs-kmip-probe: %s\n", why[0] ? why : strerror(-ret));
	kmip_client_free(client);
	tls_wallet_close(wallet);
	return exit_code(ret);
}
