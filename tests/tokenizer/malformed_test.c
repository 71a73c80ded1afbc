/* Bad tokenizer models give a clear error and never a crash (run under ASan+UBSan in build-asan):
 * every truncation and thousands of random byte strings and mutations of a valid model, hand-made
 * inconsistent models, missing/oversize files, and truncations of InternLM2's real tokenizer.model.
 * Also: the streaming decoder returns only complete UTF-8 and adds up to tok_decode.
 *   malformed_test [INTERNLM2_TOKENIZER_MODEL] */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "melodist/tokenizer.h"
#include "tiny_model.h"
#include "testutil.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

/* Strict UTF-8 (RFC 3629). */
static bool valid_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (!len || i + len > n)
            return false;
        uint32_t cp = len == 1 ? c : c & (0x7F >> len);
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000))
            return false;
        i += len;
    }
    return true;
}

/* A model that loaded must encode and decode without trouble. */
static void exercise(const mt_tokenizer *tok, const char *label)
{
    static const char text[] = "X:1\nK:G\n|: GABc dedB | \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x8E\xB5 <|im_end|>\xFF\xFE  x";
    tok_ids ids = {0};
    CHECK(tok_encode(tok, text, sizeof text - 1, TOK_ADD_BOS | TOK_ADD_EOS | TOK_PARSE_SPECIAL, &ids) == 0,
          "%s: encode failed", label);
    for (size_t i = 0; i < ids.n; i++)
        CHECK(ids.v[i] >= 0 && ids.v[i] < tok_vocab_size(tok), "%s: id %d out of range", label, ids.v[i]);
    char err[256];
    size_t len;
    char *back = tok_decode(tok, ids.v, ids.n, 0, &len, err, sizeof err);
    CHECK(back != NULL, "%s: decode failed: %s", label, err);
    free(back);
    tok_ids_free(&ids);
}

/* Loads buf; returns whether it loaded. A failure must come with a message. */
static bool try_load(const void *buf, size_t n, const char *label, char *err, size_t errlen)
{
    err[0] = '\0';
    mt_tokenizer *tok = tok_load_buffer(buf, n, err, errlen);
    if (!tok) {
        CHECK(err[0] != '\0', "%s: failed without a message", label);
        return false;
    }
    exercise(tok, label);
    tok_free(tok);
    return true;
}

static void expect_error(const tm_buf *m, const char *needle, const char *label)
{
    char err[512];
    bool loaded = try_load(m->p, m->n, label, err, sizeof err);
    CHECK(!loaded && strstr(err, needle), "%s: expected an error mentioning '%s', got '%s'", label, needle,
          loaded ? "(loaded)" : err);
}

static void truncations_and_mutations(void)
{
    tm_buf m = tiny_model(0);
    char err[512];
    CHECK(try_load(m.p, m.n, "tiny model", err, sizeof err), "tiny model does not load: %s", err);
    int loaded = 0;
    for (size_t cut = 0; cut < m.n; cut++)
        loaded += try_load(m.p, cut, "truncated tiny model", err, sizeof err);
    /* A cut on a field boundary may leave a valid (smaller) model; everything else must fail. */
    CHECK(!try_load(m.p, m.n - 1, "tiny model minus one byte", err, sizeof err) && strstr(err, "truncated"),
          "cutting the last byte: '%s'", err);
    printf("truncations: %zu tried, %d loaded (cut on a field boundary), the rest rejected\n", m.n, loaded);

    unsigned char *buf = malloc(m.n);
    loaded = 0;
    for (int i = 0; i < 3000; i++) {
        memcpy(buf, m.p, m.n);
        for (int k = 1 + (int)(rnd() % 4); k > 0; k--)
            buf[rnd() % m.n] = (unsigned char)rnd();
        loaded += try_load(buf, m.n, "mutated tiny model", err, sizeof err);
    }
    printf("mutations: 3000 tried, %d loaded and encoded\n", loaded);
    free(buf);
    free(m.p);

    unsigned char junk[512];
    loaded = 0;
    for (int i = 0; i < 3000; i++) {
        size_t n = rnd() % sizeof junk;
        for (size_t k = 0; k < n; k++)
            junk[k] = (unsigned char)rnd();
        loaded += try_load(junk, n, "random bytes", err, sizeof err);
    }
    CHECK(loaded == 0, "%d random byte strings loaded as models", loaded);
}

/* BPE models of a few pieces, each with one inconsistency: the error expected and a label. */
static const struct {
    struct {
        const char *text;
        float score;
        int type;
    } pieces[3];
    int byte_fallback;
    const char *error, *label;
} bad_pieces[] = {
    {{{"a", 0, 1}}, 0, "UNKNOWN", "no <unk>"},
    {{{"<unk>", 0, 2}, {"a", 0, 1}, {"a", -1, 1}}, 0, "unique", "duplicate piece"},
    {{{"<unk>", 0, 2}, {"<0x41>", 0, 6}}, 0, "byte_fallback is false", "byte piece without byte_fallback"},
    {{{"<unk>", 0, 2}, {"<0x41>", 0, 6}}, 1, "no byte piece <0x00>", "byte_fallback with missing byte pieces"},
    {{{"<unk>", 0, 2}, {"<0xZZ>", 0, 6}}, 1, "not of the form <0xXX>", "bad byte piece"},
    {{{"<unk>", 0, 2}, {"", 0, 1}}, 0, "empty", "empty piece"},
    {{{"<unk>", 0, 2}, {"a", 0, 9}}, 0, "unknown piece type 9", "piece type out of range"},
};

static void inconsistent_models(void)
{
    tm_buf m = {0};
    expect_error(&m, "empty", "empty buffer");

    tm_standard_pieces(&m);
    tm_normalizer_spec(&m, 0);
    expect_error(&m, "unsupported model_type 1 (unigram)", "no trainer_spec (unigram by default)");
    free(m.p);

    for (size_t i = 0; i < sizeof bad_pieces / sizeof *bad_pieces; i++) {
        m = (tm_buf){0};
        for (int k = 0; k < 3 && bad_pieces[i].pieces[k].text; k++)
            tm_piece(&m, bad_pieces[i].pieces[k].text, bad_pieces[i].pieces[k].score, bad_pieces[i].pieces[k].type);
        tm_trainer_spec(&m, 2, bad_pieces[i].byte_fallback);
        expect_error(&m, bad_pieces[i].error, bad_pieces[i].label);
        free(m.p);
    }

    m = (tm_buf){0};
    static const unsigned char long_varint[] = {0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
    tm_put(&m, long_varint, sizeof long_varint);
    expect_error(&m, "truncated", "varint longer than 10 bytes");
    free(m.p);

    m = (tm_buf){0};
    tm_key(&m, 1, 2);
    tm_varint(&m, 1u << 30); /* a piece of 1 GiB in a few bytes */
    expect_error(&m, "truncated", "length past the end");
    free(m.p);

    m = (tm_buf){0};
    tm_key(&m, 1, 3); /* protobuf groups are not used by ModelProto */
    expect_error(&m, "wire type", "group wire type");
    free(m.p);

    m = (tm_buf){0};
    tm_standard_pieces(&m);
    tm_trainer_spec(&m, 2, 1);
    tm_buf n = {0};
    tm_bytes(&n, 2, "\x10\x00\x00\x00", 4); /* charsmap whose trie is larger than the blob */
    tm_bytes(&m, 3, n.p, n.n);
    expect_error(&m, "charsmap", "broken precompiled_charsmap");
    free(n.p);
    free(m.p);
}

static void files(const char *internlm2)
{
    char err[512];
    CHECK(!tok_load("/nonexistent/tokenizer.model", err, sizeof err) && strstr(err, "No such file"),
          "missing file: '%s'", err);

    char dir[] = "/tmp/melodist-tok-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    CHECK(!tok_load(dir, err, sizeof err) && strstr(err, "tokenizer.model"), "directory without a model: '%s'", err);

    char path[sizeof dir + 32];
    snprintf(path, sizeof path, "%s/tokenizer.model", dir);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    CHECK(fd >= 0 && ftruncate(fd, (off_t)3 << 30) == 0, "sparse file");
    close(fd);
    CHECK(!tok_load(dir, err, sizeof err) && strstr(err, "too large"), "oversize file: '%s'", err);
    unlink(path);
    rmdir(dir);

    if (!internlm2 || access(internlm2, R_OK)) {
        printf("InternLM2 tokenizer.model absent: its truncations not checked\n");
        return;
    }
    size_t n;
    unsigned char *buf = (unsigned char *)tu_read_file(internlm2, &n);
    CHECK(buf != NULL, "read %s", internlm2);
    if (!buf)
        return;
    int rejected = 0;
    for (int i = 0; i < 40; i++) {
        size_t cut = (size_t)rnd() % n;
        rejected += !try_load(buf, cut, "truncated InternLM2 model", err, sizeof err);
    }
    CHECK(!try_load(buf, n / 2 + 1, "InternLM2 model cut in half", err, sizeof err), "half a model loaded");
    printf("InternLM2 model: 40 random truncations, %d rejected (last: %s)\n", rejected, err);
    free(buf);
}

static void streaming(void)
{
    tm_buf m = tiny_model(1);
    char err[256];
    mt_tokenizer *tok = tok_load_buffer(m.p, m.n, err, sizeof err);
    free(m.p);
    CHECK(tok != NULL, "tiny model: %s", err);
    if (!tok)
        return;
    int byte0 = tok_piece_id(tok, "<0x00>", 6), n = tok_vocab_size(tok);
    tok_stream *s = tok_stream_new(tok, 0);
    for (int round = 0; round < 2000; round++) {
        int ids[40];
        int count = 1 + (int)(rnd() % 40);
        for (int i = 0; i < count; i++) /* mostly byte pieces, so that UTF-8 is split across tokens */
            ids[i] = rnd() % 4 ? byte0 + (int)(rnd() % 256) : (int)(rnd() % (unsigned)n);
        size_t len;
        char *whole = tok_decode(tok, ids, (size_t)count, 0, &len, err, sizeof err);
        char acc[40 * 16];
        size_t acc_n = 0;
        const char *piece;
        size_t plen;
        bool chunks_valid = true;
        for (int i = 0; i <= count; i++) {
            if (i < count)
                tok_stream_push(s, ids[i], &piece, &plen);
            else
                tok_stream_finish(s, &piece, &plen);
            chunks_valid &= valid_utf8((const unsigned char *)piece, plen);
            memcpy(acc + acc_n, piece, plen);
            acc_n += plen;
        }
        CHECK(chunks_valid, "round %d: the stream returned incomplete UTF-8", round);
        CHECK(whole && acc_n == len && !memcmp(acc, whole, len), "round %d: stream and decode differ", round);
        CHECK(whole && valid_utf8((const unsigned char *)whole, len), "round %d: decode gave invalid UTF-8", round);
        free(whole);
    }
    const char *piece;
    size_t plen;
    CHECK(tok_stream_push(s, n, &piece, &plen) == -1 && tok_stream_push(s, -1, &piece, &plen) == -1,
          "out-of-range ids accepted by the stream");
    int bad = n + 5;
    CHECK(tok_decode(tok, &bad, 1, 0, NULL, err, sizeof err) == NULL && strstr(err, "out of range"),
          "decode of an out-of-range id: '%s'", err);
    tok_stream_free(s);
    tok_free(tok);
}

int main(int argc, char **argv)
{
    truncations_and_mutations();
    inconsistent_models();
    files(argc > 1 ? argv[1] : NULL);
    streaming();
    printf("%d failures\n", tu_failures);
    return tu_failures ? 1 : 0;
}
