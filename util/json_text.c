/*
 * The JSON string escaper of util/json_text.h. UTF-8 is checked as RFC 3629 defines it: no
 * overlong forms, no surrogates (U+D800-DFFF), nothing above U+10FFFF, no truncated sequence;
 * a byte that starts no valid sequence is escaped on its own and the scan goes on after it.
 */
#include "util/json_text.h"

#include <stddef.h>

/* Length of the valid UTF-8 sequence of two or more bytes at p, or 0. */
static size_t multibyte_length(const unsigned char *p)
{
	unsigned char lead = p[0], low = 0x80, high = 0xbf;
	size_t length;

	if (lead >= 0xc2 && lead <= 0xdf)
		length = 2;
	else if (lead >= 0xe0 && lead <= 0xef)
		length = 3;
	else if (lead >= 0xf0 && lead <= 0xf4)
		length = 4;
	else
		return 0; /* a continuation byte, an overlong lead (c0, c1) or beyond f4 */
	/* The second byte's range is what rules out overlongs, surrogates and > U+10FFFF. */
	if (lead == 0xe0)
		low = 0xa0;
	else if (lead == 0xed)
		high = 0x9f;
	else if (lead == 0xf0)
		low = 0x90;
	else if (lead == 0xf4)
		high = 0x8f;
	if (p[1] < low || p[1] > high)
		return 0;
	/* The terminating NUL is no continuation byte, so a truncated sequence stops here. */
	for (size_t i = 2; i < length; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return length;
}

void json_write_string(FILE *out, const char *text)
{
	const unsigned char *p = (const unsigned char *)text;

	fputc('"', out);
	while (*p) {
		size_t length;

		if (*p == '"' || *p == '\\') {
			fputc('\\', out);
			fputc(*p++, out);
		} else if (*p < 0x20 || *p == 0x7f) {
			fprintf(out, "\\u%04x", *p++);
		} else if (*p < 0x80) {
			fputc(*p++, out);
		} else if ((length = multibyte_length(p)) > 0) {
			fwrite(p, 1, length, out);
			p += length;
		} else {
			fprintf(out, "\\u%04x", *p++);
		}
	}
	fputc('"', out);
}
