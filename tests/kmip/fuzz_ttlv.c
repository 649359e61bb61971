/*
 * libFuzzer target for the KMIP codec: the whole-buffer check (ttlv_validate), a walk of every
 * item with each typed getter, and the response decoder for each operation tdefs sends. The
 * input is copied into a buffer of exactly its size so that AddressSanitizer sees a read one
 * byte past it. Seeds in corpus/fuzz_ttlv are the messages of the KMIP test cases.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kmip/kmip.h"
#include "kmip/ttlv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every item at every level, each read with the getter of its type. */
static void walk(struct ttlv_reader *reader)
{
	struct ttlv_item item;
	struct ttlv_reader inside;
	char text[64];
	int32_t integer;
	int64_t longer;
	uint32_t enumeration;
	bool flag;

	while (ttlv_next(reader, &item) == 0) {
		switch (item.type) {
		case TTLV_STRUCTURE:
			if (ttlv_enter(&item, &inside) == 0)
				walk(&inside);
			break;
		case TTLV_INTEGER:
			(void)ttlv_get_integer(&item, &integer);
			break;
		case TTLV_LONG_INTEGER:
			(void)ttlv_get_long(&item, &longer);
			break;
		case TTLV_ENUMERATION:
			(void)ttlv_get_enum(&item, &enumeration);
			break;
		case TTLV_BOOLEAN:
			(void)ttlv_get_bool(&item, &flag);
			break;
		case TTLV_TEXT_STRING:
			(void)ttlv_get_text(&item, text, sizeof(text));
			break;
		case TTLV_DATE_TIME:
			(void)ttlv_get_datetime(&item, &longer);
			break;
		case TTLV_INTERVAL:
			(void)ttlv_get_interval(&item, &enumeration);
			break;
		default:
			break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum kmip_operation operations[] = { KMIP_OP_CREATE, KMIP_OP_LOCATE,
							  KMIP_OP_GET, KMIP_OP_ACTIVATE,
							  KMIP_OP_REVOKE, KMIP_OP_DESTROY,
							  KMIP_OP_GET_ATTRIBUTES };
	struct kmip_response response;
	struct ttlv_reader reader;
	size_t total;
	uint8_t *copy;

	if (size > KMIP_MAX_MESSAGE)
		return 0;
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	(void)ttlv_validate(copy, size);
	ttlv_reader_init(&reader, copy, size);
	walk(&reader);
	if (size >= 8)
		(void)kmip_response_size(copy, &total);
	for (size_t i = 0; i < sizeof(operations) / sizeof(operations[0]); i++)
		if (kmip_decode_response(copy, size, operations[i], &response) == 0 &&
		    response.key && (response.key < copy || response.key + response.key_len >
								  copy + size))
			abort(); /* the key must lie inside the message */
	free(copy);
	return 0;
}
