/*
 * Unit tests for the JSON string escaper (util/json_text.c) that every --json output uses:
 * fixed cases (quotes, backslashes, control characters, the edges of UTF-8: overlongs,
 * surrogates, U+10FFFF and beyond, truncated sequences), and every string of one and two bytes
 * and many random ones checked against a decoder written here from RFC 8259 and RFC 3629: the
 * output is valid UTF-8 JSON with nothing unescaped that must be, and reading \u00XX back as
 * the byte XX gives the input again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/json_text.h"

/* The escaper's output for text, malloc'd. */
static char *escaped(const char *text)
{
	char *buffer = NULL;
	size_t length = 0;
	FILE *out = open_memstream(&buffer, &length);

	assert_non_null(out);
	json_write_string(out, text);
	assert_int_equal(fclose(out), 0);
	return buffer;
}

static void expect_escaped(const char *text, const char *expected)
{
	char *out = escaped(text);

	assert_string_equal(out, expected);
	free(out);
}

/* The code point of the UTF-8 sequence at p (RFC 3629), its length in *length; -1 if invalid. */
static long decode_utf8(const unsigned char *p, size_t *length)
{
	long value, minimum;
	size_t count;

	if (p[0] < 0x80) {
		*length = 1;
		return p[0];
	}
	if ((p[0] & 0xe0) == 0xc0) {
		count = 2, value = p[0] & 0x1f, minimum = 0x80;
	} else if ((p[0] & 0xf0) == 0xe0) {
		count = 3, value = p[0] & 0x0f, minimum = 0x800;
	} else if ((p[0] & 0xf8) == 0xf0) {
		count = 4, value = p[0] & 0x07, minimum = 0x10000;
	} else {
		return -1;
	}
	for (size_t i = 1; i < count; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return -1;
		value = (value << 6) | (p[i] & 0x3f);
	}
	if (value < minimum || value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff))
		return -1;
	*length = count;
	return value;
}

/*
 * Check that out is one JSON string literal in valid UTF-8 with every control character
 * escaped, and turn it back into bytes (\u00XX as the byte XX) in back, of size at least
 * strlen(out).
 */
static void decode_json_string(const char *out, char *back)
{
	const unsigned char *p = (const unsigned char *)out;
	size_t used = 0;

	assert_int_equal(*p, '"');
	p++;
	while (*p != '"') {
		size_t length = 0;

		assert_true(*p >= 0x20 && *p != 0x7f); /* the terminating NUL fails here too */
		if (*p == '\\') {
			unsigned value;

			if (p[1] == '"' || p[1] == '\\') {
				back[used++] = (char)p[1];
				p += 2;
				continue;
			}
			assert_int_equal(p[1], 'u');
			assert_int_equal(sscanf((const char *)p + 2, "%4x", &value), 1);
			assert_true(value < 0x100);
			back[used++] = (char)value;
			p += 6;
			continue;
		}
		assert_true(decode_utf8(p, &length) >= 0);
		memcpy(back + used, p, length);
		used += length;
		p += length;
	}
	assert_int_equal(p[1], '\0');
	back[used] = '\0';
}

static void check_round_trip(const char *text)
{
	char *out = escaped(text);
	char *back = malloc(strlen(out) + 1);

	assert_non_null(back);
	decode_json_string(out, back);
	assert_string_equal(back, text);
	free(back);
	free(out);
}

static void test_specials_are_escaped(void **state)
{
	expect_escaped("", "\"\"");
	expect_escaped("plain name.dat", "\"plain name.dat\"");
	expect_escaped("a\"b", "\"a\\\"b\"");
	expect_escaped("a\\b", "\"a\\\\b\"");
	expect_escaped("line\nbreak\ttab\r", "\"line\\u000abreak\\u0009tab\\u000d\"");
	expect_escaped("\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"");
	expect_escaped("x\", \"injected\": \"y", "\"x\\\", \\\"injected\\\": \\\"y\"");
	expect_escaped("/tmp/a/b", "\"/tmp/a/b\"");
}

static void test_valid_utf8_passes_through(void **state)
{
	expect_escaped("caf\xc3\xa9", "\"caf\xc3\xa9\"");             /* U+00E9 */
	expect_escaped("\xe2\x82\xac", "\"\xe2\x82\xac\"");           /* U+20AC */
	expect_escaped("\xed\x9f\xbf", "\"\xed\x9f\xbf\"");           /* U+D7FF, below surrogates */
	expect_escaped("\xee\x80\x80", "\"\xee\x80\x80\"");           /* U+E000, above them */
	expect_escaped("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"");   /* U+1F600 */
	expect_escaped("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\"");   /* U+10FFFF */
}

static void test_invalid_bytes_are_escaped_one_by_one(void **state)
{
	expect_escaped("\xff", "\"\\u00ff\"");
	expect_escaped("caf\xe9", "\"caf\\u00e9\"");                      /* Latin-1 */
	expect_escaped("\xc0\xaf", "\"\\u00c0\\u00af\"");                 /* overlong '/' */
	expect_escaped("\xe0\x80\xaf", "\"\\u00e0\\u0080\\u00af\"");      /* overlong */
	expect_escaped("\xed\xa0\x80", "\"\\u00ed\\u00a0\\u0080\"");      /* U+D800 */
	expect_escaped("\xf4\x90\x80\x80", "\"\\u00f4\\u0090\\u0080\\u0080\""); /* > U+10FFFF */
	expect_escaped("\xf5\x80", "\"\\u00f5\\u0080\"");
	expect_escaped("\xe2\x82", "\"\\u00e2\\u0082\"");                 /* truncated at the end */
	expect_escaped("\xe2\x82x", "\"\\u00e2\\u0082x\"");               /* truncated mid-string */
	expect_escaped("\x80\xc3\xa9", "\"\\u0080\xc3\xa9\"");            /* a stray continuation */
}

static void test_every_short_string_round_trips(void **state)
{
	char text[3] = { 0 };

	for (unsigned a = 1; a < 256; a++) {
		text[0] = (char)a;
		text[1] = '\0';
		check_round_trip(text);
		for (unsigned b = 1; b < 256; b++) {
			text[1] = (char)b;
			check_round_trip(text);
		}
	}
}

static void test_random_strings_round_trip(void **state)
{
	char text[9];

	srand(11);
	for (int i = 0; i < 200000; i++) {
		size_t length = (size_t)(rand() % 8) + 1;

		for (size_t j = 0; j < length; j++) {
			/* Mostly bytes that start or continue sequences, where the edge cases are. */
			int pick = rand() % 4;
			unsigned value = pick == 0 ? (unsigned)(rand() % 255 + 1)
					 : pick == 1 ? (unsigned)(0x80 + rand() % 64)
						     : (unsigned)(0xc0 + rand() % 64);

			text[j] = (char)value;
		}
		text[length] = '\0';
		check_round_trip(text);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_specials_are_escaped),
		cmocka_unit_test(test_valid_utf8_passes_through),
		cmocka_unit_test(test_invalid_bytes_are_escaped_one_by_one),
		cmocka_unit_test(test_every_short_string_round_trips),
		cmocka_unit_test(test_random_strings_round_trip),
	};
	return cmocka_run_group_tests_name("json_text", tests, NULL, NULL);
}
