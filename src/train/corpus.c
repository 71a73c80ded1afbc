/* Token corpora: documents read from ABC collections, text and chat JSONL, tokenised once into a
 * memory-mapped cache file (see train.h for the layout). */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "melodist/fileio.h"
#include "melodist/json.h"
#include "melodist/shard.h"
#include "melodist/splitmix.h"
#include "melodist/train.h"

#define CACHE_MAGIC "MLTK"
#define CACHE_VERSION 1u
#define DOC_SEPARATOR "<|endofdoc|>" /* between the documents of a pretrain.txt (data.h) */

uint64_t train_splitmix64(uint64_t *state) { return splitmix64(state); }

/* ---- growing token arrays for one split ---- */

struct split_out {
    uint64_t *doc_start;
    int32_t *tokens;
    uint8_t *scored;
    size_t n_docs, n_tokens, cap_docs, cap_tokens;
};

static int split_reserve(struct split_out *s, size_t more)
{
    if (s->n_tokens + more > s->cap_tokens) {
        size_t cap = s->cap_tokens ? s->cap_tokens : 1 << 16;
        while (cap < s->n_tokens + more)
            cap *= 2;
        int32_t *t = realloc(s->tokens, cap * sizeof *t);
        if (t)
            s->tokens = t;
        uint8_t *m = realloc(s->scored, cap);
        if (m)
            s->scored = m;
        if (!t || !m)
            return -1;
        s->cap_tokens = cap;
    }
    if (s->n_docs + 2 > s->cap_docs) {
        size_t cap = s->cap_docs ? 2 * s->cap_docs : 1024;
        uint64_t *d = realloc(s->doc_start, cap * sizeof *d);
        if (!d)
            return -1;
        s->doc_start = d, s->cap_docs = cap;
    }
    return 0;
}

static void split_free(struct split_out *s)
{
    free(s->doc_start);
    free(s->tokens);
    free(s->scored);
}

/* ---- building ---- */

struct builder {
    const mt_tokenizer *tok;
    struct split_out split[2]; /* train, valid */
    struct split_out *cur;     /* the split of the document being built */
    double valid_fraction;
    uint64_t seed, doc_index;
    tok_ids ids;
    char *err;
    size_t errlen;
};

static int append_ids(struct builder *b, const int *ids, size_t n, int scored)
{
    struct split_out *s = b->cur;
    if (split_reserve(s, n))
        return -1;
    for (size_t i = 0; i < n; i++) {
        s->tokens[s->n_tokens] = ids[i];
        s->scored[s->n_tokens++] = (uint8_t)scored;
    }
    return 0;
}

/* Appends the tokens of text (special token names recognised) to the current document. */
static int append_text(struct builder *b, const char *text, size_t len, int scored)
{
    b->ids.n = 0;
    if (tok_encode(b->tok, text, len, TOK_PARSE_SPECIAL, &b->ids) || append_ids(b, b->ids.v, b->ids.n, scored)) {
        snprintf(b->err, b->errlen, "out of memory tokenising the corpus");
        return -1;
    }
    return 0;
}

/* Documents go to the validation split by a hash of their index, so the split is stable and seeded. */
static int begin_doc(struct builder *b)
{
    uint64_t h = b->seed ^ (b->doc_index++ * 0xD1B54A32D192ED03ull);
    double u = (double)(train_splitmix64(&h) >> 11) / 9007199254740992.0;
    b->cur = &b->split[u < b->valid_fraction];
    int bos = tok_bos_id(b->tok);
    if (split_reserve(b->cur, 1)) {
        snprintf(b->err, b->errlen, "out of memory tokenising the corpus");
        return -1;
    }
    b->cur->doc_start[b->cur->n_docs] = b->cur->n_tokens;
    return bos >= 0 ? append_ids(b, &bos, 1, 1) : 0;
}

static int end_doc(struct builder *b)
{
    int eos = tok_eos_id(b->tok);
    if (eos >= 0 && append_ids(b, &eos, 1, 1))
        return -1;
    b->cur->n_docs++;
    return 0;
}

static int text_doc(struct builder *b, const char *text, size_t len)
{
    while (len && (text[len - 1] == '\n' || text[len - 1] == ' ' || text[len - 1] == '\r'))
        len--;
    if (!len)
        return 0;
    return begin_doc(b) || append_text(b, text, len, 1) || end_doc(b);
}

/* X numbers of the tunes that index.tsv (beside an .abc collection) keeps for testing: never trained on. */
static char *test_tunes(const char *abc_path, size_t *n_lines)
{
    char path[4096], err[64];
    const char *slash = strrchr(abc_path, '/');
    snprintf(path, sizeof path, "%.*sindex.tsv", slash ? (int)(slash - abc_path + 1) : 0, abc_path);
    size_t len;
    char *text = access(path, R_OK) ? NULL : file_read(path, SIZE_MAX, &len, err, sizeof err);
    *n_lines = text ? len : 0;
    return text;
}

static int is_test_tune(const char *index, size_t len, long x)
{
    char key[32];
    int k = snprintf(key, sizeof key, "\n%ld\t", x);
    const char *p = memmem(index, len, key, (size_t)k);
    if (!p)
        return 0;
    const char *eol = memchr(p + 1, '\n', len - (size_t)(p + 1 - index));
    size_t line = eol ? (size_t)(eol - p) : len - (size_t)(p - index);
    return line >= 5 && !memcmp(p + line - 5, "\ttest", 5);
}

/* An ABC collection: one document per tune, a tune running from its X: line to the next. */
static int abc_file(struct builder *b, const char *path)
{
    size_t len, index_len;
    char *text = file_read(path, SIZE_MAX, &len, b->err, b->errlen);
    if (!text)
        return -1;
    char *index = test_tunes(path, &index_len);
    int rc = 0;
    const char *tune = NULL;
    for (const char *p = text; !rc; ) {
        int at_x = p < text + len && p[0] == 'X' && p[1] == ':';
        if ((at_x || p >= text + len) && tune) {
            if (!(index && is_test_tune(index, index_len, atol(tune + 2))))
                rc = text_doc(b, tune, (size_t)(p - tune));
            tune = NULL;
        }
        if (p >= text + len)
            break;
        if (at_x)
            tune = p;
        const char *eol = memchr(p, '\n', (size_t)(text + len - p));
        p = eol ? eol + 1 : text + len;
    }
    free(index);
    free(text);
    return rc;
}

/* Plain text: documents separated by <|endofdoc|> lines (a data-pipeline pretrain.txt), else one document. */
static int txt_file(struct builder *b, const char *path)
{
    size_t len;
    char *text = file_read(path, SIZE_MAX, &len, b->err, b->errlen);
    if (!text)
        return -1;
    int rc = 0;
    const char *doc = text, *end = text + len;
    for (const char *p = text; p < end && !rc;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *next = eol ? eol + 1 : end;
        size_t line = (size_t)((eol ? eol : end) - p);
        if (line == strlen(DOC_SEPARATOR) && !memcmp(p, DOC_SEPARATOR, line)) {
            rc = text_doc(b, doc, (size_t)(p - doc));
            doc = next;
        }
        p = next;
    }
    if (!rc)
        rc = text_doc(b, doc, (size_t)(end - doc));
    free(text);
    return rc;
}

/* One chat turn in the InternLM2 template; only the assistant's reply and its <|im_end|> are scored. */
static int chat_turn(struct builder *b, const char *role, const char *content)
{
    char head[64];
    int n = snprintf(head, sizeof head, "<|im_start|>%s\n", role);
    int scored = !strcmp(role, "assistant");
    return append_text(b, head, (size_t)n, 0) || append_text(b, content, strlen(content), scored) ||
           append_text(b, "<|im_end|>", 10, scored) || append_text(b, "\n", 1, 0);
}

/* Chat JSONL: xtuner {"conversation": [{"system", "input", "output"}, ...]} or OpenAI {"messages": [...]}. */
static int jsonl_file(struct builder *b, const char *path)
{
    size_t len;
    char *text = file_read(path, SIZE_MAX, &len, b->err, b->errlen);
    if (!text)
        return -1;
    int rc = 0;
    long line_no = 0;
    for (char *p = text; p < text + len && !rc;) {
        char *eol = memchr(p, '\n', (size_t)(text + len - p));
        size_t n = (size_t)((eol ? eol : text + len) - p);
        char *next = eol ? eol + 1 : text + len;
        line_no++;
        if (n == 0 || (n == 1 && *p == '\r')) {
            p = next;
            continue;
        }
        char jerr[160];
        struct json *rec = json_parse(p, n, jerr, sizeof jerr);
        const struct json *conv = rec ? json_get(rec, "conversation") : NULL;
        const struct json *msgs = rec ? json_get(rec, "messages") : NULL;
        if (!rec || !((conv && conv->type == JSON_ARRAY) || (msgs && msgs->type == JSON_ARRAY))) {
            snprintf(b->err, b->errlen, "%s:%ld: %s", path, line_no,
                     rec ? "expected a chat record with a \"conversation\" or \"messages\" array" : jerr);
            json_free(rec);
            rc = -1;
            break;
        }
        rc = begin_doc(b);
        for (size_t i = 0; conv && !rc && i < conv->count; i++) {
            const struct json *turn = &conv->items[i];
            if (*json_string_or(turn, "system", ""))
                rc = chat_turn(b, "system", json_string_or(turn, "system", ""));
            rc = rc || chat_turn(b, "user", json_string_or(turn, "input", "")) ||
                 chat_turn(b, "assistant", json_string_or(turn, "output", ""));
        }
        for (size_t i = 0; !conv && msgs && !rc && i < msgs->count; i++)
            rc = chat_turn(b, json_string_or(&msgs->items[i], "role", ""),
                           json_string_or(&msgs->items[i], "content", ""));
        rc = rc || end_doc(b);
        json_free(rec);
        p = next;
    }
    free(text);
    return rc;
}

/* A token shard of the data pipeline (layout in shard.h; read here because the data layer sits above this
 * one). Documents get BOS and EOS like every other document unless they already carry them. */
static int shard_file(struct builder *b, const char *path)
{
    size_t len;
    char *buf = file_read(path, SIZE_MAX, &len, b->err, b->errlen);
    if (!buf)
        return -1;
    uint32_t version = 0, width = 0;
    uint64_t n_tokens = 0, n_docs = 0;
    if (len >= SHARD_HEADER_BYTES) {
        memcpy(&version, buf + 8, 4), memcpy(&width, buf + 12, 4);
        memcpy(&n_tokens, buf + 16, 8), memcpy(&n_docs, buf + 24, 8);
    }
    size_t index = SHARD_HEADER_BYTES + ((n_tokens * width + 7) & ~(uint64_t)7);
    if (len < SHARD_HEADER_BYTES || memcmp(buf, SHARD_MAGIC, 8) || version != SHARD_VERSION ||
        (width != 2 && width != 4) || n_tokens > len / width || n_docs > len / 8 || index + 8 * (n_docs + 1) != len) {
        snprintf(b->err, b->errlen, "%s: not a token shard (see melodist/shard.h)", path);
        free(buf);
        return -1;
    }
    int rc = 0, bos = tok_bos_id(b->tok), eos = tok_eos_id(b->tok);
    for (uint64_t d = 0; d < n_docs && !rc; d++) {
        uint64_t lo, hi;
        memcpy(&lo, buf + index + 8 * d, 8), memcpy(&hi, buf + index + 8 * (d + 1), 8);
        if (lo > hi || hi > n_tokens) {
            snprintf(b->err, b->errlen, "%s: corrupt document index at document %" PRIu64, path, d);
            rc = -1;
            break;
        }
        rc = begin_doc(b);
        for (uint64_t i = lo; i < hi && !rc; i++) {
            uint32_t id = 0;
            memcpy(&id, buf + SHARD_HEADER_BYTES + i * width, width);
            int v = (int)id;
            if (!((i == lo && v == bos) || (i + 1 == hi && v == eos)))
                rc = append_ids(b, &v, 1, 1);
        }
        rc = rc || end_doc(b);
    }
    free(buf);
    return rc;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static int by_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }

/* A file by its extension; a directory: its .abc, .jsonl and .shard files, recursively, in name order. */
static int add_source(struct builder *b, const char *path, int named)
{
    struct stat st;
    if (stat(path, &st)) {
        snprintf(b->err, b->errlen, "data source %s: %s (check the \"data\" paths of the config; relative paths are "
                 "relative to the config file)", path, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        struct dirent **list;
        int n = scandir(path, &list, NULL, by_name), rc = 0;
        if (n < 0) {
            snprintf(b->err, b->errlen, "%s: %s", path, strerror(errno));
            return -1;
        }
        for (int i = 0; i < n; i++) {
            char child[4096];
            const char *name = list[i]->d_name;
            if (!rc && name[0] != '.') {
                snprintf(child, sizeof child, "%s/%s", path, name);
                struct stat cs;
                if (!stat(child, &cs) && (S_ISDIR(cs.st_mode) || has_suffix(name, ".abc") ||
                                          has_suffix(name, ".jsonl") || has_suffix(name, ".shard")))
                    rc = add_source(b, child, 0);
            }
            free(list[i]);
        }
        free(list);
        return rc;
    }
    if (has_suffix(path, ".abc"))
        return abc_file(b, path);
    if (has_suffix(path, ".jsonl"))
        return jsonl_file(b, path);
    if (has_suffix(path, ".shard"))
        return shard_file(b, path);
    if (named && has_suffix(path, ".txt"))
        return txt_file(b, path);
    snprintf(b->err, b->errlen, "data source %s: unknown kind (expected a directory, .abc, .txt, .jsonl or .shard)",
             path);
    return -1;
}

/* Writes path atomically: temp file, fsync, rename. */
static int write_cache(const char *path, const struct split_out *s, char *err, size_t errlen)
{
    char tmp[4200];
    FILE *f = file_create_tmp(path, tmp, sizeof tmp, err, errlen);
    if (!f)
        return -1;
    uint32_t head[2] = {0, CACHE_VERSION};
    memcpy(head, CACHE_MAGIC, 4);
    uint64_t counts[2] = {s->n_docs, s->n_tokens};
    uint64_t end = s->n_tokens;
    int ok = fwrite(head, 4, 2, f) == 2 && fwrite(counts, 8, 2, f) == 2 &&
             fwrite(s->doc_start, 8, s->n_docs, f) == s->n_docs && fwrite(&end, 8, 1, f) == 1 &&
             fwrite(s->tokens, 4, s->n_tokens, f) == s->n_tokens && fwrite(s->scored, 1, s->n_tokens, f) == s->n_tokens;
    return file_commit(f, ok, tmp, path, err, errlen);
}

int corpus_build(const char *const *sources, size_t n_sources, const mt_tokenizer *tok, double valid_fraction,
                 uint64_t seed, const char *train_path, const char *valid_path, char *err, size_t errlen)
{
    struct builder b = {.tok = tok, .valid_fraction = valid_fraction, .seed = seed, .err = err, .errlen = errlen};
    int rc = 0;
    for (size_t i = 0; i < n_sources && !rc; i++)
        rc = add_source(&b, sources[i], 1);
    if (!rc && (b.split[0].n_docs == 0 || b.split[1].n_docs == 0)) {
        snprintf(err, errlen, "the data sources hold %zu training and %zu validation documents; both must be "
                 "non-empty (add data or change valid_fraction)", b.split[0].n_docs, b.split[1].n_docs);
        rc = -1;
    }
    rc = rc || write_cache(train_path, &b.split[0], err, errlen) || write_cache(valid_path, &b.split[1], err, errlen);
    split_free(&b.split[0]);
    split_free(&b.split[1]);
    tok_ids_free(&b.ids);
    return rc ? -1 : 0;
}

int corpus_open(const char *path, struct train_corpus *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    void *map = size >= 24 ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    close(fd);
    const uint8_t *p = map == MAP_FAILED ? NULL : map;
    uint64_t docs = 0, tokens = 0;
    uint32_t version = 0;
    if (p) {
        memcpy(&version, p + 4, 4);
        memcpy(&docs, p + 8, 8);
        memcpy(&tokens, p + 16, 8);
    }
    if (!p || memcmp(p, CACHE_MAGIC, 4) || version != CACHE_VERSION || docs > size / 8 || tokens > size / 5 ||
        24 + 8 * (docs + 1) + 5 * tokens != size) {
        snprintf(err, errlen, "%s: not a token cache of this version (delete it to rebuild from the sources)", path);
        if (p)
            munmap(map, size);
        return -1;
    }
    c->map = map, c->map_size = size;
    c->n_docs = docs, c->n_tokens = tokens;
    c->doc_start = (const uint64_t *)(p + 24);
    c->tokens = (const int32_t *)(p + 24 + 8 * (docs + 1));
    c->scored = p + 24 + 8 * (docs + 1) + 4 * tokens;
    for (uint64_t d = 0; d < docs; d++)
        if (c->doc_start[d] > c->doc_start[d + 1] || c->doc_start[d + 1] > tokens) {
            snprintf(err, errlen, "%s: corrupt document table (delete it to rebuild)", path);
            corpus_close(c);
            return -1;
        }
    return 0;
}

void corpus_close(struct train_corpus *c)
{
    if (c->map)
        munmap(c->map, c->map_size);
    memset(c, 0, sizeof *c);
}
