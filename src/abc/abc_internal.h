/* Private helpers shared by the ABC engine's modules. */
#ifndef MELODIST_ABC_INTERNAL_H
#define MELODIST_ABC_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>

#include "melodist/abc.h"

/* Bump allocator: many small allocations, freed all at once. */
typedef struct abc_arena abc_arena;
abc_arena *abc_arena_new(void);
void abc_arena_free(abc_arena *a);
void abc_arena_reset(abc_arena *a); /* everything allocated is freed; the memory is kept for reuse */
void *abc_arena_alloc(abc_arena *a, size_t size); /* zeroed, 8-byte aligned; NULL when out of memory */
char *abc_arena_strndup(abc_arena *a, const char *s, size_t n);

/* A growable array of fixed-size items (malloc'd; moved into an arena or kept by the owner). */
typedef struct abc_vec {
    void *data;
    size_t n, cap, item;
} abc_vec;
void *abc_vec_push(abc_vec *v); /* zeroed new slot, NULL when out of memory */
bool abc_vec_grow(abc_vec *v);  /* room for at least one more item */
/* New slot, not zeroed (for callers that fill all of it: inline, as it runs once per note). */
static inline void *abc_vec_next(abc_vec *v)
{
    if (v->n == v->cap && !abc_vec_grow(v))
        return NULL;
    return (char *)v->data + v->n++ * v->item;
}
bool abc_vec_reserve(abc_vec *v, size_t n); /* room for n items in all */
void abc_vec_free(abc_vec *v);
/* Hand the items over to the arena (freed with it) and reset the vector; returns them (NULL when empty or
 * out of memory). */
void *abc_vec_move(abc_vec *v, abc_arena *a);

/* abc_diags_add() of a message that needs no formatting. */
void abc_diags_add_text(abc_diags *d, abc_severity sev, int line, int col, int tune, const char *category,
                        const char *hint, const char *message);
/* Move from's diagnostics (and their ownership) to the end of `to`; from is left empty. */
void abc_diags_move(abc_diags *to, abc_diags *from);

/* vsnprintf(), without glibc's format interpreter when fmt uses only %d %lld %c %s and %%. */
int abc_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int abc_snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Growable string for printers. */
typedef struct abc_buf {
    char *s;
    size_t n, cap;
    bool oom;
} abc_buf;
void abc_buf_putn(abc_buf *b, const char *s, size_t n);
void abc_buf_puts(abc_buf *b, const char *s);
void abc_buf_putc(abc_buf *b, char c);
void abc_buf_putint(abc_buf *b, long long v);
void abc_buf_printf(abc_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* abc_parse() of a piece of a bigger file: line numbers start at first_line, and tuplet defaults start from
 * a compound meter when the file header says so. */
abc_file *abc_parse_part(const char *buf, size_t len, int first_line, bool compound);

/* abc_parse_part() into memory kept from one call to the next (one tune after another, in one thread): the
 * file returned lives until the next run or abc_parser_free(); never abc_file_free() it. NULL only when out
 * of memory. */
typedef struct abc_parser abc_parser;
abc_parser *abc_parser_new(void);
void abc_parser_free(abc_parser *ps);
abc_file *abc_parser_run(abc_parser *ps, const char *buf, size_t len, int first_line, bool compound);

/* Pitch class of the note letters A..G (C = 0). */
static const int abc_letter_pc[7] = {9, 11, 0, 2, 4, 5, 7};

/* abc_midi_pitch(), inline for the per-note loops. */
static inline int midi_pitch(char letter, int octave, int semitones)
{
    return 60 + 12 * octave + abc_letter_pc[letter - 'A'] + semitones;
}

/* Default tuplet q for p (the standard's table; compound: meter is 6/8, 9/8, 12/8 ...). */
int abc_tuplet_default_q(int p, bool compound);
bool abc_meter_is_compound(abc_meter m);

#endif
