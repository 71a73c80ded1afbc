/* Loading a tokenizer.model: checks as SentencePiece's ModelInterface::InitializePieces does, piece tables,
 * the user-defined symbol trie, the precompiled charsmap, and the chat special tokens. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tok_internal.h"

/* Files larger than this are not tokenizer models (InternLM2's is 1.5 MB). */
#define MAX_MODEL_BYTES ((size_t)1 << 30)
/* SentencePiece's kMaxPieceSize. */
#define MAX_PIECE_BYTES 8000

const char *const tok_special_names[9] = {
    "<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>", "<|action_start|>", "<|action_end|>",
    "<|interpreter|>", "<|plugin|>",
};

/* Where InternLM2's HF tokenizer puts its chat tokens, and the placeholder piece the SentencePiece model
 * holds there (tokenizer_config.json added_tokens_decoder). */
static const struct {
    int id;
    const char *placeholder;
} internlm2_special[9] = {
    {0, NULL}, {1, NULL}, {2, NULL},
    {92543, "[UNUSED_TOKEN_146]"}, {92542, "[UNUSED_TOKEN_145]"}, {92541, "[UNUSED_TOKEN_144]"},
    {92540, "[UNUSED_TOKEN_143]"}, {92539, "[UNUSED_TOKEN_142]"}, {92538, "[UNUSED_TOKEN_141]"},
};

void tok_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- piece tables */

static uint32_t hash_bytes(const char *s, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static const char *piece_text(const mt_tokenizer *t, int id)
{
    return t->blob + t->offset[id];
}

int tok_table_find(const mt_tokenizer *t, const tok_table *tab, const char *s, size_t len)
{
    uint32_t h = hash_bytes(s, len);
    for (uint32_t i = h & tab->mask;; i = (i + 1) & tab->mask) {
        const tok_slot *slot = &tab->slots[i];
        if (slot->id < 0)
            return -1;
        if (slot->hash == h && t->len[slot->id] == len && !memcmp(piece_text(t, slot->id), s, len))
            return slot->id;
    }
}

/* Inserts `id`; returns the id already holding the same text, or -1. */
static int table_insert(const mt_tokenizer *t, tok_table *tab, int id)
{
    int dup = tok_table_find(t, tab, piece_text(t, id), t->len[id]);
    if (dup >= 0)
        return dup;
    uint32_t h = hash_bytes(piece_text(t, id), t->len[id]);
    uint32_t i = h & tab->mask;
    while (tab->slots[i].id >= 0)
        i = (i + 1) & tab->mask;
    tab->slots[i] = (tok_slot){h, id};
    return -1;
}

static bool is_normal_type(int type)
{
    return type == TOK_NORMAL || type == TOK_USER_DEFINED || type == TOK_UNUSED;
}

int tok_spm_piece_to_id(const mt_tokenizer *t, const char *s, size_t len)
{
    int id = tok_table_find(t, &t->reserved, s, len);
    if (id < 0)
        id = tok_table_find(t, &t->normal, s, len);
    return id < 0 ? t->unk : id;
}

/* ---------------------------------------------------------------- user-defined symbol trie */

static void trie_add(mt_tokenizer *t, const char *s, size_t len)
{
    int node = 0;
    for (size_t i = 0; i < len; i++) {
        int c = t->trie[node].child;
        while (c >= 0 && t->trie[c].byte != (uint8_t)s[i])
            c = t->trie[c].sibling;
        if (c < 0) {
            c = t->n_trie++;
            t->trie[c] = (tok_trie_node){-1, t->trie[node].child, (uint8_t)s[i], false};
            t->trie[node].child = c;
        }
        node = c;
    }
    t->trie[node].terminal = true;
}

size_t tok_match_user_defined(const mt_tokenizer *t, const char *s, size_t len)
{
    if (!len || !t->ud_first_byte[(unsigned char)s[0]])
        return 0;
    size_t best = 0;
    int node = 0;
    for (size_t i = 0; i < len; i++) {
        int c = t->trie[node].child;
        while (c >= 0 && t->trie[c].byte != (uint8_t)s[i])
            c = t->trie[c].sibling;
        if (c < 0)
            break;
        node = c;
        if (t->trie[node].terminal)
            best = i + 1;
    }
    return best;
}

/* SentencePiece builds its matcher from the symbols as C strings, so a symbol ends at its first NUL. */
static int build_trie(mt_tokenizer *t)
{
    size_t nodes = 1;
    for (int i = 0; i < t->n; i++)
        if (t->type[i] == TOK_USER_DEFINED)
            nodes += strlen(piece_text(t, i));
    t->trie = malloc(nodes * sizeof *t->trie);
    if (!t->trie)
        return -1;
    t->trie[0] = (tok_trie_node){-1, -1, 0, false};
    t->n_trie = 1;
    for (int i = 0; i < t->n; i++) {
        if (t->type[i] != TOK_USER_DEFINED)
            continue;
        size_t len = strlen(piece_text(t, i));
        if (len) {
            trie_add(t, piece_text(t, i), len);
            t->ud_first_byte[(unsigned char)piece_text(t, i)[0]] = true;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- precompiled charsmap */

/* <u32 trie size in bytes, little-endian><Darts-clone units><NUL-separated replacement strings> */
static int load_charsmap(mt_tokenizer *t, tok_span blob, char *err, size_t errlen)
{
    if (blob.len <= 4) {
        tok_fail(err, errlen, "normalizer_spec.precompiled_charsmap is broken (%zu bytes)", blob.len);
        return -1;
    }
    uint32_t trie_size = blob.p[0] | (uint32_t)blob.p[1] << 8 | (uint32_t)blob.p[2] << 16 | (uint32_t)blob.p[3] << 24;
    if (trie_size > blob.len - 4) {
        tok_fail(err, errlen, "normalizer_spec.precompiled_charsmap: trie size %u exceeds the blob (%zu bytes)",
             trie_size, blob.len);
        return -1;
    }
    tok_charsmap *cm = &t->charsmap;
    cm->n_units = trie_size / 4;
    cm->strings_len = blob.len - 4 - trie_size;
    cm->units = malloc((cm->n_units ? cm->n_units : 1) * sizeof *cm->units);
    cm->strings = malloc(cm->strings_len + 1);
    if (!cm->units || !cm->strings) {
        tok_fail(err, errlen, "out of memory loading the charsmap");
        return -1;
    }
    const uint8_t *u = blob.p + 4;
    for (size_t i = 0; i < cm->n_units; i++, u += 4)
        cm->units[i] = u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
    memcpy(cm->strings, blob.p + 4 + trie_size, cm->strings_len);
    cm->strings[cm->strings_len] = '\0';
    return 0;
}

/* ---------------------------------------------------------------- loading */

static int byte_of_piece(const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    if (len != 6 || memcmp(s, "<0x", 3) || s[5] != '>')
        return -1;
    const char *hi = strchr(hex, s[3]), *lo = strchr(hex, s[4]);
    if (!s[3] || !s[4] || !hi || !lo)
        return -1;
    return (int)((hi - hex) * 16 + (lo - hex));
}

static int id_of(const mt_tokenizer *t, tok_span piece, int required_type)
{
    int id = tok_spm_piece_to_id(t, (const char *)piece.p, piece.len);
    return id >= 0 && t->type[id] == required_type ? id : -1;
}

static char *copy_span(tok_span s)
{
    char *p = malloc(s.len + 1);
    if (p) {
        memcpy(p, s.p, s.len);
        p[s.len] = '\0';
    }
    return p;
}

static void resolve_specials(mt_tokenizer *t)
{
    for (int k = 0; k < 9; k++) {
        const char *name = tok_special_names[k];
        int id = tok_table_find(t, &t->reserved, name, strlen(name));
        if (id < 0)
            id = tok_table_find(t, &t->normal, name, strlen(name));
        int fixed = internlm2_special[k].id;
        const char *ph = internlm2_special[k].placeholder;
        if (id < 0 && ph && fixed < t->n && t->len[fixed] == strlen(ph) && !memcmp(piece_text(t, fixed), ph, strlen(ph)))
            id = fixed;
        t->special_id[k] = id;
    }
}

static int build(mt_tokenizer *t, const tok_proto *m, char *err, size_t errlen)
{
    if (m->model_type != 2) {
        static const char *names[] = {"?", "unigram", "bpe", "word", "char"};
        tok_fail(err, errlen, "unsupported model_type %d (%s): only BPE SentencePiece models are supported",
             m->model_type, m->model_type >= 1 && m->model_type <= 4 ? names[m->model_type] : "unknown");
        return -1;
    }
    if (m->has_denormalizer_rules) {
        tok_fail(err, errlen, "unsupported: the model has denormalizer rules (denormalizer_spec)");
        return -1;
    }
    if (m->n_pieces == 0 || m->n_pieces > (1u << 30)) {
        tok_fail(err, errlen, "the model has %zu pieces (a tokenizer.model needs at least <unk>)", m->n_pieces);
        return -1;
    }
    t->n = (int)m->n_pieces;
    size_t blob_len = 0;
    for (int i = 0; i < t->n; i++) {
        size_t len = m->pieces[i].text.len;
        if (len == 0) {
            tok_fail(err, errlen, "piece %d is empty (pieces must not be empty)", i);
            return -1;
        }
        if (len >= MAX_PIECE_BYTES) {
            tok_fail(err, errlen, "piece %d is %zu bytes long (the limit is %d)", i, len, MAX_PIECE_BYTES);
            return -1;
        }
        blob_len += len + 1;
    }
    t->blob = malloc(blob_len);
    t->offset = malloc(t->n * sizeof *t->offset);
    t->len = malloc(t->n * sizeof *t->len);
    t->score = malloc(t->n * sizeof *t->score);
    t->type = malloc(t->n);
    uint32_t slots = 16;
    while (slots < 2u * (uint32_t)t->n)
        slots *= 2;
    t->normal = (tok_table){malloc(slots * sizeof(tok_slot)), slots - 1};
    t->reserved = (tok_table){malloc(slots * sizeof(tok_slot)), slots - 1};
    if (!t->blob || !t->offset || !t->len || !t->score || !t->type || !t->normal.slots || !t->reserved.slots) {
        tok_fail(err, errlen, "out of memory loading %d pieces", t->n);
        return -1;
    }
    for (uint32_t i = 0; i < slots; i++)
        t->normal.slots[i].id = t->reserved.slots[i].id = -1;
    size_t off = 0;
    for (int i = 0; i < t->n; i++) {
        const tok_proto_piece *pc = &m->pieces[i];
        memcpy(t->blob + off, pc->text.p, pc->text.len);
        t->blob[off + pc->text.len] = '\0';
        t->offset[i] = off;
        t->len[i] = (uint32_t)pc->text.len;
        t->score[i] = pc->score;
        t->type[i] = (uint8_t)pc->type;
        off += pc->text.len + 1;
    }

    t->unk = -1;
    bool byte_found[256] = {false};
    for (int i = 0; i < t->n; i++) {
        int type = t->type[i];
        int dup = table_insert(t, is_normal_type(type) ? &t->normal : &t->reserved, i);
        if (dup >= 0) {
            tok_fail(err, errlen, "pieces %d and %d are both '%.40s' (pieces must be unique)", dup, i, piece_text(t, i));
            return -1;
        }
        if (type == TOK_UNKNOWN) {
            if (t->unk >= 0) {
                tok_fail(err, errlen, "pieces %d and %d are both of type UNKNOWN (one <unk> allowed)", t->unk, i);
                return -1;
            }
            t->unk = i;
        }
        if (type == TOK_BYTE) {
            if (!m->byte_fallback) {
                tok_fail(err, errlen, "byte piece %d '%.40s' found although trainer_spec.byte_fallback is false", i,
                     piece_text(t, i));
                return -1;
            }
            int b = byte_of_piece(piece_text(t, i), t->len[i]);
            if (b < 0) {
                tok_fail(err, errlen, "byte piece %d '%.40s' is not of the form <0xXX>", i, piece_text(t, i));
                return -1;
            }
            byte_found[b] = true;
        }
    }
    if (t->unk < 0) {
        tok_fail(err, errlen, "the model has no piece of type UNKNOWN (<unk>)");
        return -1;
    }
    if (m->byte_fallback) {
        for (int b = 0; b < 256; b++) {
            if (!byte_found[b]) {
                tok_fail(err, errlen, "byte_fallback is on but there is no byte piece <0x%02X>", b);
                return -1;
            }
        }
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->byte_id[b] = tok_spm_piece_to_id(t, name, 6);
    }
    if (build_trie(t)) {
        tok_fail(err, errlen, "out of memory building the user-defined symbol trie");
        return -1;
    }
    if (m->charsmap.len && load_charsmap(t, m->charsmap, err, errlen))
        return -1;

    t->byte_fallback = m->byte_fallback;
    t->treat_whitespace_as_suffix = m->treat_whitespace_as_suffix;
    t->add_dummy_prefix = m->add_dummy_prefix;
    t->remove_extra_whitespaces = m->remove_extra_whitespaces;
    t->escape_whitespaces = m->escape_whitespaces;
    /* SentencePiece falls back to the default piece names when the spec holds empty strings. */
    t->unk = id_of(t, m->unk_piece.len ? m->unk_piece : (tok_span){(const uint8_t *)"<unk>", 5}, TOK_UNKNOWN);
    t->bos = id_of(t, m->bos_piece.len ? m->bos_piece : (tok_span){(const uint8_t *)"<s>", 3}, TOK_CONTROL);
    t->eos = id_of(t, m->eos_piece.len ? m->eos_piece : (tok_span){(const uint8_t *)"</s>", 4}, TOK_CONTROL);
    t->pad = id_of(t, m->pad_piece.len ? m->pad_piece : (tok_span){(const uint8_t *)"<pad>", 5}, TOK_CONTROL);
    t->unk_surface = copy_span(m->unk_surface);
    if (!t->unk_surface) {
        tok_fail(err, errlen, "out of memory");
        return -1;
    }
    t->unk_surface_len = m->unk_surface.len;
    resolve_specials(t);
    return 0;
}

mt_tokenizer *tok_load_buffer(const void *data, size_t size, char *err, size_t errlen)
{
    if (size == 0) {
        tok_fail(err, errlen, "empty tokenizer model");
        return NULL;
    }
    tok_proto m;
    if (tok_proto_parse(data, size, &m, err, errlen))
        return NULL;
    mt_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        tok_fail(err, errlen, "out of memory");
        free(m.pieces);
        return NULL;
    }
    int rc = build(t, &m, err, errlen);
    free(m.pieces);
    if (rc) {
        tok_free(t);
        return NULL;
    }
    return t;
}

mt_tokenizer *tok_load(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st)) {
        tok_fail(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *file = NULL;
    if (S_ISDIR(st.st_mode)) {
        size_t n = strlen(path) + sizeof "/tokenizer.model";
        file = malloc(n);
        if (!file) {
            tok_fail(err, errlen, "out of memory");
            return NULL;
        }
        snprintf(file, n, "%s/tokenizer.model", path);
        path = file;
    }
    mt_tokenizer *t = NULL;
    uint8_t *data = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        tok_fail(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        tok_fail(err, errlen, "%s: not a regular file", path);
        goto out;
    }
    if ((uint64_t)st.st_size > MAX_MODEL_BYTES) {
        tok_fail(err, errlen, "%s: %lld bytes is too large for a tokenizer model (limit %zu)", path,
             (long long)st.st_size, MAX_MODEL_BYTES);
        goto out;
    }
    size_t size = (size_t)st.st_size;
    data = malloc(size ? size : 1);
    if (!data) {
        tok_fail(err, errlen, "%s: out of memory", path);
        goto out;
    }
    if (fread(data, 1, size, f) != size) {
        tok_fail(err, errlen, "%s: read error", path);
        goto out;
    }
    t = tok_load_buffer(data, size, err, errlen);
    if (!t && err && errlen) {
        /* Prefix the file name to the parser's reason. */
        char reason[512];
        snprintf(reason, sizeof reason, "%s", err);
        tok_fail(err, errlen, "%s: %s", path, reason);
    }
out:
    if (f)
        fclose(f);
    free(data);
    free(file);
    return t;
}

void tok_free(mt_tokenizer *t)
{
    if (!t)
        return;
    free(t->blob);
    free(t->offset);
    free(t->len);
    free(t->score);
    free(t->type);
    free(t->normal.slots);
    free(t->reserved.slots);
    free(t->trie);
    free(t->charsmap.units);
    free(t->charsmap.strings);
    free(t->unk_surface);
    free(t);
}

/* ---------------------------------------------------------------- accessors */

int tok_vocab_size(const mt_tokenizer *t) { return t->n; }
int tok_unk_id(const mt_tokenizer *t) { return t->unk; }
int tok_bos_id(const mt_tokenizer *t) { return t->bos; }
int tok_eos_id(const mt_tokenizer *t) { return t->eos; }
int tok_pad_id(const mt_tokenizer *t) { return t->pad; }
bool tok_add_dummy_prefix(const mt_tokenizer *t) { return t->add_dummy_prefix; }

const char *tok_piece(const mt_tokenizer *t, int id, size_t *len)
{
    if (id < 0 || id >= t->n)
        return NULL;
    if (len)
        *len = t->len[id];
    return piece_text(t, id);
}

tok_piece_type tok_piece_kind(const mt_tokenizer *t, int id)
{
    return id < 0 || id >= t->n ? 0 : (tok_piece_type)t->type[id];
}

float tok_piece_score(const mt_tokenizer *t, int id)
{
    return id < 0 || id >= t->n ? 0.0f : t->score[id];
}

int tok_piece_id(const mt_tokenizer *t, const char *piece, size_t len)
{
    int id = tok_table_find(t, &t->reserved, piece, len);
    return id >= 0 ? id : tok_table_find(t, &t->normal, piece, len);
}

int tok_special_id(const mt_tokenizer *t, const char *name)
{
    for (int k = 0; k < 9; k++)
        if (!strcmp(name, tok_special_names[k]))
            return t->special_id[k];
    return -1;
}

const char *tok_special_name(const mt_tokenizer *t, int id)
{
    for (int k = 0; k < 9; k++)
        if (id >= 0 && t->special_id[k] == id)
            return tok_special_names[k];
    return NULL;
}

void tok_ids_free(tok_ids *ids)
{
    free(ids->v);
    *ids = (tok_ids){0};
}
