/*
 * The format's failure meanings (fs/format.h, enum format_error) and their messages: what a
 * decoder found wrong with a header or a config record, kept apart from errno so that a system
 * error from the backing filesystem is never read as a damaged file, or the other way round.
 */
#include "fs/format.h"

#include <string.h>

static const char *const messages[FORMAT_ERR_COUNT] = {
	[FORMAT_ERR_DAMAGED] = "damaged (bad magic, checksum, length or field)",
	[FORMAT_ERR_NEWER_FORMAT] = "written by a newer tdefs format",
	[FORMAT_ERR_AUTHENTICATION] = "fails authentication (altered, spliced, or sealed under "
				      "another master key)",
	[FORMAT_ERR_COPIES_DISAGREE] = "its two header copies disagree in a way no crash leaves "
				       "them",
};

enum format_error format_error_of(int ret)
{
	int n = -ret - FORMAT_ERROR_BASE;

	return ret < 0 && n > 0 && n < FORMAT_ERR_COUNT ? (enum format_error)n : 0;
}

const char *format_error_message(int ret)
{
	enum format_error error = format_error_of(ret);

	if (error)
		return messages[error];
	return ret < 0 ? strerror(-ret) : "success";
}
