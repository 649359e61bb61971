/*
 * test_helpers: what the keystore tests share: a scratch directory per test, whole-file reads
 * and writes, passwords from string literals, and key-set comparisons.
 */
#ifndef TDEFS_TEST_KEYSTORE_HELPERS_H
#define TDEFS_TEST_KEYSTORE_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keystore/wallet.h"
#include "keystore/wallet_internal.h" /* the tests drive the layers under the sessions too */

/* The cost every test wallet uses: fast, and still a real scrypt run. */
#define TEST_COST ((struct scrypt_cost){ .log2_n = 10, .r = 1, .p = 1 })

/* A fresh directory under $TMPDIR (or /tmp); path has room for PATH_MAX. */
void scratch_dir_make(char path[PATH_MAX]);
void scratch_dir_remove(const char *path);
void path_join(char out[PATH_MAX], const char *dir, const char *name);

/* Whole files; read_whole aborts the test when the file cannot be read. */
uint8_t *read_whole(const char *path, size_t *len);
void write_whole(const char *path, const uint8_t *data, size_t len, unsigned mode);

struct secret *secret_from(const char *text);

/*
 * Make the test keystore keep this host's secret in root/host-secret/ ($TDEFS_TEST_HOST_SECRET_DIR),
 * so tests never touch /var/lib/tdefs. With fill_byte >= 0 the secret is written there at once,
 * HOST_SECRET_SIZE bytes of that value (a known secret, for seeds and known answers); else it is
 * made by the first local auto-login wallet written.
 */
void host_secret_dir_use(const char *root, int fill_byte);

/* Number of directory entries whose name starts with prefix. */
size_t count_entries(const char *dir, const char *prefix);

/* Create a wallet with the test cost; password NULL makes it auto-login only. */
void create_wallet(const char *dir, const char *password, bool auto_login, bool local);

/* Open one wallet file and return its ring (test fails on error). */
struct keyring *read_keys(const char *path, enum wallet_kind kind, const char *password);

/* True when both rings hold the same key IDs with the same MEKs, in the same order. */
bool same_keys(const struct keyring *a, const struct keyring *b);

#endif
