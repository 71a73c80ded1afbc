/* Streaming input readers (see input.h). */
#include "input.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum reader_format { FORMAT_ABC, FORMAT_JSONL, FORMAT_TEXT };

struct index_row {
    int x, dup_of_x, split;
    char group[64];
};

struct input_reader {
    enum reader_format format;
    FILE *fp;
    char *path;
    char collection[128];
    char *line;          /* getline buffer */
    size_t line_cap;
    long line_no;        /* number of the line in `line` */
    int have_line;       /* `line` holds a line not consumed yet (ABC lookahead) */
    int seen_tune;
    struct data_buf file_header; /* ABC file-header field lines, copied into every tune */
    struct index_row *index;
    size_t n_index;
    int done;
};

static int split_from_name(const char *s)
{
    if (!strcmp(s, "train"))
        return DATA_SPLIT_TRAIN;
    if (!strcmp(s, "valid") || !strcmp(s, "validation") || !strcmp(s, "dev"))
        return DATA_SPLIT_VALID;
    if (!strcmp(s, "test"))
        return DATA_SPLIT_TEST;
    return -1;
}

static void chomp(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

/* Reads index.tsv beside an .abc file (if any): columns found by name in its header line. */
static int load_index(struct input_reader *r, char *err, size_t errlen)
{
    char dir[4096];
    const char *slash = strrchr(r->path, '/');
    size_t dlen = slash ? (size_t)(slash - r->path) : 0;
    snprintf(dir, sizeof dir, "%.*s%sindex.tsv", (int)dlen, r->path, slash ? "/" : "");
    FILE *fp = fopen(dir, "r");
    if (!fp)
        return 0;
    char *line = NULL;
    size_t cap = 0;
    int col_x = -1, col_group = -1, col_dup = -1, col_split = -1;
    long line_no = 0;
    size_t n_alloc = 0;
    int rc = 0;
    while (getline(&line, &cap, fp) > 0) {
        line_no++;
        chomp(line);
        char *fields[16];
        int nf = 0;
        for (char *p = line; nf < 16;) {
            fields[nf++] = p;
            char *tab = strchr(p, '\t');
            if (!tab)
                break;
            *tab = '\0';
            p = tab + 1;
        }
        if (line_no == 1) {
            for (int i = 0; i < nf; i++) {
                if (!strcmp(fields[i], "X"))
                    col_x = i;
                else if (!strcmp(fields[i], "group"))
                    col_group = i;
                else if (!strcmp(fields[i], "dup_of_X"))
                    col_dup = i;
                else if (!strcmp(fields[i], "suggested_split"))
                    col_split = i;
            }
            if (col_x < 0) {
                snprintf(err, errlen, "%s:1: index.tsv has no 'X' column (expected a header line: X, group, ..., "
                         "suggested_split)", dir);
                rc = -1;
                break;
            }
            continue;
        }
        if (nf <= col_x || !fields[col_x][0])
            continue;
        if (r->n_index == n_alloc) {
            n_alloc = n_alloc ? n_alloc * 2 : 1024;
            r->index = realloc(r->index, n_alloc * sizeof *r->index);
            if (!r->index)
                abort();
        }
        struct index_row *row = &r->index[r->n_index++];
        memset(row, 0, sizeof *row);
        row->x = atoi(fields[col_x]);
        row->split = col_split >= 0 && col_split < nf ? split_from_name(fields[col_split]) : -1;
        row->dup_of_x = col_dup >= 0 && col_dup < nf ? atoi(fields[col_dup]) : 0;
        if (col_group >= 0 && col_group < nf)
            snprintf(row->group, sizeof row->group, "%s", fields[col_group]);
    }
    free(line);
    fclose(fp);
    return rc;
}

static const struct index_row *index_find(const struct input_reader *r, int x)
{
    for (size_t lo = 0, hi = r->n_index; lo < hi;) { /* rows are in X order in every index.tsv we write */
        size_t mid = (lo + hi) / 2;
        if (r->index[mid].x == x)
            return &r->index[mid];
        if (r->index[mid].x < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = 0; i < r->n_index; i++) /* unsorted index: linear fallback */
        if (r->index[i].x == x)
            return &r->index[i];
    return NULL;
}

static int has_extension(const char *path, const char *ext)
{
    size_t n = strlen(path), k = strlen(ext);
    return n > k && !strcasecmp(path + n - k, ext);
}

struct input_reader *input_open(const char *path, int knowledge, char *err, size_t errlen)
{
    enum reader_format format;
    if (knowledge || has_extension(path, ".txt") || has_extension(path, ".md"))
        format = FORMAT_TEXT;
    else if (has_extension(path, ".abc"))
        format = FORMAT_ABC;
    else if (has_extension(path, ".jsonl") || has_extension(path, ".json"))
        format = FORMAT_JSONL;
    else {
        snprintf(err, errlen, "%s: unknown input type (expected .abc, .jsonl/.json, or .txt/.md; use --knowledge "
                 "for other text files)", path);
        return NULL;
    }
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct input_reader *r = calloc(1, sizeof *r);
    if (!r)
        abort();
    r->format = format;
    r->fp = fp;
    r->path = strdup(path);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(r->collection, sizeof r->collection, "%s", base);
    char *dot = strrchr(r->collection, '.');
    if (dot && dot != r->collection)
        *dot = '\0';
    if (format == FORMAT_ABC && load_index(r, err, errlen)) {
        input_close(r);
        return NULL;
    }
    return r;
}

void input_close(struct input_reader *r)
{
    if (!r)
        return;
    if (r->fp)
        fclose(r->fp);
    free(r->path);
    free(r->line);
    free(r->index);
    data_buf_free(&r->file_header);
    free(r);
}

void input_item_free(struct input_item *item)
{
    data_buf_free(&item->text);
    data_buf_free(&item->instruction);
    data_buf_free(&item->input);
    data_buf_free(&item->output);
}

static void item_reset(struct input_reader *r, struct input_item *item)
{
    data_buf_reset(&item->text);
    data_buf_reset(&item->instruction);
    data_buf_reset(&item->input);
    data_buf_reset(&item->output);
    item->path = r->path;
    item->collection = r->collection;
    item->group[0] = '\0';
    item->suggested_split = -1;
    item->x = -1;
    item->dup_of_x = 0;
    item->missing_x = 0;
    item->line = 0;
}

static int read_line(struct input_reader *r)
{
    if (r->have_line) {
        r->have_line = 0;
        return 1;
    }
    if (getline(&r->line, &r->line_cap, r->fp) < 0)
        return 0;
    r->line_no++;
    chomp(r->line);
    return 1;
}

static int is_blank(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return !*s;
}

static int is_field_line(const char *s, char key)
{
    return s[0] == key && s[1] == ':';
}

static int is_any_field_line(const char *s)
{
    return ((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')) && s[1] == ':';
}

/* Next paragraph of an ABC file: lines up to a blank line, or up to (not including) an X: line that starts the next
 * tune. Classifies it as a tune (X: first, or a K: line then music: a tune whose X: is missing), the file header, or
 * free text to skip. */
static int next_abc(struct input_reader *r, struct input_item *item)
{
    for (;;) {
        struct data_buf *block = &item->text;
        data_buf_reset(block);
        long first_line = 0;
        int has_x = 0, has_k = 0, music_after_k = 0, n_lines = 0;
        while (read_line(r)) {
            if (is_blank(r->line)) {
                if (n_lines)
                    break;
                continue;
            }
            if (is_field_line(r->line, 'X') && (has_x || has_k)) {
                r->have_line = 1;
                break;
            }
            if (is_field_line(r->line, 'X') && n_lines) {
                data_buf_reset(block); /* text lines before an X: belong to no tune */
                n_lines = 0;
            }
            if (!n_lines)
                first_line = r->line_no;
            if (is_field_line(r->line, 'X'))
                has_x = 1;
            else if (is_field_line(r->line, 'K'))
                has_k = 1;
            else if (has_k && !is_any_field_line(r->line) && r->line[0] != '%')
                music_after_k = 1;
            data_buf_puts(block, r->line);
            data_buf_putc(block, '\n');
            n_lines++;
        }
        if (!n_lines)
            return 0;
        if (has_x || (has_k && music_after_k)) {
            r->seen_tune = 1;
            item->line = first_line;
            item->missing_x = !has_x;
            return 1;
        }
        if (!r->seen_tune && !r->file_header.len) {
            /* The file header: keep its fields and directives for every tune. */
            const char *p = block->data;
            while (*p) {
                const char *eol = strchr(p, '\n');
                if (is_any_field_line(p) || (p[0] == '%' && p[1] == '%'))
                    data_buf_append(&r->file_header, p, (size_t)(eol - p) + 1);
                p = eol + 1;
            }
        }
    }
}

/* Copies the file header's fields in after the tune's X: line (or at the top when X: is missing). */
static void insert_file_header(struct input_reader *r, struct input_item *item)
{
    if (!r->file_header.len)
        return;
    struct data_buf out = {0};
    const char *t = item->text.data;
    if (!item->missing_x) {
        const char *eol = strchr(t, '\n');
        data_buf_append(&out, t, (size_t)(eol - t) + 1);
        t = eol + 1;
    }
    data_buf_append(&out, r->file_header.data, r->file_header.len);
    data_buf_puts(&out, t);
    data_buf_free(&item->text);
    item->text = out;
}

static int parse_x(const char *text)
{
    const char *p = text;
    while (*p) {
        if (is_field_line(p, 'X')) {
            char *end;
            long v = strtol(p + 2, &end, 10);
            return end == p + 2 || v < 0 || v > 1000000000 ? -1 : (int)v;
        }
        p = strchr(p, '\n');
        if (!p)
            break;
        p++;
    }
    return -1;
}

static void fill_from_index(struct input_reader *r, struct input_item *item)
{
    item->x = parse_x(item->text.data);
    if (item->x < 0)
        return;
    const struct index_row *row = index_find(r, item->x);
    if (!row)
        return;
    snprintf(item->group, sizeof item->group, "%s", row->group);
    item->suggested_split = row->split;
    item->dup_of_x = row->dup_of_x;
}

/* MusicPile texts carry the chat markers of their source; strip them as IMelodist's converter did. */
static void strip_marker(struct data_buf *b, const char *marker)
{
    size_t k = strlen(marker);
    char *p;
    while ((p = strstr(b->data, marker))) {
        memmove(p, p + k, b->len - (size_t)(p - b->data) - k + 1);
        b->len -= k;
    }
}

static void trim(struct data_buf *b)
{
    size_t start = 0;
    while (start < b->len && strchr(" \t\r\n", b->data[start]))
        start++;
    size_t end = b->len;
    while (end > start && strchr(" \t\r\n", b->data[end - 1]))
        end--;
    memmove(b->data, b->data + start, end - start);
    b->len = end - start;
    b->data[b->len] = '\0';
}

static void put_member(struct data_buf *b, const struct data_json_member *m)
{
    data_buf_append(b, m ? m->value : "", m ? m->value_len : 0);
}

static int next_jsonl(struct input_reader *r, struct input_item *item, char *err, size_t errlen)
{
    while (read_line(r)) {
        if (is_blank(r->line))
            continue;
        item->line = r->line_no;
        struct data_json_object obj;
        char msg[256];
        if (r->line[0] == '[') {
            snprintf(err, errlen, "%s:%ld: a JSON array; expected one JSON object per line (JSONL) - convert with "
                     "`jq -c '.[]' FILE > FILE.jsonl`", r->path, r->line_no);
            return -1;
        }
        if (data_json_parse_object(r->line, strlen(r->line), &obj, msg, sizeof msg)) {
            snprintf(err, errlen, "%s:%ld: invalid JSON: %s (each line must be one JSON object)", r->path,
                     r->line_no, msg);
            return -1;
        }
        const struct data_json_member *abc = data_json_get(&obj, "abc notation");
        const struct data_json_member *ins = data_json_get(&obj, "instruction");
        const struct data_json_member *in = data_json_get(&obj, "input");
        const struct data_json_member *out = data_json_get(&obj, "output");
        int rc = 1;
        if (abc) {
            item->kind = INPUT_TUNE;
            put_member(&item->text, abc);
            if (item->text.len && item->text.data[item->text.len - 1] != '\n')
                data_buf_putc(&item->text, '\n');
            item->missing_x = parse_x(item->text.data) < 0;
            item->x = parse_x(item->text.data);
        } else if (out && (ins || in)) {
            item->kind = INPUT_SFT;
            put_member(&item->instruction, ins);
            put_member(&item->input, in);
            put_member(&item->output, out);
            strip_marker(&item->instruction, "Human: ");
            strip_marker(&item->input, "</s>");
            strip_marker(&item->output, "</s>");
            strip_marker(&item->output, "Assistant: ");
            trim(&item->instruction);
            trim(&item->input);
            trim(&item->output);
            if (!item->output.len) {
                snprintf(err, errlen, "%s:%ld: MusicPile record with an empty \"output\"", r->path, r->line_no);
                rc = -1;
            }
        } else {
            snprintf(err, errlen, "%s:%ld: JSON object has neither \"abc notation\" (IrishMAN) nor \"instruction\"/"
                     "\"input\" + \"output\" string members (MusicPile)", r->path, r->line_no);
            rc = -1;
        }
        data_json_object_free(&obj);
        return rc;
    }
    return 0;
}

/* A knowledge file is one document: valid UTF-8, CRLF turned into LF, no line equal to the document separator. */
static int next_text(struct input_reader *r, struct input_item *item, char *err, size_t errlen)
{
    if (r->done)
        return 0;
    r->done = 1;
    item->kind = INPUT_TEXT;
    item->line = 1;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, r->fp)) > 0)
        for (size_t i = 0; i < n; i++)
            if (chunk[i] != '\r')
                data_buf_putc(&item->text, chunk[i]);
    if (ferror(r->fp)) {
        snprintf(err, errlen, "%s: read error", r->path);
        return -1;
    }
    size_t bad;
    if (!utf8_valid(item->text.data ? item->text.data : "", item->text.len, &bad)) {
        long line = 1;
        for (size_t i = 0; i < bad; i++)
            line += item->text.data[i] == '\n';
        snprintf(err, errlen, "%s:%ld: invalid UTF-8 (byte offset %zu); knowledge texts must be UTF-8 (convert with "
                 "iconv)", r->path, line, bad);
        return -1;
    }
    if (memchr(item->text.data ? item->text.data : "", '\0', item->text.len)) {
        snprintf(err, errlen, "%s: contains NUL bytes; knowledge texts must be plain UTF-8 text", r->path);
        return -1;
    }
    trim(&item->text);
    long line = 1;
    for (const char *p = item->text.data; p && *p; line++) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len == strlen(DATA_DOC_SEPARATOR) && !memcmp(p, DATA_DOC_SEPARATOR, len)) {
            snprintf(err, errlen, "%s:%ld: the line '%s' is the pre-training document separator; remove it or split "
                     "the file", r->path, line, DATA_DOC_SEPARATOR);
            return -1;
        }
        p = eol ? eol + 1 : p + len;
    }
    return item->text.len ? 1 : 0;
}

int input_next(struct input_reader *r, struct input_item *item, char *err, size_t errlen)
{
    item_reset(r, item);
    switch (r->format) {
    case FORMAT_ABC:
        item->kind = INPUT_TUNE;
        if (!next_abc(r, item))
            return 0;
        insert_file_header(r, item);
        fill_from_index(r, item);
        return 1;
    case FORMAT_JSONL:
        return next_jsonl(r, item, err, errlen);
    case FORMAT_TEXT:
        return next_text(r, item, err, errlen);
    }
    return 0;
}
