/*
 * The TTLV writer and reader (kmip/ttlv.h). Both work on caller-owned buffers; the reader checks
 * every header against the bytes its enclosing structure has left before it reads a value, so
 * a hostile length can neither read outside the buffer nor make a structure overlap its parent.
 * Padding must be zero and a boolean 0 or 1: KMIP fixes both, and a peer that gets them wrong is
 * not one whose key bytes should be believed.
 */
#include "kmip/ttlv.h"

#include <errno.h>
#include <string.h>

/* KMIP's own tags start 0x42, extensions 0x54; nothing else is a tag. */
static bool tag_valid(uint32_t tag)
{
	return (tag >> 16) == 0x42 || (tag >> 16) == 0x54;
}

static void store_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void store_be64(uint8_t *p, uint64_t v)
{
	store_be32(p, (uint32_t)(v >> 32));
	store_be32(p + 4, (uint32_t)v);
}

static uint64_t load_be64(const uint8_t *p)
{
	return (uint64_t)ttlv_load_be32(p) << 32 | ttlv_load_be32(p + 4);
}

size_t ttlv_item_size(size_t length)
{
	if (length > UINT32_MAX)
		return 0;
	return TTLV_HEADER_SIZE + ((length + 7) & ~(size_t)7);
}

/* ---- writing ---- */

void ttlv_writer_init(struct ttlv_writer *writer, uint8_t *buf, size_t capacity)
{
	memset(writer, 0, sizeof(*writer));
	writer->buf = buf;
	writer->capacity = capacity;
}

/* Room for a header and a padded value of length bytes, or the sticky error; returns where the
 * header goes, with the padding already zeroed. */
static uint8_t *reserve(struct ttlv_writer *writer, uint32_t tag, uint8_t type, size_t length)
{
	size_t size = ttlv_item_size(length);
	uint8_t *at;

	if (writer->error)
		return NULL;
	if (!tag_valid(tag)) {
		writer->error = -EINVAL;
		return NULL;
	}
	if (size == 0 || size > writer->capacity - writer->used) {
		writer->error = -ENOBUFS;
		return NULL;
	}
	at = writer->buf + writer->used;
	memset(at, 0, size);
	at[0] = (uint8_t)(tag >> 16);
	at[1] = (uint8_t)(tag >> 8);
	at[2] = (uint8_t)tag;
	at[3] = type;
	store_be32(at + 4, (uint32_t)length);
	writer->used += size;
	return at;
}

void ttlv_begin(struct ttlv_writer *writer, uint32_t tag)
{
	size_t start = writer->used;

	if (!writer->error && writer->depth >= TTLV_MAX_DEPTH) {
		writer->error = -E2BIG;
		return;
	}
	if (reserve(writer, tag, TTLV_STRUCTURE, 0))
		writer->open[writer->depth++] = start;
}

void ttlv_end(struct ttlv_writer *writer)
{
	size_t start;

	if (writer->error)
		return;
	if (writer->depth == 0) {
		writer->error = -EINVAL;
		return;
	}
	start = writer->open[--writer->depth];
	if (writer->used - start - TTLV_HEADER_SIZE > UINT32_MAX) {
		writer->error = -ENOBUFS;
		return;
	}
	store_be32(writer->buf + start + 4, (uint32_t)(writer->used - start - TTLV_HEADER_SIZE));
}

void ttlv_put_integer(struct ttlv_writer *writer, uint32_t tag, int32_t value)
{
	uint8_t *at = reserve(writer, tag, TTLV_INTEGER, 4);

	if (at)
		store_be32(at + TTLV_HEADER_SIZE, (uint32_t)value);
}

void ttlv_put_long(struct ttlv_writer *writer, uint32_t tag, int64_t value)
{
	uint8_t *at = reserve(writer, tag, TTLV_LONG_INTEGER, 8);

	if (at)
		store_be64(at + TTLV_HEADER_SIZE, (uint64_t)value);
}

void ttlv_put_enum(struct ttlv_writer *writer, uint32_t tag, uint32_t value)
{
	uint8_t *at = reserve(writer, tag, TTLV_ENUMERATION, 4);

	if (at)
		store_be32(at + TTLV_HEADER_SIZE, value);
}

void ttlv_put_bool(struct ttlv_writer *writer, uint32_t tag, bool value)
{
	uint8_t *at = reserve(writer, tag, TTLV_BOOLEAN, 8);

	if (at)
		store_be64(at + TTLV_HEADER_SIZE, value ? 1 : 0);
}

void ttlv_put_text(struct ttlv_writer *writer, uint32_t tag, const char *text, size_t len)
{
	uint8_t *at = reserve(writer, tag, TTLV_TEXT_STRING, len);

	if (at && len)
		memcpy(at + TTLV_HEADER_SIZE, text, len);
}

void ttlv_put_bytes(struct ttlv_writer *writer, uint32_t tag, const uint8_t *bytes, size_t len)
{
	uint8_t *at = reserve(writer, tag, TTLV_BYTE_STRING, len);

	if (at && len)
		memcpy(at + TTLV_HEADER_SIZE, bytes, len);
}

void ttlv_put_datetime(struct ttlv_writer *writer, uint32_t tag, int64_t seconds)
{
	uint8_t *at = reserve(writer, tag, TTLV_DATE_TIME, 8);

	if (at)
		store_be64(at + TTLV_HEADER_SIZE, (uint64_t)seconds);
}

void ttlv_put_interval(struct ttlv_writer *writer, uint32_t tag, uint32_t seconds)
{
	uint8_t *at = reserve(writer, tag, TTLV_INTERVAL, 4);

	if (at)
		store_be32(at + TTLV_HEADER_SIZE, seconds);
}

int ttlv_writer_finish(const struct ttlv_writer *writer, size_t *len)
{
	if (writer->error)
		return writer->error;
	if (writer->depth != 0)
		return -EINVAL;
	*len = writer->used;
	return 0;
}

/* ---- reading ---- */

void ttlv_reader_init(struct ttlv_reader *reader, const uint8_t *data, size_t len)
{
	memset(reader, 0, sizeof(*reader));
	reader->data = data;
	reader->len = len;
}

static bool zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* The length each fixed-size type must carry; 0 for the variable ones. */
static uint32_t fixed_length(uint8_t type)
{
	switch (type) {
	case TTLV_INTEGER:
	case TTLV_ENUMERATION:
	case TTLV_INTERVAL:
		return 4;
	case TTLV_LONG_INTEGER:
	case TTLV_BOOLEAN:
	case TTLV_DATE_TIME:
		return 8;
	default:
		return 0;
	}
}

static int reader_fail(struct ttlv_reader *reader)
{
	reader->error = -EBADMSG;
	return -EBADMSG;
}

int ttlv_next(struct ttlv_reader *reader, struct ttlv_item *item)
{
	const uint8_t *at;
	size_t left, padded;
	uint32_t tag, length, fixed;
	uint8_t type;

	if (reader->error)
		return reader->error;
	left = reader->len - reader->pos;
	if (left == 0)
		return 1;
	if (left < TTLV_HEADER_SIZE)
		return reader_fail(reader);
	at = reader->data + reader->pos;
	tag = (uint32_t)at[0] << 16 | (uint32_t)at[1] << 8 | at[2];
	type = at[3];
	length = ttlv_load_be32(at + 4);
	if (!tag_valid(tag) || type < TTLV_STRUCTURE || type > TTLV_INTERVAL)
		return reader_fail(reader);
	/* In 64 bits: a length near 2^32 must not wrap the padded size. */
	padded = (size_t)(((uint64_t)length + 7) & ~(uint64_t)7);
	if (padded > left - TTLV_HEADER_SIZE)
		return reader_fail(reader);
	fixed = fixed_length(type);
	if (fixed && length != fixed)
		return reader_fail(reader);
	if ((type == TTLV_STRUCTURE || type == TTLV_BIG_INTEGER) && length % 8 != 0)
		return reader_fail(reader);
	if (type == TTLV_BIG_INTEGER && length == 0)
		return reader_fail(reader);
	if (!zero(at + TTLV_HEADER_SIZE + length, padded - length))
		return reader_fail(reader);
	if (type == TTLV_BOOLEAN && load_be64(at + TTLV_HEADER_SIZE) > 1)
		return reader_fail(reader);

	item->tag = tag;
	item->type = type;
	item->length = length;
	item->value = at + TTLV_HEADER_SIZE;
	item->depth = reader->depth + 1;
	reader->pos += TTLV_HEADER_SIZE + padded;
	return 0;
}

int ttlv_enter(const struct ttlv_item *structure, struct ttlv_reader *inside)
{
	if (structure->type != TTLV_STRUCTURE)
		return -EPROTO;
	if (structure->depth > TTLV_MAX_DEPTH)
		return -E2BIG;
	ttlv_reader_init(inside, structure->value, structure->length);
	inside->depth = structure->depth;
	return 0;
}

int ttlv_expect(struct ttlv_reader *reader, uint32_t tag, uint8_t type, struct ttlv_item *item)
{
	int ret = ttlv_next(reader, item);

	if (ret == 1)
		return -ENOENT;
	if (ret < 0)
		return ret;
	if (item->tag != tag || item->type != type)
		return -EPROTO;
	return 0;
}

int ttlv_find(struct ttlv_reader *reader, uint32_t tag, uint8_t type, struct ttlv_item *item)
{
	int ret;

	while ((ret = ttlv_next(reader, item)) == 0) {
		if (item->tag != tag)
			continue;
		return item->type == type ? 0 : -EPROTO;
	}
	return ret == 1 ? -ENOENT : ret;
}

int ttlv_validate(const uint8_t *data, size_t len)
{
	/* One reader per open level: the walk is iterative, so a deep input cannot exhaust the
	 * stack, and the bound is the array's size. */
	struct ttlv_reader stack[TTLV_MAX_DEPTH + 1];
	struct ttlv_item item;
	unsigned level = 0;
	int ret;

	if (len == 0)
		return -EBADMSG;
	ttlv_reader_init(&stack[0], data, len);
	for (;;) {
		ret = ttlv_next(&stack[level], &item);
		if (ret < 0)
			return ret;
		if (ret == 1) {
			if (level == 0)
				return 0;
			level--;
			continue;
		}
		if (item.type != TTLV_STRUCTURE)
			continue;
		if (level + 1 > TTLV_MAX_DEPTH)
			return -E2BIG;
		ret = ttlv_enter(&item, &stack[level + 1]);
		if (ret < 0)
			return ret;
		level++;
	}
}

int ttlv_get_integer(const struct ttlv_item *item, int32_t *value)
{
	if (item->type != TTLV_INTEGER)
		return -EPROTO;
	*value = (int32_t)ttlv_load_be32(item->value);
	return 0;
}

int ttlv_get_long(const struct ttlv_item *item, int64_t *value)
{
	if (item->type != TTLV_LONG_INTEGER)
		return -EPROTO;
	*value = (int64_t)load_be64(item->value);
	return 0;
}

int ttlv_get_enum(const struct ttlv_item *item, uint32_t *value)
{
	if (item->type != TTLV_ENUMERATION)
		return -EPROTO;
	*value = ttlv_load_be32(item->value);
	return 0;
}

int ttlv_get_bool(const struct ttlv_item *item, bool *value)
{
	if (item->type != TTLV_BOOLEAN)
		return -EPROTO;
	*value = load_be64(item->value) == 1;
	return 0;
}

int ttlv_get_datetime(const struct ttlv_item *item, int64_t *seconds)
{
	if (item->type != TTLV_DATE_TIME)
		return -EPROTO;
	*seconds = (int64_t)load_be64(item->value);
	return 0;
}

int ttlv_get_interval(const struct ttlv_item *item, uint32_t *seconds)
{
	if (item->type != TTLV_INTERVAL)
		return -EPROTO;
	*seconds = ttlv_load_be32(item->value);
	return 0;
}

int ttlv_get_text(const struct ttlv_item *item, char *out, size_t size)
{
	if (item->type != TTLV_TEXT_STRING)
		return -EPROTO;
	if (memchr(item->value, '\0', item->length))
		return -EBADMSG;
	if ((size_t)item->length >= size)
		return -ENAMETOOLONG;
	memcpy(out, item->value, item->length);
	out[item->length] = '\0';
	return 0;
}
