/*
 * format_testing: what only the tests call in the on-disk format, kept out of fs/format.h so that
 * no daemon or tool file can reach it. The daemon and the tools always seal under a keyring
 * (header_seal_keyring() and friends, which know HSM keys) and always with a random nonce; the
 * known-answer tests and the test helper hold bare MEK bytes and need fixed nonces to compare
 * against independently computed vectors. Nothing outside tests/ includes this header; the
 * functions are defined in fs/header.c, next to the code they share.
 */
#ifndef TDEFS_FORMAT_TESTING_H
#define TDEFS_FORMAT_TESTING_H

#include <stdint.h>

#include "fs/format.h"

/* header_seal() with a caller-chosen nonce: for known-answer tests only, never for real files. */
int header_seal_with_nonce(struct file_header *header, const uint8_t mek[MASTER_KEY_SIZE],
			   const uint8_t key_id[MASTER_KEY_ID_SIZE], const uint8_t *deks,
			   unsigned count, const uint8_t nonce[GCM_NONCE_SIZE]);

/* header_create_keyring() and header_build_image_keyring() with MEK bytes (cipher suite 1). */
int header_create(struct file_header *header, const uint8_t mek[MASTER_KEY_SIZE],
		  const uint8_t key_id[MASTER_KEY_ID_SIZE], const uint8_t dek[DEK_SIZE]);
int header_build_image(struct file_header *header, const uint8_t mek[MASTER_KEY_SIZE],
		       const uint8_t dek[DEK_SIZE], uint8_t image[TDEFS_HEADER_SIZE]);

#endif
