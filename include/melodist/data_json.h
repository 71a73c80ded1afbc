/* Growable byte buffers and the small JSON subset the data pipeline reads and writes.
 *
 * Writing: strings are emitted as UTF-8 (not \u-escaped, like Python's ensure_ascii=False); quotes, backslashes and
 * control characters are escaped; an invalid UTF-8 byte becomes U+FFFD so the output is always valid JSON.
 * Reading: one JSON object per line whose values are strings, numbers, booleans, null, or nested arrays/objects
 * (nested values are skipped); enough for IrishMAN and MusicPile JSONL records. */
#ifndef MELODIST_DATA_JSON_H
#define MELODIST_DATA_JSON_H

#include <stddef.h>
#include <stdint.h>

struct data_buf {
    char *data; /* always NUL-terminated when len > 0 or after any append */
    size_t len;
    size_t cap;
};

void data_buf_reset(struct data_buf *b);            /* len = 0, keeps the memory */
void data_buf_free(struct data_buf *b);
void data_buf_append(struct data_buf *b, const char *s, size_t n);
void data_buf_puts(struct data_buf *b, const char *s);
void data_buf_putc(struct data_buf *b, char c);
void data_buf_printf(struct data_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends s[0..n) as a JSON string literal, quotes included. */
void data_json_string(struct data_buf *b, const char *s, size_t n);
void data_json_cstring(struct data_buf *b, const char *s);

/* Length of the valid UTF-8 sequence starting at s (1..4), or 0 when the bytes there are not valid UTF-8. */
size_t utf8_sequence_length(const unsigned char *s, size_t n);
/* 1 when s[0..n) is entirely valid UTF-8; otherwise 0 and *bad_offset is the first invalid byte. */
int utf8_valid(const char *s, size_t n, size_t *bad_offset);

/* A flat JSON object: the string members of one object, in file order. */
struct data_json_member {
    char *key;
    char *value;  /* decoded UTF-8; NULL when the member is not a string */
    size_t value_len;
};

struct data_json_object {
    struct data_json_member *members;
    size_t count;
    size_t cap;
};

/* Parses one JSON object from text[0..n). Returns 0 on success; on error returns -1 and writes a message that names
 * the column (1-based) and what was expected into err. The object must be freed with data_json_object_free. */
int data_json_parse_object(const char *text, size_t n, struct data_json_object *obj, char *err, size_t errlen);
void data_json_object_free(struct data_json_object *obj);
/* The string member named key, or NULL (also when the member exists but is not a string). */
const struct data_json_member *data_json_get(const struct data_json_object *obj, const char *key);

#endif
