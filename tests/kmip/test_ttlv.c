/*
 * Unit tests of the KMIP codec (kmip/ttlv.h) and messages (kmip/kmip.h): the primitive
 * encodings of the KMIP specification's TTLV examples, the requests and responses of the KMIP
 * test cases byte for byte (kmip_vectors.h), and malformed input: every truncation, lengths
 * that lie, non-zero padding, a boolean that is neither 0 nor 1, nesting past the bound, a
 * response to another operation, a second batch item, a wrapped key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>

#include <cmocka.h>

#include "kmip/kmip.h"
#include "kmip/ttlv.h"
#include "kmip_vectors.h"

#define TEST_TAG 0x420020 /* the tag of the specification's examples */

/* hex (no spaces) into a malloc'd buffer. */
static uint8_t *from_hex(const char *hex, size_t *len)
{
	size_t n = strlen(hex) / 2;
	uint8_t *out = malloc(n ? n : 1);

	assert_non_null(out);
	for (size_t i = 0; i < n; i++) {
		unsigned byte;
		assert_int_equal(sscanf(hex + 2 * i, "%2x", &byte), 1);
		out[i] = (uint8_t)byte;
	}
	*len = n;
	return out;
}

static void assert_bytes(const uint8_t *got, size_t got_len, const char *expected_hex)
{
	size_t len;
	uint8_t *expected = from_hex(expected_hex, &len);

	assert_int_equal(got_len, len);
	assert_memory_equal(got, expected, len);
	free(expected);
}

/* ---- the primitive encodings ---- */

struct primitive_case {
	const char *hex;
	void (*put)(struct ttlv_writer *w);
};

static void put_integer_8(struct ttlv_writer *w) { ttlv_put_integer(w, TEST_TAG, 8); }
static void put_long(struct ttlv_writer *w) { ttlv_put_long(w, TEST_TAG, 123456789000000000LL); }
static void put_enum_255(struct ttlv_writer *w) { ttlv_put_enum(w, TEST_TAG, 255); }
static void put_true(struct ttlv_writer *w) { ttlv_put_bool(w, TEST_TAG, true); }
static void put_hello(struct ttlv_writer *w) { ttlv_put_text(w, TEST_TAG, "Hello World", 11); }
static void put_bytes_123(struct ttlv_writer *w)
{
	static const uint8_t bytes[] = { 1, 2, 3 };
	ttlv_put_bytes(w, TEST_TAG, bytes, sizeof(bytes));
}
/* Friday, March 14, 2008, 11:56:40 GMT */
static void put_datetime(struct ttlv_writer *w) { ttlv_put_datetime(w, TEST_TAG, 1205495800); }
static void put_ten_days(struct ttlv_writer *w) { ttlv_put_interval(w, TEST_TAG, 864000); }
static void put_structure(struct ttlv_writer *w)
{
	ttlv_begin(w, TEST_TAG);
	ttlv_put_enum(w, 0x420004, 254);
	ttlv_put_integer(w, 0x420005, 255);
	ttlv_end(w);
}

static const struct primitive_case primitives[] = {
	{ "4200200200000004" "0000000800000000", put_integer_8 },
	{ "4200200300000008" "01b69b4ba5749200", put_long },
	{ "4200200500000004" "000000ff00000000", put_enum_255 },
	{ "4200200600000008" "0000000000000001", put_true },
	{ "420020070000000b" "48656c6c6f20576f726c640000000000", put_hello },
	{ "4200200800000003" "0102030000000000", put_bytes_123 },
	{ "4200200900000008" "0000000047da67f8", put_datetime },
	{ "4200200a00000004" "000d2f0000000000", put_ten_days },
	{ "4200200100000020" "42000405000000040000" "00fe00000000"
	  "42000502000000040000" "00ff00000000", put_structure },
};

static void test_primitive_encodings(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(primitives) / sizeof(primitives[0]); i++) {
		uint8_t buf[64];
		struct ttlv_writer w;
		size_t len;

		ttlv_writer_init(&w, buf, sizeof(buf));
		primitives[i].put(&w);
		assert_int_equal(ttlv_writer_finish(&w, &len), 0);
		assert_bytes(buf, len, primitives[i].hex);
		assert_int_equal(ttlv_validate(buf, len), 0);
	}
}

static void test_primitive_decodings(void **state)
{
	size_t len;
	struct ttlv_reader r, inside;
	struct ttlv_item item;
	int32_t integer;
	int64_t longer;
	uint32_t enumeration, interval;
	bool flag;
	char text[16];
	uint8_t *buf;

	(void)state;
	buf = from_hex(primitives[0].hex, &len);
	ttlv_reader_init(&r, buf, len);
	assert_int_equal(ttlv_expect(&r, TEST_TAG, TTLV_INTEGER, &item), 0);
	assert_int_equal(ttlv_get_integer(&item, &integer), 0);
	assert_int_equal(integer, 8);
	assert_int_equal(ttlv_next(&r, &item), 1);
	assert_int_equal(ttlv_get_long(&item, &longer), -EPROTO);
	free(buf);

	buf = from_hex(primitives[1].hex, &len);
	ttlv_reader_init(&r, buf, len);
	assert_int_equal(ttlv_next(&r, &item), 0);
	assert_int_equal(ttlv_get_long(&item, &longer), 0);
	assert_true(longer == 123456789000000000LL);
	free(buf);

	buf = from_hex(primitives[3].hex, &len);
	ttlv_reader_init(&r, buf, len);
	assert_int_equal(ttlv_next(&r, &item), 0);
	assert_int_equal(ttlv_get_bool(&item, &flag), 0);
	assert_true(flag);
	free(buf);

	buf = from_hex(primitives[4].hex, &len);
	ttlv_reader_init(&r, buf, len);
	assert_int_equal(ttlv_next(&r, &item), 0);
	assert_int_equal(ttlv_get_text(&item, text, sizeof(text)), 0);
	assert_string_equal(text, "Hello World");
	assert_int_equal(ttlv_get_text(&item, text, 11), -ENAMETOOLONG);
	free(buf);

	buf = from_hex(primitives[6].hex, &len);
	ttlv_reader_init(&r, buf, len);
	assert_int_equal(ttlv_next(&r, &item), 0);
	assert_int_equal(ttlv_get_datetime(&item, &longer), 0);
	assert_true(longer == 1205495800);
	free(buf);

	buf = from_hex(primitives[7].hex, &len);
	ttlv_reader_init(&r, buf, len);
	assert_int_equal(ttlv_next(&r, &item), 0);
	assert_int_equal(ttlv_get_interval(&item, &interval), 0);
	assert_int_equal(interval, 864000);
	free(buf);

	buf = from_hex(primitives[8].hex, &len);
	ttlv_reader_init(&r, buf, len);
	assert_int_equal(ttlv_next(&r, &item), 0);
	assert_int_equal(ttlv_enter(&item, &inside), 0);
	assert_int_equal(ttlv_expect(&inside, 0x420004, TTLV_ENUMERATION, &item), 0);
	assert_int_equal(ttlv_get_enum(&item, &enumeration), 0);
	assert_int_equal(enumeration, 254);
	assert_int_equal(ttlv_expect(&inside, 0x420005, TTLV_ENUMERATION, &item), -EPROTO);
	assert_int_equal(ttlv_next(&inside, &item), 1);
	free(buf);
}

/* ---- the writer's limits ---- */

static void test_writer_limits(void **state)
{
	uint8_t buf[256];
	struct ttlv_writer w;
	size_t len;

	(void)state;
	ttlv_writer_init(&w, buf, 15);
	ttlv_put_integer(&w, TEST_TAG, 1);
	assert_int_equal(ttlv_writer_finish(&w, &len), -ENOBUFS);

	ttlv_writer_init(&w, buf, sizeof(buf));
	ttlv_begin(&w, TEST_TAG);
	assert_int_equal(ttlv_writer_finish(&w, &len), -EINVAL);
	ttlv_end(&w);
	ttlv_end(&w);
	assert_int_equal(ttlv_writer_finish(&w, &len), -EINVAL);

	ttlv_writer_init(&w, buf, sizeof(buf));
	for (int i = 0; i <= TTLV_MAX_DEPTH; i++)
		ttlv_begin(&w, TEST_TAG);
	assert_int_equal(ttlv_writer_finish(&w, &len), -E2BIG);

	ttlv_writer_init(&w, buf, sizeof(buf));
	ttlv_put_integer(&w, 0x330020, 1); /* not a KMIP tag */
	assert_int_equal(ttlv_writer_finish(&w, &len), -EINVAL);
}

/* ---- the messages of the test cases ---- */

static void assert_request(const struct kmip_request *request, const char *expected_hex)
{
	uint8_t buf[1024];
	size_t len;

	assert_int_equal(kmip_encode_request(request, buf, sizeof(buf), &len), 0);
	assert_bytes(buf, len, expected_hex);
	assert_int_equal(kmip_encode_request(request, buf, len - 8, &len), -ENOBUFS);
}

static void test_requests(void **state)
{
	struct kmip_request create = {
		.version = { 1, 1 }, .operation = KMIP_OP_CREATE, .algorithm = KMIP_ALGORITHM_AES,
		.length_bits = 128, .usage_mask = KMIP_USAGE_ENCRYPT | KMIP_USAGE_DECRYPT,
	};
	struct kmip_request get = { .version = { 1, 1 }, .operation = KMIP_OP_GET,
				    .unique_id = "49a1ca88-6bea-4fb2-b450-7e58802c3038" };
	struct kmip_request destroy = { .version = { 1, 1 }, .operation = KMIP_OP_DESTROY,
					.unique_id = "fb4b5b9c-6188-4c63-8142-fe9c328129fc" };
	struct kmip_request locate = { .version = { 1, 1 }, .operation = KMIP_OP_LOCATE,
				       .name = "Key1" };
	struct kmip_request bad = { .version = { 1, 2 }, .operation = KMIP_OP_GET };
	uint8_t buf[1024];
	size_t len;

	(void)state;
	assert_request(&create, CREATE_REQUEST_hex);
	assert_request(&get, GET_REQUEST_hex);
	assert_request(&destroy, DESTROY_REQUEST_hex);
	assert_request(&locate, LOCATE_REQUEST_hex);

	assert_int_equal(kmip_encode_request(&bad, buf, sizeof(buf), &len), -EINVAL);
	bad.unique_id = "";
	assert_int_equal(kmip_encode_request(&bad, buf, sizeof(buf), &len), -EINVAL);
	bad.operation = KMIP_OP_LOCATE;
	assert_int_equal(kmip_encode_request(&bad, buf, sizeof(buf), &len), -EINVAL);
	bad.operation = (enum kmip_operation)0x02; /* Create Key Pair: not one tdefs sends */
	bad.unique_id = "1";
	assert_int_equal(kmip_encode_request(&bad, buf, sizeof(buf), &len), -EINVAL);
}

/* Requests tdefs sends that the test cases lack are checked as TTLV read back. */
static void test_request_round_trip(void **state)
{
	struct kmip_request revoke = { .version = { 1, 2 }, .operation = KMIP_OP_REVOKE,
				       .unique_id = "7",
				       .revocation_reason = KMIP_REVOKE_CESSATION };
	struct kmip_request create = {
		.version = { 1, 2 }, .operation = KMIP_OP_CREATE, .algorithm = KMIP_ALGORITHM_AES,
		.length_bits = 256, .usage_mask = KMIP_USAGE_ENCRYPT | KMIP_USAGE_DECRYPT,
		.name = "tdefs-0123",
	};
	uint8_t buf[1024];
	size_t len;
	struct ttlv_reader r, message, item_reader, payload_reader, inside;
	struct ttlv_item item, field;
	uint32_t value;
	char text[64];

	(void)state;
	assert_int_equal(kmip_encode_request(&revoke, buf, sizeof(buf), &len), 0);
	assert_int_equal(ttlv_validate(buf, len), 0);
	ttlv_reader_init(&r, buf, len);
	assert_int_equal(ttlv_expect(&r, KMIP_TAG_REQUEST_MESSAGE, TTLV_STRUCTURE, &item), 0);
	assert_int_equal(ttlv_enter(&item, &message), 0);
	assert_int_equal(ttlv_find(&message, KMIP_TAG_BATCH_ITEM, TTLV_STRUCTURE, &item), 0);
	assert_int_equal(ttlv_enter(&item, &item_reader), 0);
	assert_int_equal(ttlv_expect(&item_reader, KMIP_TAG_OPERATION, TTLV_ENUMERATION, &field),
			 0);
	assert_int_equal(ttlv_get_enum(&field, &value), 0);
	assert_int_equal(value, KMIP_OP_REVOKE);
	assert_int_equal(ttlv_expect(&item_reader, KMIP_TAG_REQUEST_PAYLOAD, TTLV_STRUCTURE,
				     &field), 0);
	assert_int_equal(ttlv_enter(&field, &payload_reader), 0);
	assert_int_equal(ttlv_expect(&payload_reader, KMIP_TAG_UNIQUE_IDENTIFIER,
				     TTLV_TEXT_STRING, &field), 0);
	assert_int_equal(ttlv_get_text(&field, text, sizeof(text)), 0);
	assert_string_equal(text, "7");
	assert_int_equal(ttlv_expect(&payload_reader, KMIP_TAG_REVOCATION_REASON, TTLV_STRUCTURE,
				     &field), 0);
	assert_int_equal(ttlv_enter(&field, &inside), 0);
	assert_int_equal(ttlv_expect(&inside, KMIP_TAG_REVOCATION_REASON_CODE, TTLV_ENUMERATION,
				     &field), 0);
	assert_int_equal(ttlv_get_enum(&field, &value), 0);
	assert_int_equal(value, KMIP_REVOKE_CESSATION);

	/* The Name attribute follows the three of the test case's Create. */
	assert_int_equal(kmip_encode_request(&create, buf, sizeof(buf), &len), 0);
	assert_int_equal(ttlv_validate(buf, len), 0);
	assert_non_null(memmem(buf, len, "Name", 4));
	assert_non_null(memmem(buf, len, "tdefs-0123", 10));
}

static uint8_t *vector(const char *hex, size_t *len)
{
	return from_hex(hex, len);
}

static void test_create_response(void **state)
{
	struct kmip_response response;
	size_t len, total;
	uint8_t *msg = vector(CREATE_RESPONSE_hex, &len);

	(void)state;
	assert_int_equal(kmip_response_size(msg, &total), 0);
	assert_int_equal(total, len);
	assert_int_equal(kmip_decode_response(msg, len, KMIP_OP_CREATE, &response), 0);
	assert_int_equal(response.version.major, 1);
	assert_int_equal(response.version.minor, 1);
	assert_true(response.time_stamp == 0x4f9a54e5);
	assert_int_equal(response.operation, KMIP_OP_CREATE);
	assert_int_equal(response.status, KMIP_STATUS_SUCCESS);
	assert_int_equal(response.object_type, KMIP_OBJECT_SYMMETRIC_KEY);
	assert_string_equal(response.unique_id, "fb4b5b9c-6188-4c63-8142-fe9c328129fc");
	/* An answer to another operation is refused. */
	assert_int_equal(kmip_decode_response(msg, len, KMIP_OP_GET, &response), -EPROTO);
	assert_string_equal(response.unique_id, "");
	free(msg);
}

static void test_get_response(void **state)
{
	static const uint8_t key[24] = { 0x73, 0x67, 0x57, 0x80, 0x51, 0x01, 0x2A, 0x6D,
					 0x13, 0x4A, 0x85, 0x5E, 0x25, 0xC8, 0xCD, 0x5E,
					 0x4C, 0xA1, 0x31, 0x45, 0x57, 0x29, 0xD3, 0xC8 };
	struct kmip_response response;
	size_t len;
	uint8_t *msg = vector(GET_RESPONSE_hex, &len);

	(void)state;
	assert_int_equal(kmip_decode_response(msg, len, KMIP_OP_GET, &response), 0);
	assert_int_equal(response.status, KMIP_STATUS_SUCCESS);
	assert_string_equal(response.unique_id, "49a1ca88-6bea-4fb2-b450-7e58802c3038");
	assert_int_equal(response.key_format, KMIP_KEY_FORMAT_RAW);
	assert_int_equal(response.key_algorithm, 2); /* Triple DES in the test case */
	assert_int_equal(response.key_length_bits, 168);
	assert_int_equal(response.key_len, sizeof(key));
	assert_memory_equal(response.key, key, sizeof(key));
	assert_true(response.key >= msg && response.key + response.key_len <= msg + len);
	free(msg);
}

static void test_locate_and_destroy_responses(void **state)
{
	struct kmip_response response;
	size_t len;
	uint8_t *msg = vector(LOCATE_RESPONSE_hex, &len);

	(void)state;
	assert_int_equal(kmip_decode_response(msg, len, KMIP_OP_LOCATE, &response), 0);
	assert_int_equal(response.located, 1);
	assert_string_equal(response.located_ids[0], "49a1ca88-6bea-4fb2-b450-7e58802c3038");
	free(msg);

	msg = vector(DESTROY_RESPONSE_hex, &len);
	assert_int_equal(kmip_decode_response(msg, len, KMIP_OP_DESTROY, &response), 0);
	assert_string_equal(response.unique_id, "fb4b5b9c-6188-4c63-8142-fe9c328129fc");
	free(msg);
}

/* A Get Attributes answer as PyKMIP gives it: State, a Name, the Activation Date, and one
 * attribute tdefs does not read. */
static size_t get_attributes_response(uint8_t *buf, size_t capacity, uint32_t state_value,
				      bool name_as_text)
{
	struct ttlv_writer w;
	size_t len = 0;

	ttlv_writer_init(&w, buf, capacity);
	ttlv_begin(&w, KMIP_TAG_RESPONSE_MESSAGE);
	ttlv_begin(&w, KMIP_TAG_RESPONSE_HEADER);
	ttlv_begin(&w, KMIP_TAG_PROTOCOL_VERSION);
	ttlv_put_integer(&w, KMIP_TAG_PROTOCOL_VERSION_MAJOR, 1);
	ttlv_put_integer(&w, KMIP_TAG_PROTOCOL_VERSION_MINOR, 2);
	ttlv_end(&w);
	ttlv_put_datetime(&w, KMIP_TAG_TIME_STAMP, 0x4f9a54e5);
	ttlv_put_integer(&w, KMIP_TAG_BATCH_COUNT, 1);
	ttlv_end(&w);
	ttlv_begin(&w, KMIP_TAG_BATCH_ITEM);
	ttlv_put_enum(&w, KMIP_TAG_OPERATION, KMIP_OP_GET_ATTRIBUTES);
	ttlv_put_enum(&w, KMIP_TAG_RESULT_STATUS, KMIP_STATUS_SUCCESS);
	ttlv_begin(&w, KMIP_TAG_RESPONSE_PAYLOAD);
	ttlv_put_text(&w, KMIP_TAG_UNIQUE_IDENTIFIER, "12", 2);
	ttlv_begin(&w, KMIP_TAG_ATTRIBUTE);
	ttlv_put_text(&w, KMIP_TAG_ATTRIBUTE_NAME, "Object Group", 12);
	ttlv_put_text(&w, KMIP_TAG_ATTRIBUTE_VALUE, "tdefs-g", 7);
	ttlv_end(&w);
	ttlv_begin(&w, KMIP_TAG_ATTRIBUTE);
	ttlv_put_text(&w, KMIP_TAG_ATTRIBUTE_NAME, "State", 5);
	ttlv_put_enum(&w, KMIP_TAG_ATTRIBUTE_VALUE, state_value);
	ttlv_end(&w);
	ttlv_begin(&w, KMIP_TAG_ATTRIBUTE);
	ttlv_put_text(&w, KMIP_TAG_ATTRIBUTE_NAME, "Name", 4);
	if (name_as_text) {
		ttlv_put_text(&w, KMIP_TAG_ATTRIBUTE_VALUE, "tdefs-g-1", 9);
	} else {
		ttlv_begin(&w, KMIP_TAG_ATTRIBUTE_VALUE);
		ttlv_put_text(&w, KMIP_TAG_NAME_VALUE, "tdefs-g-1", 9);
		ttlv_put_enum(&w, KMIP_TAG_NAME_TYPE, KMIP_NAME_UNINTERPRETED_TEXT);
		ttlv_end(&w);
	}
	ttlv_end(&w);
	ttlv_begin(&w, KMIP_TAG_ATTRIBUTE);
	ttlv_put_text(&w, KMIP_TAG_ATTRIBUTE_NAME, "Activation Date", 15);
	ttlv_put_datetime(&w, KMIP_TAG_ATTRIBUTE_VALUE, 1700000000);
	ttlv_end(&w);
	ttlv_end(&w);
	ttlv_end(&w);
	ttlv_end(&w);
	assert_int_equal(ttlv_writer_finish(&w, &len), 0);
	return len;
}

static void test_get_attributes(void **state)
{
	struct kmip_request request = { .version = { 1, 2 },
					.operation = KMIP_OP_GET_ATTRIBUTES,
					.unique_id = "12" };
	struct kmip_request create = { .version = { 1, 2 }, .operation = KMIP_OP_CREATE,
				       .algorithm = KMIP_ALGORITHM_AES, .length_bits = 256,
				       .usage_mask = KMIP_USAGE_ENCRYPT, .name = "tdefs-g-1",
				       .group = "tdefs-g" };
	struct kmip_request locate = { .version = { 1, 2 }, .operation = KMIP_OP_LOCATE,
				       .group = "tdefs-g" };
	struct kmip_response response;
	uint8_t buf[1024];
	size_t len;

	(void)state;
	assert_int_equal(kmip_encode_request(&request, buf, sizeof(buf), &len), 0);
	assert_int_equal(ttlv_validate(buf, len), 0);
	assert_non_null(memmem(buf, len, "Activation Date", 15));
	assert_int_equal(kmip_encode_request(&create, buf, sizeof(buf), &len), 0);
	assert_non_null(memmem(buf, len, "Object Group", 12));
	assert_int_equal(kmip_encode_request(&locate, buf, sizeof(buf), &len), 0);
	assert_non_null(memmem(buf, len, "Object Group", 12));
	assert_null(memmem(buf, len, "Name", 4));
	locate.group = "";
	assert_int_equal(kmip_encode_request(&locate, buf, sizeof(buf), &len), -EINVAL);

	len = get_attributes_response(buf, sizeof(buf), KMIP_STATE_DEACTIVATED, false);
	assert_int_equal(kmip_decode_response(buf, len, KMIP_OP_GET_ATTRIBUTES, &response), 0);
	assert_string_equal(response.unique_id, "12");
	assert_int_equal(response.state, KMIP_STATE_DEACTIVATED);
	assert_string_equal(response.name, "tdefs-g-1");
	assert_true(response.activation_date == 1700000000);
	assert_string_equal(kmip_state_name(response.state), "Deactivated");
	/* A State outside the table, a Name that is not a structure: not the answer asked for. */
	len = get_attributes_response(buf, sizeof(buf), 77, false);
	assert_int_equal(kmip_decode_response(buf, len, KMIP_OP_GET_ATTRIBUTES, &response),
			 -EPROTO);
	len = get_attributes_response(buf, sizeof(buf), KMIP_STATE_ACTIVE, true);
	assert_int_equal(kmip_decode_response(buf, len, KMIP_OP_GET_ATTRIBUTES, &response),
			 -EPROTO);
}

static void test_failure_response(void **state)
{
	struct kmip_response response;
	size_t len;
	uint8_t *msg = vector(FAILURE_RESPONSE_hex, &len);

	(void)state;
	assert_int_equal(kmip_decode_response(msg, len, KMIP_OP_GET, &response), 0);
	assert_int_equal(response.status, KMIP_STATUS_OPERATION_FAILED);
	assert_int_equal(response.reason, KMIP_REASON_INVALID_MESSAGE);
	assert_string_equal(kmip_reason_name(response.reason), "Invalid Message");
	assert_string_equal(response.message, "Default response. No operations supported.");
	assert_null(response.key);
	free(msg);
}

/* ---- malformed input ---- */

static void test_every_truncation_fails(void **state)
{
	const char *all[] = { CREATE_RESPONSE_hex, GET_RESPONSE_hex, LOCATE_RESPONSE_hex,
			      DESTROY_RESPONSE_hex, FAILURE_RESPONSE_hex };
	const enum kmip_operation ops[] = { KMIP_OP_CREATE, KMIP_OP_GET, KMIP_OP_LOCATE,
					    KMIP_OP_DESTROY, KMIP_OP_GET };

	(void)state;
	for (size_t v = 0; v < 5; v++) {
		size_t len;
		uint8_t *msg = vector(all[v], &len);
		for (size_t cut = 0; cut < len; cut++) {
			struct kmip_response response;
			/* A copy of exactly cut bytes, so ASan sees any read past them. */
			uint8_t *part = malloc(cut ? cut : 1);
			assert_non_null(part);
			memcpy(part, msg, cut);
			assert_true(kmip_decode_response(part, cut, ops[v], &response) < 0);
			assert_true(ttlv_validate(part, cut) < 0);
			free(part);
		}
		free(msg);
	}
}

/* Each byte of each length field set to every value that is not the right one fails or still
 * decodes within the buffer; none may read outside it (ASan build). */
static void test_lying_lengths(void **state)
{
	size_t len;
	uint8_t *msg = vector(GET_RESPONSE_hex, &len);
	struct kmip_response response;

	(void)state;
	/* The outer length one block too long, and pointing far past the end. */
	msg[7] += 8;
	assert_int_equal(kmip_decode_response(msg, len, KMIP_OP_GET, &response), -EBADMSG);
	msg[7] -= 8;
	msg[4] = 0xff;
	assert_int_equal(kmip_decode_response(msg, len, KMIP_OP_GET, &response), -EBADMSG);
	msg[4] = 0x00;
	/* Every length byte of every item, every value. */
	for (size_t at = 0; at + 8 <= len; at += 8) {
		for (unsigned b = 4; b < 8; b++) {
			uint8_t saved = msg[at + b];
			for (unsigned value = 0; value < 256; value++) {
				msg[at + b] = (uint8_t)value;
				(void)kmip_decode_response(msg, len, KMIP_OP_GET, &response);
			}
			msg[at + b] = saved;
		}
	}
	assert_int_equal(kmip_decode_response(msg, len, KMIP_OP_GET, &response), 0);
	free(msg);
}

static void test_bad_items(void **state)
{
	struct ttlv_reader r;
	struct ttlv_item item;
	size_t len;
	uint8_t *buf;

	(void)state;
	/* Padding not zero. */
	buf = from_hex("420020070000000b48656c6c6f20576f726c640000000001", &len);
	assert_int_equal(ttlv_validate(buf, len), -EBADMSG);
	free(buf);
	/* A boolean of 2. */
	buf = from_hex("42002006000000080000000000000002", &len);
	assert_int_equal(ttlv_validate(buf, len), -EBADMSG);
	free(buf);
	/* An integer of length 8, an unknown type, a tag outside KMIP's ranges. */
	buf = from_hex("42002002000000080000000800000000", &len);
	assert_int_equal(ttlv_validate(buf, len), -EBADMSG);
	free(buf);
	buf = from_hex("4200200b000000040000000800000000", &len);
	assert_int_equal(ttlv_validate(buf, len), -EBADMSG);
	free(buf);
	buf = from_hex("33002002000000040000000800000000", &len);
	assert_int_equal(ttlv_validate(buf, len), -EBADMSG);
	free(buf);
	/* A length near 2^32 must not wrap. */
	buf = from_hex("42002008fffffffc0000000000000000", &len);
	assert_int_equal(ttlv_validate(buf, len), -EBADMSG);
	free(buf);
	/* A structure whose length is not a multiple of 8. */
	buf = from_hex("420020010000000c4200200200000004", &len);
	assert_int_equal(ttlv_validate(buf, len), -EBADMSG);
	free(buf);
	/* A text string holding a NUL. */
	buf = from_hex("4200200700000003610062" "0000000000", &len);
	ttlv_reader_init(&r, buf, len);
	assert_int_equal(ttlv_next(&r, &item), 0);
	{
		char text[8];
		assert_int_equal(ttlv_get_text(&item, text, sizeof(text)), -EBADMSG);
	}
	free(buf);
	/* A failed reader stays failed. */
	buf = from_hex("4200200200000004000000080000000042", &len);
	ttlv_reader_init(&r, buf, len);
	assert_int_equal(ttlv_next(&r, &item), 0);
	assert_int_equal(ttlv_next(&r, &item), -EBADMSG);
	assert_int_equal(ttlv_next(&r, &item), -EBADMSG);
	free(buf);
	/* Nothing is not a message. */
	assert_int_equal(ttlv_validate((const uint8_t *)"", 0), -EBADMSG);
}

/* depth structures nested, the innermost holding one integer. */
static size_t nested(uint8_t *buf, size_t capacity, unsigned depth)
{
	size_t size = 16 + 8 * (size_t)depth;

	assert_true(size <= capacity);
	for (unsigned i = 0; i < depth; i++) {
		uint32_t inner = (uint32_t)(size - 8 * (i + 1));
		uint8_t *at = buf + 8 * i;
		at[0] = 0x42, at[1] = 0x00, at[2] = 0x20, at[3] = TTLV_STRUCTURE;
		at[4] = (uint8_t)(inner >> 24), at[5] = (uint8_t)(inner >> 16);
		at[6] = (uint8_t)(inner >> 8), at[7] = (uint8_t)inner;
	}
	memcpy(buf + 8 * depth, "\x42\x00\x20\x02\x00\x00\x00\x04\x00\x00\x00\x01\x00\x00\x00\x00",
	       16);
	return size;
}

static void test_nesting_bound(void **state)
{
	uint8_t buf[8 * 64 + 16];
	size_t len;

	(void)state;
	len = nested(buf, sizeof(buf), TTLV_MAX_DEPTH);
	assert_int_equal(ttlv_validate(buf, len), 0);
	len = nested(buf, sizeof(buf), TTLV_MAX_DEPTH + 1);
	assert_int_equal(ttlv_validate(buf, len), -E2BIG);
	len = nested(buf, sizeof(buf), 64);
	assert_int_equal(ttlv_validate(buf, len), -E2BIG);
}

/* A response with the parts tdefs needs and the ones it refuses, built with the writer. */
static size_t get_response(uint8_t *buf, size_t capacity, bool wrapped, int batch_items,
			   uint32_t format)
{
	static const uint8_t key[32] = { 1, 2, 3 };
	struct ttlv_writer w;
	size_t len;

	ttlv_writer_init(&w, buf, capacity);
	ttlv_begin(&w, KMIP_TAG_RESPONSE_MESSAGE);
	ttlv_begin(&w, KMIP_TAG_RESPONSE_HEADER);
	ttlv_begin(&w, KMIP_TAG_PROTOCOL_VERSION);
	ttlv_put_integer(&w, KMIP_TAG_PROTOCOL_VERSION_MAJOR, 1);
	ttlv_put_integer(&w, KMIP_TAG_PROTOCOL_VERSION_MINOR, 2);
	ttlv_end(&w);
	ttlv_put_datetime(&w, KMIP_TAG_TIME_STAMP, 1700000000);
	ttlv_put_integer(&w, KMIP_TAG_BATCH_COUNT, batch_items);
	ttlv_end(&w);
	for (int i = 0; i < batch_items; i++) {
		ttlv_begin(&w, KMIP_TAG_BATCH_ITEM);
		ttlv_put_enum(&w, KMIP_TAG_OPERATION, KMIP_OP_GET);
		ttlv_put_enum(&w, KMIP_TAG_RESULT_STATUS, KMIP_STATUS_SUCCESS);
		ttlv_begin(&w, KMIP_TAG_RESPONSE_PAYLOAD);
		ttlv_put_enum(&w, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_SYMMETRIC_KEY);
		ttlv_put_text(&w, KMIP_TAG_UNIQUE_IDENTIFIER, "42", 2);
		ttlv_begin(&w, KMIP_TAG_SYMMETRIC_KEY);
		ttlv_begin(&w, KMIP_TAG_KEY_BLOCK);
		ttlv_put_enum(&w, KMIP_TAG_KEY_FORMAT_TYPE, format);
		ttlv_begin(&w, KMIP_TAG_KEY_VALUE);
		ttlv_put_bytes(&w, KMIP_TAG_KEY_MATERIAL, key, sizeof(key));
		ttlv_end(&w);
		ttlv_put_enum(&w, KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM, KMIP_ALGORITHM_AES);
		ttlv_put_integer(&w, KMIP_TAG_CRYPTOGRAPHIC_LENGTH, 256);
		if (wrapped) {
			ttlv_begin(&w, KMIP_TAG_KEY_WRAPPING_DATA);
			ttlv_put_enum(&w, 0x42009E, 1); /* Wrapping Method: Encrypt */
			ttlv_end(&w);
		}
		ttlv_end(&w);
		ttlv_end(&w);
		ttlv_end(&w);
		ttlv_end(&w);
	}
	ttlv_end(&w);
	assert_int_equal(ttlv_writer_finish(&w, &len), 0);
	return len;
}

static void test_refused_responses(void **state)
{
	uint8_t buf[1024];
	struct kmip_response response;
	size_t len;

	(void)state;
	len = get_response(buf, sizeof(buf), false, 1, KMIP_KEY_FORMAT_RAW);
	assert_int_equal(kmip_decode_response(buf, len, KMIP_OP_GET, &response), 0);
	assert_int_equal(response.key_len, 32);
	assert_int_equal(response.key_algorithm, KMIP_ALGORITHM_AES);
	assert_int_equal(response.key_length_bits, 256);
	assert_int_equal(response.version.minor, 2);

	len = get_response(buf, sizeof(buf), true, 1, KMIP_KEY_FORMAT_RAW);
	assert_int_equal(kmip_decode_response(buf, len, KMIP_OP_GET, &response), -EPROTO);
	assert_null(response.key);
	len = get_response(buf, sizeof(buf), false, 2, KMIP_KEY_FORMAT_RAW);
	assert_int_equal(kmip_decode_response(buf, len, KMIP_OP_GET, &response), -EPROTO);
	len = get_response(buf, sizeof(buf), false, 1, 7 /* Transparent Symmetric Key */);
	assert_int_equal(kmip_decode_response(buf, len, KMIP_OP_GET, &response), -EPROTO);

	/* Trailing bytes after the message. */
	len = get_response(buf, sizeof(buf), false, 1, KMIP_KEY_FORMAT_RAW);
	memcpy(buf + len, "\x42\x00\x20\x02\x00\x00\x00\x04\x00\x00\x00\x01\x00\x00\x00\x00", 16);
	assert_int_equal(kmip_decode_response(buf, len + 16, KMIP_OP_GET, &response), -EPROTO);
}

static void test_response_size(void **state)
{
	uint8_t header[8] = { 0x42, 0x00, 0x7B, 0x01, 0x00, 0x00, 0x01, 0x28 };
	size_t total;

	(void)state;
	assert_int_equal(kmip_response_size(header, &total), 0);
	assert_int_equal(total, 0x130);
	header[4] = 0x01; /* 16 MiB */
	assert_int_equal(kmip_response_size(header, &total), -EMSGSIZE);
	header[4] = 0x00;
	header[7] = 0x29;
	assert_int_equal(kmip_response_size(header, &total), -EBADMSG);
	header[7] = 0x28;
	header[2] = 0x78; /* a request */
	assert_int_equal(kmip_response_size(header, &total), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_primitive_encodings),
		cmocka_unit_test(test_primitive_decodings),
		cmocka_unit_test(test_writer_limits),
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_request_round_trip),
		cmocka_unit_test(test_create_response),
		cmocka_unit_test(test_get_response),
		cmocka_unit_test(test_locate_and_destroy_responses),
		cmocka_unit_test(test_get_attributes),
		cmocka_unit_test(test_failure_response),
		cmocka_unit_test(test_every_truncation_fails),
		cmocka_unit_test(test_lying_lengths),
		cmocka_unit_test(test_bad_items),
		cmocka_unit_test(test_nesting_bound),
		cmocka_unit_test(test_refused_responses),
		cmocka_unit_test(test_response_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
