/*
 * kmip/ttlv: the Tag-Type-Length-Value encoding of KMIP 1.x messages (docs/KMIP.md, "TTLV").
 * Every item is a 3-byte tag, a 1-byte type and a 4-byte big-endian length, followed by the
 * value padded with zero bytes to a multiple of 8; a structure's value is its items in order.
 *
 * The writer fills a buffer the caller owns (so a request may sit in locked memory) and keeps
 * the first error it meets, so a message is built with plain calls and checked once at the end.
 * The reader never allocates and never trusts a length: each item is checked against what is
 * left of its enclosing structure, fixed-size types against their size, padding against zero,
 * and nesting against TTLV_MAX_DEPTH before a value is looked at.
 *
 * Functions return 0 or a negative errno: -EBADMSG for bytes that are not TTLV, -EPROTO for
 * TTLV that is not what was asked for (another tag or type), -ENOBUFS when the writer's buffer
 * is too small, -E2BIG past the nesting bound, -ENOENT when a looked-for item is absent.
 */
#ifndef TDEFS_KMIP_TTLV_H
#define TDEFS_KMIP_TTLV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TTLV_HEADER_SIZE 8
/* Deeper than any KMIP 1.2 message tdefs sends or reads (a Get response is 6 levels). */
#define TTLV_MAX_DEPTH 16

enum ttlv_type {
	TTLV_STRUCTURE = 0x01,
	TTLV_INTEGER = 0x02,
	TTLV_LONG_INTEGER = 0x03,
	TTLV_BIG_INTEGER = 0x04,
	TTLV_ENUMERATION = 0x05,
	TTLV_BOOLEAN = 0x06,
	TTLV_TEXT_STRING = 0x07,
	TTLV_BYTE_STRING = 0x08,
	TTLV_DATE_TIME = 0x09,
	TTLV_INTERVAL = 0x0A,
};

/* Bytes an item with a value of length bytes takes, padding included; 0 when it would not fit
 * in the 32-bit length field. */
size_t ttlv_item_size(size_t length);

/* ---- writing ---- */

struct ttlv_writer {
	uint8_t *buf;
	size_t capacity, used;
	size_t open[TTLV_MAX_DEPTH]; /* offsets of the structures begun and not yet ended */
	unsigned depth;
	int error; /* the first failure, sticky */
};

void ttlv_writer_init(struct ttlv_writer *writer, uint8_t *buf, size_t capacity);
/* Open a structure; its length is filled in by ttlv_end. */
void ttlv_begin(struct ttlv_writer *writer, uint32_t tag);
void ttlv_end(struct ttlv_writer *writer);
void ttlv_put_integer(struct ttlv_writer *writer, uint32_t tag, int32_t value);
void ttlv_put_long(struct ttlv_writer *writer, uint32_t tag, int64_t value);
void ttlv_put_enum(struct ttlv_writer *writer, uint32_t tag, uint32_t value);
void ttlv_put_bool(struct ttlv_writer *writer, uint32_t tag, bool value);
void ttlv_put_text(struct ttlv_writer *writer, uint32_t tag, const char *text, size_t len);
void ttlv_put_bytes(struct ttlv_writer *writer, uint32_t tag, const uint8_t *bytes, size_t len);
/* Seconds since 1970-01-01 UTC, as KMIP's Date-Time. */
void ttlv_put_datetime(struct ttlv_writer *writer, uint32_t tag, int64_t seconds);
void ttlv_put_interval(struct ttlv_writer *writer, uint32_t tag, uint32_t seconds);
/* The first error, or -EINVAL while a structure is still open; *len gets the bytes written. */
int ttlv_writer_finish(const struct ttlv_writer *writer, size_t *len);

/* ---- reading ---- */

/* One item as found: value points into the reader's buffer, length bytes (padding excluded). */
struct ttlv_item {
	uint32_t tag;
	uint8_t type;
	uint32_t length;
	const uint8_t *value;
	unsigned depth; /* of the items inside it, when a structure */
};

/* The items of one structure (or of a whole buffer), visited in order. */
struct ttlv_reader {
	const uint8_t *data;
	size_t len, pos;
	unsigned depth;
	int error; /* the first failure, sticky */
};

/* A reader over a whole buffer, whose top level is at depth 0. */
void ttlv_reader_init(struct ttlv_reader *reader, const uint8_t *data, size_t len);
/*
 * The next item: 0 with *item filled, 1 at the end, or -EBADMSG (the reader then stays failed at
 * its position). The item's header, length, padding and fixed size are checked; a structure's
 * content is checked when it is entered.
 */
int ttlv_next(struct ttlv_reader *reader, struct ttlv_item *item);
/* A reader over the items of structure; -EPROTO when it is not one, -E2BIG past the bound. */
int ttlv_enter(const struct ttlv_item *structure, struct ttlv_reader *inside);
/* The next item, which must have tag and type: -ENOENT at the end, -EPROTO for another item. */
int ttlv_expect(struct ttlv_reader *reader, uint32_t tag, uint8_t type, struct ttlv_item *item);
/*
 * The first item of tag among the rest of reader's items (skipping the others): -ENOENT when
 * there is none, -EPROTO when it has another type. reader is left after it.
 */
int ttlv_find(struct ttlv_reader *reader, uint32_t tag, uint8_t type, struct ttlv_item *item);

/* A whole buffer is one well-formed item (or, with several, a sequence of them) down to every
 * leaf, within the nesting bound, with nothing left over. */
int ttlv_validate(const uint8_t *data, size_t len);

/* The value of an item of the matching type (-EPROTO for another type). */
int ttlv_get_integer(const struct ttlv_item *item, int32_t *value);
int ttlv_get_long(const struct ttlv_item *item, int64_t *value);
int ttlv_get_enum(const struct ttlv_item *item, uint32_t *value);
int ttlv_get_bool(const struct ttlv_item *item, bool *value);
int ttlv_get_datetime(const struct ttlv_item *item, int64_t *seconds);
int ttlv_get_interval(const struct ttlv_item *item, uint32_t *seconds);
/* A text string copied NUL-terminated into out (size bytes): -ENAMETOOLONG when it does not fit,
 * -EBADMSG when it holds a NUL byte (a KMIP text string is UTF-8 without one). */
int ttlv_get_text(const struct ttlv_item *item, char *out, size_t size);

/* Big-endian helpers shared with the message layer. */
static inline uint32_t ttlv_load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

#endif
