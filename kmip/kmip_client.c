/*
 * The KMIP client (kmip/kmip.h): a list of servers tried in order over crypto/tls.h's mutually
 * authenticated connection, one request and one response at a time. A response is read by its
 * announced size (at most KMIP_MAX_MESSAGE) into locked memory, because a Get answer holds the
 * key; the decoder leaves the key bytes there and they are copied once, into the caller's
 * locked buffer, before the response is wiped.
 *
 * When a connection breaks during a request, the request is sent again once over a new
 * connection (the servers in order again) if it is one whose repetition changes nothing on the
 * server: Locate, Get, Activate, Revoke, Destroy. A Create is never repeated, since a lost answer
 * may still have made a key; the keystore finds such a key again by its name.
 */
#include "kmip/kmip.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/crypto.h"
#include "crypto/tls.h"
#include "kmip/ttlv.h"

#define REQUEST_CAPACITY 2048 /* the largest request, a named Create, is under 400 bytes */

struct kmip_client {
	struct kmip_server servers[KMIP_MAX_SERVERS];
	size_t count;
	const struct tls_bundle *identity;
	int timeout_ms;
	struct tls_connection *connection;
	char server_name[KMIP_HOST_SIZE + KMIP_PORT_SIZE + 4];
};

/* ---- the server list ---- */

static bool host_char(char c, bool bracketed)
{
	return isalnum((unsigned char)c) || c == '.' || c == '-' || (bracketed && c == ':');
}

static int parse_one(const char *entry, size_t len, struct kmip_server *server,
		     char why[KMIP_WHY_SIZE])
{
	const char *host = entry, *port = NULL, *end = entry + len;
	size_t host_len;
	bool bracketed = false;

	if (len == 0) {
		snprintf(why, KMIP_WHY_SIZE, "an empty server in the list");
		return -EINVAL;
	}
	if (entry[0] == '[') {
		const char *close = memchr(entry, ']', len);
		if (!close || (close + 1 != end && close[1] != ':'))
			goto bad;
		bracketed = true;
		host = entry + 1;
		host_len = (size_t)(close - host);
		if (close + 1 != end)
			port = close + 2;
	} else {
		const char *colon = memchr(entry, ':', len);
		if (colon && memchr(colon + 1, ':', (size_t)(end - colon - 1))) {
			snprintf(why, KMIP_WHY_SIZE,
				 "server \"%.*s\": put an IPv6 address in brackets ([::1]:5696)",
				 (int)(len > 200 ? 200 : len), entry);
			return -EINVAL;
		}
		host_len = colon ? (size_t)(colon - entry) : len;
		if (colon)
			port = colon + 1;
	}
	if (host_len == 0 || host_len >= KMIP_HOST_SIZE || host[0] == '-')
		goto bad;
	for (size_t i = 0; i < host_len; i++)
		if (!host_char(host[i], bracketed))
			goto bad;
	memcpy(server->host, host, host_len);
	server->host[host_len] = '\0';
	if (port) {
		size_t port_len = (size_t)(end - port);
		unsigned long value = 0;
		if (port_len == 0 || port_len > 5)
			goto bad;
		for (size_t i = 0; i < port_len; i++) {
			if (!isdigit((unsigned char)port[i]))
				goto bad;
			value = value * 10 + (unsigned long)(port[i] - '0');
		}
		if (value == 0 || value > 65535)
			goto bad;
		snprintf(server->port, sizeof(server->port), "%lu", value);
	} else {
		snprintf(server->port, sizeof(server->port), "%s", KMIP_DEFAULT_PORT);
	}
	return 0;
bad:
	snprintf(why, KMIP_WHY_SIZE, "server \"%.*s\" is not host:port", (int)(len > 200 ? 200 : len),
		 entry);
	return -EINVAL;
}

int kmip_servers_parse(const char *text, struct kmip_server servers[KMIP_MAX_SERVERS],
		       size_t *count, char why[KMIP_WHY_SIZE])
{
	const char *at = text;
	size_t n = 0;

	for (;;) {
		const char *comma = strchr(at, ',');
		size_t len = comma ? (size_t)(comma - at) : strlen(at);
		int ret;

		if (n == KMIP_MAX_SERVERS) {
			snprintf(why, KMIP_WHY_SIZE, "more than %d servers", KMIP_MAX_SERVERS);
			return -EINVAL;
		}
		ret = parse_one(at, len, &servers[n], why);
		if (ret < 0)
			return ret;
		n++;
		if (!comma)
			break;
		at = comma + 1;
	}
	*count = n;
	return 0;
}

int kmip_servers_format(const struct kmip_server *servers, size_t count, char *out, size_t size)
{
	size_t used = 0;

	if (size == 0)
		return -ENOBUFS;
	out[0] = '\0';
	for (size_t i = 0; i < count; i++) {
		bool v6 = strchr(servers[i].host, ':') != NULL;
		int n = snprintf(out + used, size - used, "%s%s%s%s:%s", i ? "," : "", v6 ? "[" : "",
				 servers[i].host, v6 ? "]" : "", servers[i].port);
		if (n < 0 || (size_t)n >= size - used)
			return -ENOBUFS;
		used += (size_t)n;
	}
	return 0;
}

/* ---- connecting ---- */

int kmip_client_new(const struct kmip_server *servers, size_t count,
		    const struct tls_bundle *identity, int timeout_ms, struct kmip_client **out)
{
	struct kmip_client *client;

	if (count == 0 || count > KMIP_MAX_SERVERS || timeout_ms <= 0)
		return -EINVAL;
	client = calloc(1, sizeof(*client));
	if (!client)
		return -ENOMEM;
	memcpy(client->servers, servers, count * sizeof(*servers));
	client->count = count;
	client->identity = identity;
	client->timeout_ms = timeout_ms;
	*out = client;
	return 0;
}

static void drop_connection(struct kmip_client *client)
{
	tls_close(client->connection);
	client->connection = NULL;
}

void kmip_client_free(struct kmip_client *client)
{
	if (!client)
		return;
	drop_connection(client);
	free(client);
}

const char *kmip_client_server(const struct kmip_client *client)
{
	return client->server_name;
}

static void name_server(struct kmip_client *client, size_t i)
{
	const struct kmip_server *s = &client->servers[i];
	bool v6 = strchr(s->host, ':') != NULL;

	snprintf(client->server_name, sizeof(client->server_name), "%s%s%s:%s", v6 ? "[" : "",
		 s->host, v6 ? "]" : "", s->port);
}

/* The client certificate's validity, checked here so that an expired one is named as such
 * rather than as whatever alert a server chooses to send for it. */
static int check_identity(const struct kmip_client *client, char why[KMIP_WHY_SIZE])
{
	struct tls_cert_info info;
	time_t now = time(NULL);
	char date[32];
	struct tm tm;

	if (!client->identity || !client->identity->cert || !client->identity->key) {
		snprintf(why, KMIP_WHY_SIZE, "the TLS wallet has no client certificate");
		return -EINVAL;
	}
	if (tls_cert_info(client->identity->cert, &info) < 0) {
		snprintf(why, KMIP_WHY_SIZE, "the client certificate cannot be read");
		return -EINVAL;
	}
	if (now > info.not_after || now < info.not_before) {
		time_t when = (time_t)(now > info.not_after ? info.not_after : info.not_before);
		gmtime_r(&when, &tm);
		strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", &tm);
		snprintf(why, KMIP_WHY_SIZE, "the client certificate (%.200s) %s %s", info.subject,
			 now > info.not_after ? "expired on" : "is not valid before", date);
		return -EKEYEXPIRED;
	}
	return 0;
}

int kmip_client_connect(struct kmip_client *client, char why[KMIP_WHY_SIZE])
{
	size_t used = 0;
	int ret = check_identity(client, why);

	if (ret < 0)
		return ret;
	drop_connection(client);
	why[0] = '\0';
	for (size_t i = 0; i < client->count; i++) {
		char reason[TLS_WHY_SIZE] = "";
		int n;

		name_server(client, i);
		ret = tls_connect(client->servers[i].host, client->servers[i].port,
				  client->identity, client->timeout_ms, &client->connection, reason);
		if (ret == 0)
			return 0;
		/* Each server and its failure, so the one line says why none could be used. */
		n = snprintf(why + used, KMIP_WHY_SIZE - used, "%s%s: %s", used ? "; " : "",
			     client->server_name, reason[0] ? reason : strerror(-ret));
		if (n > 0)
			used = (size_t)n >= KMIP_WHY_SIZE - used ? KMIP_WHY_SIZE - 1 : used + (size_t)n;
	}
	return ret;
}

/* ---- one request ---- */

static bool repeatable(enum kmip_operation operation)
{
	return operation != KMIP_OP_CREATE;
}

/*
 * Send request and read its response into *buffer (secure memory, the caller frees it with
 * secure_free) decoded into response. The server's refusal is -EREMOTEIO.
 */
static int transact(struct kmip_client *client, const struct kmip_request *request,
		    struct kmip_response *response, uint8_t **buffer, char why[KMIP_WHY_SIZE])
{
	uint8_t out[REQUEST_CAPACITY];
	uint8_t header[TTLV_HEADER_SIZE];
	char reason[TLS_WHY_SIZE];
	size_t out_len, total;
	int ret;

	*buffer = NULL;
	ret = kmip_encode_request(request, out, sizeof(out), &out_len);
	if (ret < 0) {
		snprintf(why, KMIP_WHY_SIZE, "cannot encode the %s request",
			 kmip_operation_name(request->operation));
		return ret;
	}
	for (int attempt = 0;; attempt++) {
		if (!client->connection) {
			ret = kmip_client_connect(client, why);
			if (ret < 0)
				return ret;
		}
		reason[0] = '\0';
		ret = tls_send(client->connection, out, out_len, client->timeout_ms, reason);
		if (ret == 0)
			ret = tls_receive(client->connection, header, sizeof(header),
					  client->timeout_ms, reason);
		if (ret == 0)
			break;
		drop_connection(client);
		if (attempt > 0 || !repeatable(request->operation)) {
			snprintf(why, KMIP_WHY_SIZE, "%s: %s", client->server_name,
				 reason[0] ? reason : strerror(-ret));
			return ret;
		}
	}

	ret = kmip_response_size(header, &total);
	if (ret == 0) {
		*buffer = secure_alloc(total);
		if (!*buffer)
			ret = -ENOMEM;
	}
	if (ret == 0) {
		memcpy(*buffer, header, sizeof(header));
		ret = tls_receive(client->connection, *buffer + sizeof(header),
				  total - sizeof(header), client->timeout_ms, reason);
		if (ret < 0) {
			drop_connection(client);
			snprintf(why, KMIP_WHY_SIZE, "%s: %s", client->server_name, reason);
			goto fail;
		}
		ret = kmip_decode_response(*buffer, total, request->operation, response);
	}
	if (ret < 0) {
		/* The stream's framing is lost with a bad message: start over on a new one. */
		drop_connection(client);
		if (ret == -ENOMEM)
			snprintf(why, KMIP_WHY_SIZE, "no memory for the %s response",
				 kmip_operation_name(request->operation));
		else
			snprintf(why, KMIP_WHY_SIZE, "%s sent a malformed KMIP response to %s (%s)",
				 client->server_name, kmip_operation_name(request->operation),
				 ret == -EMSGSIZE ? "larger than 64 KiB"
				 : ret == -EBADMSG ? "not TTLV"
						   : "not the answer asked for");
		if (ret == -EMSGSIZE)
			ret = -EBADMSG;
		goto fail;
	}
	if (response->status != KMIP_STATUS_SUCCESS) {
		snprintf(why, KMIP_WHY_SIZE, "%s refused %s: %s%s%s%s", client->server_name,
			 kmip_operation_name(request->operation), kmip_reason_name(response->reason),
			 response->message[0] ? " (" : "", response->message,
			 response->message[0] ? ")" : "");
		ret = -EREMOTEIO;
		goto fail;
	}
	return 0;
fail:
	secure_free(*buffer);
	*buffer = NULL;
	return ret;
}

static struct kmip_request request_for(enum kmip_operation operation)
{
	struct kmip_request request = { .version = { 1, 2 }, .operation = operation };
	return request;
}

/* An operation whose answer is only the object's identifier, which must be the one asked for. */
static int simple(struct kmip_client *client, struct kmip_request *request,
		  char why[KMIP_WHY_SIZE])
{
	struct kmip_response response;
	uint8_t *buffer;
	int ret = transact(client, request, &response, &buffer, why);

	if (ret < 0)
		return ret;
	if (strcmp(response.unique_id, request->unique_id) != 0) {
		snprintf(why, KMIP_WHY_SIZE, "%s answered %s for another object",
			 client->server_name, kmip_operation_name(request->operation));
		ret = -EPROTO;
	}
	secure_free(buffer);
	return ret;
}

int kmip_create_aes256(struct kmip_client *client, const char *name, const char *group,
		       char unique_id[KMIP_ID_SIZE], char why[KMIP_WHY_SIZE])
{
	struct kmip_request request = request_for(KMIP_OP_CREATE);
	struct kmip_response response;
	uint8_t *buffer;
	int ret;

	request.name = name;
	request.group = group;
	request.algorithm = KMIP_ALGORITHM_AES;
	request.length_bits = KMIP_KEY_SIZE * 8;
	request.usage_mask = KMIP_USAGE_ENCRYPT | KMIP_USAGE_DECRYPT;
	ret = transact(client, &request, &response, &buffer, why);
	if (ret < 0)
		return ret;
	memcpy(unique_id, response.unique_id, KMIP_ID_SIZE);
	secure_free(buffer);
	return 0;
}

int kmip_activate(struct kmip_client *client, const char *unique_id, char why[KMIP_WHY_SIZE])
{
	struct kmip_request request = request_for(KMIP_OP_ACTIVATE);

	request.unique_id = unique_id;
	return simple(client, &request, why);
}

int kmip_revoke(struct kmip_client *client, const char *unique_id, uint32_t reason,
		char why[KMIP_WHY_SIZE])
{
	struct kmip_request request = request_for(KMIP_OP_REVOKE);

	request.unique_id = unique_id;
	request.revocation_reason = reason;
	return simple(client, &request, why);
}

int kmip_destroy(struct kmip_client *client, const char *unique_id, char why[KMIP_WHY_SIZE])
{
	struct kmip_request request = request_for(KMIP_OP_DESTROY);

	request.unique_id = unique_id;
	return simple(client, &request, why);
}

int kmip_locate_name(struct kmip_client *client, const char *name, char unique_id[KMIP_ID_SIZE],
		     size_t *count, char why[KMIP_WHY_SIZE])
{
	struct kmip_request request = request_for(KMIP_OP_LOCATE);
	struct kmip_response response;
	uint8_t *buffer;
	int ret;

	request.name = name;
	ret = transact(client, &request, &response, &buffer, why);
	if (ret < 0)
		return ret;
	*count = response.located;
	unique_id[0] = '\0';
	if (response.located > 0)
		memcpy(unique_id, response.located_ids[0], KMIP_ID_SIZE);
	secure_free(buffer);
	return 0;
}

int kmip_get_aes256(struct kmip_client *client, const char *unique_id,
		    uint8_t key[KMIP_KEY_SIZE], char why[KMIP_WHY_SIZE])
{
	struct kmip_request request = request_for(KMIP_OP_GET);
	struct kmip_response response;
	uint8_t *buffer;
	int ret;

	request.unique_id = unique_id;
	ret = transact(client, &request, &response, &buffer, why);
	if (ret < 0)
		return ret;
	if (strcmp(response.unique_id, unique_id) != 0) {
		snprintf(why, KMIP_WHY_SIZE, "%s answered Get with another object",
			 client->server_name);
		ret = -EPROTO;
	} else if (response.key_len != KMIP_KEY_SIZE ||
		   response.key_algorithm != KMIP_ALGORITHM_AES ||
		   response.key_length_bits != KMIP_KEY_SIZE * 8) {
		snprintf(why, KMIP_WHY_SIZE, "%s: object %.100s is not an AES-256 key",
			 client->server_name, unique_id);
		ret = -EPROTO;
	} else {
		memcpy(key, response.key, KMIP_KEY_SIZE);
	}
	secure_free(buffer);
	return ret;
}

int kmip_locate_group(struct kmip_client *client, const char *group,
		      char ids[][KMIP_ID_SIZE], size_t max, size_t *count,
		      char why[KMIP_WHY_SIZE])
{
	struct kmip_request request = request_for(KMIP_OP_LOCATE);
	struct kmip_response *response = malloc(sizeof(*response));
	uint8_t *buffer;
	int ret;

	if (!response)
		return -ENOMEM;
	if (max > KMIP_LOCATE_MAX)
		max = KMIP_LOCATE_MAX;
	request.group = group;
	ret = transact(client, &request, response, &buffer, why);
	if (ret < 0)
		goto out;
	*count = response->located;
	if (response->located > max) {
		snprintf(why, KMIP_WHY_SIZE, "%s: Object Group %.100s holds %zu keys, more than %zu",
			 client->server_name, group, response->located, max);
		ret = -E2BIG;
	} else {
		memcpy(ids, response->located_ids, response->located * KMIP_ID_SIZE);
	}
	secure_free(buffer);
out:
	free(response);
	return ret;
}

int kmip_get_state(struct kmip_client *client, const char *unique_id, uint32_t *state,
		   char name[KMIP_ID_SIZE], int64_t *activation_date, char why[KMIP_WHY_SIZE])
{
	struct kmip_request request = request_for(KMIP_OP_GET_ATTRIBUTES);
	struct kmip_response *response = malloc(sizeof(*response));
	uint8_t *buffer;
	int ret;

	if (!response)
		return -ENOMEM;
	request.unique_id = unique_id;
	ret = transact(client, &request, response, &buffer, why);
	if (ret < 0)
		goto out;
	if (strcmp(response->unique_id, unique_id) != 0 || response->state == 0) {
		snprintf(why, KMIP_WHY_SIZE, "%s answered Get Attributes of %.100s %s",
			 client->server_name, unique_id,
			 response->state == 0 ? "without its State" : "with another object");
		ret = -EPROTO;
	} else {
		*state = response->state;
		if (name)
			memcpy(name, response->name, KMIP_ID_SIZE);
		*activation_date = response->activation_date;
	}
	secure_free(buffer);
out:
	free(response);
	return ret;
}
