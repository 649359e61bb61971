/*
 * header_internal: what fs/header.c and fs/header_keyring.c share and nothing else includes.
 * A new header is built the same way whatever seals it (MEK bytes through header_seal(), a
 * keyring's key through header_seal_keyring()); the steps live once in fs/header.c and each
 * kind of key passes its own seal. Kept out of fs/format.h so that the format's callers see
 * only the functions for one kind of key.
 */
#ifndef TDEFS_HEADER_INTERNAL_H
#define TDEFS_HEADER_INTERNAL_H

#include "fs/format.h"

/* Seals one copy under key (MEK bytes or a struct keyring, as the caller knows). */
typedef int header_seal_fn(struct file_header *header, const void *key,
			   const uint8_t key_id[MASTER_KEY_ID_SIZE], const uint8_t *deks,
			   unsigned count);

/* header_create_keyring() with seal in place of the keyring's. */
int header_create_sealed(struct file_header *header, header_seal_fn *seal, const void *key,
			 const uint8_t key_id[MASTER_KEY_ID_SIZE], const uint8_t dek[DEK_SIZE]);
/* header_build_image_keyring() with seal in place of the keyring's. */
int header_build_image_sealed(struct file_header *header, header_seal_fn *seal, const void *key,
			      const uint8_t dek[DEK_SIZE], uint8_t image[TDEFS_HEADER_SIZE]);

#endif
