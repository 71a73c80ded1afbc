/* A minimal protobuf reader for SentencePiece's ModelProto (sentencepiece_model.proto).
 *
 * Reads only the wire format: varints, 32/64-bit fixed fields and length-delimited fields, checking every
 * length against the bytes left. Unknown fields are skipped, as protobuf does; a field seen twice keeps the
 * last value (protobuf's merge for scalars), messages seen twice are merged field by field. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_BYTES = 2, WIRE_FIXED32 = 5 };

typedef struct pb {
    const uint8_t *p, *end;
    const uint8_t *start; /* of the whole file, for byte offsets in errors */
} pb;

typedef struct pb_field {
    uint32_t number;
    int wire;
    uint64_t value;      /* varint and fixed fields */
    const uint8_t *data; /* bytes fields */
    size_t len;
    size_t offset; /* where the field starts in the file */
} pb_field;

static int read_varint(pb *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift <= 63; shift += 7) {
        if (r->p >= r->end)
            return -1;
        uint8_t b = *r->p++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1; /* more than 10 bytes */
}

/* Next field of the message in r: 1, 0 at the end, -1 malformed (reason in err). */
static int next_field(pb *r, pb_field *f, const char *what, char *err, size_t errlen)
{
    if (r->p == r->end)
        return 0;
    f->offset = (size_t)(r->p - r->start);
    uint64_t key;
    if (read_varint(r, &key) || key >> 32 || (key >> 3) == 0) {
        tok_fail(err, errlen, "malformed protobuf in %s at byte %zu: bad field key", what, f->offset);
        return -1;
    }
    f->number = (uint32_t)(key >> 3);
    f->wire = (int)(key & 7);
    /* A field of another wire type reads as an empty sub-message, so callers may build a sub-reader
     * before checking the wire type. */
    f->data = r->p;
    f->len = 0;
    switch (f->wire) {
    case WIRE_VARINT:
        if (read_varint(r, &f->value))
            break;
        return 1;
    case WIRE_FIXED64:
    case WIRE_FIXED32: {
        size_t n = f->wire == WIRE_FIXED64 ? 8 : 4;
        if ((size_t)(r->end - r->p) < n)
            break;
        f->value = 0;
        for (size_t i = 0; i < n; i++)
            f->value |= (uint64_t)r->p[i] << (8 * i);
        r->p += n;
        return 1;
    }
    case WIRE_BYTES: {
        uint64_t n;
        if (read_varint(r, &n) || n > (uint64_t)(r->end - r->p))
            break;
        f->data = r->p;
        f->len = (size_t)n;
        r->p += n;
        return 1;
    }
    default:
        tok_fail(err, errlen, "malformed protobuf in %s at byte %zu: unsupported wire type %d (field %u)", what,
             f->offset, f->wire, f->number);
        return -1;
    }
    tok_fail(err, errlen, "truncated protobuf in %s at byte %zu (field %u runs past the end of its message)", what,
         f->offset, f->number);
    return -1;
}

static pb sub_reader(const pb *outer, const pb_field *f)
{
    return (pb){f->data, f->data + f->len, outer->start};
}

/* Known fields must carry the wire type their declaration implies. */
static int expect(const pb_field *f, int wire, const char *what, char *err, size_t errlen)
{
    if (f->wire == wire)
        return 0;
    tok_fail(err, errlen, "malformed %s at byte %zu: field %u has wire type %d, expected %d", what, f->offset,
         f->number, f->wire, wire);
    return -1;
}

static int32_t as_int32(uint64_t v)
{
    return (int32_t)(uint32_t)v;
}

static float as_float(uint64_t v)
{
    uint32_t u = (uint32_t)v;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static int parse_piece(pb *r, tok_proto_piece *pc, size_t index, char *err, size_t errlen)
{
    char what[64];
    snprintf(what, sizeof what, "piece %zu", index);
    pb_field f;
    int rc;
    while ((rc = next_field(r, &f, what, err, errlen)) == 1) {
        switch (f.number) {
        case 1: /* piece */
            if (expect(&f, WIRE_BYTES, what, err, errlen))
                return -1;
            pc->text = (tok_span){f.data, f.len};
            break;
        case 2: /* score */
            if (expect(&f, WIRE_FIXED32, what, err, errlen))
                return -1;
            pc->score = as_float(f.value);
            break;
        case 3: /* type */
            if (expect(&f, WIRE_VARINT, what, err, errlen))
                return -1;
            if (f.value < TOK_NORMAL || f.value > TOK_BYTE) {
                tok_fail(err, errlen, "%s: unknown piece type %llu (expected 1..6)", what,
                     (unsigned long long)f.value);
                return -1;
            }
            pc->type = (int)f.value;
            break;
        }
    }
    return rc;
}

static int parse_trainer_spec(pb *r, tok_proto *m, char *err, size_t errlen)
{
    const char *what = "trainer_spec";
    pb_field f;
    int rc;
    while ((rc = next_field(r, &f, what, err, errlen)) == 1) {
        tok_span *s = NULL;
        switch (f.number) {
        case 3: /* model_type */
            if (expect(&f, WIRE_VARINT, what, err, errlen))
                return -1;
            m->model_type = as_int32(f.value);
            break;
        case 24: /* treat_whitespace_as_suffix */
            if (expect(&f, WIRE_VARINT, what, err, errlen))
                return -1;
            m->treat_whitespace_as_suffix = f.value != 0;
            break;
        case 35: /* byte_fallback */
            if (expect(&f, WIRE_VARINT, what, err, errlen))
                return -1;
            m->byte_fallback = f.value != 0;
            break;
        case 44: s = &m->unk_surface; break;
        case 45: s = &m->unk_piece; break;
        case 46: s = &m->bos_piece; break;
        case 47: s = &m->eos_piece; break;
        case 48: s = &m->pad_piece; break;
        }
        if (s) {
            if (expect(&f, WIRE_BYTES, what, err, errlen))
                return -1;
            *s = (tok_span){f.data, f.len};
        }
    }
    return rc;
}

static int parse_normalizer_spec(pb *r, tok_proto *m, bool denormalizer, char *err, size_t errlen)
{
    const char *what = denormalizer ? "denormalizer_spec" : "normalizer_spec";
    pb_field f;
    int rc;
    while ((rc = next_field(r, &f, what, err, errlen)) == 1) {
        if (denormalizer) {
            if (f.number == 2 && f.wire == WIRE_BYTES && f.len > 0)
                m->has_denormalizer_rules = true;
            continue;
        }
        bool *flag = NULL;
        switch (f.number) {
        case 2: /* precompiled_charsmap; the rule's name (field 1) changes nothing at encode time */
            if (expect(&f, WIRE_BYTES, what, err, errlen))
                return -1;
            m->charsmap = (tok_span){f.data, f.len};
            break;
        case 3: flag = &m->add_dummy_prefix; break;
        case 4: flag = &m->remove_extra_whitespaces; break;
        case 5: flag = &m->escape_whitespaces; break;
        }
        if (flag) {
            if (expect(&f, WIRE_VARINT, what, err, errlen))
                return -1;
            *flag = f.value != 0;
        }
    }
    return rc;
}

static tok_span literal(const char *s)
{
    return (tok_span){(const uint8_t *)s, strlen(s)};
}

int tok_proto_parse(const uint8_t *data, size_t size, tok_proto *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    /* Defaults from sentencepiece_model.proto. */
    m->model_type = 1;
    m->unk_piece = literal("<unk>");
    m->bos_piece = literal("<s>");
    m->eos_piece = literal("</s>");
    m->pad_piece = literal("<pad>");
    m->unk_surface = literal(" \xE2\x81\x87 ");
    m->add_dummy_prefix = m->remove_extra_whitespaces = m->escape_whitespaces = true;

    size_t cap = 0;
    pb r = {data, data + size, data};
    pb_field f;
    int rc;
    while ((rc = next_field(&r, &f, "ModelProto", err, errlen)) == 1) {
        pb sub = sub_reader(&r, &f);
        switch (f.number) {
        case 1: { /* pieces */
            if (expect(&f, WIRE_BYTES, "ModelProto", err, errlen))
                goto bad;
            if (m->n_pieces == cap) {
                size_t ncap = cap ? 2 * cap : 1024;
                tok_proto_piece *np = realloc(m->pieces, ncap * sizeof *np);
                if (!np) {
                    tok_fail(err, errlen, "out of memory reading %zu pieces", m->n_pieces);
                    goto bad;
                }
                m->pieces = np;
                cap = ncap;
            }
            tok_proto_piece *pc = &m->pieces[m->n_pieces];
            *pc = (tok_proto_piece){{(const uint8_t *)"", 0}, 0.0f, TOK_NORMAL};
            if (parse_piece(&sub, pc, m->n_pieces, err, errlen))
                goto bad;
            m->n_pieces++;
            break;
        }
        case 2:
            if (expect(&f, WIRE_BYTES, "ModelProto", err, errlen) || parse_trainer_spec(&sub, m, err, errlen))
                goto bad;
            break;
        case 3:
        case 5:
            if (expect(&f, WIRE_BYTES, "ModelProto", err, errlen) ||
                parse_normalizer_spec(&sub, m, f.number == 5, err, errlen))
                goto bad;
            break;
        }
    }
    if (rc == 0)
        return 0;
bad:
    free(m->pieces);
    m->pieces = NULL;
    return -1;
}
