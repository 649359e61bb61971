/*
 * hsm_wallet: the file hsm.wallet of an HSM wallet directory (docs/WALLET.md, "HSM wallets").
 * It holds no key material: the wallet's identity, the PKCS#11 module and token that hold the
 * keys, and for each master key its metadata and the token object it is (CKA_ID and
 * CKA_LABEL). A line-oriented text file so that an operator can read what it points at; the
 * parser takes nothing on trust: fixed line order, bounded lengths, every field checked, the
 * file closed by an "end" line so that a truncated file is refused.
 *
 * Internal to the keystore (kind_hsm.c and the tests, fuzz_hsm_wallet.c).
 */
#ifndef TDEFS_HSM_WALLET_H
#define TDEFS_HSM_WALLET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keystore/wallet_format.h"
#include "keystore/wallet_internal.h"

#define HSM_WALLET_MAGIC "tdefs-hsm-wallet"
#define HSM_WALLET_VERSION 1
#define HSM_MODULE_PATH_MAX 512
#define HSM_TOKEN_LABEL_MAX 32	/* CK_TOKEN_INFO.label */
#define HSM_TOKEN_SERIAL_MAX 16 /* CK_TOKEN_INFO.serialNumber */
#define HSM_CKA_ID_MAX 64
#define HSM_CKA_LABEL_MAX 64
/* The longest line: a key line with every field at its limit, hex doubling the text ones. */
#define HSM_WALLET_LINE_MAX 1024
/* The reader of wallet files takes no more; a ring whose text would be longer is not written. */
#define HSM_WALLET_MAX_SIZE ((size_t)WALLET_MAX_FILE_SIZE)

/* Which token object a master key is. */
struct hsm_key_object {
	uint8_t key_id[KEY_ID_SIZE];
	uint8_t cka_id[HSM_CKA_ID_MAX];
	size_t cka_id_len;
	char label[HSM_CKA_LABEL_MAX + 1];
};

/*
 * A wallet directory the HSM wallet also takes keys from: the source of a migration, whose
 * keys stay usable until every header is rewrapped (retired), or after a reverse migration the
 * software wallet whose key is the active one (active).
 */
#define HSM_MAX_LINKS 4
struct hsm_link {
	char path[HSM_MODULE_PATH_MAX + 1];
	bool active;
};

struct hsm_wallet_identity {
	char module[HSM_MODULE_PATH_MAX + 1];	     /* absolute path of the PKCS#11 module */
	char token_label[HSM_TOKEN_LABEL_MAX + 1];   /* without the padding spaces */
	char token_serial[HSM_TOKEN_SERIAL_MAX + 1]; /* "" when any token of the label will do */
	struct hsm_link links[HSM_MAX_LINKS];
	size_t link_count;
};

struct hsm_wallet {
	struct hsm_wallet_identity identity;
	uint8_t wallet_id[KEY_ID_SIZE];
	uint64_t generation;
	int64_t write_time;
	struct keyring *ring;		/* the keys' metadata, each record on_token */
	struct hsm_key_object *objects; /* one per record of ring, in its order */
	size_t object_count;
};

/*
 * Parse a whole file. On success *wallet holds a new ring (its source kind HSM) and the
 * objects; release with hsm_wallet_release(). KEYSTORE_ERR_DAMAGED with the reason in why
 * (naming the line), KEYSTORE_ERR_NEWER_FORMAT for a later version, -ENOMEM.
 */
int hsm_wallet_parse(const uint8_t *data, size_t len, struct hsm_wallet *wallet,
		     char why[WALLET_WHY_SIZE]);
void hsm_wallet_release(struct hsm_wallet *wallet);

/*
 * Encode the ring's own keys with the identity (keys marked linked are their wallets' to
 * write); objects gives each key's token object (looked up by key ID; a key without one is
 * -EINVAL). *out is malloc'ed text (no secret in it).
 */
int hsm_wallet_encode(const struct hsm_wallet_identity *identity, const struct keyring *ring,
		      const struct hsm_key_object *objects, size_t object_count, int64_t write_time,
		      char **out, size_t *out_len);

/* The names tdefs gives a key it makes: CKA_ID = the key ID, CKA_LABEL = "tdefs-" + hex. */
void hsm_key_object_for(const uint8_t key_id[KEY_ID_SIZE], struct hsm_key_object *object);

/* An identity a file may hold: absolute module path, label and serial printable. */
int hsm_identity_check(const struct hsm_wallet_identity *identity, char why[WALLET_WHY_SIZE]);

/*
 * Connect to the token of identity (kind_hsm.c): the module checked and loaded through
 * p11-kit, the token found by label (and serial), AES-GCM and AES key generation checked, the
 * PIN logged in. objects are the keys it is to serve. One reference in *out.
 */
struct keystore_token;
struct keystore_token_ops;
int hsm_token_open(const struct hsm_wallet_identity *identity, const struct secret *pin,
		   const struct hsm_key_object *objects, size_t object_count,
		   struct keystore_token **out, char error[KEYSTORE_ERROR_SIZE]);
const struct keystore_token_ops *hsm_token_ops_get(void);
/* The links the token's wallet names: written with the ring's keys by the next commit. */
int hsm_token_set_links(struct keystore_token *token, const struct hsm_link *links, size_t count);
void hsm_token_links(struct keystore_token *token, struct hsm_link links[HSM_MAX_LINKS],
		     size_t *count);

#endif
