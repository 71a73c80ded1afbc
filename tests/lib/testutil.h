/* What the C test programs share: counted checks, whole files, relative error of float arrays. */
#ifndef MELODIST_TESTUTIL_H
#define MELODIST_TESTUTIL_H

#include <stddef.h>

/* Checks run and checks failed so far; a test's exit status comes from tu_failures. */
extern int tu_checks, tu_failures;
/* Failures printed before the rest are only counted (a broken kernel fails thousands of times). */
extern int tu_max_printed;

/* Counts a failure and prints "FAIL file:line: message" on stderr. */
void tu_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        tu_checks++;                                                                                                   \
        if (!(cond))                                                                                                   \
            tu_fail(__FILE__, __LINE__, __VA_ARGS__);                                                                  \
    } while (0)

/* Whole file into a malloc'd NUL-terminated buffer (len may be NULL); NULL, with a message, on failure. */
char *tu_read_file(const char *path, size_t *len);

/* max |a - ref| / max |ref|: one tolerance for a whole array, whatever its scale. */
double tu_rel_error(const float *a, const float *ref, size_t n);

#endif
