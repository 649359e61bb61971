/*
 * json_text: a string as a JSON string literal, for every --json output of the tools. File
 * names, backing paths, tags and error messages are chosen by users, some of them by other
 * local users, so nothing is printed as it is: '"' and '\' are escaped, control characters
 * (below 0x20, and 0x7f) are written as \u00XX, and a byte that is not part of a valid UTF-8
 * sequence is written as \u00XX of its value (the name then reads as Latin-1 at that byte).
 * The output is always valid UTF-8 JSON, whatever the input bytes.
 */
#ifndef TDEFS_JSON_TEXT_H
#define TDEFS_JSON_TEXT_H

#include <stdio.h>

/* Write text (NUL-terminated bytes, any encoding) to out as a quoted JSON string. */
void json_write_string(FILE *out, const char *text);

#endif
