/*
 * The TLS client of crypto/tls.h: one mutually authenticated TLS 1.2+ connection to a key
 * server, for the KMIP client (kmip/kmip_client.c). It is libssl's work; this file decides the
 * trust: only the TLS wallet's own trusted certificates verify the server (the system store is
 * never loaded, so a public CA cannot vouch for a key server), the host name or IP address the
 * operator configured must be in the server's certificate, and the client's key and certificate
 * come from the wallet. Everything runs on a non-blocking socket and waits in poll(2) against
 * one deadline, so a server that stops answering costs at most the timeout, never a hung mount.
 *
 * A write to a socket the server has closed would raise SIGPIPE; tls_send blocks the signal in
 * the calling thread and takes a pending one back before unblocking, so neither the daemon nor
 * tdekey has to change its signal dispositions for the key server's sake.
 */
#include "crypto/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "crypto/tls_handles.h"

struct tls_connection {
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;
};

/* why = prefix followed by detail. */
static void set_why(char why[TLS_WHY_SIZE], const char *prefix, const char *detail)
{
	if (why)
		snprintf(why, TLS_WHY_SIZE, "%s%s", prefix, detail);
}

/* SIGPIPE held back in this thread while writing to the socket (see the top of the file). */
static void sigpipe_block(sigset_t *old)
{
	sigset_t pipe_set;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, old);
}

/* A SIGPIPE raised meanwhile is taken here, so it never reaches the process. */
static void sigpipe_restore(const sigset_t *old)
{
	const struct timespec no_wait = { 0, 0 };
	sigset_t pipe_set;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	if (!sigismember(old, SIGPIPE))
		while (sigtimedwait(&pipe_set, NULL, &no_wait) == SIGPIPE)
			;
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is ready for events or the deadline passes (-ETIMEDOUT). */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - now_ms();
		struct pollfd pfd = { .fd = fd, .events = events };
		int ret;

		if (left <= 0)
			return -ETIMEDOUT;
		ret = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (ret > 0)
			return 0;
		if (ret < 0 && errno != EINTR)
			return -errno;
	}
}

static int tcp_connect(const char *host, const char *port, int64_t deadline, int *out,
		       char why[TLS_WHY_SIZE])
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *list = NULL;
	int ret, last = -EHOSTUNREACH;

	ret = getaddrinfo(host, port, &hints, &list);
	if (ret != 0) {
		set_why(why, "cannot resolve the name: ", gai_strerror(ret));
		return -EHOSTUNREACH;
	}
	for (struct addrinfo *ai = list; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				ai->ai_protocol);
		int soerr = 0;
		socklen_t soerr_len = sizeof(soerr);

		if (fd < 0) {
			last = -errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			goto connected;
		if (errno != EINPROGRESS) {
			last = -errno;
			close(fd);
			continue;
		}
		ret = wait_fd(fd, POLLOUT, deadline);
		if (ret == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &soerr_len) == 0 &&
		    soerr == 0)
			goto connected;
		last = ret < 0 ? ret : -(soerr ? soerr : errno);
		close(fd);
		if (last == -ETIMEDOUT)
			break;
		continue;
connected:
		freeaddrinfo(list);
		*out = fd;
		return 0;
	}
	freeaddrinfo(list);
	set_why(why, "", last == -ETIMEDOUT ? "no answer within the timeout" : strerror(-last));
	return last;
}

/* After an SSL call returned ret: wait for what it wants (0) or the error it met (< 0). */
static int ssl_wait(struct tls_connection *c, int ret, int64_t deadline)
{
	switch (SSL_get_error(c->ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		return wait_fd(c->fd, POLLIN, deadline);
	case SSL_ERROR_WANT_WRITE:
		return wait_fd(c->fd, POLLOUT, deadline);
	case SSL_ERROR_ZERO_RETURN:
		return -ECONNRESET;
	case SSL_ERROR_SYSCALL:
		return ERR_peek_error() ? -EPROTO : -ECONNRESET;
	default:
		return -EPROTO;
	}
}

/* A TLS failure in words: an alert the server sent is its refusal of us (-EACCES). */
static int tls_failure(int ret, const char *what, char why[TLS_WHY_SIZE])
{
	unsigned long code = ERR_peek_last_error();
	const char *reason = code ? ERR_reason_error_string(code) : NULL;
	char text[TLS_WHY_SIZE];

	if (ret == -ETIMEDOUT) {
		set_why(why, what, ": no answer within the timeout");
	} else if (ret == -ECONNRESET) {
		set_why(why, what, ": the server closed the connection");
	} else if (reason && strstr(reason, "alert")) {
		snprintf(text, sizeof(text), "the server refused the TLS session (%s)", reason);
		set_why(why, "", text);
		ret = -EACCES;
	} else {
		snprintf(text, sizeof(text), "%s: %s", what, reason ? reason : "TLS failure");
		set_why(why, "", text);
		if (ret >= 0)
			ret = -EPROTO;
	}
	ERR_clear_error();
	return ret;
}

static int configure(struct tls_connection *c, const char *host,
		     const struct tls_bundle *identity, char why[TLS_WHY_SIZE])
{
	X509_STORE *store;
	unsigned char ip[16];
	bool is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;

	if (!identity->key || !identity->cert) {
		set_why(why, "", "the TLS wallet has no client certificate");
		return -EINVAL;
	}
	if (identity->trusted_count == 0) {
		set_why(why, "", "the TLS wallet trusts no certificate (tdekey tls trust)");
		return -EINVAL;
	}
	c->ctx = SSL_CTX_new(TLS_client_method());
	if (!c->ctx || !SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION) ||
	    SSL_CTX_use_certificate(c->ctx, identity->cert->x509) != 1 ||
	    SSL_CTX_use_PrivateKey(c->ctx, identity->key->pkey) != 1 ||
	    SSL_CTX_check_private_key(c->ctx) != 1)
		return tls_failure(-EPROTO, "the client certificate", why);
	/* Only the wallet's trust: a fresh store, never the default paths. */
	store = X509_STORE_new();
	if (!store)
		return -ENOMEM;
	SSL_CTX_set_cert_store(c->ctx, store);
	for (size_t i = 0; i < identity->trusted_count; i++)
		if (X509_STORE_add_cert(store, identity->trusted[i]->x509) != 1)
			return tls_failure(-EPROTO, "a trusted certificate", why);
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);

	c->ssl = SSL_new(c->ctx);
	if (!c->ssl)
		return -ENOMEM;
	SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (is_ip) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host) != 1)
			return -EINVAL;
	} else if (SSL_set1_host(c->ssl, host) != 1 ||
		   SSL_set_tlsext_host_name(c->ssl, host) != 1) {
		return -EINVAL;
	}
	if (SSL_set_fd(c->ssl, c->fd) != 1)
		return -ENOMEM;
	return 0;
}

int tls_connect(const char *host, const char *port, const struct tls_bundle *identity,
		int timeout_ms, struct tls_connection **out, char why[TLS_WHY_SIZE])
{
	int64_t deadline = now_ms() + timeout_ms;
	struct tls_connection *c = calloc(1, sizeof(*c));
	int ret;

	if (!c)
		return -ENOMEM;
	c->fd = -1;
	ERR_clear_error();
	ret = tcp_connect(host, port, deadline, &c->fd, why);
	if (ret == 0)
		ret = configure(c, host, identity, why);
	while (ret == 0) {
		int done = SSL_connect(c->ssl);
		if (done == 1)
			break;
		ret = ssl_wait(c, done, deadline);
		if (ret < 0) {
			long verify = SSL_get_verify_result(c->ssl);
			if (verify != X509_V_OK) {
				set_why(why, "the server's certificate: ",
					X509_verify_cert_error_string(verify));
				ERR_clear_error();
				ret = -EPERM;
			} else {
				ret = tls_failure(ret, "TLS handshake", why);
			}
		}
	}
	if (ret < 0) {
		tls_close(c);
		return ret;
	}
	*out = c;
	return 0;
}

int tls_send(struct tls_connection *c, const void *buf, size_t len, int timeout_ms,
	     char why[TLS_WHY_SIZE])
{
	int64_t deadline = now_ms() + timeout_ms;
	const uint8_t *at = buf;
	sigset_t old;
	int ret = 0;

	sigpipe_block(&old);
	while (len > 0) {
		size_t written = 0;
		int done = SSL_write_ex(c->ssl, at, len, &written);
		if (done == 1) {
			at += written;
			len -= written;
			continue;
		}
		ret = ssl_wait(c, done, deadline);
		if (ret < 0) {
			ret = tls_failure(ret, "sending", why);
			break;
		}
	}
	sigpipe_restore(&old);
	return ret;
}

int tls_receive(struct tls_connection *c, void *buf, size_t len, int timeout_ms,
		char why[TLS_WHY_SIZE])
{
	int64_t deadline = now_ms() + timeout_ms;
	uint8_t *at = buf;

	while (len > 0) {
		size_t got = 0;
		int done = SSL_read_ex(c->ssl, at, len, &got);
		int ret;

		if (done == 1) {
			at += got;
			len -= got;
			continue;
		}
		ret = ssl_wait(c, done, deadline);
		if (ret < 0)
			return tls_failure(ret, "receiving", why);
	}
	return 0;
}

void tls_close(struct tls_connection *c)
{
	if (!c)
		return;
	if (c->ssl) {
		sigset_t old;

		/* A one-way close notify; the answer is not waited for. */
		sigpipe_block(&old);
		(void)SSL_shutdown(c->ssl);
		sigpipe_restore(&old);
		SSL_free(c->ssl);
	}
	SSL_CTX_free(c->ctx);
	if (c->fd >= 0)
		close(c->fd);
	ERR_clear_error();
	free(c);
}
