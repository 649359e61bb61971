/*
 * Key IDs in text: the one stable form (32 lowercase hexadecimal digits) that tdekey prints,
 * the daemon logs and the backing directory's tools accept. Parsing also takes uppercase,
 * because people paste IDs from places that change case; output is always lowercase.
 */
#include "keystore/keystore.h"

#include <errno.h>
#include <string.h>

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void key_id_format(const uint8_t id[KEY_ID_SIZE], char out[KEY_ID_TEXT_SIZE])
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < KEY_ID_SIZE; i++) {
		out[2 * i] = digits[id[i] >> 4];
		out[2 * i + 1] = digits[id[i] & 0xf];
	}
	out[2 * KEY_ID_SIZE] = '\0';
}

int key_id_parse(const char *text, uint8_t id[KEY_ID_SIZE])
{
	uint8_t parsed[KEY_ID_SIZE];

	if (!text || strlen(text) != 2 * KEY_ID_SIZE)
		return -EINVAL;
	for (size_t i = 0; i < KEY_ID_SIZE; i++) {
		int high = hex_value(text[2 * i]);
		int low = hex_value(text[2 * i + 1]);

		if (high < 0 || low < 0)
			return -EINVAL;
		parsed[i] = (uint8_t)(high << 4 | low);
	}
	/* Only a fully valid ID reaches the caller's buffer. */
	memcpy(id, parsed, KEY_ID_SIZE);
	return 0;
}
