/* A small JSON reader (RFC 8259) producing a tree, for config.json, safetensors headers and index files, and a
 * string writer. Lives in the model layer (src/model/json.c); layers above may use it too. */
#ifndef MELODIST_JSON_H
#define MELODIST_JSON_H

#include <stddef.h>
#include <stdio.h>

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json {
    enum json_type type;
    int boolean;
    double number;
    char *string;        /* NUL-terminated UTF-8 (may contain NULs from \u0000; see len) */
    size_t len;          /* string length in bytes */
    size_t count;        /* number of array items or object members */
    struct json *items;  /* array items, or object member values */
    char **keys;         /* object member names (NUL-terminated) */
};

/* Parses exactly one JSON value from text[0..len) (surrounding whitespace allowed).
 * Returns NULL on error with "line L column C: what" in err. Nesting is limited to 128 levels. */
struct json *json_parse(const char *text, size_t len, char *err, size_t errlen);
void json_free(struct json *value);

/* Reads the file at path (at most max bytes) and parses it; NULL with "PATH: what" in err. */
struct json *json_load(const char *path, size_t max, char *err, size_t errlen);

/* Writes s (NULL: "") to out as a JSON string literal. */
void json_fput_string(FILE *out, const char *s);

/* Member of an object by name (the last one if repeated), or NULL. */
const struct json *json_get(const struct json *object, const char *key);

/* The string member key of object, or fallback when it is absent or not a string. */
const char *json_string_or(const struct json *object, const char *key, const char *fallback);

#endif
