/* melodist tokenize / melodist detokenize: the SentencePiece-compatible tokenizer on the command line,
 * line for line like spm_encode / spm_decode when reading stdin. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "melodist/tokenizer.h"

static void tokenize_usage(FILE *out)
{
    fprintf(out,
            "usage: melodist tokenize -m MODEL [--ids|--pieces] [--bos] [--eos] [--special] [TEXT|-|-- TEXT]\n"
            "  MODEL      a SentencePiece tokenizer.model, or a model directory holding one\n"
            "  --ids      print token ids (default)\n"
            "  --pieces   print pieces, as spm_encode --output_format=piece\n"
            "  --bos      prepend the BOS id; --eos: append the EOS id\n"
            "  --special  recognise the chat special tokens (<|im_start|>, <|im_end|>, <s>, ...) in the text\n"
            "TEXT is encoded as one sequence; with '-' or no TEXT each line of stdin is encoded to one line.\n");
}

static void detokenize_usage(FILE *out)
{
    fprintf(out,
            "usage: melodist detokenize -m MODEL [--special-names|--skip-special] [ID...|-]\n"
            "  --special-names  write chat special tokens by name (<|im_end|>); --skip-special: drop them\n"
            "The IDs are decoded as one sequence; with '-' or no ID each line of stdin (ids separated by spaces)\n"
            "is decoded to one line, as spm_decode --input_format=id.\n");
}

typedef struct print_ctx {
    FILE *out;
    bool pieces;
    size_t count;
} print_ctx;

static void print_token(void *ctx, int id, const char *piece, size_t len)
{
    print_ctx *p = ctx;
    if (p->count++)
        fputc(' ', p->out);
    if (p->pieces)
        fwrite(piece, 1, len, p->out);
    else
        fprintf(p->out, "%d", id);
}

static int encode_line(const mt_tokenizer *tok, const char *text, size_t len, unsigned flags, bool pieces)
{
    print_ctx p = {stdout, pieces, 0};
    if (tok_encode_each(tok, text, len, flags, print_token, &p)) {
        fprintf(stderr, "melodist tokenize: out of memory\n");
        return 1;
    }
    fputc('\n', stdout);
    return 0;
}

/* Parses -m MODEL and loads it; NULL (message printed) on failure. */
static mt_tokenizer *load_model(const char *cmd, const char *path)
{
    char err[512];
    if (!path) {
        fprintf(stderr, "melodist %s: missing -m MODEL (a tokenizer.model or a directory holding one)\n", cmd);
        return NULL;
    }
    mt_tokenizer *tok = tok_load(path, err, sizeof err);
    if (!tok)
        fprintf(stderr,
                "melodist %s: cannot load tokenizer: %s\n"
                "  (-m takes a SentencePiece BPE tokenizer.model, such as InternLM2's or one made by "
                "scripts/train-tokenizer.sh)\n",
                cmd, err);
    return tok;
}

int cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL, *text = NULL;
    bool pieces = false;
    unsigned flags = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            tokenize_usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") && i + 1 < argc) {
            model = argv[++i];
        } else if (!strcmp(a, "--ids")) {
            pieces = false;
        } else if (!strcmp(a, "--pieces")) {
            pieces = true;
        } else if (!strcmp(a, "--bos")) {
            flags |= TOK_ADD_BOS;
        } else if (!strcmp(a, "--eos")) {
            flags |= TOK_ADD_EOS;
        } else if (!strcmp(a, "--special")) {
            flags |= TOK_PARSE_SPECIAL;
        } else if (!strcmp(a, "--") && i + 1 < argc && !text) {
            text = argv[++i];
        } else if ((a[0] != '-' || !strcmp(a, "-")) && !text) {
            text = a;
        } else {
            fprintf(stderr, "melodist tokenize: unexpected argument '%s'\n", a);
            tokenize_usage(stderr);
            return 2;
        }
    }
    mt_tokenizer *tok = load_model("tokenize", model);
    if (!tok)
        return model ? 1 : 2;
    int rc = 0;
    if (text && strcmp(text, "-")) {
        rc = encode_line(tok, text, strlen(text), flags, pieces);
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while (!rc && (n = getline(&line, &cap, stdin)) >= 0) {
            if (n > 0 && line[n - 1] == '\n')
                n--;
            rc = encode_line(tok, line, (size_t)n, flags, pieces);
        }
        free(line);
    }
    tok_free(tok);
    if (fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, "melodist tokenize: write error\n");
        rc = 1;
    }
    return rc;
}

/* Parses whitespace-separated ids from s into *ids; returns 0 or -1 (message printed). */
static int parse_ids(const char *s, tok_ids *ids, const char *where)
{
    ids->n = 0;
    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == '\r')
            s++;
        if (!*s)
            return 0;
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < INT_MIN || v > INT_MAX || (*end && *end != ' ' && *end != '\t' && *end != '\r')) {
            fprintf(stderr, "melodist detokenize: %s: '%.20s' is not a token id\n", where, s);
            return -1;
        }
        if (ids->n == ids->cap) {
            size_t cap = ids->cap ? 2 * ids->cap : 64;
            int *p = realloc(ids->v, cap * sizeof *p);
            if (!p) {
                fprintf(stderr, "melodist detokenize: out of memory\n");
                return -1;
            }
            ids->v = p;
            ids->cap = cap;
        }
        ids->v[ids->n++] = (int)v;
        s = end;
    }
}

static int decode_line(const mt_tokenizer *tok, const tok_ids *ids, unsigned flags, const char *where)
{
    char err[256];
    size_t len;
    char *text = tok_decode(tok, ids->v, ids->n, flags, &len, err, sizeof err);
    if (!text) {
        fprintf(stderr, "melodist detokenize: %s: %s\n", where, err);
        return 1;
    }
    fwrite(text, 1, len, stdout);
    fputc('\n', stdout);
    free(text);
    return 0;
}

int cmd_detokenize(int argc, char **argv)
{
    const char *model = NULL;
    unsigned flags = 0;
    int first_id = argc;
    bool from_stdin = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            detokenize_usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") && i + 1 < argc) {
            model = argv[++i];
        } else if (!strcmp(a, "--special-names")) {
            flags |= TOK_SPECIAL_NAMES;
        } else if (!strcmp(a, "--skip-special")) {
            flags |= TOK_SKIP_SPECIAL;
        } else if (!strcmp(a, "-")) {
            from_stdin = true;
        } else if (a[0] != '-' || (a[1] >= '0' && a[1] <= '9')) {
            first_id = i;
            break;
        } else {
            fprintf(stderr, "melodist detokenize: unexpected argument '%s'\n", a);
            detokenize_usage(stderr);
            return 2;
        }
    }
    mt_tokenizer *tok = load_model("detokenize", model);
    if (!tok)
        return model ? 1 : 2;
    tok_ids ids = {0};
    int rc = 0;
    if (first_id < argc && !from_stdin) {
        size_t total = 1;
        for (int i = first_id; i < argc; i++)
            total += strlen(argv[i]) + 1;
        char *joined = malloc(total);
        if (!joined) {
            fprintf(stderr, "melodist detokenize: out of memory\n");
            rc = 1;
        } else {
            char *w = joined;
            for (int i = first_id; i < argc; i++) {
                size_t l = strlen(argv[i]);
                memcpy(w, argv[i], l);
                w += l;
                *w++ = ' ';
            }
            *w = '\0';
            rc = parse_ids(joined, &ids, "arguments") ? 1 : decode_line(tok, &ids, flags, "arguments");
            free(joined);
        }
    } else {
        char *line = NULL, where[64];
        size_t cap = 0;
        long lineno = 0;
        while (!rc && getline(&line, &cap, stdin) >= 0) {
            line[strcspn(line, "\n")] = '\0';
            snprintf(where, sizeof where, "line %ld", ++lineno);
            rc = parse_ids(line, &ids, where) ? 1 : decode_line(tok, &ids, flags, where);
        }
        free(line);
    }
    tok_ids_free(&ids);
    tok_free(tok);
    if (fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, "melodist detokenize: write error\n");
        rc = 1;
    }
    return rc;
}
