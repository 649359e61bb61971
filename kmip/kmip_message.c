/*
 * KMIP request encoding and response decoding (kmip/kmip.h): the seven operations a keystore of
 * master keys needs, in the layout of the KMIP 1.2 specification and its test cases. A response
 * is checked as TTLV as a whole first (ttlv_validate), then read field by field by tag, so an
 * unexpected item is either skipped (a server may add optional ones) or, where tdefs relies on
 * it, refused with -EPROTO.
 */
#include "kmip/kmip.h"

#include <errno.h>
#include <string.h>

#include "kmip/ttlv.h"

static void put_attribute_enum(struct ttlv_writer *w, const char *name, uint32_t value)
{
	ttlv_begin(w, KMIP_TAG_ATTRIBUTE);
	ttlv_put_text(w, KMIP_TAG_ATTRIBUTE_NAME, name, strlen(name));
	ttlv_put_enum(w, KMIP_TAG_ATTRIBUTE_VALUE, value);
	ttlv_end(w);
}

static void put_attribute_integer(struct ttlv_writer *w, const char *name, int32_t value)
{
	ttlv_begin(w, KMIP_TAG_ATTRIBUTE);
	ttlv_put_text(w, KMIP_TAG_ATTRIBUTE_NAME, name, strlen(name));
	ttlv_put_integer(w, KMIP_TAG_ATTRIBUTE_VALUE, value);
	ttlv_end(w);
}

static void put_attribute_name(struct ttlv_writer *w, const char *name)
{
	ttlv_begin(w, KMIP_TAG_ATTRIBUTE);
	ttlv_put_text(w, KMIP_TAG_ATTRIBUTE_NAME, "Name", 4);
	ttlv_begin(w, KMIP_TAG_ATTRIBUTE_VALUE);
	ttlv_put_text(w, KMIP_TAG_NAME_VALUE, name, strlen(name));
	ttlv_put_enum(w, KMIP_TAG_NAME_TYPE, KMIP_NAME_UNINTERPRETED_TEXT);
	ttlv_end(w);
	ttlv_end(w);
}

static void put_attribute_text(struct ttlv_writer *w, const char *name, const char *value)
{
	ttlv_begin(w, KMIP_TAG_ATTRIBUTE);
	ttlv_put_text(w, KMIP_TAG_ATTRIBUTE_NAME, name, strlen(name));
	ttlv_put_text(w, KMIP_TAG_ATTRIBUTE_VALUE, value, strlen(value));
	ttlv_end(w);
}

/* The attributes a Get Attributes asks for: what tells a key's use (docs/KMIP.md). */
static const char *const asked_attributes[] = { "State", "Name", "Activation Date" };

static bool text_ok(const char *text)
{
	return text && text[0] && strlen(text) < KMIP_ID_SIZE;
}

int kmip_encode_request(const struct kmip_request *request, uint8_t *buf, size_t capacity,
			size_t *len)
{
	struct ttlv_writer w;

	switch (request->operation) {
	case KMIP_OP_CREATE:
		if ((request->name && !text_ok(request->name)) ||
		    (request->group && !text_ok(request->group)))
			return -EINVAL;
		break;
	case KMIP_OP_LOCATE:
		if (request->group ? !text_ok(request->group) : !text_ok(request->name))
			return -EINVAL;
		break;
	case KMIP_OP_GET:
	case KMIP_OP_GET_ATTRIBUTES:
	case KMIP_OP_ACTIVATE:
	case KMIP_OP_REVOKE:
	case KMIP_OP_DESTROY:
		if (!text_ok(request->unique_id))
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}

	ttlv_writer_init(&w, buf, capacity);
	ttlv_begin(&w, KMIP_TAG_REQUEST_MESSAGE);
	ttlv_begin(&w, KMIP_TAG_REQUEST_HEADER);
	ttlv_begin(&w, KMIP_TAG_PROTOCOL_VERSION);
	ttlv_put_integer(&w, KMIP_TAG_PROTOCOL_VERSION_MAJOR, request->version.major);
	ttlv_put_integer(&w, KMIP_TAG_PROTOCOL_VERSION_MINOR, request->version.minor);
	ttlv_end(&w);
	ttlv_put_integer(&w, KMIP_TAG_BATCH_COUNT, 1);
	ttlv_end(&w);
	ttlv_begin(&w, KMIP_TAG_BATCH_ITEM);
	ttlv_put_enum(&w, KMIP_TAG_OPERATION, request->operation);
	ttlv_begin(&w, KMIP_TAG_REQUEST_PAYLOAD);
	switch (request->operation) {
	case KMIP_OP_CREATE:
		ttlv_put_enum(&w, KMIP_TAG_OBJECT_TYPE, KMIP_OBJECT_SYMMETRIC_KEY);
		ttlv_begin(&w, KMIP_TAG_TEMPLATE_ATTRIBUTE);
		put_attribute_enum(&w, "Cryptographic Algorithm", request->algorithm);
		put_attribute_integer(&w, "Cryptographic Length", request->length_bits);
		put_attribute_integer(&w, "Cryptographic Usage Mask", request->usage_mask);
		if (request->name)
			put_attribute_name(&w, request->name);
		if (request->group)
			put_attribute_text(&w, "Object Group", request->group);
		ttlv_end(&w);
		break;
	case KMIP_OP_LOCATE:
		put_attribute_enum(&w, "Object Type", KMIP_OBJECT_SYMMETRIC_KEY);
		if (request->group)
			put_attribute_text(&w, "Object Group", request->group);
		else
			put_attribute_name(&w, request->name);
		break;
	case KMIP_OP_GET_ATTRIBUTES:
		ttlv_put_text(&w, KMIP_TAG_UNIQUE_IDENTIFIER, request->unique_id,
			      strlen(request->unique_id));
		for (size_t i = 0; i < sizeof(asked_attributes) / sizeof(asked_attributes[0]); i++)
			ttlv_put_text(&w, KMIP_TAG_ATTRIBUTE_NAME, asked_attributes[i],
				      strlen(asked_attributes[i]));
		break;
	case KMIP_OP_REVOKE:
		ttlv_put_text(&w, KMIP_TAG_UNIQUE_IDENTIFIER, request->unique_id,
			      strlen(request->unique_id));
		ttlv_begin(&w, KMIP_TAG_REVOCATION_REASON);
		ttlv_put_enum(&w, KMIP_TAG_REVOCATION_REASON_CODE, request->revocation_reason);
		ttlv_end(&w);
		break;
	default:
		ttlv_put_text(&w, KMIP_TAG_UNIQUE_IDENTIFIER, request->unique_id,
			      strlen(request->unique_id));
		break;
	}
	ttlv_end(&w);
	ttlv_end(&w);
	ttlv_end(&w);
	return ttlv_writer_finish(&w, len);
}

int kmip_response_size(const uint8_t header[8], size_t *total)
{
	uint32_t tag = (uint32_t)header[0] << 16 | (uint32_t)header[1] << 8 | header[2];
	uint32_t length = ttlv_load_be32(header + 4);

	if (tag != KMIP_TAG_RESPONSE_MESSAGE || header[3] != TTLV_STRUCTURE || length % 8 != 0)
		return -EBADMSG;
	if (length > KMIP_MAX_MESSAGE - TTLV_HEADER_SIZE)
		return -EMSGSIZE;
	*total = TTLV_HEADER_SIZE + (size_t)length;
	return 0;
}

/* A server's text for a log line: cut to size, anything but printable ASCII shown as '?'. */
static void copy_message(const struct ttlv_item *item, char out[KMIP_MESSAGE_TEXT_SIZE])
{
	size_t n = item->length < KMIP_MESSAGE_TEXT_SIZE - 1 ? item->length
							     : KMIP_MESSAGE_TEXT_SIZE - 1;

	for (size_t i = 0; i < n; i++) {
		uint8_t c = item->value[i];
		out[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	out[n] = '\0';
}

static int read_version(const struct ttlv_item *item, struct kmip_version *version)
{
	struct ttlv_reader r;
	struct ttlv_item field;
	int ret;

	ret = ttlv_enter(item, &r);
	if (ret == 0)
		ret = ttlv_expect(&r, KMIP_TAG_PROTOCOL_VERSION_MAJOR, TTLV_INTEGER, &field);
	if (ret == 0)
		ret = ttlv_get_integer(&field, &version->major);
	if (ret == 0)
		ret = ttlv_expect(&r, KMIP_TAG_PROTOCOL_VERSION_MINOR, TTLV_INTEGER, &field);
	if (ret == 0)
		ret = ttlv_get_integer(&field, &version->minor);
	return ret == -ENOENT ? -EPROTO : ret;
}

static int read_header(const struct ttlv_item *item, struct kmip_response *response)
{
	struct ttlv_reader r;
	struct ttlv_item field;
	int32_t batch_count = 0;
	bool have_version = false, have_count = false;
	int ret;

	ret = ttlv_enter(item, &r);
	if (ret < 0)
		return ret;
	while ((ret = ttlv_next(&r, &field)) == 0) {
		switch (field.tag) {
		case KMIP_TAG_PROTOCOL_VERSION:
			ret = read_version(&field, &response->version);
			have_version = true;
			break;
		case KMIP_TAG_TIME_STAMP:
			ret = ttlv_get_datetime(&field, &response->time_stamp);
			break;
		case KMIP_TAG_BATCH_COUNT:
			ret = ttlv_get_integer(&field, &batch_count);
			have_count = true;
			break;
		default:
			break; /* optional fields tdefs does not use */
		}
		if (ret < 0)
			return ret;
	}
	if (ret < 0)
		return ret;
	if (!have_version || !have_count || batch_count != 1 || response->version.major != 1)
		return -EPROTO;
	return 0;
}

static int read_identifier(const struct ttlv_item *item, char out[KMIP_ID_SIZE])
{
	int ret = ttlv_get_text(item, out, KMIP_ID_SIZE);

	if (ret == 0 && out[0] == '\0')
		return -EPROTO;
	return ret == -ENAMETOOLONG ? -EPROTO : ret;
}

/* Symmetric Key > Key Block > Key Value > Key Material, unwrapped, in Raw format. */
static int read_symmetric_key(const struct ttlv_item *item, struct kmip_response *response)
{
	struct ttlv_reader key_reader, block_reader, value_reader;
	struct ttlv_item block, field, material;
	bool have_format = false, have_material = false;
	int ret;

	ret = ttlv_enter(item, &key_reader);
	if (ret == 0)
		ret = ttlv_expect(&key_reader, KMIP_TAG_KEY_BLOCK, TTLV_STRUCTURE, &block);
	if (ret == 0)
		ret = ttlv_enter(&block, &block_reader);
	if (ret < 0)
		return ret == -ENOENT ? -EPROTO : ret;
	while ((ret = ttlv_next(&block_reader, &field)) == 0) {
		switch (field.tag) {
		case KMIP_TAG_KEY_FORMAT_TYPE:
			ret = ttlv_get_enum(&field, &response->key_format);
			have_format = true;
			break;
		case KMIP_TAG_KEY_VALUE:
			ret = ttlv_enter(&field, &value_reader);
			if (ret == 0)
				ret = ttlv_expect(&value_reader, KMIP_TAG_KEY_MATERIAL,
						  TTLV_BYTE_STRING, &material);
			if (ret == 0) {
				response->key = material.value;
				response->key_len = material.length;
				have_material = true;
			}
			break;
		case KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM:
			ret = ttlv_get_enum(&field, &response->key_algorithm);
			break;
		case KMIP_TAG_CRYPTOGRAPHIC_LENGTH:
			ret = ttlv_get_integer(&field, &response->key_length_bits);
			break;
		case KMIP_TAG_KEY_WRAPPING_DATA:
			/* A key wrapped under another key is not what tdefs asked for. */
			ret = -EPROTO;
			break;
		default:
			break;
		}
		if (ret < 0)
			return ret == -ENOENT ? -EPROTO : ret;
	}
	if (ret < 0)
		return ret;
	if (!have_format || !have_material || response->key_format != KMIP_KEY_FORMAT_RAW ||
	    response->key_len == 0)
		return -EPROTO;
	return 0;
}

static bool item_is_text(const struct ttlv_item *item, const char *text)
{
	return item->type == TTLV_TEXT_STRING && item->length == strlen(text) &&
	       memcmp(item->value, text, item->length) == 0;
}

/*
 * One Attribute of a Get Attributes answer: the State, the first Name's text, the Activation
 * Date; any other attribute is skipped, one of these with the wrong type is -EPROTO.
 */
static int read_attribute(const struct ttlv_item *item, struct kmip_response *response)
{
	struct ttlv_reader r, name_reader;
	struct ttlv_item name, value, field;
	int ret;

	ret = ttlv_enter(item, &r);
	if (ret == 0)
		ret = ttlv_expect(&r, KMIP_TAG_ATTRIBUTE_NAME, TTLV_TEXT_STRING, &name);
	while (ret == 0) {
		/* An Attribute Index may sit between the name and the value. */
		ret = ttlv_next(&r, &value);
		if (ret == 0 && value.tag == KMIP_TAG_ATTRIBUTE_VALUE)
			break;
	}
	if (ret != 0)
		return ret < 0 && ret != -ENOENT ? ret : -EPROTO;
	if (item_is_text(&name, "State")) {
		uint32_t state;
		ret = ttlv_get_enum(&value, &state);
		if (ret == 0 && (state < KMIP_STATE_PRE_ACTIVE ||
				 state > KMIP_STATE_DESTROYED_COMPROMISED))
			ret = -EPROTO;
		if (ret == 0)
			response->state = state;
	} else if (item_is_text(&name, "Activation Date")) {
		ret = ttlv_get_datetime(&value, &response->activation_date);
	} else if (item_is_text(&name, "Name") && response->name[0] == '\0') {
		ret = ttlv_enter(&value, &name_reader);
		if (ret == 0)
			ret = ttlv_expect(&name_reader, KMIP_TAG_NAME_VALUE, TTLV_TEXT_STRING,
					  &field);
		if (ret == 0)
			ret = read_identifier(&field, response->name);
	}
	return ret == -ENOENT ? -EPROTO : ret;
}

static int read_payload(const struct ttlv_item *item, enum kmip_operation operation,
			struct kmip_response *response)
{
	struct ttlv_reader r;
	struct ttlv_item field;
	bool have_id = false, have_key = false;
	int ret;

	ret = ttlv_enter(item, &r);
	if (ret < 0)
		return ret;
	while ((ret = ttlv_next(&r, &field)) == 0) {
		switch (field.tag) {
		case KMIP_TAG_UNIQUE_IDENTIFIER:
			if (operation == KMIP_OP_LOCATE) {
				if (response->located < KMIP_LOCATE_MAX)
					ret = read_identifier(
						&field, response->located_ids[response->located]);
				else if (field.type != TTLV_TEXT_STRING)
					ret = -EPROTO;
				response->located++;
			} else {
				if (have_id)
					return -EPROTO;
				ret = read_identifier(&field, response->unique_id);
				have_id = true;
			}
			break;
		case KMIP_TAG_OBJECT_TYPE:
			ret = ttlv_get_enum(&field, &response->object_type);
			break;
		case KMIP_TAG_ATTRIBUTE:
			if (operation == KMIP_OP_GET_ATTRIBUTES)
				ret = read_attribute(&field, response);
			break;
		case KMIP_TAG_SYMMETRIC_KEY:
			if (operation == KMIP_OP_GET) {
				ret = read_symmetric_key(&field, response);
				have_key = true;
			}
			break;
		default:
			break;
		}
		if (ret < 0)
			return ret;
	}
	if (ret < 0)
		return ret;
	if (operation != KMIP_OP_LOCATE && !have_id)
		return -EPROTO;
	if (operation == KMIP_OP_GET &&
	    (!have_key || response->object_type != KMIP_OBJECT_SYMMETRIC_KEY))
		return -EPROTO;
	return 0;
}

static int read_batch_item(const struct ttlv_item *item, enum kmip_operation operation,
			   struct kmip_response *response)
{
	struct ttlv_reader r;
	struct ttlv_item field, payload;
	bool have_status = false, have_payload = false;
	int ret;

	ret = ttlv_enter(item, &r);
	if (ret < 0)
		return ret;
	while ((ret = ttlv_next(&r, &field)) == 0) {
		switch (field.tag) {
		case KMIP_TAG_OPERATION:
			ret = ttlv_get_enum(&field, &response->operation);
			break;
		case KMIP_TAG_RESULT_STATUS:
			ret = ttlv_get_enum(&field, &response->status);
			have_status = true;
			break;
		case KMIP_TAG_RESULT_REASON:
			ret = ttlv_get_enum(&field, &response->reason);
			break;
		case KMIP_TAG_RESULT_MESSAGE:
			if (field.type != TTLV_TEXT_STRING)
				return -EPROTO;
			copy_message(&field, response->message);
			break;
		case KMIP_TAG_RESPONSE_PAYLOAD:
			if (have_payload)
				return -EPROTO;
			payload = field;
			have_payload = true;
			break;
		default:
			break;
		}
		if (ret < 0)
			return ret;
	}
	if (ret < 0)
		return ret;
	if (!have_status)
		return -EPROTO;
	if (response->operation != 0 && response->operation != (uint32_t)operation)
		return -EPROTO;
	if (response->status != KMIP_STATUS_SUCCESS)
		return 0;
	if (response->operation == 0 || !have_payload)
		return -EPROTO;
	return read_payload(&payload, operation, response);
}

int kmip_decode_response(const uint8_t *msg, size_t len, enum kmip_operation operation,
			 struct kmip_response *response)
{
	struct ttlv_reader top, r;
	struct ttlv_item message, field;
	int ret;

	memset(response, 0, sizeof(*response));
	ret = ttlv_validate(msg, len);
	if (ret < 0)
		return ret;
	ttlv_reader_init(&top, msg, len);
	ret = ttlv_expect(&top, KMIP_TAG_RESPONSE_MESSAGE, TTLV_STRUCTURE, &message);
	if (ret < 0 || ttlv_next(&top, &field) != 1)
		return ret < 0 && ret != -ENOENT ? ret : -EPROTO;
	ret = ttlv_enter(&message, &r);
	if (ret == 0)
		ret = ttlv_expect(&r, KMIP_TAG_RESPONSE_HEADER, TTLV_STRUCTURE, &field);
	if (ret == 0)
		ret = read_header(&field, response);
	if (ret == 0)
		ret = ttlv_expect(&r, KMIP_TAG_BATCH_ITEM, TTLV_STRUCTURE, &field);
	if (ret == 0)
		ret = read_batch_item(&field, operation, response);
	if (ret == 0 && ttlv_next(&r, &field) != 1)
		ret = -EPROTO; /* a second batch item to a request of one */
	if (ret < 0) {
		/* Nothing of a half-read answer is left for the caller to use by mistake. */
		memset(response, 0, sizeof(*response));
		return ret == -ENOENT ? -EPROTO : ret;
	}
	return 0;
}

const char *kmip_reason_name(uint32_t reason)
{
	switch (reason) {
	case 0x01: return "Item Not Found";
	case 0x02: return "Response Too Large";
	case 0x03: return "Authentication Not Successful";
	case 0x04: return "Invalid Message";
	case 0x05: return "Operation Not Supported";
	case 0x06: return "Missing Data";
	case 0x07: return "Invalid Field";
	case 0x08: return "Feature Not Supported";
	case 0x09: return "Operation Canceled By Requester";
	case 0x0A: return "Cryptographic Failure";
	case 0x0B: return "Illegal Operation";
	case 0x0C: return "Permission Denied";
	case 0x0D: return "Object Archived";
	case 0x0E: return "Index Out of Bounds";
	case 0x10: return "Key Format Type Not Supported";
	case 0x11: return "Key Compression Type Not Supported";
	case 0x13: return "Key Value Not Present";
	case 0x100: return "General Failure";
	default: return "an unlisted reason";
	}
}

const char *kmip_operation_name(uint32_t operation)
{
	switch (operation) {
	case KMIP_OP_CREATE: return "Create";
	case KMIP_OP_LOCATE: return "Locate";
	case KMIP_OP_GET: return "Get";
	case KMIP_OP_GET_ATTRIBUTES: return "Get Attributes";
	case KMIP_OP_ACTIVATE: return "Activate";
	case KMIP_OP_REVOKE: return "Revoke";
	case KMIP_OP_DESTROY: return "Destroy";
	default: return "an unlisted operation";
	}
}

const char *kmip_state_name(uint32_t state)
{
	switch (state) {
	case KMIP_STATE_PRE_ACTIVE: return "Pre-Active";
	case KMIP_STATE_ACTIVE: return "Active";
	case KMIP_STATE_DEACTIVATED: return "Deactivated";
	case KMIP_STATE_COMPROMISED: return "Compromised";
	case KMIP_STATE_DESTROYED: return "Destroyed";
	case KMIP_STATE_DESTROYED_COMPROMISED: return "Destroyed Compromised";
	default: return "an unlisted state";
	}
}
