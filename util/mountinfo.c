/*
 * Reading /proc/self/mountinfo (proc(5)): fields are separated by spaces, and spaces, tabs,
 * newlines and backslashes inside paths are written as octal escapes, which are undone here.
 */
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void unescape(char *text)
{
	char *out = text;

	for (char *in = text; *in; in++) {
		if (in[0] == '\\' && in[1] >= '0' && in[1] <= '3' && in[2] >= '0' && in[2] <= '7' &&
		    in[3] >= '0' && in[3] <= '7') {
			*out++ = (char)((in[1] - '0') * 64 + (in[2] - '0') * 8 + (in[3] - '0'));
			in += 3;
		} else {
			*out++ = *in;
		}
	}
	*out = '\0';
}

/* "user_id=N" among the comma-separated super options (FUSE writes it for every mount). */
static long long user_id_option(const char *options)
{
	for (const char *p = options; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
		if (strncmp(p, "user_id=", 8) == 0) {
			char *end;
			long long value = strtoll(p + 8, &end, 10);

			if (end != p + 8 && (*end == ',' || *end == '\0') && value >= 0)
				return value;
			return -1;
		}
	}
	return -1;
}

static bool parse_line(char *line, struct mount_entry *entry)
{
	char *fields[12], *saveptr = NULL, *separator;
	int count = 0;

	/* "ID PARENT MAJOR:MINOR ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER" */
	separator = strstr(line, " - ");
	if (!separator)
		return false;
	*separator = '\0';
	for (char *field = strtok_r(line, " ", &saveptr); field && count < 5;
	     field = strtok_r(NULL, " ", &saveptr))
		fields[count++] = field;
	if (count < 5 || sscanf(fields[2], "%u:%u", &entry->major, &entry->minor) != 2)
		return false;
	saveptr = NULL;
	char *fs_type = strtok_r(separator + 3, " ", &saveptr);
	char *source = strtok_r(NULL, " ", &saveptr);
	char *super_options = strtok_r(NULL, " ", &saveptr);
	if (!fs_type || !source)
		return false;
	unescape(fields[4]);
	unescape(source);
	snprintf(entry->mount_point, sizeof(entry->mount_point), "%s", fields[4]);
	snprintf(entry->fs_type, sizeof(entry->fs_type), "%s", fs_type);
	snprintf(entry->source, sizeof(entry->source), "%s", source);
	entry->user_id = user_id_option(super_options);
	return true;
}

enum match { MATCH_DEVICE, MATCH_POINT, MATCH_SOURCE };

static bool matches(const struct mount_entry *candidate, enum match match, unsigned major,
		    unsigned minor, const char *text, const char *fs_type)
{
	switch (match) {
	case MATCH_DEVICE:
		return candidate->major == major && candidate->minor == minor;
	case MATCH_POINT:
		return strcmp(candidate->mount_point, text) == 0;
	case MATCH_SOURCE:
		return strcmp(candidate->fs_type, fs_type) == 0 && strcmp(candidate->source, text) == 0;
	}
	return false;
}

static int find_mount(enum match match, unsigned major, unsigned minor, const char *text,
		      const char *fs_type, struct mount_entry *entry)
{
	FILE *mounts = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t capacity = 0;
	int ret = -ENOENT;

	if (!mounts)
		return -errno;
	/* The last match wins: a later mount on the same point hides the earlier ones. */
	while (getline(&line, &capacity, mounts) > 0) {
		struct mount_entry candidate;

		line[strcspn(line, "\n")] = '\0';
		if (!parse_line(line, &candidate))
			continue;
		if (matches(&candidate, match, major, minor, text, fs_type)) {
			*entry = candidate;
			ret = 0;
		}
	}
	free(line);
	fclose(mounts);
	return ret;
}

int mount_find_by_device(unsigned major, unsigned minor, struct mount_entry *entry)
{
	return find_mount(MATCH_DEVICE, major, minor, NULL, NULL, entry);
}

int mount_find_by_point(const char *mount_point, struct mount_entry *entry)
{
	return find_mount(MATCH_POINT, 0, 0, mount_point, NULL, entry);
}

int mount_find_by_source(const char *fs_type, const char *source, struct mount_entry *entry)
{
	return find_mount(MATCH_SOURCE, 0, 0, source, fs_type, entry);
}

int mount_for_each(const char *fs_type, int (*visit)(const struct mount_entry *entry, void *context),
		   void *context)
{
	FILE *mounts = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t capacity = 0;
	int ret = 0;

	if (!mounts)
		return -errno;
	while (ret == 0 && getline(&line, &capacity, mounts) > 0) {
		struct mount_entry candidate;

		line[strcspn(line, "\n")] = '\0';
		if (parse_line(line, &candidate) && strcmp(candidate.fs_type, fs_type) == 0)
			ret = visit(&candidate, context);
	}
	free(line);
	fclose(mounts);
	return ret;
}
