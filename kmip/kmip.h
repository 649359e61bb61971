/*
 * kmip/kmip: the KMIP 1.2 messages tdefs exchanges with a key server (docs/KMIP.md), built and
 * read with the TTLV codec of kmip/ttlv.h. A request carries one batch item of one of seven
 * operations: Create (a symmetric key), Activate, Locate (by name or Object Group), Get, Get
 * Attributes (State, Name, Activation Date), Revoke, Destroy. A
 * response is read into struct kmip_response; the key bytes of a Get point into the caller's
 * buffer (which the caller keeps in locked memory), never copied elsewhere.
 *
 * Functions return 0 or a negative errno as kmip/ttlv.h does (-EBADMSG: not TTLV; -EPROTO:
 * TTLV, but not the response asked for); a server's refusal is not an error of the decoder:
 * it comes back as status and reason, for the caller to name.
 */
#ifndef TDEFS_KMIP_KMIP_H
#define TDEFS_KMIP_KMIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Tags (KMIP 1.2, section 9.1.3.1). */
enum kmip_tag {
	KMIP_TAG_ATTRIBUTE = 0x420008,
	KMIP_TAG_ATTRIBUTE_NAME = 0x42000A,
	KMIP_TAG_ATTRIBUTE_VALUE = 0x42000B,
	KMIP_TAG_BATCH_COUNT = 0x42000D,
	KMIP_TAG_BATCH_ITEM = 0x42000F,
	KMIP_TAG_CRYPTOGRAPHIC_ALGORITHM = 0x420028,
	KMIP_TAG_CRYPTOGRAPHIC_LENGTH = 0x42002A,
	KMIP_TAG_KEY_BLOCK = 0x420040,
	KMIP_TAG_KEY_FORMAT_TYPE = 0x420042,
	KMIP_TAG_KEY_MATERIAL = 0x420043,
	KMIP_TAG_KEY_VALUE = 0x420045,
	KMIP_TAG_KEY_WRAPPING_DATA = 0x420046,
	KMIP_TAG_NAME = 0x420053,
	KMIP_TAG_NAME_TYPE = 0x420054,
	KMIP_TAG_NAME_VALUE = 0x420055,
	KMIP_TAG_OBJECT_TYPE = 0x420057,
	KMIP_TAG_OPERATION = 0x42005C,
	KMIP_TAG_PROTOCOL_VERSION = 0x420069,
	KMIP_TAG_PROTOCOL_VERSION_MAJOR = 0x42006A,
	KMIP_TAG_PROTOCOL_VERSION_MINOR = 0x42006B,
	KMIP_TAG_REQUEST_HEADER = 0x420077,
	KMIP_TAG_REQUEST_MESSAGE = 0x420078,
	KMIP_TAG_REQUEST_PAYLOAD = 0x420079,
	KMIP_TAG_RESPONSE_HEADER = 0x42007A,
	KMIP_TAG_RESPONSE_MESSAGE = 0x42007B,
	KMIP_TAG_RESPONSE_PAYLOAD = 0x42007C,
	KMIP_TAG_RESULT_MESSAGE = 0x42007D,
	KMIP_TAG_RESULT_REASON = 0x42007E,
	KMIP_TAG_RESULT_STATUS = 0x42007F,
	KMIP_TAG_REVOCATION_REASON = 0x420081,
	KMIP_TAG_REVOCATION_REASON_CODE = 0x420082,
	KMIP_TAG_SYMMETRIC_KEY = 0x42008F,
	KMIP_TAG_TEMPLATE_ATTRIBUTE = 0x420091,
	KMIP_TAG_TIME_STAMP = 0x420092,
	KMIP_TAG_UNIQUE_IDENTIFIER = 0x420094,
};

enum kmip_operation {
	KMIP_OP_CREATE = 0x01,
	KMIP_OP_LOCATE = 0x08,
	KMIP_OP_GET = 0x0A,
	KMIP_OP_GET_ATTRIBUTES = 0x0B,
	KMIP_OP_ACTIVATE = 0x12,
	KMIP_OP_REVOKE = 0x13,
	KMIP_OP_DESTROY = 0x14,
};

enum {
	KMIP_OBJECT_SYMMETRIC_KEY = 0x02,
	KMIP_ALGORITHM_AES = 0x03,
	KMIP_USAGE_ENCRYPT = 0x04,
	KMIP_USAGE_DECRYPT = 0x08,
	KMIP_NAME_UNINTERPRETED_TEXT = 0x01,
	KMIP_KEY_FORMAT_RAW = 0x01,
	KMIP_REVOKE_UNSPECIFIED = 0x01,
	KMIP_REVOKE_SUPERSEDED = 0x05,
	KMIP_REVOKE_CESSATION = 0x06,
};

/* An object's State (KMIP 1.2, section 9.1.3.2.18). */
enum kmip_state {
	KMIP_STATE_PRE_ACTIVE = 1,
	KMIP_STATE_ACTIVE = 2,
	KMIP_STATE_DEACTIVATED = 3,
	KMIP_STATE_COMPROMISED = 4,
	KMIP_STATE_DESTROYED = 5,
	KMIP_STATE_DESTROYED_COMPROMISED = 6,
};

enum kmip_result_status {
	KMIP_STATUS_SUCCESS = 0,
	KMIP_STATUS_OPERATION_FAILED = 1,
	KMIP_STATUS_PENDING = 2,
	KMIP_STATUS_UNDONE = 3,
};

enum kmip_result_reason {
	KMIP_REASON_ITEM_NOT_FOUND = 0x01,
	KMIP_REASON_AUTHENTICATION_NOT_SUCCESSFUL = 0x03,
	KMIP_REASON_INVALID_MESSAGE = 0x04,
	KMIP_REASON_OPERATION_NOT_SUPPORTED = 0x05,
	KMIP_REASON_PERMISSION_DENIED = 0x0C,
	KMIP_REASON_KEY_VALUE_NOT_PRESENT = 0x13,
	KMIP_REASON_GENERAL_FAILURE = 0x100,
};

#define KMIP_ID_SIZE 128	   /* a unique identifier or name, NUL included */
#define KMIP_MESSAGE_TEXT_SIZE 200 /* a server's result message, cut short and made printable */
#define KMIP_LOCATE_MAX 64	   /* identifiers a Locate answer keeps (the count is all of them) */
/* The largest response tdefs reads: a Get of a 256-bit key is well under 1 KiB. */
#define KMIP_MAX_MESSAGE 65536

struct kmip_version {
	int32_t major, minor;
};

struct kmip_request {
	struct kmip_version version;
	enum kmip_operation operation;
	/* Get, Get Attributes, Activate, Revoke, Destroy: the object. */
	const char *unique_id;
	/* Create: the Name attribute given to the key (NULL: none); Locate: the name looked for. */
	const char *name;
	/* Create: the Object Group given to the key (NULL: none); Locate: the group looked for
	 * (instead of a name). */
	const char *group;
	/* Create: the key asked for (KMIP_ALGORITHM_AES, 256, KMIP_USAGE_ENCRYPT|DECRYPT). */
	uint32_t algorithm;
	int32_t length_bits;
	int32_t usage_mask;
	/* Revoke: the Revocation Reason Code. */
	uint32_t revocation_reason;
};

/* The whole request message (header, one batch item) into buf; *len gets its size. */
int kmip_encode_request(const struct kmip_request *request, uint8_t *buf, size_t capacity,
			size_t *len);

struct kmip_response {
	struct kmip_version version;
	int64_t time_stamp;
	uint32_t operation; /* 0 when the server's failure left it out */
	uint32_t status;    /* enum kmip_result_status */
	uint32_t reason;    /* enum kmip_result_reason, when status is not success */
	char message[KMIP_MESSAGE_TEXT_SIZE];
	/* Create, Activate, Get, Get Attributes, Revoke, Destroy: the object's identifier. */
	char unique_id[KMIP_ID_SIZE];
	uint32_t object_type;
	/* Locate: how many identifiers came, and the first KMIP_LOCATE_MAX of them. */
	size_t located;
	char located_ids[KMIP_LOCATE_MAX][KMIP_ID_SIZE];
	/* Get of a symmetric key in Raw format: its bytes (inside the decoded buffer). */
	uint32_t key_format;
	uint32_t key_algorithm;
	int32_t key_length_bits;
	const uint8_t *key;
	size_t key_len;
	/* Get Attributes: the State (0 when the server left it out), the first Name (text), the
	 * Activation Date (0 when none). */
	uint32_t state;
	char name[KMIP_ID_SIZE];
	int64_t activation_date;
};

/*
 * The total size (8-byte header included) of the response message whose first 8 bytes are
 * header: -EBADMSG when they are not a Response Message structure, -EMSGSIZE when it is larger
 * than KMIP_MAX_MESSAGE. A reader takes exactly that many bytes off the connection.
 */
int kmip_response_size(const uint8_t header[8], size_t *total);

/*
 * Read a response message to a request of operation (its one batch item must be of it, or
 * carry no operation when failed). On success of the decode the server's result is in status;
 * the payload fields are filled only when it is KMIP_STATUS_SUCCESS.
 */
int kmip_decode_response(const uint8_t *msg, size_t len, enum kmip_operation operation,
			 struct kmip_response *response);

/* "Item Not Found", "Permission Denied", ... ("an unlisted reason" for one this table lacks). */
const char *kmip_reason_name(uint32_t reason);
/* "Create", "Get", ... */
const char *kmip_operation_name(uint32_t operation);

/* ---- the client (kmip/kmip_client.c) ---- */

struct tls_bundle;

#define KMIP_MAX_SERVERS 8
#define KMIP_HOST_SIZE 256
#define KMIP_PORT_SIZE 8
#define KMIP_DEFAULT_PORT "5696"
#define KMIP_WHY_SIZE 512 /* one line naming each server tried and what it said */
#define KMIP_KEY_SIZE 32  /* AES-256, the only key tdefs creates or accepts */

struct kmip_server {
	char host[KMIP_HOST_SIZE]; /* a DNS name or an IP address, as the certificate names it */
	char port[KMIP_PORT_SIZE];
};

/*
 * "host[:port][,host[:port]...]", an IPv6 address in brackets ("[::1]:5696"); the port is
 * KMIP's 5696 when left out. -EINVAL with why naming the bad entry (empty, a host with
 * characters no DNS name or address has, a port outside 1-65535, more than KMIP_MAX_SERVERS).
 */
int kmip_servers_parse(const char *text, struct kmip_server servers[KMIP_MAX_SERVERS],
		       size_t *count, char why[KMIP_WHY_SIZE]);
/* The list back in the form kmip_servers_parse reads. */
int kmip_servers_format(const struct kmip_server *servers, size_t count, char *out, size_t size);

struct kmip_client; /* the servers, the TLS identity, and the open connection if any */

/*
 * A client of servers (tried in order, each within timeout_ms) presenting identity, which must
 * outlive the client. It connects at the first operation, and again (the servers in order from
 * the first) when a connection breaks.
 */
int kmip_client_new(const struct kmip_server *servers, size_t count,
		    const struct tls_bundle *identity, int timeout_ms, struct kmip_client **out);
void kmip_client_free(struct kmip_client *client);
/*
 * Connect now (each server in order until one answers). Errors: -EKEYEXPIRED when the client
 * certificate is expired or not yet valid (checked before any server is asked), else the last
 * server's error (crypto/tls.h's tls_connect); why names every server tried and its failure.
 */
int kmip_client_connect(struct kmip_client *client, char why[KMIP_WHY_SIZE]);
/* "host:port" of the server the last operation spoke to ("" before any). */
const char *kmip_client_server(const struct kmip_client *client);

/*
 * The operations. Besides the connection's errors: -EREMOTEIO when the server refused (why has
 * its reason and message), -EBADMSG or -EPROTO when its answer is not a KMIP response to the
 * request.
 */
/*
 * Create an AES-256 key named name, in Object Group group (either may be NULL); its
 * identifier into unique_id.
 */
int kmip_create_aes256(struct kmip_client *client, const char *name, const char *group,
		       char unique_id[KMIP_ID_SIZE], char why[KMIP_WHY_SIZE]);
int kmip_activate(struct kmip_client *client, const char *unique_id, char why[KMIP_WHY_SIZE]);
/* The symmetric keys named name: *count of them, the first (if any) into unique_id. */
int kmip_locate_name(struct kmip_client *client, const char *name, char unique_id[KMIP_ID_SIZE],
		     size_t *count, char why[KMIP_WHY_SIZE]);
/*
 * The symmetric keys in Object Group group: *count of them (all), the first max (at most
 * KMIP_LOCATE_MAX) into ids. -E2BIG, with why saying so, when there are more than max.
 */
int kmip_locate_group(struct kmip_client *client, const char *group,
		      char ids[][KMIP_ID_SIZE], size_t max, size_t *count,
		      char why[KMIP_WHY_SIZE]);
/*
 * The object's State, Name (its first, "" when none; name may be NULL) and Activation Date
 * (0 when none): -EPROTO when the answer has no State.
 */
int kmip_get_state(struct kmip_client *client, const char *unique_id, uint32_t *state,
		   char name[KMIP_ID_SIZE], int64_t *activation_date, char why[KMIP_WHY_SIZE]);
/* "Active", "Deactivated", "Compromised", ... */
const char *kmip_state_name(uint32_t state);
/* The key's bytes into key (the caller's locked memory): -EPROTO unless it is AES-256. */
int kmip_get_aes256(struct kmip_client *client, const char *unique_id,
		    uint8_t key[KMIP_KEY_SIZE], char why[KMIP_WHY_SIZE]);
int kmip_revoke(struct kmip_client *client, const char *unique_id, uint32_t reason,
		char why[KMIP_WHY_SIZE]);
int kmip_destroy(struct kmip_client *client, const char *unique_id, char why[KMIP_WHY_SIZE]);

#endif
