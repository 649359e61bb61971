/*
 * Reading passwords: from the controlling terminal with echo off, from a file, or from an
 * inherited file descriptor; never from the command line or the environment, where other users
 * (ps, /proc/PID/environ) and shell histories would see them.
 *
 * Bytes go straight from read(2) into locked memory, one at a time, so no stdio buffer keeps a
 * copy. While echo is off, a signal that ends the process first puts the terminal back.
 */
#include "keystore/wallet_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "util/util.h"

static int read_line(int fd, struct secret *secret, bool *too_long)
{
	uint8_t byte;

	secret->len = 0;
	*too_long = false;
	for (;;) {
		ssize_t n = read(fd, &byte, 1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0 || byte == '\n')
			break;
		if (secret->len == SECRET_MAX_SIZE) {
			*too_long = true;
			continue; /* drain the line so it is not read as the next answer */
		}
		secret->bytes[secret->len++] = byte;
	}
	secure_wipe(&byte, sizeof(byte));
	if (secret->len > 0 && secret->bytes[secret->len - 1] == '\r')
		secret->bytes[--secret->len] = 0;
	return 0;
}

static int read_from_fd(int fd, const char *what, struct secret *secret,
			char error[KEYSTORE_ERROR_SIZE])
{
	bool too_long;
	int ret = read_line(fd, secret, &too_long);

	if (ret < 0) {
		wallet_message(error, "cannot read the password from %s: %s", what, keystore_error_message(ret));
		return ret;
	}
	if (too_long) {
		wallet_message(error, "the password from %s is longer than %d bytes", what,
			       SECRET_MAX_SIZE);
		return -EINVAL;
	}
	if (secret->len == 0) {
		wallet_message(error, "the password from %s is empty", what);
		return -EINVAL;
	}
	return 0;
}

static int read_from_file(const char *path, struct secret *secret, char error[KEYSTORE_ERROR_SIZE])
{
	struct stat st;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		ret = -errno;
		wallet_message(error, "cannot open password file %s: %s", path, keystore_error_message(ret));
		return ret;
	}
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & (S_IRWXG | S_IRWXO)))
		log_warning("warning: password file %s is readable by group or others; "
			    "chmod 600 %s",
			    path, path);
	ret = read_from_fd(fd, path, secret, error);
	close(fd);
	return ret;
}

/* --- terminal -------------------------------------------------------------------------- */

static int terminal_fd = -1;
static struct termios saved_terminal;
static const int restore_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

static void restore_and_reraise(int signal_number)
{
	/* Only async-signal-safe calls: tcsetattr, signal, raise. */
	if (terminal_fd >= 0)
		tcsetattr(terminal_fd, TCSAFLUSH, &saved_terminal);
	signal(signal_number, SIG_DFL);
	raise(signal_number);
}

static int prompt_once(int fd, const char *prompt, struct secret *secret,
		       char error[KEYSTORE_ERROR_SIZE])
{
	struct sigaction action, previous[ARRAY_SIZE(restore_signals)];
	struct termios quiet;
	sigset_t stop_signals, old_mask;
	bool too_long;
	int ret;

	if (tcgetattr(fd, &saved_terminal) < 0) {
		ret = -errno;
		wallet_message(error, "cannot set up the terminal: %s", keystore_error_message(ret));
		return ret;
	}
	quiet = saved_terminal;
	quiet.c_lflag &= (tcflag_t) ~(ECHO | ECHOE | ECHOK);
	quiet.c_lflag |= ECHONL;

	memset(&action, 0, sizeof(action));
	action.sa_handler = restore_and_reraise;
	sigemptyset(&action.sa_mask);
	terminal_fd = fd;
	for (size_t i = 0; i < ARRAY_SIZE(restore_signals); i++)
		sigaction(restore_signals[i], &action, &previous[i]);
	/* A stop (^Z) while echo is off would leave the shell without echo: hold it until after. */
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGTSTP);
	sigaddset(&stop_signals, SIGTTIN);
	sigaddset(&stop_signals, SIGTTOU);
	sigprocmask(SIG_BLOCK, &stop_signals, &old_mask);

	/*
	 * Echo off (and typed-ahead input flushed) before the prompt shows: an answer typed the
	 * moment the prompt appears must not be thrown away by the flush.
	 */
	tcsetattr(fd, TCSAFLUSH, &quiet);
	/* The prompt is a courtesy: when it cannot be shown, reading still works. */
	if (write(fd, prompt, strlen(prompt)) < 0)
		log_debug("cannot show the password prompt: %s", strerror(errno));
	ret = read_line(fd, secret, &too_long);
	tcsetattr(fd, TCSAFLUSH, &saved_terminal);

	sigprocmask(SIG_SETMASK, &old_mask, NULL);
	for (size_t i = 0; i < ARRAY_SIZE(restore_signals); i++)
		sigaction(restore_signals[i], &previous[i], NULL);
	terminal_fd = -1;

	if (ret < 0) {
		wallet_message(error, "cannot read the password from the terminal: %s",
			       keystore_error_message(ret));
		return ret;
	}
	if (too_long) {
		wallet_message(error, "the password is longer than %d bytes", SECRET_MAX_SIZE);
		return -EINVAL;
	}
	if (secret->len == 0) {
		wallet_message(error, "empty password");
		return -EINVAL;
	}
	return 0;
}

static int read_from_terminal(const char *prompt, bool confirm, struct secret *secret,
			      char error[KEYSTORE_ERROR_SIZE])
{
	struct secret *again = NULL;
	int fd, ret;

	/*
	 * A prompt only for a person at a terminal: when standard input is not one (a pipe, a
	 * script, a unit, fstab) nobody is there to answer, even if /dev/tty can be opened.
	 */
	fd = isatty(STDIN_FILENO) == 1 ? open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY) : -1;
	if (fd < 0) {
		wallet_message(error,
			       "a password is needed and there is no terminal to ask on; give "
			       "--password-file FILE or --password-fd N");
		return -ENXIO;
	}
	ret = prompt_once(fd, prompt ? prompt : "Password: ", secret, error);
	if (ret < 0 || !confirm)
		goto out_close;
	again = secret_new();
	if (!again) {
		ret = -ENOMEM;
		goto out_close;
	}
	ret = prompt_once(fd, "Repeat the password: ", again, error);
	if (ret == 0 && (again->len != secret->len ||
			 !secure_equal(again->bytes, secret->bytes, secret->len))) {
		wallet_message(error, "the two passwords differ");
		ret = -EINVAL;
	}
	secret_free(again);
out_close:
	close(fd);
	return ret;
}

int password_read(const struct password_source *source, const char *prompt, bool confirm,
		  struct secret **out, char error[KEYSTORE_ERROR_SIZE])
{
	struct secret *secret;
	char what[32];
	int ret;

	secret = secret_new();
	if (!secret) {
		wallet_message(error, "out of memory");
		return -ENOMEM;
	}
	switch (source->kind) {
	case PASSWORD_SOURCE_PROMPT:
		ret = read_from_terminal(prompt, confirm, secret, error);
		break;
	case PASSWORD_SOURCE_FILE:
		ret = read_from_file(source->path, secret, error);
		break;
	case PASSWORD_SOURCE_FD:
		snprintf(what, sizeof(what), "descriptor %d", source->fd);
		ret = read_from_fd(source->fd, what, secret, error);
		break;
	case PASSWORD_SOURCE_EXTERNAL_STORE:
	default:
		wallet_message(error, "the external store is opened by the wallet");
		ret = -EINVAL;
		break;
	}
	if (ret < 0) {
		secret_free(secret);
		return ret;
	}
	*out = secret;
	return 0;
}

int password_check_new(const struct secret *password, char error[KEYSTORE_ERROR_SIZE])
{
	if (password->len >= NEW_PASSWORD_MIN_SIZE)
		return 0;
	wallet_message(error, "the new password must have at least %d characters",
		       NEW_PASSWORD_MIN_SIZE);
	return -EINVAL;
}
