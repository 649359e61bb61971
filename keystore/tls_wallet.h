/*
 * tls_wallet: the TLS wallet, a directory holding the client key and certificate and the
 * trusted CA certificates that tdefs will present to and check a key server with
 * (docs/WALLET.md, "TLS wallet"). Files:
 *
 *   tls.p12             PKCS#12 under the wallet password (PBKDF2-HMAC-SHA256, AES-256-CBC,
 *                       SHA-256 MAC): what openssl pkcs12 and keytool read
 *   tls-autologin.p12   the same content as PKCS#12 under the empty password: opens without a
 *                       password, protected by its mode (0600) and strict modes, as
 *                       autologin.wallet is
 *   backup/             tls-<time>-g<N>.wallet, tls-autologin-<time>-g<N>.wallet: the files as
 *                       they were before each change
 *   wallet.lock         held while a change is written
 *
 * The primary, the file changes are made to, is tls.p12 when it exists, else tls-autologin.p12;
 * the auto-login file, when present, is rewritten from the primary by every change. Errors are
 * keystore.h codes (KEYSTORE_ERR_WRONG_PASSWORD, _DAMAGED, _UNSAFE_MODES, _KEY_MISMATCH,
 * _NO_SUCH_KEY) or -errno (-ENOENT: no TLS wallet, -EEXIST: one is already there), with a
 * one-line message in error.
 */
#ifndef TDEFS_TLS_WALLET_H
#define TDEFS_TLS_WALLET_H

#include <limits.h>
#include <stdbool.h>

#include "crypto/tls.h"
#include "keystore/keystore.h"
#include "keystore/wallet.h"

#define TLS_WALLET_FILE "tls.p12"
#define TLS_WALLET_AUTOLOGIN_FILE "tls-autologin.p12"

struct tls_wallet; /* an open TLS wallet: its files, its content, the lock for a change */

/*
 * Create the wallet in dir (made 0700 when missing). password NULL: tls-autologin.p12 only
 * (auto_login must be set); else tls.p12, and with auto_login its auto-login copy.
 */
int tls_wallet_create(const char *dir, const struct secret *password, bool auto_login,
		      char error[KEYSTORE_ERROR_SIZE]);

/*
 * Open dir. For a change (for_change) the lock is taken and the primary read, with the
 * password from source when it is tls.p12. For reading the auto-login file is read unless
 * source->explicit names a password source, as tdekey keys does.
 */
int tls_wallet_open(const char *dir, bool for_change, const struct password_source *source,
		    struct tls_wallet **out, char error[KEYSTORE_ERROR_SIZE]);
void tls_wallet_close(struct tls_wallet *wallet);

/* What the wallet holds; changes go through the functions below. */
const struct tls_bundle *tls_wallet_content(const struct tls_wallet *wallet);
/* The file that was read ("DIR/tls.p12"), and whether an auto-login copy is kept. */
const char *tls_wallet_path(const struct tls_wallet *wallet);
bool tls_wallet_has_autologin(const struct tls_wallet *wallet);

/* A new client key (and, with a certificate, the identity): -EEXIST when a certificate is there. */
int tls_wallet_set_key(struct tls_wallet *wallet, struct tls_key *key, struct tls_cert *cert,
		       char error[KEYSTORE_ERROR_SIZE]);
/* The client certificate for the wallet's key: KEY_MISMATCH when it is another key's. */
int tls_wallet_set_cert(struct tls_wallet *wallet, const struct tls_cert *cert, const char *source,
			char error[KEYSTORE_ERROR_SIZE]);
/* Trust cert (a copy); -EEXIST when a certificate with its fingerprint is trusted already. */
int tls_wallet_trust(struct tls_wallet *wallet, const struct tls_cert *cert,
		     char error[KEYSTORE_ERROR_SIZE]);
/* Remove the trusted certificates whose subject or SHA-256 fingerprint is match; NO_SUCH_KEY. */
int tls_wallet_remove_trusted(struct tls_wallet *wallet, const char *match, size_t *removed,
			      char error[KEYSTORE_ERROR_SIZE]);
/* Remove the client certificate and its key; NO_SUCH_KEY when there is none. */
int tls_wallet_remove_identity(struct tls_wallet *wallet, char error[KEYSTORE_ERROR_SIZE]);

/*
 * Write the change: a backup of each present file first (backup names the first one), then the
 * primary, then the auto-login copy, each crash-safe. The lock is kept until close.
 */
int tls_wallet_commit(struct tls_wallet *wallet, char backup[PATH_MAX],
		      char error[KEYSTORE_ERROR_SIZE]);

/* "AB:CD:..." or "abcd..." against a fingerprint as tls_cert_info prints it, case ignored. */
bool tls_fingerprint_matches(const char *given, const char *fingerprint);

#endif
